"""Link fields of custom modules (to a customer, a user or a record of another module): what
the form's picker offers for a search text, and the labels of the records a record links to.

Both go through the actor's access rights: customers through the customer search service
(``customers.search_customers``, so a sales user is offered their own customers only), users
among the active accounts, module records through the module search (``records.list_records``
with the target module's read permission and record scope).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from crm_core import customers, users
from crm_core.access import Actor
from crm_core.errors import CrmError, InvalidInput
from crm_core.lowcode import records
from crm_core.lowcode.fieldspec import LINK_TYPES, FieldSpec
from crm_core.lowcode.modules import field_specs, get_module
from crm_core.models import User
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
    detail = c.company_name or c.city or c.phone
    return f"{c.name or '#' + str(c.id)}" + (f" · {detail}" if detail else "") + f" (#{c.id})"


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
    module = get_module(session, module_key)
    labels: dict[str, str] = {}
    for spec in field_specs(session, module):
        value = data.get(spec.key)
        if spec.field_type not in LINK_TYPES or value in (None, ""):
            continue
        try:
            record_id = int(value)
        except (TypeError, ValueError):
            continue
        labels[spec.key] = f"#{record_id}"
        try:
            if spec.field_type == "customer":
                out = customers.get_customer(session, actor=actor, customer_id=record_id)
                labels[spec.key] = _customer_label(out)
            elif spec.field_type == "user":
                user = session.get(User, record_id)
                if user is not None:
                    labels[spec.key] = _user_label(user)
            else:
                rec = records.get_record(
                    session, actor=actor, module_key=spec.link_module or "", record_id=record_id
                )
                labels[spec.key] = f"{rec.display_name} (#{rec.id})"
        except CrmError:
            pass
    return labels
