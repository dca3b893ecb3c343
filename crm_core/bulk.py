"""Bulk creation of customers: the same validation as ``create_customer``, set-based writes.

Used by imports and demo data. Validation is pure (no database) and runs in worker processes
for large batches; the writes are multi-row ``INSERT … RETURNING`` statements inside the
caller's transaction, so a batch commits whole or not at all.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from operator import itemgetter
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Dialect, Table, insert, select, text
from sqlalchemy.orm import Session

from crm_core.access import Actor, require
from crm_core.customers import (
    TEXT_FIELDS,
    CleanCustomer,
    _Validator,
    build_search_text,
)
from crm_core.customfields import list_definitions
from crm_core.db import highest_rowid, index_build_settings, trigger_set_aside
from crm_core.errors import InvalidInput, PermissionDenied
from crm_core.models import (
    AuditEntry,
    Customer,
    CustomerEmail,
    CustomerKind,
    CustomerPhone,
    Lifecycle,
    Role,
    Tag,
    User,
    customer_tags,
    utcnow,
)
from crm_core.normalize import pinyin_key
from crm_core.reports.customer_groups import customer_counts_set_aside
from crm_core.settings import get_settings

CHUNK = 5000
FIRST_CHUNK = 1000
_NOT_AUDITED = frozenset({"id", "search_text", "name_key", "created_at", "updated_at", "version"})
PARALLEL_FROM = 20_000


@dataclass
class RowError:
    """Why one input row was refused: ``row`` is its 0-based position in the input."""

    row: int
    errors: dict[str, str]

    def message(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.errors.items())


@dataclass
class BulkResult:
    ids: list[int] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # input positions of the created ids
    errors: list[RowError] = field(default_factory=list)


def _validate_chunk(
    args: tuple[_Validator, int, list[Mapping[str, Any]]],
) -> list[tuple[int, CleanCustomer | dict[str, str]]]:
    validator, offset, rows = args
    out: list[tuple[int, CleanCustomer | dict[str, str]]] = []
    for i, row in enumerate(rows):
        try:
            clean = validator.clean(row)
        except InvalidInput as exc:
            out.append((offset + i, exc.errors or {exc.field or "row": exc.message}))
            continue
        # search keys of a new record, computed here so that workers share the work
        name = clean.columns["name"]
        key = pinyin_key(name)
        clean.columns["name_key"] = key
        clean.columns["search_text"] = build_search_text(
            name,
            key,
            clean.columns.get("company_name"),
            clean.emails or [],
            [p[0] for p in clean.phones or []],
        )
        out.append((offset + i, clean))
    return out


def _make_validator(session: Session, rows: Sequence[Mapping[str, Any]]) -> _Validator:
    """A pure validator (no database) with owners, companies and custom-field definitions
    preloaded, so that it can run in worker processes."""
    users = {
        u.id: SimpleNamespace(id=u.id, active=u.active, role=u.role, team_id=u.team_id)
        for u in session.scalars(select(User))
    }
    company_ids = {int(r["company_id"]) for r in rows if r.get("company_id") not in (None, "")}
    companies = {}
    if company_ids:
        stmt = select(Customer.id, Customer.kind, Customer.name).where(Customer.id.in_(company_ids))
        companies = {cid: (kind, name) for cid, kind, name in session.execute(stmt)}
    definitions = [
        SimpleNamespace(
            key=d.key,
            active=d.active,
            required=d.required,
            field_type=d.field_type,
            choices=list(d.choices or []),
        )
        for d in list_definitions(session)
    ]
    return _Validator(
        None,
        users=users,
        companies=companies,
        definitions=definitions,
        default_region=get_settings().default_region,
    )


def _worker_count(workers: int | None, rows: int) -> int:
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    return workers if workers > 1 and rows >= PARALLEL_FROM else 1


def reserve_ids(session: Session, table: Any, count: int) -> list[int]:
    """Reserve ``count`` primary keys of ``table`` for a multi-row insert without RETURNING.

    PostgreSQL draws them from the table's sequence. SQLite serialises writers: after a first
    write statement this transaction holds the write lock, so ``max(id)`` cannot move under us.
    """
    if count <= 0:
        return []
    conn = session.connection()
    name = table.name
    if conn.dialect.name == "postgresql":
        stmt = text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)")
        return [int(v) for v in conn.execute(stmt, {"t": name, "n": count}).scalars()]
    conn.execute(text(f'UPDATE "{name}" SET id = id WHERE 0'))  # take the write lock
    start = highest_rowid(conn, name)
    return list(range(start + 1, start + 1 + count))


@contextmanager
def batched_search_index(session: Session) -> Iterator[Callable[[Sequence[int]], None]]:
    """On SQLite, index the search text of the created customers one chunk at a time in one
    statement instead of row by row through the trigger (about eight times faster).

    Yields ``index(ids)``, called after each chunk is written: filling the index while the
    worker processes still prepare the next chunks keeps both cores busy, where one fill at
    the end ran alone. The trigger is dropped and re-created inside the caller's transaction,
    which holds SQLite's write lock throughout: no other writer can insert while it is away.
    """
    conn = session.connection()

    def nothing(ids: Sequence[int]) -> None:
        return None

    with trigger_set_aside(conn, "customer_fts_ai") as aside:
        if not aside:
            yield nothing
            return
        fill = text(
            "INSERT INTO customer_fts(rowid, search_text) "
            "SELECT id, search_text FROM customers WHERE id BETWEEN :lo AND :hi"
        )

        def index(ids: Sequence[int]) -> None:
            if ids:  # the ids of one call are new, reserved above every older customer
                conn.execute(fill, {"lo": min(ids), "hi": max(ids)})

        merge = text("INSERT INTO customer_fts(customer_fts, rank) VALUES ('automerge', :n)")
        automerge = conn.execute(text("SELECT v FROM customer_fts_config WHERE k = 'automerge'"))
        restore = automerge.scalar()
        # No incremental merging of the index's segments while it is filled (about a third of
        # the fill's time); the "crisis merge" still bounds how many segments pile up.
        conn.execute(merge, {"n": 0})
        try:
            yield index
        finally:
            conn.execute(merge, {"n": 4 if restore is None else int(restore)})  # FTS5's default


_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "id",
        *TEXT_FIELDS,
        "kind",
        "name",
        "name_key",
        "search_text",
        "company_id",
        "phone",
        "email",
        "country",
        "birthday",
        "lifecycle_stage",
        "value_tier",
        "owner_id",
        "team_id",
        "custom",
        "created_by_id",
        "created_at",
        "updated_at",
        "version",
    ),
    "customer_phones": ("customer_id", "e164", "raw", "label", "is_primary"),
    "customer_emails": ("customer_id", "email", "label", "is_primary"),
    "audit_entries": (
        "at",
        "actor_id",
        "actor_name",
        "action",
        "entity_type",
        "entity_id",
        "changes",
        "source",
    ),
}


class _Params:
    """Turns row dicts into driver parameters for one table and dialect.

    On SQLite each column's bind processor is applied here, in whichever process prepares
    the rows (worker processes included), and the driver's ``executemany`` takes plain
    tuples: SQLAlchemy's own executemany rebuilds every parameter set through the compiled
    statement, which for tens of thousands of rows costs more than SQLite's work. Other
    databases keep the dicts and SQLAlchemy's batched ``insertmanyvalues`` path.
    """

    def __init__(self, table: Table, keys: Sequence[str], dialect: Dialect) -> None:
        self.table = table
        self.keys = tuple(keys)
        self.driver = dialect.name == "sqlite"
        if not self.driver:
            return
        self.converters = []
        for key in self.keys:
            proc: Callable[[Any], Any] | None = table.c[key].type.bind_processor(dialect)
            column_type = table.c[key].type
            try:  # a TypeDecorator's own python_type is its impl's
                python_type = getattr(column_type, "impl_instance", column_type).python_type
            except NotImplementedError:
                python_type = object
            if issubclass(python_type, date):
                proc = self._dates_as_text(proc)
            self.converters.append(None if proc is None else self._memo(proc))
        key = self.keys[0]
        # itemgetter of one key gives the value itself, of several a tuple
        self.get = itemgetter(*self.keys) if len(self.keys) > 1 else lambda row: (row[key],)
        self.converted = [(i, c) for i, c in enumerate(self.converters) if c is not None]

    @staticmethod
    def _dates_as_text(proc: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
        """Dates and times as the text sqlite3's default adapters would write
        (``isoformat``), made here rather than by the driver in the writing process."""

        def convert(value: Any) -> Any:
            if proc is not None:
                value = proc(value)
            if isinstance(value, datetime):
                return value.isoformat(" ")
            if isinstance(value, date):
                return value.isoformat()
            return value

        return convert

    @staticmethod
    def _memo(proc: Callable[[Any], Any]) -> Callable[[Any], Any]:
        last: list[Any] = [object(), None]  # a run of one value (a batch's "now") converts once

        def convert(value: Any) -> Any:
            if value is None:
                return None
            if value is last[0]:
                return last[1]
            last[0], last[1] = value, proc(value)
            return last[1]

        return convert

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        if not self.driver:
            return [dict(r) for r in rows]
        get, converted = self.get, self.converted
        out = []
        for row in rows:
            values = list(get(row))
            for i, convert in converted:
                values[i] = convert(values[i])
            out.append(tuple(values))
        return out

    def execute(self, conn: Connection, params: list[Any]) -> None:
        if not params:
            return
        if not self.driver:
            conn.execute(insert(self.table), params)
            return
        columns = ", ".join(f'"{k}"' for k in self.keys)
        marks = ", ".join("?" for _ in self.keys)
        conn.exec_driver_sql(
            f'INSERT INTO "{self.table.name}" ({columns}) VALUES ({marks})', params
        )


def insert_many(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """``INSERT`` many rows of ``table`` (all with the same keys) in one statement."""
    if rows:
        params = _Params(table, list(rows[0]), conn.dialect)
        params.execute(conn, params(rows))


@dataclass
class _Job:
    """What every chunk of one bulk creation shares (inherited by forked workers)."""

    validator: _Validator
    dialect: Dialect
    actor_id: int
    actor_name: str
    source: str | None
    now: datetime
    teams: dict[int, int | None]
    created_at: Sequence[datetime | None] | None

    def __post_init__(self) -> None:
        tables: dict[str, Any] = {
            "customers": Customer.__table__,
            "customer_phones": CustomerPhone.__table__,
            "customer_emails": CustomerEmail.__table__,
            "audit_entries": AuditEntry.__table__,
        }
        self.params = {
            name: _Params(table, _COLUMNS[name], self.dialect) for name, table in tables.items()
        }


@dataclass
class _Prepared:
    """One chunk, validated and turned into insert parameters."""

    errors: list[RowError] = field(default_factory=list)
    created: list[tuple[int, int]] = field(default_factory=list)  # (input position, id)
    tags: list[tuple[int, str]] = field(default_factory=list)  # (customer id, tag name)
    params: dict[str, list[Any]] = field(default_factory=dict)


_JOB: _Job | None = None


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a bulk run allocates millions of small objects
    that are all still alive, and each collection would walk them again (a quarter of
    the run's time at 100,000 rows). Reference counting still frees everything."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_INPUT: tuple[Sequence[Any], list[int]] | None = None  # (rows, ids), inherited by workers


def _prepare_chunk(span: tuple[int, int]) -> _Prepared:
    """Prepare rows ``span[0]:span[1]`` of the input (``_INPUT``): forked workers inherit
    it, so only the two numbers travel to them instead of the pickled rows."""
    assert _INPUT is not None
    rows, ids = _INPUT
    start, end = span
    with gc_paused():
        return _prepare(start, list(rows[start:end]), ids[start:end])


def _prepare(offset: int, rows: list[Mapping[str, Any]], ids: list[int]) -> _Prepared:
    job = _JOB
    assert job is not None
    out = _Prepared()
    customers: list[dict[str, Any]] = []
    phone_rows: list[dict[str, Any]] = []
    email_rows: list[dict[str, Any]] = []
    audit_rows: list[dict[str, Any]] = []
    for index, item in _validate_chunk((job.validator, offset, rows)):
        if not isinstance(item, CleanCustomer):
            out.errors.append(RowError(index, item))
            continue
        cid = ids[index - offset]
        cols = item.columns
        phones = item.phones or []
        emails = item.emails or []
        owner = cols.get("owner_id")
        when = (job.created_at[index] if job.created_at is not None else None) or job.now
        value = {f: cols.get(f) for f in TEXT_FIELDS}
        value.update(
            id=cid,
            kind=cols.get("kind") or CustomerKind.PERSON,
            name=cols["name"],
            name_key=cols["name_key"],
            search_text=cols["search_text"],
            company_id=cols.get("company_id"),
            phone=phones[0][0] if phones else None,
            email=emails[0] if emails else None,
            country=cols.get("country"),
            birthday=cols.get("birthday"),
            lifecycle_stage=cols.get("lifecycle_stage") or Lifecycle.LEAD,
            value_tier=cols.get("value_tier"),
            owner_id=owner,
            team_id=job.teams.get(owner) if owner else None,
            custom=item.custom or {},
            created_by_id=job.actor_id,
            created_at=when,
            updated_at=when,
            version=1,
        )
        customers.append(value)
        for i, (e164, raw) in enumerate(phones):
            phone_rows.append(
                {
                    "customer_id": cid,
                    "e164": e164,
                    "raw": raw,
                    "label": "mobile",
                    "is_primary": i == 0,
                }
            )
        for i, email in enumerate(emails):
            email_rows.append(
                {"customer_id": cid, "email": email, "label": "work", "is_primary": i == 0}
            )
        out.tags.extend((cid, tag) for tag in item.tags or [])
        changes: dict[str, Any] = {
            k: [None, v]
            for k, v in value.items()
            if v is not None and v != "" and k not in _NOT_AUDITED and k != "custom"
        }
        if value["birthday"] is not None:
            changes["birthday"] = [None, value["birthday"].isoformat()]
        if value["custom"]:
            changes["custom"] = [None, value["custom"]]
        if phones:
            changes["phones"] = [None, [p[0] for p in phones]]
        if emails:
            changes["emails"] = [None, emails]
        if item.tags:
            changes["tags"] = [None, item.tags]
        audit_rows.append(
            {
                "at": job.now,
                "actor_id": job.actor_id,
                "actor_name": job.actor_name,
                "action": "customer.create",
                "entity_type": "customer",
                "entity_id": cid,
                "changes": changes,
                "source": job.source,
            }
        )
        out.created.append((index, cid))
    for name, rows_of in (
        ("customers", customers),
        ("customer_phones", phone_rows),
        ("customer_emails", email_rows),
        ("audit_entries", audit_rows),
    ):
        out.params[name] = job.params[name](rows_of)
    return out


def _prepared_chunks(
    job: _Job,
    rows: Sequence[Mapping[str, Any]],
    ids: list[int],
    workers: int,
    idle: Callable[[], bool] | None = None,
) -> Iterator[_Prepared]:
    """Prepared chunks in input order; with several workers they are prepared in forked
    processes while the caller writes the earlier ones (at most ``2 * workers`` ahead).
    While the next chunk is not ready, ``idle()`` is called again and again as long as it
    returns true (other work of the caller's, on its connection)."""
    global _JOB, _INPUT
    # a small first chunk: this process starts writing while the workers prepare the rest
    first = min(CHUNK, FIRST_CHUNK)
    starts = [0, *range(first, len(rows), CHUNK)]
    chunks = zip(starts, [*starts[1:], len(rows)], strict=True)
    _JOB, _INPUT = job, (rows, ids)
    try:
        if workers <= 1:
            for chunk in chunks:
                yield _prepare_chunk(chunk)
            return
        import multiprocessing
        from collections import deque

        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            pending: deque[Any] = deque()
            for chunk in chunks:
                pending.append(pool.submit(_prepare_chunk, chunk))
                if len(pending) >= 2 * workers:
                    yield _when_done(pending.popleft(), idle)
            while pending:
                yield _when_done(pending.popleft(), idle)
    finally:
        _JOB = _INPUT = None


def _when_done(future: Future[_Prepared], idle: Callable[[], bool] | None) -> _Prepared:
    while idle is not None and not future.done() and idle():
        pass
    return future.result()


#: A bulk creation at least this big, and at least as big as the table it fills, rebuilds
#: that table's secondary indexes once at the end (SQLite) instead of updating them row by row.
REBUILD_INDEXES_FROM = 20_000


@contextmanager
def _indexes_rebuilt(session: Session, tables: Sequence[str], rows: int) -> Iterator[None]:
    """On SQLite, drop the secondary indexes of each of ``tables`` holding no more rows than
    ``rows`` and create them again at the end: building an index once over sorted keys is
    several times faster than inserting 100,000 random keys into a dozen indexes.

    Everything happens in the caller's transaction (SQLite's DDL is transactional and the
    write lock is held throughout): an error rolls the indexes back with the rows, and
    readers keep their snapshot, indexes included, until the commit.
    """
    conn = session.connection()
    if conn.dialect.name != "sqlite" or rows < REBUILD_INDEXES_FROM:
        yield
        return
    dropped: list[tuple[str, str]] = []
    for table in tables:
        if highest_rowid(conn, table) <= rows:
            dropped.extend(secondary_indexes(conn, table))
    with indexes_set_aside(conn, dropped):
        yield


def secondary_indexes(conn: Connection, table: str) -> list[tuple[str, str]]:
    """``(name, sql)`` of the indexes of ``table`` that are no constraint (SQLite)."""
    found = conn.execute(
        text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = :t AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'"
        ),
        {"t": table},
    )
    return [(name, sql) for name, sql in found]


@dataclass
class SetAside:
    """What a block that set indexes aside may decide before its end: ``rolled_back`` says
    that the caller's transaction (or savepoint) is going to be rolled back, which brings the
    dropped indexes back by itself, so building them again would be work thrown away."""

    rolled_back: bool = False


@contextmanager
def indexes_set_aside(conn: Connection, indexes: Sequence[tuple[str, str]]) -> Iterator[SetAside]:
    """Drop the SQLite ``indexes`` (``(name, sql)``) for the block and create them again at
    its end, also after an error (the caller may still commit other work), inside the
    caller's transaction, which holds the write lock; not when the block marks the yielded
    ``SetAside`` as ``rolled_back`` (a preview)."""
    for name, _ in indexes:
        conn.execute(text(f'DROP INDEX "{name}"'))
    state = SetAside()
    try:
        yield state
    finally:
        if indexes and not state.rolled_back:
            with index_build_settings(conn):
                for _, sql in indexes:
                    conn.execute(text(sql))


def _tag_ids(session: Session, names: set[str]) -> dict[str, int]:
    if not names:
        return {}
    found = dict(session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(names))).all())
    missing = sorted(names - set(found))
    if missing:
        stmt = insert(Tag).returning(Tag.name, Tag.id, sort_by_parameter_order=True)
        found.update(dict(session.execute(stmt, [{"name": n} for n in missing]).all()))
    return found


def bulk_create_customers(
    session: Session,
    *,
    actor: Actor,
    rows: Sequence[Mapping[str, Any]],
    source: str | None = None,
    skip_invalid: bool = False,
    workers: int | None = None,
    created_at: Sequence[datetime | None] | None = None,
    idle: Callable[[], bool] | None = None,
) -> BulkResult:
    """Create many customers at once with the rules of ``create_customer``.

    Invalid rows raise one ``InvalidInput`` listing them (row numbers start at 1) and nothing
    is written, unless ``skip_invalid`` is set: then the valid rows are created and the invalid
    ones returned in ``errors``. ``created_at`` may carry historical creation times (imports).
    Each created customer gets its own audit entry. ``idle`` is called while this process
    waits for its workers (see ``_prepared_chunks``).

    Rows are validated and turned into insert parameters chunk by chunk, in worker
    processes for large batches, while this process writes the chunks already prepared;
    ids are reserved for every input row up front (an invalid row leaves a gap).
    """
    require(actor, "customer.create")
    data: list[dict[str, Any]] = [dict(r) for r in rows]
    rows = data
    if actor.role == Role.SALES:
        for r in data:
            if r.get("owner_id") in (None, ""):
                r["owner_id"] = actor.id
            elif int(r["owner_id"]) != actor.id:
                raise PermissionDenied("sales users can only assign customers to themselves")
    if not rows:
        return BulkResult()
    return _write(
        session,
        actor=actor,
        rows=rows,
        validator=_make_validator(session, rows),
        source=source,
        skip_invalid=skip_invalid,
        workers=workers,
        created_at=created_at,
        idle=idle,
    )


def _write(
    session: Session,
    *,
    actor: Actor,
    rows: Sequence[Mapping[str, Any]],
    validator: _Validator,
    source: str | None,
    skip_invalid: bool,
    workers: int | None,
    created_at: Sequence[datetime | None] | None,
    idle: Callable[[], bool] | None = None,
) -> BulkResult:
    """The writes of a bulk creation, its rows validated by ``validator``."""
    result = BulkResult()
    conn = session.connection()  # Core statements: the ORM adds nothing to plain inserts
    job = _Job(
        validator=validator,
        dialect=conn.dialect,
        actor_id=actor.id,
        actor_name=actor.username,
        source=source,
        now=utcnow(),
        teams=dict(session.execute(select(User.id, User.team_id)).all()),
        created_at=created_at,
    )
    ids = reserve_ids(session, Customer.__table__, len(rows))
    prepared = _prepared_chunks(job, rows, ids, _worker_count(workers, len(rows)), idle)
    # All or nothing (not skip_invalid): chunks are written as they come, inside a savepoint
    # that an invalid row rolls back; the remaining chunks are still checked (not written) so
    # that the error lists every invalid row.
    savepoint = None if skip_invalid else session.begin_nested()
    invalid: list[RowError] = []
    tag_ids: dict[str, int] = {}
    rebuilt = ("customers", "customer_phones", "customer_emails", "audit_entries")
    try:
        with (
            gc_paused(),
            _indexes_rebuilt(session, rebuilt, len(rows)),
            batched_search_index(session) as index_search_text,
            customer_counts_set_aside(session),  # the report counts, in one statement
        ):
            for chunk in prepared:
                if savepoint is not None and (invalid or chunk.errors):
                    invalid.extend(chunk.errors)
                    continue
                result.errors.extend(chunk.errors)
                for name in rebuilt:
                    job.params[name].execute(conn, chunk.params[name])
                if chunk.tags:
                    names = {t for _, t in chunk.tags} - set(tag_ids)
                    tag_ids.update(_tag_ids(session, names))
                    insert_many(
                        conn,
                        customer_tags,
                        [{"customer_id": cid, "tag_id": tag_ids[t]} for cid, t in chunk.tags],
                    )
                for index, cid in chunk.created:
                    result.rows.append(index)
                    result.ids.append(cid)
                index_search_text([cid for _, cid in chunk.created])
    except BaseException:
        if savepoint is not None and savepoint.is_active:
            savepoint.rollback()
        raise
    if savepoint is not None:
        if invalid:
            savepoint.rollback()
            shown = "; ".join(f"row {e.row + 1}: {e.message()}" for e in invalid[:10])
            more = f" (and {len(invalid) - 10} more rows)" if len(invalid) > 10 else ""
            raise InvalidInput(
                f"{len(invalid)} invalid row(s): {shown}{more}",
                field=next(iter(invalid[0].errors)),
            )
        savepoint.commit()
    return result
