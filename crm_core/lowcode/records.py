"""Records of custom modules: create, edit, read, search, filter, keyset paging, archive and
restore, all-or-nothing bulk actions, import and export, and the linked customer's timeline.

Every function takes the acting user, checks the module's role permissions and the record scope
(``crm_core.lowcode.permissions``) and writes the audit trail. Values are validated by
``fieldspec.coerce``; the typed value index and the unique values are kept in step here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, not_, select, text
from sqlalchemy.orm import Session

from crm_core import access, audit
from crm_core.access import Actor
from crm_core.activities import TimelineItem
from crm_core.customers import (
    _FTS_MIN,
    _decode_cursor,
    _encode_cursor,
    _fts_phrase,
    _like_escape,
    load_customer,
)
from crm_core.errors import ConflictError, CrmError, InvalidInput, NotFound, PermissionDenied
from crm_core.lowcode import permissions as perms
from crm_core.lowcode.fieldspec import (
    NUMERIC_TYPES,
    SEARCHED_TYPES,
    FieldSpec,
    coerce,
    display,
    index_rows,
    unique_key,
)
from crm_core.lowcode.modules import field_specs, get_module, list_modules
from crm_core.models import (
    Customer,
    CustomModule,
    ModuleRecord,
    ModuleUniqueValue,
    ModuleValue,
    User,
    utcnow,
)
from crm_core.normalize import clean_text

OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "contains", "in", "empty", "not_empty")


@dataclass(frozen=True)
class Condition:
    """One filter on a custom field: ``field op value`` (``in`` takes a list)."""

    field: str
    op: str = "eq"
    value: Any = None


@dataclass
class RecordFilter:
    """Filters of a module's record list; ``archived`` ``None`` selects both states."""

    query: str | None = None
    conditions: Sequence[Condition] = ()
    archived: bool | None = False
    customer_id: int | None = None


@dataclass(frozen=True)
class RecordOut:
    """A record as its reader sees it: values of active fields only."""

    id: int
    module: str
    display_name: str
    data: dict[str, Any]
    customer_id: int | None
    created_by_id: int | None
    archived_at: datetime | None
    archive_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass
class RecordPage:
    items: list[RecordOut]
    next_cursor: str | None


@dataclass
class _Ctx:
    module: CustomModule
    specs: list[FieldSpec]
    by_key: dict[str, FieldSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_key = {s.key: s for s in self.specs}


def _ctx(session: Session, module_key: str, *, include_retired: bool = True) -> _Ctx:
    module = get_module(session, module_key)
    return _Ctx(module, field_specs(session, module, include_retired=include_retired))


def to_out(ctx: _Ctx, record: ModuleRecord) -> RecordOut:
    active = {s.key for s in ctx.specs if s.active}
    return RecordOut(
        id=record.id,
        module=ctx.module.key,
        display_name=record.display_name,
        data={k: v for k, v in (record.data or {}).items() if k in active},
        customer_id=record.customer_id,
        created_by_id=record.created_by_id,
        archived_at=record.archived_at,
        archive_reason=record.archive_reason,
        version=record.version,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


# ---------------------------------------------------------------- validation and indexing


def _check_link(session: Session, actor: Actor, spec: FieldSpec, value: int) -> None:
    if spec.field_type == "customer":
        try:
            load_customer(session, actor=actor, customer_id=value)
        except NotFound:
            raise InvalidInput(f"customer {value} does not exist", field=spec.key) from None
    elif spec.field_type == "user":
        user = session.get(User, value)
        if user is None or not user.active:
            raise InvalidInput(f"user {value} does not exist", field=spec.key)
    elif spec.field_type == "module":
        target = get_module(session, spec.link_module or "")
        found = session.scalar(
            select(ModuleRecord.id).where(
                ModuleRecord.id == value,
                ModuleRecord.module_id == target.id,
                perms.visible_records(actor),
            )
        )
        if found is None:
            raise InvalidInput(f"{target.name_en} record {value} does not exist", field=spec.key)


def _validate(
    session: Session,
    actor: Actor,
    ctx: _Ctx,
    values: Mapping[str, Any],
    existing: Mapping[str, Any] | None,
    record_id: int | None,
) -> dict[str, Any]:
    result = dict(existing or {})
    errors: dict[str, str] = {}
    for key, raw in values.items():
        spec = ctx.by_key.get(key)
        if spec is None or not spec.active:
            errors[key] = "is not a field of this module"
            continue
        try:
            value = coerce(spec, raw)
            is_link = spec.field_type in ("customer", "user", "module")
            if is_link and value is not None and value != (existing or {}).get(key):
                _check_link(session, actor, spec, value)
            if value is not None and spec.unique:
                taken = session.scalar(
                    select(ModuleUniqueValue.record_id).where(
                        ModuleUniqueValue.module_id == ctx.module.id,
                        ModuleUniqueValue.field_key == key,
                        ModuleUniqueValue.value == unique_key(spec, value),
                    )
                )
                if taken is not None and taken != record_id:
                    raise InvalidInput(
                        f"'{display(spec, value)}' is already used by record {taken}", field=key
                    )
        except InvalidInput as exc:
            errors[exc.field or key] = exc.message.split(": ", 1)[-1]
            continue
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    for spec in ctx.specs:
        if spec.active and spec.required and result.get(spec.key) is None:
            errors.setdefault(spec.key, "is required")
    if errors:
        first = next(iter(errors))
        raise InvalidInput(
            "; ".join(f"{k}: {v}" for k, v in errors.items()), field=first, errors=errors
        )
    return result


def _derive(ctx: _Ctx, record: ModuleRecord) -> None:
    """Display name, search text and linked customer from the record's values."""
    data = record.data or {}
    key = ctx.module.display_field or ""
    spec = ctx.by_key.get(key)
    name = display(spec, data.get(key)) if spec is not None else ""
    record.display_name = (name or (f"#{record.id}" if record.id else ""))[:255]
    parts = [name] + [
        display(s, data.get(s.key))[:500]
        for s in ctx.specs
        if s.active and s.field_type in SEARCHED_TYPES and data.get(s.key) is not None
    ]
    record.search_text = " ".join(p for p in parts if p).lower()
    record.customer_id = next(
        (
            data[s.key]
            for s in ctx.specs
            if s.field_type == "customer" and s.active and s.key in data
        ),
        None,
    )


def _index(
    session: Session,
    ctx: _Ctx,
    record: ModuleRecord,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
) -> None:
    changed = [s for s in ctx.specs if old.get(s.key) != new.get(s.key)]
    if not changed:
        return
    keys = [s.key for s in changed]
    if old:
        session.execute(
            delete(ModuleValue).where(
                ModuleValue.record_id == record.id, ModuleValue.field_key.in_(keys)
            )
        )
        session.execute(
            delete(ModuleUniqueValue).where(
                ModuleUniqueValue.record_id == record.id, ModuleUniqueValue.field_key.in_(keys)
            )
        )
    for spec in changed:
        value = new.get(spec.key)
        for text_value, num_value in index_rows(spec, value):
            session.add(
                ModuleValue(
                    module_id=ctx.module.id,
                    record_id=record.id,
                    field_key=spec.key,
                    text_value=text_value,
                    num_value=num_value,
                )
            )
        if spec.unique and spec.active and value is not None:
            session.add(
                ModuleUniqueValue(
                    module_id=ctx.module.id,
                    field_key=spec.key,
                    value=unique_key(spec, value),
                    record_id=record.id,
                )
            )


def refresh_display_names(session: Session, module: CustomModule) -> None:
    """Recompute display names and search text (after the display field changed)."""
    ctx = _Ctx(module, field_specs(session, module, include_retired=True))
    for record in session.scalars(select(ModuleRecord).where(ModuleRecord.module_id == module.id)):
        _derive(ctx, record)
    session.flush()


# ---------------------------------------------------------------- single records


def _load(
    session: Session, actor: Actor, ctx: _Ctx, record_id: int, *, action: str = "read"
) -> ModuleRecord:
    perms.require(actor, ctx.module, "read")
    perms.require(actor, ctx.module, action)
    record = session.get(ModuleRecord, record_id)
    if record is None or record.module_id != ctx.module.id:
        raise NotFound(f"{ctx.module.name_en} record {record_id} does not exist")
    customer = session.get(Customer, record.customer_id) if record.customer_id else None
    if not perms.can_see(actor, record, customer):
        raise NotFound(f"{ctx.module.name_en} record {record_id} does not exist")
    if action != "read":
        restricted = actor.role not in access.UNRESTRICTED_READERS
        if restricted and customer is not None and not access.can_change(actor, customer):
            raise PermissionDenied(f"you may not change record {record_id}")
    return record


def create_record(
    session: Session,
    *,
    actor: Actor,
    module_key: str,
    data: Mapping[str, Any],
    source: str | None = None,
    _ctx_cache: _Ctx | None = None,
) -> ModuleRecord:
    """Add a record after validating every value (``InvalidInput`` names each bad field)."""
    ctx = _ctx_cache or _ctx(session, module_key)
    perms.require(actor, ctx.module, "create")
    clean = _validate(session, actor, ctx, data, None, None)
    record = ModuleRecord(module_id=ctx.module.id, data=clean, created_by_id=actor.id)
    _derive(ctx, record)
    session.add(record)
    session.flush()
    if not record.display_name:
        record.display_name = f"#{record.id}"
    _index(session, ctx, record, {}, clean)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="module_record.create",
        entity_type="module_record",
        entity_id=record.id,
        changes=audit.diff({}, clean),
        detail=ctx.module.key,
        source=source,
    )
    return record


def update_record(
    session: Session,
    *,
    actor: Actor,
    module_key: str,
    record_id: int,
    data: Mapping[str, Any],
    expected_version: int | None = None,
) -> ModuleRecord:
    """Change some values of a record (the given keys only; empty clears)."""
    ctx = _ctx(session, module_key)
    record = _load(session, actor, ctx, record_id, action="edit")
    if record.archived_at is not None:
        raise ConflictError(f"record {record_id} is archived; restore it first")
    if expected_version is not None and record.version != expected_version:
        raise ConflictError(
            f"record {record_id} was changed by someone else; reload it",
            current_version=record.version,
        )
    old = dict(record.data or {})
    clean = _validate(session, actor, ctx, data, old, record.id)
    if clean == old:
        return record
    record.data = clean
    _derive(ctx, record)
    _index(session, ctx, record, old, clean)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="module_record.update",
        entity_type="module_record",
        entity_id=record.id,
        changes=audit.diff(old, clean),
        detail=ctx.module.key,
    )
    return record


def get_record(session: Session, *, actor: Actor, module_key: str, record_id: int) -> RecordOut:
    """One record the actor may see."""
    ctx = _ctx(session, module_key)
    return to_out(ctx, _load(session, actor, ctx, record_id))


def archive_record(
    session: Session, *, actor: Actor, module_key: str, record_id: int, reason: str | None = None
) -> ModuleRecord:
    """Archive a record (kept, hidden from the default list)."""
    ctx = _ctx(session, module_key)
    record = _load(session, actor, ctx, record_id, action="archive")
    if record.archived_at is not None:
        raise ConflictError(f"record {record_id} is archived already")
    record.archived_at = utcnow()
    record.archived_by_id = actor.id
    record.archive_reason = clean_text(reason)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="module_record.archive",
        entity_type="module_record",
        entity_id=record.id,
        changes={"archived_at": [None, record.archived_at]},
        detail=reason or ctx.module.key,
    )
    return record


def restore_record(
    session: Session, *, actor: Actor, module_key: str, record_id: int
) -> ModuleRecord:
    """Bring an archived record back."""
    ctx = _ctx(session, module_key)
    record = _load(session, actor, ctx, record_id, action="archive")
    if record.archived_at is None:
        raise ConflictError(f"record {record_id} is not archived")
    before = record.archived_at
    record.archived_at = None
    record.archived_by_id = None
    record.archive_reason = None
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="module_record.restore",
        entity_type="module_record",
        entity_id=record.id,
        changes={"archived_at": [before, None]},
        detail=ctx.module.key,
    )
    return record


# ---------------------------------------------------------------- lists, search and filters


def value_condition(module: CustomModule, spec: FieldSpec, cond: Condition) -> Any:
    """SQL condition on ``ModuleRecord`` for one filter on an indexed field."""
    if cond.op not in OPS:
        raise InvalidInput(f"unknown operator '{cond.op}'", field=cond.field)
    if spec.field_type == "long_text" and cond.op not in ("empty", "not_empty"):
        raise InvalidInput("long text cannot be filtered; use the search", field=cond.field)
    numeric = spec.field_type in NUMERIC_TYPES
    column = ModuleValue.num_value if numeric else ModuleValue.text_value
    base = select(ModuleValue.record_id).where(
        ModuleValue.module_id == module.id, ModuleValue.field_key == spec.key
    )
    if cond.op in ("empty", "not_empty"):
        has = ModuleRecord.id.in_(base)
        return not_(has) if cond.op == "empty" else has
    one = spec.with_(field_type="choice") if spec.field_type == "multi_choice" else spec

    def indexed(raw: Any) -> Any:
        if cond.op == "contains":
            return str(clean_text(raw) or "")
        rows = index_rows(one, coerce(one, raw))
        if not rows:
            raise InvalidInput("needs a value", field=cond.field)
        return rows[0][1] if numeric else rows[0][0]

    if cond.op == "in":
        values = cond.value if isinstance(cond.value, list | tuple | set) else [cond.value]
        return ModuleRecord.id.in_(base.where(column.in_([indexed(v) for v in values])))
    value = indexed(cond.value)
    if cond.op == "contains":
        pattern = f"%{_like_escape(value)}%"
        return ModuleRecord.id.in_(base.where(column.ilike(pattern, escape="\\")))
    if cond.op == "ne":
        return not_(ModuleRecord.id.in_(base.where(column == value)))
    compare = {
        "eq": column == value,
        "lt": column < value,
        "lte": column <= value,
        "gt": column > value,
        "gte": column >= value,
    }[cond.op]
    return ModuleRecord.id.in_(base.where(compare))


def search_condition(session: Session, query: str | None) -> ColumnElement[bool] | None:
    """SQL condition of the quick search: every word of ``query`` occurs in the record's
    search text (display name and text-like values), or ``None`` for an empty query.

    On SQLite the words of three or more characters are looked up in the FTS5 trigram index
    ``module_record_fts`` (revision 0010, kept in step by triggers), so a big module is not
    scanned; shorter words are then checked on those matches only. On PostgreSQL ``LIKE`` on
    ``search_text`` uses its pg_trgm index (revision 0007).
    """
    words = [w for w in (clean_text(query) or "").lower().split(" ") if w]
    if not words:
        return None
    likes = {w: ModuleRecord.search_text.like(f"%{_like_escape(w)}%", escape="\\") for w in words}
    long_words = [w for w in words if len(w) >= _FTS_MIN]
    if not long_words or session.get_bind().dialect.name != "sqlite":
        return and_(*likes.values())
    match = " AND ".join(_fts_phrase(w) for w in long_words)
    fts = (
        select(text("rowid"))
        .select_from(text("module_record_fts"))
        .where(
            text("module_record_fts MATCH :module_fts").bindparams(
                bindparam("module_fts", match, unique=True)
            )
        )
    )
    return and_(ModuleRecord.id.in_(fts), *[likes[w] for w in words if len(w) < _FTS_MIN])


def record_query(
    session: Session, *, actor: Actor, module_key: str, filters: RecordFilter | None = None
) -> Select[Any]:
    """The ``SELECT`` of the module's records the actor may see and ``filters`` select.

    Lists, exports, notebooks and the report builder all start from it.
    """
    ctx = _ctx(session, module_key)
    perms.require(actor, ctx.module, "read")
    f = filters or RecordFilter()
    stmt = select(ModuleRecord).where(
        ModuleRecord.module_id == ctx.module.id, perms.visible_records(actor)
    )
    if f.archived is not None:
        stmt = stmt.where(
            ModuleRecord.archived_at.is_not(None)
            if f.archived
            else ModuleRecord.archived_at.is_(None)
        )
    if f.customer_id is not None:
        stmt = stmt.where(ModuleRecord.customer_id == f.customer_id)
    found = search_condition(session, f.query)
    if found is not None:
        stmt = stmt.where(found)
    for cond in f.conditions:
        spec = ctx.by_key.get(cond.field)
        if spec is None or not spec.active:
            raise InvalidInput("is not a field of this module", field=cond.field)
        stmt = stmt.where(value_condition(ctx.module, spec, cond))
    return stmt


def list_records(
    session: Session,
    *,
    actor: Actor,
    module_key: str,
    filters: RecordFilter | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> RecordPage:
    """One page of records, newest first, by keyset paging on the id (no ``OFFSET``, no
    ``count``): a filter on a custom field then walks its value index in id order."""
    ctx = _ctx(session, module_key)
    limit = max(1, min(limit, 500))
    stmt = record_query(session, actor=actor, module_key=module_key, filters=filters)
    if cursor:
        _, last_id = _decode_cursor(cursor, "id")
        stmt = stmt.where(ModuleRecord.id < last_id)
    stmt = stmt.order_by(ModuleRecord.id.desc()).limit(limit + 1)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_cursor([rows[-1].id, rows[-1].id]) if more and rows else None
    return RecordPage([to_out(ctx, r) for r in rows], next_cursor)


# ---------------------------------------------------------------- bulk, import, export


BULK_ACTIONS = ("archive", "restore", "update")


def bulk_action(
    session: Session,
    *,
    actor: Actor,
    module_key: str,
    record_ids: Iterable[int],
    action: str,
    values: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> int:
    """Archive, restore or set values of many records: all or nothing. The first record that
    cannot take the action raises (naming it) and the caller's transaction rolls everything
    back. Returns the number of records changed."""
    if action not in BULK_ACTIONS:
        raise InvalidInput(f"unknown bulk action '{action}'", field="action")
    ids = list(dict.fromkeys(int(i) for i in record_ids))
    if not ids:
        raise InvalidInput("select at least one record", field="record_ids")
    for record_id in ids:
        try:
            if action == "archive":
                archive_record(
                    session, actor=actor, module_key=module_key, record_id=record_id, reason=reason
                )
            elif action == "restore":
                restore_record(session, actor=actor, module_key=module_key, record_id=record_id)
            else:
                update_record(
                    session,
                    actor=actor,
                    module_key=module_key,
                    record_id=record_id,
                    data=values or {},
                )
        except CrmError as exc:
            message = f"record {record_id}: {exc.message}; nothing was changed"
            if isinstance(exc, PermissionDenied):
                raise PermissionDenied(message) from exc
            raise InvalidInput(message, errors={str(record_id): exc.message}) from exc
    return len(ids)


#: Columns of ``records_frame`` that are not fields: an import of an export skips them.
EXPORT_ONLY_COLUMNS = ("id", "display_name", "customer_id", "archived_at", "created_at",
                       "updated_at")  # fmt: skip


def _column_map(ctx: _Ctx, columns: Iterable[Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for spec in ctx.specs:
        if spec.active:
            for alias in (spec.key, spec.label_en, spec.label_zh):
                if alias:
                    names[str(alias).strip().casefold()] = spec.key
    mapping: dict[str, str] = {}
    for column in columns:
        key = names.get(str(column).strip().casefold())
        if key is None and str(column).strip().casefold() not in EXPORT_ONLY_COLUMNS:
            raise InvalidInput(
                f"column '{column}' matches no field of this module", field=str(column)
            )
        if key is not None:
            mapping[str(column)] = key
    return mapping


def import_records(
    session: Session, *, actor: Actor, module_key: str, frame: pd.DataFrame, source: str = "import"
) -> list[int]:
    """Create one record per row of ``frame`` (columns named by field key or label; the
    export's own columns such as ``id`` and ``created_at`` are skipped): all or nothing. Every bad row is reported (``errors`` keyed ``row N: field``) and nothing is
    written when any row fails. Returns the new record ids."""
    ctx = _ctx(session, module_key)
    perms.require(actor, ctx.module, "create")
    mapping = _column_map(ctx, frame.columns)
    errors: dict[str, str] = {}
    created: list[int] = []
    for number, row in enumerate(frame.to_dict(orient="records"), start=2):
        data = {mapping[c]: v for c, v in row.items() if c in mapping}
        try:  # a row is validated before anything of it is written
            record = create_record(
                session,
                actor=actor,
                module_key=module_key,
                data=data,
                source=source,
                _ctx_cache=ctx,
            )
            created.append(record.id)
        except InvalidInput as exc:
            for key, message in (exc.errors or {exc.field or "row": exc.message}).items():
                errors[f"row {number}: {key}"] = message
    if errors:
        raise InvalidInput(
            f"{len({k.split(':')[0] for k in errors})} rows are invalid; nothing was imported: "
            + "; ".join(f"{k} {v}" for k, v in list(errors.items())[:20]),
            errors=errors,
        )
    return created


def records_frame(
    session: Session,
    *,
    actor: Actor,
    module_key: str,
    filters: RecordFilter | None = None,
    limit: int | None = None,
    locale: str | None = None,
) -> pd.DataFrame:
    """The records the actor may see as a DataFrame: ``id``, ``display_name``, one column per
    active field (keys; labels with ``locale``), ``customer_id``, ``archived_at``,
    ``created_at``, ``updated_at``."""
    ctx = _ctx(session, module_key)
    stmt = record_query(session, actor=actor, module_key=module_key, filters=filters)
    stmt = stmt.order_by(ModuleRecord.id)
    if limit:
        stmt = stmt.limit(limit)
    active = [s for s in ctx.specs if s.active]
    rows = []
    for record in session.scalars(stmt):
        data = record.data or {}
        rows.append(
            {
                "id": record.id,
                "display_name": record.display_name,
                **{s.key: data.get(s.key) for s in active},
                "customer_id": record.customer_id,
                "archived_at": record.archived_at,
                "created_at": record.created_at,
                "updated_at": record.updated_at,
            }
        )
    columns = ["id", "display_name", *[s.key for s in active]]
    columns += ["customer_id", "archived_at", "created_at", "updated_at"]
    df = pd.DataFrame(rows, columns=columns)
    if locale:
        df = df.rename(columns={s.key: s.label(locale) for s in active})
    return df


def export_records(
    session: Session,
    *,
    actor: Actor,
    module_key: str,
    filters: RecordFilter | None = None,
) -> pd.DataFrame:
    """Export (``export.run`` permission, audited): the frame ``import_records`` reads back."""
    access.require(actor, "export.run")
    df = records_frame(session, actor=actor, module_key=module_key, filters=filters)
    for column in df.columns:
        df[column] = [", ".join(v) if isinstance(v, list) else v for v in df[column]]
    ctx = _ctx(session, module_key)
    audit.record(
        session,
        actor=actor,
        action="module_record.export",
        entity_type="custom_module",
        entity_id=ctx.module.id,
        detail=f"{len(df)} records",
    )
    return df


# ---------------------------------------------------------------- timeline


def timeline_items(
    session: Session, *, actor: Actor, customer_id: int, limit: int = 200
) -> list[TimelineItem]:
    """Records of every module the actor may read that are linked to the customer."""
    items: list[TimelineItem] = []
    for module in list_modules(session, actor=actor):
        stmt = (
            select(ModuleRecord)
            .where(
                ModuleRecord.module_id == module.id,
                ModuleRecord.customer_id == customer_id,
                perms.visible_records(actor),
            )
            .order_by(ModuleRecord.created_at.desc())
            .limit(limit)
        )
        for record in session.scalars(stmt):
            items.append(
                TimelineItem(
                    "module",
                    record.id,
                    record.created_at,
                    record.display_name,
                    module.name_zh
                    if getattr(actor, "locale", "en") == "zh" and module.name_zh
                    else module.name_en,
                    "archived" if record.archived_at else "",
                )
            )
    return items
