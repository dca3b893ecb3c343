"""Archiving many customers at once: the one service behind manual archiving (one record or a
bulk selection) and the auto-archive rule.

``archive_customers`` works in a few statements per chunk of ids, whatever their number: one
``SELECT`` of the records that may be archived, one ``UPDATE`` setting who, when and why (and
bumping the version, like any change), and one ``executemany`` of the audit entries. Records
already archived, merged away or not changeable by the actor are skipped, so running it twice
archives nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from crm_core import access, audit
from crm_core.access import Actor, require
from crm_core.errors import InvalidInput
from crm_core.models import AuditEntry, Customer, utcnow
from crm_core.normalize import clean_text

#: Ids per statement (well under SQLite's bound-parameter limit).
CHUNK = 5000


def _chunks(ids: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def clean_reason(reason: str | None) -> str:
    """The archive reason, trimmed; an empty one is refused."""
    text = clean_text(reason) or ""
    if not text:
        raise InvalidInput("a reason is required to archive a customer", field="reason")
    return text


def archive_customers(
    session: Session,
    *,
    actor: Actor,
    customer_ids: Iterable[int],
    reason: str,
    source: str | None = None,
    detail: str | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Archive these customers with ``reason``; returns the ids actually archived.

    Skipped without error: records already archived, merged into another record, missing, or
    that the actor may not change (the caller that needs a refusal checks first, as
    ``customers.archive_customer`` does). ``source`` and ``detail`` go to the audit trail
    (``automation:auto_archive`` and the rule's name when a rule archives).
    """
    require(actor, "customer.archive")
    reason = clean_reason(reason)
    now = now or utcnow()
    wanted = sorted({int(i) for i in customer_ids})
    done: list[int] = []
    stamp = audit.jsonable(now)
    for chunk in _chunks(wanted, CHUNK):
        ids = list(
            session.scalars(
                select(Customer.id)
                .where(Customer.id.in_(chunk), Customer.archived_at.is_(None))
                .where(access.changeable_customers(actor))
                .order_by(Customer.id)
            )
        )
        if not ids:
            continue
        session.execute(
            update(Customer)
            .where(Customer.id.in_(ids), Customer.archived_at.is_(None))
            .values(
                archived_at=now,
                archived_by_id=actor.id,
                archive_reason=reason,
                updated_at=now,
                version=Customer.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        entries: list[dict[str, Any]] = [
            {
                "at": now,
                "actor_id": actor.id,
                "actor_name": actor.username,
                "action": "customer.archive",
                "entity_type": "customer",
                "entity_id": cid,
                "changes": {
                    "archived_at": [None, stamp],
                    "archive_reason": [None, reason],
                },
                "detail": detail,
                "source": source,
            }
            for cid in ids
        ]
        session.execute(insert(AuditEntry), entries)
        done.extend(ids)
    _expire_loaded(session, done)
    return done


def _expire_loaded(session: Session, ids: list[int]) -> None:
    """Records of these ids already loaded in the session are re-read on next access (the
    bulk ``UPDATE`` bypassed them; a stale version would make their next change fail)."""
    if not session.identity_map:
        return
    for cid in ids:
        obj = session.identity_map.get(identity_key(Customer, cid))
        if obj is not None:
            session.expire(obj)


__all__ = ["CHUNK", "archive_customers", "clean_reason"]
