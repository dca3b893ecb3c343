"""Saved filters: a user names a set of list filters and gets it back with one click.

Filters are stored as plain JSON (the fields of ``customers.CustomerFilter``) and are only ever
turned into a query through ``customers.customer_query``, so a saved filter can never widen
what its owner may see.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import audit
from crm_core.access import Actor, require
from crm_core.customers import CustomerFilter
from crm_core.errors import InvalidInput, NotFound
from crm_core.models import SavedFilter
from crm_core.normalize import clean_text

PAGES = ("customers", "archive")
MAX_PER_USER = 100
_FIELDS = {f.name: f for f in fields(CustomerFilter)}
_DATETIMES = {"created_from", "created_to", "last_contact_from", "last_contact_to"}
_INTS = {"owner_id", "team_id"}
_BOOLS = {"archived", "unowned"}


def filter_to_json(filters: CustomerFilter) -> dict[str, Any]:
    """The non-empty fields of a filter as JSON values."""
    out: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(filters, name)
        if value in (None, "", False):
            continue
        out[name] = value.isoformat() if isinstance(value, date | datetime) else value
    return out


def filter_from_json(data: dict[str, Any]) -> CustomerFilter:
    """A ``CustomerFilter`` from stored JSON; unknown keys raise ``InvalidInput``."""
    unknown = set(data) - set(_FIELDS)
    if unknown:
        raise InvalidInput(f"unknown filter(s): {', '.join(sorted(unknown))}", field="filters")
    values: dict[str, Any] = {}
    for name, raw in data.items():
        if raw in (None, ""):
            continue
        try:
            if name in _DATETIMES:
                value: Any = raw if isinstance(raw, datetime) else datetime.fromisoformat(str(raw))
                if value.tzinfo is None:
                    raise ValueError
            elif name in _INTS:
                value = int(raw)
            elif name in _BOOLS:
                value = bool(raw)
            else:
                value = clean_text(raw)
        except (TypeError, ValueError):
            raise InvalidInput(f"'{raw}' is not a valid value", field=name) from None
        values[name] = value
    return CustomerFilter(**values)


def save_filter(
    session: Session,
    *,
    actor: Actor,
    name: str,
    filters: CustomerFilter | dict[str, Any],
    page: str = "customers",
) -> SavedFilter:
    """Save (or overwrite, by name) one of the actor's filters."""
    require(actor, "customer.read")
    name = clean_text(name) or ""
    if not name:
        raise InvalidInput("is required", field="name")
    if len(name) > 80:
        raise InvalidInput("is longer than 80 characters", field="name")
    if page not in PAGES:
        raise InvalidInput(f"'{page}' is not a list page", field="page")
    flt = filters if isinstance(filters, CustomerFilter) else filter_from_json(filters)
    data = filter_to_json(flt)
    row = session.scalar(
        select(SavedFilter).where(
            SavedFilter.user_id == actor.id, SavedFilter.page == page, SavedFilter.name == name
        )
    )
    if row is None:
        if len(list_filters(session, actor=actor, page=page)) >= MAX_PER_USER:
            raise InvalidInput(f"you have {MAX_PER_USER} saved filters; delete one first")
        row = SavedFilter(user_id=actor.id, page=page, name=name, filters=data)
        session.add(row)
    else:
        row.filters = data
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="saved_filter.save",
        entity_type="saved_filter",
        entity_id=row.id,
        changes={"name": [None, name], "filters": [None, data]},
    )
    return row


def list_filters(session: Session, *, actor: Actor, page: str = "customers") -> list[SavedFilter]:
    """The actor's own saved filters for a page, by name."""
    stmt = (
        select(SavedFilter)
        .where(SavedFilter.user_id == actor.id, SavedFilter.page == page)
        .order_by(SavedFilter.name)
    )
    return list(session.scalars(stmt))


def get_filter(session: Session, *, actor: Actor, filter_id: int) -> CustomerFilter:
    """One of the actor's saved filters as a ``CustomerFilter`` (another user's is not found)."""
    row = session.get(SavedFilter, filter_id)
    if row is None or row.user_id != actor.id:
        raise NotFound(f"saved filter {filter_id} does not exist")
    return filter_from_json(dict(row.filters or {}))


def delete_filter(session: Session, *, actor: Actor, filter_id: int) -> None:
    """Delete one of the actor's saved filters."""
    row = session.get(SavedFilter, filter_id)
    if row is None or row.user_id != actor.id:
        raise NotFound(f"saved filter {filter_id} does not exist")
    session.delete(row)
    audit.record(
        session,
        actor=actor,
        action="saved_filter.delete",
        entity_type="saved_filter",
        entity_id=filter_id,
        changes={"name": [row.name, None]},
    )
    session.flush()
