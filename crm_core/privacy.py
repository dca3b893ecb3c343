"""Privacy: the consent ledger, retention policies and anonymisation (PIPL art. 47, GDPR
storage limitation).

- Consent is a ledger per customer and purpose: every change is a new line (given or
  withdrawn, when, through which channel, which text version); the newest line is the
  current state. Marketing rules and exports select customers with ``consent_condition``.
- A retention policy says how long data kept for a purpose may live after its anchor (the
  last interaction, creation or archiving). When every policy that applies to a customer has
  expired and nothing is open, the daily ``retention`` rule anonymises the customer.
- Anonymisation removes every personal value of the person from the database (profile,
  phones, emails, search keys, custom fields, free text of its history, notifications, queued
  e-mail and the old/new values of its audit entries) and keeps the non-personal history
  (amounts, dates, stages, counts) for reports. Keyed hashes of its phones and e-mails are kept
  so the same person imported again is flagged (``erased_matches``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from crm_core import audit
from crm_core.access import Actor, require
from crm_core.customers import load_customer
from crm_core.errors import ConflictError, InvalidInput
from crm_core.models import (
    AuditEntry,
    ConsentEvent,
    Contract,
    Customer,
    CustomerEmail,
    CustomerPhone,
    Deal,
    ErasureFingerprint,
    ImportBatchRow,
    Interaction,
    LoyaltyEntry,
    Notification,
    Order,
    OutboundEmail,
    RetentionPolicy,
    Task,
    Ticket,
    TicketNote,
    utcnow,
)
from crm_core.normalize import clean_text, normalize_email, try_normalize_phone
from crm_core.settings import get_settings

_PURPOSE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: A policy with this purpose applies to every customer (the customer relationship itself).
ALL_CUSTOMERS = "all"
ANCHORS = ("last_interaction", "created", "archived")
REDACTED = "[anonymised]"
#: Audit fields whose values are not personal and are kept when the person is anonymised.
NON_PERSONAL_AUDIT_FIELDS = frozenset(
    {
        "kind",
        "lifecycle_stage",
        "value_tier",
        "owner_id",
        "team_id",
        "company_id",
        "industry",
        "size",
        "source",
        "country",
        "province",
        "city",
        "archived_at",
        "archived_by_id",
        "merged_into_id",
        "anonymised_at",
        "customer_id",
        "stage",
        "status",
        "amount",
        "total",
        "value",
        "currency",
        "priority",
        "assignee_id",
        "due_at",
        "start_date",
        "end_date",
        "points",
        "automation_rule",
        "version",
    }
)

#: Extra erasers other areas register (``register_eraser``): each gets the session and the
#: ids of customers being anonymised and removes the personal values it stores.
ERASERS: list[Callable[[Session, Sequence[int]], None]] = []


def _erase_match_keys(session: Session, ids: Sequence[int]) -> None:
    """De-duplication keeps normalised names, phones and e-mails as blocking keys, and its
    review queue compares them: an erased person leaves neither."""
    from crm_core.models.dedupe import DedupeBlockKey, DedupeCandidate, DedupeKeyState

    for chunk in (list(ids)[i : i + 500] for i in range(0, len(ids), 500)):
        session.execute(delete(DedupeBlockKey).where(DedupeBlockKey.customer_id.in_(chunk)))
        session.execute(delete(DedupeKeyState).where(DedupeKeyState.customer_id.in_(chunk)))
        session.execute(
            delete(DedupeCandidate).where(
                DedupeCandidate.left_id.in_(chunk) | DedupeCandidate.right_id.in_(chunk)
            )
        )


def register_eraser(fn: Callable[[Session, Sequence[int]], None]) -> None:
    """Let another area (imports, de-duplication…) scrub what it keeps about a person."""
    if fn not in ERASERS:
        ERASERS.append(fn)


def _purpose(value: str) -> str:
    purpose = (value or "").strip().lower()
    if not _PURPOSE.match(purpose):
        raise InvalidInput("must be a short lower-case name such as 'marketing'", field="purpose")
    return purpose


# ---------------------------------------------------------------- consent ledger


def record_consent(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    purpose: str,
    granted: bool,
    channel: str,
    text_version: str,
    at: datetime | None = None,
    note: str | None = None,
) -> ConsentEvent:
    """Add a line to the consent ledger (consent given or withdrawn)."""
    require(actor, "customer.update")
    customer = load_customer(session, actor=actor, customer_id=customer_id, for_change=True)
    if customer.anonymised_at is not None:
        raise ConflictError(f"customer {customer_id} was anonymised")
    channel = clean_text(channel) or ""
    if not channel:
        raise InvalidInput("is required (for example web form, phone, paper)", field="channel")
    version = clean_text(text_version) or ""
    if not version:
        raise InvalidInput(
            "is required (the version of the consent text shown)", field="text_version"
        )
    if at is not None and at.tzinfo is None:
        raise InvalidInput("needs a time zone", field="at")
    event = ConsentEvent(
        customer_id=customer.id,
        purpose=_purpose(purpose),
        granted=bool(granted),
        at=at or utcnow(),
        channel=channel[:40],
        text_version=version[:40],
        recorded_by_id=actor.id,
        note=clean_text(note),
    )
    session.add(event)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="consent.given" if granted else "consent.withdrawn",
        entity_type="customer",
        entity_id=customer.id,
        changes={"consent": [None, f"{event.purpose}:{'given' if granted else 'withdrawn'}"]},
        detail=f"channel={event.channel} text={event.text_version}",
    )
    return event


def consent_history(session: Session, *, actor: Actor, customer_id: int) -> list[ConsentEvent]:
    """Every line of a customer's ledger, newest first."""
    load_customer(session, actor=actor, customer_id=customer_id)
    stmt = (
        select(ConsentEvent)
        .where(ConsentEvent.customer_id == customer_id)
        .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc())
    )
    return list(session.scalars(stmt))


def current_consent(session: Session, *, actor: Actor, customer_id: int) -> dict[str, bool]:
    """``{purpose: granted}`` from the newest line of each purpose."""
    state: dict[str, bool] = {}
    for event in reversed(consent_history(session, actor=actor, customer_id=customer_id)):
        state[event.purpose] = event.granted
    return state


def consent_condition(purpose: str, customer: Any = Customer) -> ColumnElement[bool]:
    """SQL condition: the newest ledger line of ``purpose`` for the customer is a consent."""
    latest = (
        select(ConsentEvent.granted)
        .where(ConsentEvent.customer_id == customer.id, ConsentEvent.purpose == purpose)
        .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return latest.is_(True)


# ---------------------------------------------------------------- retention policies


def set_retention_policy(
    session: Session,
    *,
    actor: Actor,
    purpose: str,
    period_days: int,
    anchor: str = "last_interaction",
    enabled: bool = True,
    description: str | None = None,
) -> RetentionPolicy:
    """Create or change the policy of a purpose (admins). ``purpose='all'`` covers everyone;
    another purpose covers the customers who ever had a consent line for it."""
    require(actor, "settings.manage")
    purpose = _purpose(purpose)
    if isinstance(period_days, bool) or not isinstance(period_days, int) or period_days < 1:
        raise InvalidInput("must be a whole number of days, at least 1", field="period_days")
    if anchor not in ANCHORS:
        raise InvalidInput(f"'{anchor}' is not one of {', '.join(ANCHORS)}", field="anchor")
    policy = session.scalar(select(RetentionPolicy).where(RetentionPolicy.purpose == purpose))
    before = (
        {"period_days": policy.period_days, "anchor": policy.anchor, "enabled": policy.enabled}
        if policy
        else {}
    )
    if policy is None:
        policy = RetentionPolicy(purpose=purpose)
        session.add(policy)
    policy.period_days, policy.anchor, policy.enabled = period_days, anchor, enabled
    policy.description = clean_text(description)
    session.flush()
    after = {"period_days": period_days, "anchor": anchor, "enabled": enabled}
    audit.record(
        session,
        actor=actor,
        action="retention.set",
        entity_type="retention_policy",
        entity_id=policy.id,
        changes=audit.diff(before, after),
        detail=purpose,
    )
    return policy


def list_retention_policies(session: Session) -> list[RetentionPolicy]:
    return list(session.scalars(select(RetentionPolicy).order_by(RetentionPolicy.purpose)))


def _anchor(anchor: str) -> Any:
    if anchor == "created":
        return Customer.created_at
    if anchor == "archived":
        return Customer.archived_at
    return func.coalesce(Customer.last_contact_at, Customer.created_at)


def retention_expired_condition(session: Session, *, now: datetime) -> ColumnElement[bool]:
    """SQL condition: at least one enabled policy applies to the customer, every one that
    applies has expired, and the person is not anonymised yet."""
    policies = [p for p in list_retention_policies(session) if p.enabled]
    if not policies:
        return false()
    applies, ok = [], []
    for p in policies:
        if p.purpose == ALL_CUSTOMERS:
            scope: ColumnElement[bool] = literal(True)
        else:
            scope = exists().where(
                ConsentEvent.customer_id == Customer.id, ConsentEvent.purpose == p.purpose
            )
        anchor = _anchor(p.anchor)
        expired = and_(anchor.is_not(None), anchor < now - timedelta(days=p.period_days))
        applies.append(scope)
        ok.append(or_(~scope, expired) if p.purpose != ALL_CUSTOMERS else expired)
    return and_(Customer.anonymised_at.is_(None), or_(*applies), *ok)


# ---------------------------------------------------------------- fingerprints


def _key() -> bytes:
    """The HMAC key: ``CRM_PRIVACY_KEY`` or a file made once in the data directory (mode 600).
    Kept outside the database, so the fingerprints alone cannot be tested against phones."""
    env = os.environ.get("CRM_PRIVACY_KEY")
    if env:
        return env.encode()
    settings = get_settings()
    if settings.environment == "production":
        raise RuntimeError("CRM_PRIVACY_KEY must be set in production")
    path = settings.data_dir / "privacy_key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def fingerprint(kind: str, value: str, key: bytes | None = None) -> str:
    """Keyed hash of a normalised phone (E.164) or e-mail (lower case)."""
    canonical = value.strip().lower() if kind == "email" else value.strip()
    return hmac.new(key or _key(), f"{kind}:{canonical}".encode(), hashlib.sha256).hexdigest()


def _canonical(phones: Iterable[str], emails: Iterable[str]) -> list[tuple[str, str]]:
    region = get_settings().default_region
    out = []
    for raw in phones:
        e164 = try_normalize_phone(raw, region=region)
        if e164:
            out.append(("phone", e164))
    for raw in emails:
        try:
            email = normalize_email(raw)
        except InvalidInput:
            email = None
        if email:
            out.append(("email", email))
    return out


@dataclass(frozen=True)
class ErasedMatch:
    """A phone or e-mail that belonged to an anonymised person."""

    kind: str
    anonymised_customer_id: int | None
    erased_at: datetime


def erased_matches(
    session: Session, *, phones: Iterable[str] = (), emails: Iterable[str] = ()
) -> list[ErasedMatch]:
    """Which of these phones/e-mails belonged to a person anonymised earlier (imports and the
    create form call this to flag a re-imported person)."""
    values = _canonical(phones, emails)
    if not values:
        return []
    key = _key()
    digests = {fingerprint(kind, value, key): kind for kind, value in values}
    rows = session.scalars(
        select(ErasureFingerprint).where(ErasureFingerprint.digest.in_(list(digests)))
    )
    return [ErasedMatch(r.kind, r.customer_id, r.erased_at) for r in rows]


def erased_customer_ids(session: Session, customer_ids: Iterable[int]) -> set[int]:
    """Of these customers, those with a phone or e-mail that belonged to a person anonymised
    earlier (``erased_matches`` for many records at once: two reads of their phones and
    e-mails and one look-up of the fingerprints per chunk)."""
    wanted = sorted({int(i) for i in customer_ids})
    if not wanted or session.scalar(select(ErasureFingerprint.id).limit(1)) is None:
        return set()
    key = _key()
    found: set[int] = set()
    for i in range(0, len(wanted), 5000):
        chunk = wanted[i : i + 5000]
        phones: dict[int, set[str]] = {}
        emails: dict[int, set[str]] = {}
        for cid, e164 in session.execute(
            select(CustomerPhone.customer_id, CustomerPhone.e164).where(
                CustomerPhone.customer_id.in_(chunk)
            )
        ):
            phones.setdefault(cid, set()).add(e164)
        for cid, email in session.execute(
            select(CustomerEmail.customer_id, CustomerEmail.email).where(
                CustomerEmail.customer_id.in_(chunk)
            )
        ):
            emails.setdefault(cid, set()).add(email)
        owners: dict[str, set[int]] = {}
        for cid in set(phones) | set(emails):
            for kind, value in _canonical(phones.get(cid, ()), emails.get(cid, ())):
                owners.setdefault(fingerprint(kind, value, key), set()).add(cid)
        digests = list(owners)
        for j in range(0, len(digests), 5000):
            for digest in session.scalars(
                select(ErasureFingerprint.digest).where(
                    ErasureFingerprint.digest.in_(digests[j : j + 5000])
                )
            ):
                found |= owners.get(digest, set())
    return found


# ---------------------------------------------------------------- anonymisation


def _scrub_changes(changes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, pair in (changes or {}).items():
        if name in NON_PERSONAL_AUDIT_FIELDS:
            out[name] = pair
        elif isinstance(pair, list) and len(pair) == 2:
            out[name] = [None if v in (None, "", []) else REDACTED for v in pair]
        else:
            out[name] = REDACTED
    return out


def _child_ids(session: Session, model: Any, ids: Sequence[int]) -> list[int]:
    return list(session.scalars(select(model.id).where(model.customer_id.in_(ids))))


def anonymise_customers(
    session: Session,
    *,
    actor: Actor,
    customer_ids: Sequence[int],
    reason: str,
    now: datetime | None = None,
    source: str | None = None,
) -> int:
    """Anonymise these customers (set-based, in one go); returns how many were anonymised.

    The caller checks who may be anonymised (``anonymise_customer`` for one person from a
    face; the retention rule for expired policies). Already anonymised records are skipped.
    """
    require(actor, "customer.erase")
    reason = clean_text(reason) or ""
    if not reason:
        raise InvalidInput("a reason is required to anonymise", field="reason")
    now = now or utcnow()
    ids = list(
        session.scalars(
            select(Customer.id).where(
                Customer.id.in_(list(customer_ids)), Customer.anonymised_at.is_(None)
            )
        )
    )
    if not ids:
        return 0
    if session.get_bind().dialect.name == "sqlite":
        # overwrite freed pages too, so deleted values do not linger in the file
        session.execute(text("PRAGMA secure_delete=ON"))

    # 1. keyed fingerprints of phones and e-mails, to flag the person if imported again
    key = _key()
    values: set[tuple[int, str, str]] = set()
    for cid, e164 in session.execute(
        select(CustomerPhone.customer_id, CustomerPhone.e164).where(
            CustomerPhone.customer_id.in_(ids)
        )
    ):
        values.add((cid, "phone", e164))
    for cid, email in session.execute(
        select(CustomerEmail.customer_id, CustomerEmail.email).where(
            CustomerEmail.customer_id.in_(ids)
        )
    ):
        values.add((cid, "email", email))
    for cid, phone, mail in session.execute(
        select(Customer.id, Customer.phone, Customer.email).where(Customer.id.in_(ids))
    ):
        if phone:
            values.add((cid, "phone", phone))
        if mail:
            values.add((cid, "email", mail))
    if values:
        session.execute(
            insert(ErasureFingerprint),
            [
                {
                    "kind": kind,
                    "digest": fingerprint(kind, value, key),
                    "customer_id": cid,
                    "erased_at": now,
                }
                for cid, kind, value in sorted(values)
            ],
        )

    # 2. the profile: personal fields cleared, search keys emptied
    session.execute(delete(CustomerPhone).where(CustomerPhone.customer_id.in_(ids)))
    session.execute(delete(CustomerEmail).where(CustomerEmail.customer_id.in_(ids)))
    session.execute(
        update(Customer)
        .where(Customer.id.in_(ids))
        .values(
            name=literal("Anonymised #").concat(Customer.id.cast(Customer.name.type)),
            name_key="",
            search_text="",
            phone=None,
            email=None,
            company_name=None,
            position=None,
            district=None,
            street=None,
            postcode=None,
            birthday=None,
            external_id=None,
            notes=None,
            custom={},
            archive_reason=None,
            anonymised_at=now,
            updated_at=now,
            version=Customer.version + 1,
        )
        .execution_options(synchronize_session=False)
    )

    # 3. free text of the history (amounts, dates and stages stay for reports)
    ticket_ids = _child_ids(session, Ticket, ids)
    for model, values_ in (
        (Interaction, {"subject": Interaction.kind, "body": None}),
        (Ticket, {"subject": REDACTED, "body": None}),
        (Task, {"title": REDACTED, "notes": None}),
        (Deal, {"title": REDACTED, "lost_reason": None}),
        (Contract, {"title": REDACTED}),
        (LoyaltyEntry, {"reason": REDACTED}),
    ):
        session.execute(
            update(model)
            .where(model.customer_id.in_(ids))
            .values(**values_)
            .execution_options(synchronize_session=False)
        )
    if ticket_ids:
        session.execute(
            update(TicketNote)
            .where(TicketNote.ticket_id.in_(ticket_ids))
            .values(body=REDACTED)
            .execution_options(synchronize_session=False)
        )
    session.execute(update(ConsentEvent).where(ConsentEvent.customer_id.in_(ids)).values(note=None))
    session.execute(
        update(Notification)
        .where(Notification.customer_id.in_(ids))
        .values(title=REDACTED, title_key=None, title_params=null(), body=None)
    )
    session.execute(delete(OutboundEmail).where(OutboundEmail.customer_id.in_(ids)))
    # prior values kept to revert imports (an import that touched the person can no longer
    # be reverted anyway: the record changed since)
    session.execute(
        update(ImportBatchRow)
        .where(ImportBatchRow.customer_id.in_(ids))
        .values(prior=None)
        .execution_options(synchronize_session=False)
    )

    # 4. old and new values in the audit trail of the person and of its history
    entities: list[tuple[str, list[int]]] = [("customer", ids)]
    children: tuple[tuple[str, Any], ...] = (
        ("interaction", Interaction),
        ("ticket", Ticket),
        ("task", Task),
        ("deal", Deal),
        ("contract", Contract),
        ("order", Order),
        ("loyalty", LoyaltyEntry),
    )
    for name, model in children:
        entities.append((name, _child_ids(session, model, ids)))
    if ticket_ids:
        note_ids = list(
            session.scalars(select(TicketNote.id).where(TicketNote.ticket_id.in_(ticket_ids)))
        )
        entities.append(("ticket_note", note_ids))
    for entity_type, entity_ids in entities:
        for chunk in _chunks(entity_ids, 500):
            entries = session.scalars(
                select(AuditEntry).where(
                    AuditEntry.entity_type == entity_type, AuditEntry.entity_id.in_(chunk)
                )
            )
            for entry in entries:
                entry.changes = _scrub_changes(dict(entry.changes or {}))
                if entry.detail:
                    entry.detail = REDACTED
    session.flush()

    _erase_match_keys(session, ids)
    for eraser in ERASERS:
        eraser(session, ids)

    # 5. one audit entry per person: what was done, by which rule or person, no values
    session.execute(
        insert(AuditEntry),
        [
            {
                "at": now,
                "actor_id": actor.id,
                "actor_name": actor.username,
                "action": "customer.anonymise",
                "entity_type": "customer",
                "entity_id": cid,
                "changes": {"anonymised_at": [None, now.isoformat()]},
                "detail": reason,
                "source": source,
            }
            for cid in ids
        ],
    )
    session.expire_all()
    return len(ids)


def _chunks(values: Sequence[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(values), size):
        yield list(values[i : i + size])


def anonymise_customer(
    session: Session, *, actor: Actor, customer_id: int, reason: str, now: datetime | None = None
) -> Customer:
    """Erase one person on request (admins): anonymised now, whatever the policies say."""
    require(actor, "customer.erase")
    customer = load_customer(session, actor=actor, customer_id=customer_id, for_change=True)
    if customer.anonymised_at is not None:
        raise ConflictError(f"customer {customer_id} was anonymised already")
    anonymise_customers(session, actor=actor, customer_ids=[customer.id], reason=reason, now=now)
    session.refresh(customer)
    return customer
