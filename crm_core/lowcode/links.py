"""Link fields of custom modules (to a customer, a user or a record of another module): what
the form's picker offers for a search text, and the labels of the records a record links to.

Both go through the actor's access rights: customers through the customer search service
(``customers.search_customers``, so a sales user is offered their own customers only), users
among the active accounts, module records through the module search (``records.list_records``
with the target module's read permission and record scope). A list page labels the links
of all its rows at once (``link_label_map``: one query per kind of linked record).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import access, customers, users
from crm_core.access import Actor
from crm_core.errors import CrmError, InvalidInput
from crm_core.lowcode import permissions as perms
from crm_core.lowcode import records
from crm_core.lowcode.fieldspec import LINK_TYPES, FieldSpec
from crm_core.lowcode.modules import field_specs, get_module
from crm_core.models import Customer, ModuleRecord, User
from crm_core.normalize import clean_text

#: How many choices a picker offers at most.
PICKER_LIMIT = 20


@dataclass(frozen=True)
class LinkChoice:
    """One record a link field may point to: its id and the text the picker shows."""

    id: int
    label: str


def _link_spec(session: Session, module_key: str, field_key: str) -> FieldSpec:
    module = get_module(session, module_key)
    spec = next((s for s in field_specs(session, module) if s.key == field_key), None)
    if spec is None:
        raise InvalidInput(f"is not a field of module '{module_key}'", field=field_key)
    if spec.field_type not in LINK_TYPES:
        raise InvalidInput("is not a link field", field=field_key)
    return spec


def _customer_label(c: customers.CustomerOut) -> str:
    return _customer_text(c.id, c.name, c.company_name, c.city, c.phone)


def _customer_text(
    customer_id: int, name: str | None, company: str | None, city: str | None, phone: str | None
) -> str:
    detail = company or city or phone
    return (
        f"{name or '#' + str(customer_id)}"
        + (f" · {detail}" if detail else "")
        + (f" (#{customer_id})")
    )


def _user_label(u: User) -> str:
    return f"{u.display_name or u.username} ({u.username})"


def search_links(
    session: Session,
    *,
    actor: Actor,
    module_key: str,
    field_key: str,
    query: str | None,
    limit: int = PICKER_LIMIT,
) -> list[LinkChoice]:
    """The records the link field ``field_key`` may point to that match ``query`` (an empty
    query offers the most recent ones), as the actor may see them."""
    spec = _link_spec(session, module_key, field_key)
    text = clean_text(query) or ""
    limit = max(1, min(limit, 100))
    if spec.field_type == "customer":
        if text:
            found = customers.search_customers(session, actor=actor, query=text, limit=limit)
        else:
            found = customers.list_customers(session, actor=actor, limit=limit).items
        return [LinkChoice(c.id, _customer_label(c)) for c in found]
    if spec.field_type == "user":
        needle = text.casefold()
        matches = [
            u
            for u in users.list_users(session, actor=actor, include_inactive=False)
            if needle in f"{u.username} {u.display_name or ''}".casefold()
        ]
        return [LinkChoice(u.id, _user_label(u)) for u in matches[:limit]]
    page = records.list_records(
        session,
        actor=actor,
        module_key=spec.link_module or "",
        filters=records.RecordFilter(query=text or None),
        limit=limit,
    )
    return [LinkChoice(r.id, f"{r.display_name} (#{r.id})") for r in page.items]


def link_labels(
    session: Session, *, actor: Actor, module_key: str, data: Mapping[str, Any]
) -> dict[str, str]:
    """Labels of the records ``data`` (a record's values) links to, by field key; a linked
    record the actor may not see (or that is gone) shows as ``#id``."""
    found = link_label_map(session, actor=actor, module_key=module_key, rows=[data])
    labels: dict[str, str] = {}
    for key, by_id in found.items():
        record_id = _link_id(data.get(key))
        if record_id is not None:
            labels[key] = by_id[record_id]
    return labels


def _link_id(value: Any) -> int | None:
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def link_label_map(
    session: Session,
    *,
    actor: Actor,
    module_key: str,
    rows: Iterable[Mapping[str, Any]],
    fields: Collection[str] | None = None,
) -> dict[str, dict[int, str]]:
    """Labels of the records the link fields of many records (``rows``: their values) point
    to, as ``{field key: {linked id: label}}``, for a list page: one query for all linked
    customers, one for all linked users and one per linked module, whatever the number of
    rows. ``fields`` limits it to those field keys (the list's columns). A linked record the
    actor may not see (or that is gone) is labelled ``#id``, as in ``link_labels``."""
    module = get_module(session, module_key)
    specs = [
        s
        for s in field_specs(session, module)
        if s.field_type in LINK_TYPES and (fields is None or s.key in fields)
    ]
    ids: dict[str, set[int]] = {s.key: set() for s in specs}
    for row in rows:
        for spec in specs:
            record_id = _link_id(row.get(spec.key))
            if record_id is not None:
                ids[spec.key].add(record_id)

    def target(spec: FieldSpec) -> tuple[str, str]:
        return spec.field_type, (spec.link_module or "") if spec.field_type == "module" else ""

    wanted: dict[tuple[str, str], set[int]] = {}
    for spec in specs:
        wanted.setdefault(target(spec), set()).update(ids[spec.key])
    named: dict[tuple[str, str], dict[int, str]] = {}
    for (kind, link_module), linked in wanted.items():
        if kind == "customer":
            named[(kind, link_module)] = _customer_labels(session, actor, linked)
        elif kind == "user":
            named[(kind, link_module)] = _user_labels(session, linked)
        else:
            named[(kind, link_module)] = _record_labels(session, actor, link_module, linked)
    result: dict[str, dict[int, str]] = {}
    for spec in specs:
        known = named[target(spec)]
        result[spec.key] = {i: known.get(i, f"#{i}") for i in ids[spec.key]}
    return result


def _customer_labels(session: Session, actor: Actor, ids: set[int]) -> dict[int, str]:
    """Picker labels of the customers among ``ids`` the actor may see, shaped for the role
    (masked for analysts) like ``customers.get_customer``."""
    if not ids or not access.can(actor, "customer.read"):
        return {}
    stmt = select(
        Customer.id, Customer.name, Customer.company_name, Customer.city, Customer.phone
    ).where(Customer.id.in_(sorted(ids)), access.visible_customers(actor))
    labels: dict[int, str] = {}
    for row in session.execute(stmt):
        shaped = access.shape_for(actor, dict(row._mapping))
        labels[int(row.id)] = _customer_text(
            int(row.id), shaped["name"], shaped["company_name"], shaped["city"], shaped["phone"]
        )
    return labels


def _user_labels(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    found = session.scalars(select(User).where(User.id.in_(sorted(ids))))
    return {u.id: _user_label(u) for u in found}


def _record_labels(
    session: Session, actor: Actor, module_key: str, ids: set[int]
) -> dict[int, str]:
    """Labels of the records of module ``module_key`` among ``ids`` that the actor may read."""
    if not ids:
        return {}
    try:
        target = get_module(session, module_key)
    except CrmError:
        return {}
    if not perms.can(actor, target, "read"):
        return {}
    stmt = select(ModuleRecord.id, ModuleRecord.display_name).where(
        ModuleRecord.module_id == target.id,
        ModuleRecord.id.in_(sorted(ids)),
        perms.visible_records(actor),
    )
    return {int(rid): f"{name} (#{rid})" for rid, name in session.execute(stmt)}
