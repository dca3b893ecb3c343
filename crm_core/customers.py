"""Customer services: create, read, update, search, list, archive and restore.

Every function takes the acting user, applies ``crm_core.access`` and writes the audit trail.
Read functions return ``CustomerOut`` shaped for the actor (support sees contact fields only,
analysts see personal fields masked); write functions return the ORM ``Customer``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import phonenumbers
from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    Select,
    and_,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
    tuple_,
    union,
)
from sqlalchemy.orm import Session

from crm_core import access, audit
from crm_core.access import Actor, require
from crm_core.archiving import archive_customers, clean_reason
from crm_core.customfields import list_definitions, validate_values
from crm_core.errors import ConflictError, InvalidInput, NotFound, PermissionDenied
from crm_core.models import (
    Customer,
    CustomerEmail,
    CustomerKind,
    CustomerPhone,
    Lifecycle,
    Role,
    Tag,
    User,
    ValueTier,
    customer_tags,
    utcnow,
)
from crm_core.normalize import (
    clean_text,
    has_cjk,
    normalize_email,
    normalize_phone,
    parse_date,
    pinyin_key,
    try_normalize_phone,
)
from crm_core.settings import get_settings

#: Plain columns a caller may set on create or update.
TEXT_FIELDS = (
    "company_name",
    "position",
    "industry",
    "size",
    "source",
    "province",
    "city",
    "district",
    "street",
    "postcode",
    "external_id",
    "notes",
)
EDITABLE_FIELDS = frozenset(
    {
        "kind",
        "name",
        "phones",
        "emails",
        "phone",
        "email",
        "company_id",
        "country",
        "birthday",
        "lifecycle_stage",
        "value_tier",
        "owner_id",
        "tags",
        "custom",
        *TEXT_FIELDS,
    }
)
_LIMITS = {"notes": 10_000, "street": 255, "external_id": 120, "company_name": 200}


class CustomerOut(BaseModel):
    """A customer as the actor may see it. ``field_mode`` says how it was shaped."""

    model_config = ConfigDict(frozen=True)

    id: int
    kind: str | None = None
    name: str | None = None
    phone: str | None = None
    email: str | None = None
    phones: list[str] | None = None
    emails: list[str] | None = None
    company_id: int | None = None
    company_name: str | None = None
    position: str | None = None
    industry: str | None = None
    size: str | None = None
    source: str | None = None
    country: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None
    street: str | None = None
    postcode: str | None = None
    birthday: date | None = None
    lifecycle_stage: str | None = None
    value_tier: str | None = None
    owner_id: int | None = None
    team_id: int | None = None
    external_id: str | None = None
    notes: str | None = None
    tags: list[str] | None = None
    custom: dict[str, Any] | None = None
    last_contact_at: datetime | None = None
    archived_at: datetime | None = None
    archived_by_id: int | None = None
    archive_reason: str | None = None
    merged_into_id: int | None = None
    anonymised_at: datetime | None = None
    version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    field_mode: str = "full"


def customer_dict(customer: Customer) -> dict[str, Any]:
    """Every field of a customer as plain values (the shape of ``CustomerOut``)."""
    return {
        "id": customer.id,
        "kind": customer.kind,
        "name": customer.name,
        "phone": customer.phone,
        "email": customer.email,
        "phones": [p.e164 for p in customer.phones],
        "emails": [e.email for e in customer.emails],
        "company_id": customer.company_id,
        **{f: getattr(customer, f) for f in TEXT_FIELDS},
        "country": customer.country,
        "birthday": customer.birthday,
        "lifecycle_stage": customer.lifecycle_stage,
        "value_tier": customer.value_tier,
        "owner_id": customer.owner_id,
        "team_id": customer.team_id,
        "tags": [t.name for t in customer.tags],
        "custom": dict(customer.custom or {}),
        "last_contact_at": customer.last_contact_at,
        "archived_at": customer.archived_at,
        "archived_by_id": customer.archived_by_id,
        "archive_reason": customer.archive_reason,
        "merged_into_id": customer.merged_into_id,
        "anonymised_at": customer.anonymised_at,
        "version": customer.version,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
    }


def to_out(actor: Actor, customer: Customer) -> CustomerOut:
    """Shape a loaded customer for the actor."""
    data = access.shape_for(actor, customer_dict(customer))
    return CustomerOut(**data, field_mode=access.field_mode(actor))


#: Follows each two-character search key in the search text (see ``short_search_keys``).
SHORT_KEY_MARK = "\u241f"


def short_search_keys(name: str, name_key: str) -> str:
    """Two-character search keys of a Chinese name, each followed by ``SHORT_KEY_MARK``: every
    pair of neighbouring Chinese characters (王小明 -> 王小, 小明) and two-letter pinyin
    initials (李娜 -> ln). A two-character query ``q`` then becomes the three-character
    ``q + SHORT_KEY_MARK``, which the trigram indexes (FTS5, pg_trgm) can look up, so
    "小明" finds 王小明 without scanning every name."""
    chars = [c for c in name if has_cjk(c)]
    keys = {a + b for a, b in zip(chars, chars[1:], strict=False)}
    initials = name_key.rpartition(" ")[2]
    if len(initials) == 2:
        keys.add(initials)
    return "".join(k + SHORT_KEY_MARK for k in sorted(keys))


def build_search_text(
    name: str, name_key: str, company: str | None, emails: Iterable[str], phones: Iterable[str]
) -> str:
    """The text the quick search looks in: name, pinyin, short keys, company, emails and
    phone digits.

    Each part is written once: a Latin name is its own pinyin key and a company's name is
    usually its company name, and a phone's national number is the tail of its E.164 digits,
    so every substring of the repeats is found in the first copy anyway. Every trigram saved
    is work saved for each insert into the search index."""
    parts = [name.lower()]
    for extra in (name_key, (company or "").lower()):
        if extra and extra not in parts:
            parts.append(extra)
    if name_key:
        parts.append(short_search_keys(name, name_key))
    parts += [e.lower() for e in emails]
    parts += [e164.lstrip("+") for e164 in phones]
    return " ".join(p for p in parts if p)


# ---------------------------------------------------------------- validation


def _error(errors: dict[str, str], exc: InvalidInput, fallback: str) -> None:
    errors[exc.field or fallback] = exc.message.split(": ", 1)[-1]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[;,\n]", value) if v.strip()]
    return list(value)


_KINDS = frozenset(k.value for k in CustomerKind)
_STAGES = frozenset(s.value for s in Lifecycle)
_TIERS = frozenset(t.value for t in ValueTier)


@dataclass
class CleanCustomer:
    """Validated values ready to be applied to a ``Customer``."""

    columns: dict[str, Any] = field(default_factory=dict)
    phones: list[tuple[str, str]] | None = None  # (e164, raw)
    emails: list[str] | None = None
    tags: list[str] | None = None
    custom: dict[str, Any] | None = None


class _Validator:
    """Validates customer input; caches look-ups so bulk imports stay fast.

    With ``session=None`` it is pure (no database): owners, companies and custom-field
    definitions then come from the preloaded maps, so bulk imports can validate in worker
    processes.
    """

    def __init__(
        self,
        session: Session | None,
        *,
        users: dict[int, Any] | None = None,
        companies: dict[int, tuple[str, str]] | None = None,
        definitions: list[Any] | None = None,
        default_region: str | None = None,
    ) -> None:
        self.session = session
        self.default_region = default_region or get_settings().default_region
        self._definitions = definitions
        self._users: dict[int, Any] = dict(users or {})
        self._companies: dict[int, tuple[str, str]] = dict(companies or {})

    @property
    def definitions(self) -> list[Any]:
        if self._definitions is None:
            self._definitions = list_definitions(self.session) if self.session else []
        return self._definitions

    def user(self, user_id: int) -> Any:
        """The user (or any object with ``id, active, role, team_id``) or ``None``."""
        if user_id not in self._users and self.session is not None:
            self._users[user_id] = self.session.get(User, user_id)
        return self._users.get(user_id)

    def company(self, customer_id: int) -> tuple[str, str] | None:
        """``(kind, name)`` of a customer, or ``None``."""
        if customer_id not in self._companies and self.session is not None:
            row = self.session.get(Customer, customer_id)
            if row is not None:
                self._companies[customer_id] = (row.kind, row.name)
        return self._companies.get(customer_id)

    def clean(self, data: Mapping[str, Any], *, existing: Customer | None = None) -> CleanCustomer:
        unknown = set(data) - EDITABLE_FIELDS
        if unknown:
            raise InvalidInput(
                f"unknown field(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
            )
        errors: dict[str, str] = {}
        out = CleanCustomer()
        cols = out.columns

        if "name" in data or existing is None:
            name = clean_text(data.get("name"))
            if not name:
                errors["name"] = "is required"
            elif len(name) > 200:
                errors["name"] = "is longer than 200 characters"
            else:
                cols["name"] = name
        if "kind" in data:
            kind = clean_text(data["kind"]) or CustomerKind.PERSON
            if kind not in _KINDS:
                errors["kind"] = f"'{kind}' is not person or company"
            cols["kind"] = kind
        for key in TEXT_FIELDS:
            if key in data:
                value = clean_text(data[key])
                if value and len(value) > _LIMITS.get(key, 120):
                    errors[key] = f"is longer than {_LIMITS.get(key, 120)} characters"
                cols[key] = value
        if "country" in data:
            country = (clean_text(data["country"]) or "").upper() or None
            if country and country not in phonenumbers.SUPPORTED_REGIONS:
                errors["country"] = f"'{country}' is not an ISO country code such as CN or US"
            cols["country"] = country
        region = cols.get("country") or (existing.country if existing else None)
        region = region or self.default_region

        phones_in = None
        if "phones" in data:
            phones_in = _as_list(data["phones"])
        elif "phone" in data:
            rest = [p.raw for p in existing.phones[1:]] if existing else []
            phones_in = _as_list(data["phone"])[:1] + rest
        if phones_in is not None:
            phones: list[tuple[str, str]] = []
            for i, raw in enumerate(phones_in):
                name = "phone" if i == 0 else f"phones[{i}]"
                try:
                    e164 = normalize_phone(raw, region=region, field=name)
                except InvalidInput as exc:
                    _error(errors, exc, name)
                    continue
                if e164 and e164 not in {p[0] for p in phones}:
                    phones.append((e164, clean_text(raw) or e164))
            out.phones = phones

        emails_in = None
        if "emails" in data:
            emails_in = _as_list(data["emails"])
        elif "email" in data:
            rest = [e.email for e in existing.emails[1:]] if existing else []
            emails_in = _as_list(data["email"])[:1] + rest
        if emails_in is not None:
            emails: list[str] = []
            for i, raw in enumerate(emails_in):
                name = "email" if i == 0 else f"emails[{i}]"
                try:
                    email = normalize_email(raw, field=name)
                except InvalidInput as exc:
                    _error(errors, exc, name)
                    continue
                if email and email.lower() not in {e.lower() for e in emails}:
                    emails.append(email)
            out.emails = emails

        if "birthday" in data:
            try:
                birthday = parse_date(data["birthday"], field="birthday")
            except InvalidInput as exc:
                _error(errors, exc, "birthday")
                birthday = None
            if birthday and birthday > utcnow().date():
                errors["birthday"] = "is in the future"
            elif birthday and birthday.year < 1900:
                errors["birthday"] = "is before 1900"
            cols["birthday"] = birthday
        if "lifecycle_stage" in data:
            stage = (clean_text(data["lifecycle_stage"]) or Lifecycle.LEAD).lower()
            if stage not in _STAGES:
                errors["lifecycle_stage"] = (
                    f"'{stage}' is not one of {', '.join(s.value for s in Lifecycle)}"
                )
            cols["lifecycle_stage"] = stage
        if "value_tier" in data:
            tier = (clean_text(data["value_tier"]) or "").upper() or None
            if tier and tier not in _TIERS:
                errors["value_tier"] = f"'{tier}' is not A, B or C"
            cols["value_tier"] = tier
        if "owner_id" in data:
            owner_id = data["owner_id"]
            if owner_id in ("", None):
                cols["owner_id"] = None
            else:
                try:
                    owner = self.user(int(owner_id))
                except (TypeError, ValueError):
                    owner = None
                if owner is None or not owner.active or owner.role == Role.SYSTEM:
                    errors["owner_id"] = f"user {owner_id} does not exist or is inactive"
                else:
                    cols["owner_id"] = owner.id
        if "company_id" in data:
            company_id = data["company_id"]
            if company_id in ("", None):
                cols["company_id"] = None
            else:
                try:
                    company_key = int(company_id)
                except (TypeError, ValueError):
                    company_key = -1
                company = self.company(company_key)
                if company is None or company[0] != CustomerKind.COMPANY:
                    errors["company_id"] = f"customer {company_id} is not a company"
                elif existing is not None and company_key == existing.id:
                    errors["company_id"] = "a company cannot be its own contact"
                else:
                    cols["company_id"] = company_key
                    if not cols.get("company_name") and "company_name" not in data:
                        cols["company_name"] = company[1]
        if "tags" in data:
            tags = []
            for raw in _as_list(data["tags"]):
                tag = clean_text(raw)
                if tag and len(tag) > 80:
                    errors["tags"] = f"tag '{tag[:20]}…' is longer than 80 characters"
                elif tag and tag not in tags:
                    tags.append(tag)
            out.tags = tags
        if "custom" in data or (existing is None and any(d.required for d in self.definitions)):
            try:
                out.custom = validate_values(
                    self.definitions,
                    dict(data.get("custom") or {}),
                    existing=existing.custom if existing is not None else None,
                )
            except InvalidInput as exc:
                errors.update(exc.errors or {exc.field or "custom": exc.message})
        if errors:
            first = next(iter(errors))
            message = "; ".join(f"{k}: {v}" for k, v in errors.items())
            raise InvalidInput(message, field=first, errors=errors)
        return out


def _tags_by_name(session: Session, names: list[str]) -> list[Tag]:
    if not names:
        return []
    found = {t.name: t for t in session.scalars(select(Tag).where(Tag.name.in_(names)))}
    for name in names:
        if name not in found:
            found[name] = Tag(name=name)
            session.add(found[name])
    return [found[n] for n in names]


def _apply(session: Session, customer: Customer, clean: CleanCustomer) -> None:
    for key, value in clean.columns.items():
        setattr(customer, key, value)
    if clean.phones is not None:
        customer.phones = [
            CustomerPhone(e164=e164, raw=raw, is_primary=i == 0)
            for i, (e164, raw) in enumerate(clean.phones)
        ]
        customer.phone = clean.phones[0][0] if clean.phones else None
    if clean.emails is not None:
        customer.emails = [
            CustomerEmail(email=email, is_primary=i == 0) for i, email in enumerate(clean.emails)
        ]
        customer.email = clean.emails[0] if clean.emails else None
    if clean.tags is not None:
        customer.tags = _tags_by_name(session, clean.tags)
    if clean.custom is not None:
        customer.custom = clean.custom
    if "owner_id" in clean.columns:
        owner = session.get(User, customer.owner_id) if customer.owner_id else None
        customer.team_id = owner.team_id if owner else None
    customer.name_key = pinyin_key(customer.name)
    customer.search_text = build_search_text(
        customer.name,
        customer.name_key,
        customer.company_name,
        [e.email for e in customer.emails],
        [p.e164 for p in customer.phones],
    )


def _check_owner_change(actor: Actor, session: Session, owner_id: int | None) -> None:
    """Sales may only own customers themselves; managers assign within their team."""
    if actor.role in (Role.ADMIN, Role.SYSTEM, Role.DATA_STEWARD):
        return
    if actor.role == Role.SALES and owner_id not in (actor.id,):
        raise PermissionDenied("sales users can only assign customers to themselves")
    if actor.role == Role.MANAGER and owner_id is not None and owner_id != actor.id:
        owner = session.get(User, owner_id)
        if owner is None or owner.team_id != actor.team_id:
            raise PermissionDenied("managers can only assign customers to their own team")


def _snapshot(customer: Customer) -> dict[str, Any]:
    data = customer_dict(customer)
    for key in ("created_at", "updated_at", "version", "last_contact_at"):
        data.pop(key, None)
    return data


def _index_for_dedupe(session: Session, customer: Customer) -> None:
    """Keep the customer's duplicate-check blocking keys current."""
    from crm_core.dedupe.store import index_customer  # lazy: the engine loads pandas

    index_customer(session, customer)


# ---------------------------------------------------------------- create / read


def create_customer(
    session: Session,
    *,
    actor: Actor,
    data: Mapping[str, Any] | BaseModel,
    source: str | None = None,
) -> Customer:
    """Create a customer from validated ``data``; the owner defaults to a sales actor."""
    require(actor, "customer.create")
    values = dict(data.model_dump(exclude_unset=True) if isinstance(data, BaseModel) else data)
    if actor.role == Role.SALES:
        values.setdefault("owner_id", actor.id)
    if values.get("owner_id") not in (None, ""):
        _check_owner_change(actor, session, int(values["owner_id"]))
    clean = _Validator(session).clean(values)
    customer = Customer(
        kind=clean.columns.get("kind", CustomerKind.PERSON),
        lifecycle_stage=clean.columns.get("lifecycle_stage", Lifecycle.LEAD),
        created_by_id=actor.id,
        custom={},
    )
    _apply(session, customer, clean)
    if customer.owner_id is None and actor.role == Role.MANAGER:
        customer.team_id = actor.team_id
    session.add(customer)
    session.flush()
    _index_for_dedupe(session, customer)
    audit.record(
        session,
        actor=actor,
        action="customer.create",
        entity_type="customer",
        entity_id=customer.id,
        changes=audit.diff({}, _snapshot(customer)),
        source=source,
    )
    return customer


def load_customer(
    session: Session, *, actor: Actor, customer_id: int, for_change: bool = False
) -> Customer:
    """The ORM record if the actor may see it (and change it, with ``for_change``).

    A customer the actor may not see raises ``NotFound``, exactly as a missing one, so a
    forged id reveals nothing.
    """
    customer = session.get(Customer, customer_id)
    if customer is None or not access.can_see(actor, customer):
        raise NotFound(f"customer {customer_id} does not exist")
    if for_change and not access.can_change(actor, customer):
        raise PermissionDenied(f"you may not change customer {customer_id}")
    return customer


def get_customer(session: Session, *, actor: Actor, customer_id: int) -> CustomerOut:
    """One customer, shaped for the actor."""
    require(actor, "customer.read")
    return to_out(actor, load_customer(session, actor=actor, customer_id=customer_id))


def contacts_of(session: Session, *, actor: Actor, company_id: int) -> list[CustomerOut]:
    """The contact persons of a company that the actor may see."""
    load_customer(session, actor=actor, customer_id=company_id)
    stmt = (
        select(Customer)
        .where(Customer.company_id == company_id, access.visible_customers(actor))
        .where(Customer.archived_at.is_(None))
        .order_by(Customer.name)
    )
    return [to_out(actor, c) for c in session.scalars(stmt)]


# ---------------------------------------------------------------- update


def update_customer(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    expected_version: int,
    changes: Mapping[str, Any],
    source: str | None = None,
) -> Customer:
    """Apply ``changes`` if the record is still at ``expected_version``.

    A stale version raises ``ConflictError`` carrying the stored and the attempted values of the
    fields that differ; nothing is written.
    """
    require(actor, "customer.update")
    customer = load_customer(session, actor=actor, customer_id=customer_id, for_change=True)
    if customer.archived_at is not None:
        raise ConflictError(f"customer {customer_id} is archived; restore it before editing")
    if customer.anonymised_at is not None:
        raise ConflictError(f"customer {customer_id} was anonymised and cannot be edited")
    if customer.version != expected_version:
        stored = customer_dict(customer)
        fields = [k for k in changes if k in stored]
        raise ConflictError(
            f"customer {customer_id} was changed by someone else (version {customer.version}, "
            f"you edited version {expected_version}); reload and apply your changes again",
            current_version=customer.version,
            current={k: stored[k] for k in fields},
            attempted={k: changes[k] for k in fields},
        )
    if "owner_id" in changes and changes["owner_id"] != customer.owner_id:
        if actor.role == Role.SALES:
            # a sales user may claim an unowned lead, nothing else
            if not (customer.owner_id is None and changes["owner_id"] == actor.id):
                raise PermissionDenied("sales users cannot reassign customers")
        else:
            require(actor, "customer.reassign")
            owner = changes["owner_id"]
            _check_owner_change(actor, session, int(owner) if owner not in (None, "") else None)
    before = _snapshot(customer)
    clean = _Validator(session).clean(changes, existing=customer)
    _apply(session, customer, clean)
    changed = audit.diff(before, _snapshot(customer))
    if not changed:
        return customer
    session.flush()
    _index_for_dedupe(session, customer)
    audit.record(
        session,
        actor=actor,
        action="customer.update",
        entity_type="customer",
        entity_id=customer.id,
        changes=changed,
        source=source,
    )
    return customer


# ---------------------------------------------------------------- archive / restore


def archive_customer(
    session: Session, *, actor: Actor, customer_id: int, reason: str, source: str | None = None
) -> Customer:
    """Archive a customer with a reason; the record and its history are kept.

    The same service as bulk and automatic archiving (``crm_core.archiving``), with a clear
    refusal for a record the actor may not change or that is archived already.
    """
    require(actor, "customer.archive")
    customer = load_customer(session, actor=actor, customer_id=customer_id, for_change=True)
    reason = clean_reason(reason)
    if customer.archived_at is not None:
        raise ConflictError(f"customer {customer_id} is archived already")
    session.flush()
    archive_customers(
        session, actor=actor, customer_ids=[customer.id], reason=reason, source=source
    )
    session.refresh(customer)
    return customer


def restore_customer(session: Session, *, actor: Actor, customer_id: int) -> Customer:
    """Put an archived customer back into the active lists, history intact."""
    require(actor, "customer.restore")
    customer = load_customer(session, actor=actor, customer_id=customer_id, for_change=True)
    if customer.archived_at is None:
        raise ConflictError(f"customer {customer_id} is not archived")
    changes = {
        "archived_at": [customer.archived_at, None],
        "archive_reason": [customer.archive_reason, None],
        "archived_by_id": [customer.archived_by_id, None],
    }
    customer.archived_at = None
    customer.archived_by_id = None
    customer.archive_reason = None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="customer.restore",
        entity_type="customer",
        entity_id=customer.id,
        changes=changes,
    )
    return customer


# ---------------------------------------------------------------- list and search


@dataclass
class CustomerFilter:
    """Filters of the customer list; ``archived`` selects archived records instead of live ones
    (``None``: both, as reports over history need)."""

    query: str | None = None
    owner_id: int | None = None
    team_id: int | None = None
    tag: str | None = None
    lifecycle_stage: str | None = None
    industry: str | None = None
    city: str | None = None
    source: str | None = None
    kind: str | None = None
    province: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    last_contact_from: datetime | None = None
    last_contact_to: datetime | None = None
    archived: bool | None = False
    unowned: bool = False


@dataclass
class Page:
    """One page of results and the cursor of the next page (``None`` on the last page)."""

    items: list[CustomerOut]
    next_cursor: str | None


SORTABLE = {
    "updated_at": Customer.updated_at,
    "created_at": Customer.created_at,
    "name": Customer.name,
    "id": Customer.id,
}

_PHONE_LIKE = re.compile(r"^[+()\d][\d\s().+-]{5,}$")
_FTS_MIN = 3


def _fts_phrase(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _like_escape(token: str) -> str:
    return token.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class SearchPlan:
    """How a quick-search text is looked up (pure; see ``plan_search``).

    ``kind`` is ``phone`` (exact E.164 match), ``text`` (trigram index: FTS5 on SQLite,
    pg_trgm on PostgreSQL; ``groups`` are alternatives, each a list of fragments that must all
    occur) or ``prefix`` (name or pinyin starting with ``prefix``: for fragments shorter than the
    three characters a trigram index can match, such as the two-character name 王伟; a
    two-character fragment also matches inside Chinese names and pinyin initials through
    ``short_search_keys``).
    """

    kind: str
    e164: str | None = None
    groups: tuple[tuple[str, ...], ...] = ()
    prefix: str = ""


def plan_search(query: str, *, region: str = "CN") -> SearchPlan | None:
    """Decide how to look up a quick-search text; ``None`` for an empty one."""
    text_q = (clean_text(query) or "").lower()
    if not text_q:
        return None
    if _PHONE_LIKE.match(text_q) and sum(c.isdigit() for c in text_q) >= 6:
        e164 = try_normalize_phone(text_q, region=region)
        if e164:
            return SearchPlan("phone", e164=e164)
        text_q = re.sub(r"\D", "", text_q)
    tokens = [t for t in re.split(r"\s+", text_q) if t]
    groups: list[tuple[str, ...]] = []
    long_tokens = tuple(t for t in tokens if len(t) >= _FTS_MIN)
    if long_tokens:
        groups.append(long_tokens)
    joined = "".join(tokens)
    # pinyin is stored unspaced ("wangwei"), so "wang wei" or "li na" also match joined up
    if len(tokens) > 1 and len(joined) >= _FTS_MIN and (joined,) not in groups:
        groups.append((joined,))
    if groups:
        return SearchPlan("text", groups=tuple(groups))
    return SearchPlan("prefix", prefix=joined)


def _range(column: Any, prefix: str) -> Any:
    """``column`` starts with ``prefix``, as an index range (works with any collation)."""
    return and_(column >= prefix, column < prefix + "\U0010ffff")


def search_condition(session: Session, query: str, *, cap: int | None = None) -> Any:
    """SQL condition for the quick search: part of a name, pinyin, phone in any format, email
    or company (see ``SearchPlan``). On SQLite ``cap`` limits the trigram matches considered
    to the most recent ``cap`` records."""
    plan = plan_search(query, region=get_settings().default_region)
    if plan is None:
        return None
    if plan.kind == "phone":
        by_phone = select(CustomerPhone.customer_id).where(CustomerPhone.e164 == plan.e164)
        return Customer.id.in_(by_phone)
    if plan.kind == "prefix":
        p = plan.prefix
        starts = [
            _range(Customer.name, p),
            _range(Customer.name, p.capitalize()),
            _range(Customer.name_key, p),
        ]
        if len(p) == 2:  # two Chinese characters anywhere in a name, or pinyin initials
            key = p + SHORT_KEY_MARK
            if session.get_bind().dialect.name == "sqlite":
                short = (
                    select(text("rowid"))
                    .select_from(text("customer_fts"))
                    .where(
                        text("customer_fts MATCH :short_key").bindparams(short_key=_fts_phrase(key))
                    )
                )
                starts.append(Customer.id.in_(short))
            else:
                starts.append(Customer.search_text.like(f"%{_like_escape(key)}%", escape="\\"))
        return or_(*starts)
    if session.get_bind().dialect.name == "sqlite":
        return Customer.id.in_(_trigram_rows(plan.groups, cap))
    return or_(
        *[
            and_(*[Customer.search_text.ilike(f"%{_like_escape(t)}%", escape="\\") for t in group])
            for group in plan.groups
        ]
    )


def _trigram_rows(groups: tuple[tuple[str, ...], ...], cap: int | None) -> Any:
    """Ids of the customers whose search text holds every fragment of one of ``groups``, from
    SQLite's trigram index (the most recent ``cap`` of each group, when given).

    The index keeps which trigrams each record holds, not where (FTS5 ``detail=none``, see
    revision 0049): ``LIKE '%fragment%'`` takes the records holding all of the fragment's
    trigrams from it and checks the fragment in their text. ``LIKE`` with an ``ESCAPE`` would
    not use the index: a fragment with a ``%`` or ``_`` is also looked for as it is."""
    search_text = column("search_text")
    parts = []
    for group in groups:
        conditions = []
        for fragment in group:
            conditions.append(search_text.like(f"%{fragment}%"))
            if "%" in fragment or "_" in fragment:
                conditions.append(func.instr(search_text, fragment) > 0)
        rows = select(literal_column("rowid")).select_from(table("customer_fts"))
        rows = rows.where(*conditions)
        if cap:
            rows = rows.order_by(text("rowid DESC")).limit(cap)
        parts.append(rows)
    if len(parts) == 1:
        return parts[0]
    every = union(*(part.subquery().select() for part in parts)).subquery()
    found = select(every.c.rowid)
    if cap:
        found = found.order_by(every.c.rowid.desc()).limit(cap)
    return found


def _encode_cursor(values: list[Any]) -> str:
    raw = json.dumps([audit.jsonable(v) for v in values]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_cursor(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        value, last_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        raise InvalidInput("is not a valid page cursor", field="cursor") from None
    if sort in ("updated_at", "created_at") and value is not None:
        value = datetime.fromisoformat(value)
    return value, int(last_id)


def customer_query(
    session: Session, *, actor: Actor, filters: CustomerFilter | None = None
) -> Select[Any]:
    """The ``SELECT`` of customers visible to the actor and matching ``filters`` (no order).

    Reports, exports and notebooks build on this so every face applies the same rules.
    """
    require(actor, "customer.read")
    f = filters or CustomerFilter()
    stmt = select(Customer).where(access.visible_customers(actor))
    if f.archived is not None:
        stmt = stmt.where(
            Customer.archived_at.is_not(None) if f.archived else Customer.archived_at.is_(None)
        )
    if f.query:
        condition = search_condition(session, f.query)
        if condition is not None:
            stmt = stmt.where(condition)
    if f.owner_id is not None:
        stmt = stmt.where(Customer.owner_id == f.owner_id)
    if f.unowned:
        stmt = stmt.where(Customer.owner_id.is_(None))
    if f.team_id is not None:
        stmt = stmt.where(Customer.team_id == f.team_id)
    if f.tag:
        tagged = select(customer_tags.c.customer_id).join(Tag).where(Tag.name == f.tag)
        stmt = stmt.where(Customer.id.in_(tagged))
    for name in ("lifecycle_stage", "industry", "city", "source", "kind", "province"):
        value = getattr(f, name)
        if value:
            stmt = stmt.where(getattr(Customer, name) == value)
    if f.created_from:
        stmt = stmt.where(Customer.created_at >= f.created_from)
    if f.created_to:
        stmt = stmt.where(Customer.created_at < f.created_to)
    if f.last_contact_from:
        stmt = stmt.where(Customer.last_contact_at >= f.last_contact_from)
    if f.last_contact_to:
        stmt = stmt.where(Customer.last_contact_at < f.last_contact_to)
    return stmt


def list_customers(
    session: Session,
    *,
    actor: Actor,
    filters: CustomerFilter | None = None,
    sort: str = "updated_at",
    descending: bool = True,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """One page of customers by keyset paging (no ``OFFSET``, no ``count(*)``)."""
    if sort not in SORTABLE:
        raise InvalidInput(f"cannot sort by '{sort}'", field="sort")
    limit = max(1, min(limit, 500))
    column = SORTABLE[sort]
    stmt = customer_query(session, actor=actor, filters=filters)
    if cursor:
        value, last_id = _decode_cursor(cursor, sort)
        key = tuple_(column, Customer.id)
        stmt = stmt.where(key < (value, last_id) if descending else key > (value, last_id))
    order = (column.desc(), Customer.id.desc()) if descending else (column.asc(), Customer.id.asc())
    rows = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_cursor([getattr(rows[-1], sort), rows[-1].id]) if more and rows else None
    return Page(items=[to_out(actor, c) for c in rows], next_cursor=next_cursor)


#: On SQLite the quick search looks at the most recent matches first, then widens if needed.
SEARCH_CAP = 2000


def search_customers(
    session: Session, *, actor: Actor, query: str, include_archived: bool = False, limit: int = 50
) -> list[CustomerOut]:
    """Quick search: exact name matches first, then the newest matching customers (names
    starting with a short fragment are listed alphabetically)."""
    require(actor, "customer.read")
    plan = plan_search(query, region=get_settings().default_region)
    if plan is None:
        return []
    limit = max(1, min(limit, 500))

    def base() -> Select[Any]:
        stmt = select(Customer).where(access.visible_customers(actor))
        if not include_archived:
            stmt = stmt.where(Customer.archived_at.is_(None))
        return stmt

    needle = clean_text(query) or ""
    found: dict[int, Customer] = {
        c.id: c for c in session.scalars(base().where(Customer.name == needle).limit(limit))
    }
    capped = plan.kind == "text" and session.get_bind().dialect.name == "sqlite"
    for cap in (SEARCH_CAP, None) if capped else (None,):
        stmt = base().where(search_condition(session, query, cap=cap))
        order = (Customer.name, Customer.id) if plan.kind == "prefix" else (Customer.id.desc(),)
        rows = list(session.scalars(stmt.order_by(*order).limit(limit)))
        for c in rows:
            found.setdefault(c.id, c)
        if (
            len(found) >= limit
            or cap is None
            or len(rows) < limit
            and not _cap_reached(session, query, cap)
        ):
            break
    return [to_out(actor, c) for c in list(found.values())[:limit]]


def _cap_reached(session: Session, query: str, cap: int) -> bool:
    """Did the capped trigram lookup stop at ``cap`` (so older matches may exist)?"""
    condition = search_condition(session, query, cap=cap)
    subquery = select(Customer.id).where(condition).subquery()
    return int(session.scalar(select(func.count()).select_from(subquery)) or 0) >= cap


def count_customers(
    session: Session, *, actor: Actor, filters: CustomerFilter | None = None
) -> int:
    """How many customers match (use sparingly: a count scans)."""
    stmt = customer_query(session, actor=actor, filters=filters)
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def customer_names(
    session: Session, *, actor: Actor, customer_ids: Iterable[int]
) -> dict[int, str]:
    """Display names of the given customers that the actor may see (masked for analysts).

    Lists of deals, tickets and tasks use it to label their rows; ids the actor may not see are
    left out.
    """
    require(actor, "customer.read")
    ids = sorted({int(i) for i in customer_ids if i is not None})
    if not ids:
        return {}
    stmt = select(Customer.id, Customer.name).where(
        Customer.id.in_(ids), access.visible_customers(actor)
    )
    names = {int(cid): name for cid, name in session.execute(stmt)}
    if actor.role == Role.ANALYST:
        return {cid: access.mask_name(name) or "" for cid, name in names.items()}
    return names
