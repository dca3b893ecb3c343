"""Custom-module records linked to a merged customer follow it into the survivor, and back
on undo.

A record of a custom module links to customers through its fields of type ``customer``: the
value (a customer id) is kept in the record's JSON ``data`` and in the typed value index
``module_values`` (``num_value``); the record's ``customer_id`` column holds its first such
link (it drives record access and the customer's timeline) and, when the module's display
field is a customer link, ``display_name`` spells that id. ``move_module_links`` re-points every
link to a merged-away customer at the survivor in all three places and returns what it changed,
for the merge's snapshot; ``module_link_problems`` tells why that cannot be undone cleanly and
``restore_module_links`` undoes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_core.models import CustomModule, ModuleField, ModuleRecord, ModuleValue

CUSTOMER_LINK = "customer"
"""``ModuleField.field_type`` of a link to a customer."""


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if float(value).is_integer() else None


def _link_fields(session: Session) -> dict[int, tuple[set[str], str | None]]:
    """Per module id: the keys of its customer-link fields (retired ones too) and its display
    field."""
    out: dict[int, tuple[set[str], str | None]] = {}
    rows = session.execute(
        select(ModuleField.module_id, ModuleField.key, CustomModule.display_field)
        .join(CustomModule, CustomModule.id == ModuleField.module_id)
        .where(ModuleField.field_type == CUSTOMER_LINK)
    )
    for module_id, key, display_field in rows:
        out.setdefault(module_id, (set(), display_field))[0].add(key)
    return out


def _reindex(session: Session, record_id: int, keys: Iterable[str], old: int, new: int) -> None:
    session.execute(
        update(ModuleValue)
        .where(
            ModuleValue.record_id == record_id,
            ModuleValue.field_key.in_(list(keys)),
            ModuleValue.num_value == float(old),
        )
        .values(num_value=float(new))
        .execution_options(synchronize_session=False)
    )


def move_module_links(
    session: Session, *, loser_ids: Iterable[int], survivor_id: int
) -> dict[str, dict[str, Any]]:
    """Re-point the links of every module record to the customers ``loser_ids`` at
    ``survivor_id``. Returns ``{record id: {"links": {field: former customer id},
    "customer_id": former, "display_name": former}}`` for ``restore_module_links``."""
    losers = {int(i) for i in loser_ids}
    fields = _link_fields(session)
    if not losers or not fields:
        return {}
    linked = (
        select(ModuleValue.record_id)
        .join(
            ModuleField,
            (ModuleField.module_id == ModuleValue.module_id)
            & (ModuleField.key == ModuleValue.field_key),
        )
        .where(
            ModuleField.field_type == CUSTOMER_LINK,
            ModuleValue.num_value.in_([float(i) for i in sorted(losers)]),
        )
    )
    ids = set(session.scalars(linked))
    ids |= set(session.scalars(select(ModuleRecord.id).where(ModuleRecord.customer_id.in_(losers))))
    moved: dict[str, dict[str, Any]] = {}
    if not ids:
        return moved
    records = session.scalars(
        select(ModuleRecord).where(ModuleRecord.id.in_(sorted(ids))).order_by(ModuleRecord.id)
    )
    for record in records:
        keys, display_field = fields.get(record.module_id, (set(), None))
        data = dict(record.data or {})
        links = {k: link for k in sorted(keys) if (link := _as_id(data.get(k))) in losers}
        entry = {
            "links": links,
            "customer_id": record.customer_id,
            "display_name": record.display_name,
        }
        for key, old in links.items():
            data[key] = survivor_id
            _reindex(session, record.id, [key], old, survivor_id)
        if links:
            record.data = data
        if record.customer_id in losers:
            record.customer_id = survivor_id
        if display_field in links:
            record.display_name = str(survivor_id)
        moved[str(record.id)] = entry
    session.flush()
    return moved


def module_link_problems(
    session: Session, moved: Mapping[str, Mapping[str, Any]], survivor_id: int
) -> list[str]:
    """Why the links moved by a merge cannot go back (empty when they can): a record
    deleted since, or a moved link pointed elsewhere since."""
    if not moved:
        return []
    ids = [int(i) for i in moved]
    records = {
        r.id: r for r in session.scalars(select(ModuleRecord).where(ModuleRecord.id.in_(ids)))
    }
    gone = [i for i in ids if i not in records]
    changed = []
    for rid, entry in moved.items():
        record = records.get(int(rid))
        if record is None:
            continue
        data = record.data or {}
        if any(_as_id(data.get(k)) != survivor_id for k in entry["links"]):
            changed.append(int(rid))
    problems = []
    if gone:
        problems.append(f"module records {', '.join(map(str, gone))} were deleted since the merge")
    if changed:
        problems.append(
            f"the customer links of module records {', '.join(map(str, changed))} were changed "
            "since the merge"
        )
    return problems


def restore_module_links(
    session: Session, moved: Mapping[str, Mapping[str, Any]], survivor_id: int
) -> None:
    """Point the links moved by a merge back at their former customers (check
    ``module_link_problems`` first)."""
    if not moved:
        return
    records = session.scalars(
        select(ModuleRecord).where(ModuleRecord.id.in_([int(i) for i in moved]))
    )
    for record in records:
        entry = moved[str(record.id)]
        data = dict(record.data or {})
        for key, old in entry["links"].items():
            data[key] = int(old)
            _reindex(session, record.id, [key], survivor_id, int(old))
        if entry["links"]:
            record.data = data
        if record.customer_id == survivor_id:
            record.customer_id = entry["customer_id"]
        if record.display_name == str(survivor_id) and entry["display_name"] is not None:
            record.display_name = entry["display_name"]
    session.flush()


__all__ = ["module_link_problems", "move_module_links", "restore_module_links"]
