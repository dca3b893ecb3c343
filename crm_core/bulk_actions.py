"""Bulk actions over a selection of customers: tag, assign owner, change stage, archive.

Each record goes through the ordinary customer service (``update_customer``; archiving
through ``crm_core.archiving.archive_customers``, the service the auto-archive rule shares),
so the actor's rights are checked and an audit entry is written for every record. The whole
selection succeeds or nothing changes: the first refusal raises and the caller's transaction
rolls back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from crm_core import customers
from crm_core.access import Actor, require
from crm_core.archiving import archive_customers
from crm_core.errors import ConflictError, CrmError, InvalidInput
from crm_core.normalize import clean_text

MAX_SELECTION = 1000


class BulkAction(enum.StrEnum):
    TAG = "tag"
    ASSIGN_OWNER = "assign_owner"
    CHANGE_STAGE = "change_stage"
    ARCHIVE = "archive"


#: The role permission each action needs before any record is looked at.
PERMISSION = {
    BulkAction.TAG: "customer.update",
    BulkAction.ASSIGN_OWNER: "customer.reassign",
    BulkAction.CHANGE_STAGE: "customer.update",
    BulkAction.ARCHIVE: "customer.archive",
}


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did: how many records it changed, out of how many selected."""

    action: str
    selected: int
    changed: int


def _ids(customer_ids: Iterable[Any]) -> list[int]:
    out: list[int] = []
    for raw in customer_ids:
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise InvalidInput(f"'{raw}' is not a customer id", field="customer_ids") from None
        if value not in out:
            out.append(value)
    if not out:
        raise InvalidInput("select at least one customer", field="customer_ids")
    if len(out) > MAX_SELECTION:
        raise InvalidInput(
            f"at most {MAX_SELECTION} customers at once ({len(out)} selected)",
            field="customer_ids",
        )
    return out


def _annotate(exc: CrmError, customer_id: int) -> CrmError:
    """The same error, its message prefixed with the record that caused it."""
    exc.message = f"customer {customer_id}: {exc.message}"
    exc.args = (exc.message,)
    return exc


def apply_bulk(
    session: Session,
    *,
    actor: Actor,
    action: str,
    customer_ids: Iterable[Any],
    value: Any = None,
    reason: str | None = None,
) -> BulkResult:
    """Apply one action to every selected customer, all or nothing.

    - ``tag``: add the tag ``value`` (kept tags stay);
    - ``assign_owner``: set the owner to user id ``value`` (``None`` to unassign);
    - ``change_stage``: set the lifecycle stage ``value``;
    - ``archive``: archive with ``reason`` (required).
    """
    try:
        kind = BulkAction(action)
    except ValueError:
        raise InvalidInput(
            f"'{action}' is not one of {', '.join(a.value for a in BulkAction)}", field="action"
        ) from None
    require(actor, PERMISSION[kind])
    ids = _ids(customer_ids)
    if kind == BulkAction.TAG:
        tag = clean_text(value)
        if not tag:
            raise InvalidInput("a tag is required", field="value")
    if kind == BulkAction.CHANGE_STAGE and not clean_text(value):
        raise InvalidInput("a stage is required", field="value")
    if kind == BulkAction.ARCHIVE and not clean_text(reason):
        raise InvalidInput("a reason is required to archive customers", field="reason")

    if kind == BulkAction.ARCHIVE:
        # every record is checked first (a refusal names it), then all are archived at once
        for customer_id in ids:
            try:
                record = customers.load_customer(
                    session, actor=actor, customer_id=customer_id, for_change=True
                )
                if record.archived_at is not None:
                    raise ConflictError(f"customer {customer_id} is archived already")
            except CrmError as exc:
                raise _annotate(exc, customer_id) from None
        session.flush()
        done = archive_customers(
            session, actor=actor, customer_ids=ids, reason=reason or "", source="bulk"
        )
        return BulkResult(action=kind.value, selected=len(ids), changed=len(done))
    changed = 0
    for customer_id in ids:
        try:
            record = customers.load_customer(
                session, actor=actor, customer_id=customer_id, for_change=True
            )
            changes: dict[str, Any]
            if kind == BulkAction.TAG:
                names = [t.name for t in record.tags]
                if tag in names:
                    continue
                changes = {"tags": [*names, tag]}
            elif kind == BulkAction.ASSIGN_OWNER:
                owner = None if value in (None, "") else int(value)
                if record.owner_id == owner:
                    continue
                changes = {"owner_id": owner}
            else:
                stage = (clean_text(value) or "").lower()
                if record.lifecycle_stage == stage:
                    continue
                changes = {"lifecycle_stage": stage}
            customers.update_customer(
                session,
                actor=actor,
                customer_id=customer_id,
                expected_version=record.version,
                changes=changes,
                source="bulk",
            )
            changed += 1
        except CrmError as exc:
            raise _annotate(exc, customer_id) from None
    return BulkResult(action=kind.value, selected=len(ids), changed=changed)
