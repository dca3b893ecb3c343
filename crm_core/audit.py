"""The audit trail: one entry per change, with each changed field's old and new value."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.access import Actor, require
from crm_core.models import AuditEntry

#: Never written to the audit trail, whatever a caller passes.
SECRET_FIELDS = frozenset({"password", "password_hash", "token", "secret"})


def jsonable(value: Any) -> Any:
    """A JSON-safe form of a field value (dates as ISO text, money as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for every field whose value differs."""
    changes: dict[str, list[Any]] = {}
    for key in sorted(set(before) | set(after)):
        old, new = jsonable(before.get(key)), jsonable(after.get(key))
        if old != new:
            changes[key] = [old, new]
    return changes


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    entity_type: str,
    entity_id: int | None,
    changes: Mapping[str, Any] | None = None,
    detail: str | None = None,
    source: str | None = None,
) -> AuditEntry:
    """Add one audit entry to the session (flushed with the change it describes)."""
    clean = {k: v for k, v in (changes or {}).items() if k not in SECRET_FIELDS}
    entry = AuditEntry(
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.username if actor is not None else "",
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        changes=jsonable(clean),
        detail=detail,
        source=source,
    )
    session.add(entry)
    return entry


def list_entries(
    session: Session,
    *,
    actor: Actor,
    entity_type: str | None = None,
    entity_id: int | None = None,
    actor_id: int | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    before_id: int | None = None,
) -> list[AuditEntry]:
    """Audit entries, newest first, for admins (filter by record, user, action, dates)."""
    require(actor, "audit.read")
    stmt = select(AuditEntry)
    if entity_type:
        stmt = stmt.where(AuditEntry.entity_type == entity_type)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if action:
        stmt = stmt.where(AuditEntry.action.like(f"{action}%"))
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    if before_id:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))
