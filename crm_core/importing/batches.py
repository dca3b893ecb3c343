"""Import batches: preview, commit and revert of a customer file.

    with db.transaction() as s:
        report = preview_import(s, actor=user, source=data, file_name="客户.csv")
    with db.transaction() as s:
        report = run_import(s, actor=user, source=data, options=ImportOptions(mode="upsert"))
    with db.transaction() as s:
        revert_batch(s, actor=user, batch_id=report.batch_id)

Every import is one batch in the caller's transaction. The file is read in chunks; rows are
matched to existing customers by a key (email, phone or external id), then created with
``bulk_create_customers`` or updated with the customer validator, exactly as the services do.
With ``all_or_nothing`` any invalid row raises ``ImportRejected`` (the caller's transaction
rolls back, nothing stays); otherwise valid rows are imported and the invalid ones come back
as a rejects file to fix. A preview runs the very same work inside a savepoint that is rolled
back, so its counts are what a commit would do.

Re-importing a file changes nothing: matched rows whose values are already stored count as
unchanged, and empty cells never clear a value. Imports add phones, e-mails and tags to a
matched customer; they never remove them.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import multiprocessing
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from typing import IO, Any, cast

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.orm import Session, aliased

from crm_core import audit
from crm_core.access import Actor, require, visible_customers
from crm_core.bulk import (
    SetAside,
    batched_search_index,
    bulk_create_customers,
    gc_paused,
    highest_rowid,
    indexes_set_aside,
    insert_many,
    secondary_indexes,
    trigger_set_aside,
)
from crm_core.customers import CleanCustomer, _apply, _check_owner_change, _Validator
from crm_core.db import big_write_settings, listed, one_of
from crm_core.errors import ConflictError, InvalidInput, NotFound
from crm_core.importing import cleaning, reading
from crm_core.importing import mapping as mapping_mod
from crm_core.importing.reading import (
    Chunk,
    FileInfo,
    Source,
    display_name,
    iter_chunks,
    open_source,
)
from crm_core.models import (
    AuditEntry,
    Base,
    Customer,
    CustomerEmail,
    CustomerPhone,
    ImportBatch,
    ImportBatchRow,
    User,
    utcnow,
)
from crm_core.settings import get_settings

MODES = ("create", "update", "upsert")
#: Row problems kept in a report (all of them go to the rejects file).
MAX_ISSUES = 1000
#: Files with more rows to create than this skip the fuzzy duplicate check of the preview.
DEDUPE_MAX_ROWS = 20_000
_LOOKUP_CHUNK = 2000
_BATCH_ROWS = cast(Table, ImportBatchRow.__table__)
#: Chunks between two full collections of the garbage collector (see ``run_import``).
FULL_COLLECT_EVERY = 4
#: Tables whose rows belong to the customer and go with it when a created record is removed.
_OWNED = frozenset({"customer_phones", "customer_emails", "customer_tags"})
_FORMULA_PREFIX = ("'=", "'+", "'-", "'@")
_LABELS = {"email": "e-mail", "phone": "phone", "external_id": "external id", "id": "id"}


class ImportRejected(InvalidInput):
    """An all-or-nothing import found invalid rows; nothing was written. ``report`` lists them
    and ``report.rejects_csv()`` gives them back as a file to fix."""

    def __init__(self, report: ImportReport) -> None:
        first = report.issues[0] if report.issues else None
        where = f"; first: line {first.line}, {first.field}: {first.message}" if first else ""
        super().__init__(
            f"{report.invalid} of {report.total} rows are invalid, nothing was imported{where}",
            field=first.field if first else "file",
        )
        self.report = report


@dataclass
class ImportOptions:
    """How to import. ``mapping`` is ``{header: target}`` (guessed when ``None``);
    ``match_key`` is ``auto`` (per row: CRM id, external id, e-mail, then phone, whichever the
    row has), ``id``, ``external_id``, ``email`` or ``phone``."""

    mode: str = "upsert"
    match_key: str = "auto"
    mapping: Mapping[str, str | None] | None = None
    encoding: str | None = None
    sheet: str | None = None
    all_or_nothing: bool = True
    check_duplicates: bool = True

    def check(self) -> None:
        if self.mode not in MODES:
            raise InvalidInput(f"'{self.mode}' is not create, update or upsert", field="mode")
        if self.match_key not in mapping_mod.MATCH_KEYS:
            raise InvalidInput(
                f"'{self.match_key}' is not one of {', '.join(mapping_mod.MATCH_KEYS)}",
                field="match_key",
            )


@dataclass(frozen=True)
class RowIssue:
    """Why a row was refused or skipped: ``line`` is its line in the file (header = 1)."""

    line: int
    field: str
    message: str


@dataclass(frozen=True)
class DuplicateHint:
    """A row to be created that looks like another row of the file (``other_line``) or an
    existing customer (``customer_id``), with the match probability of the dedupe engine."""

    line: int
    score: float
    other_line: int | None = None
    customer_id: int | None = None
    reason: str = ""


@dataclass
class ImportReport:
    """What an import did (or, for a preview, would do)."""

    dry_run: bool
    file_name: str
    file_format: str
    encoding: str | None
    sheet: str | None
    headers: list[str]
    mapping: dict[str, str]
    mode: str
    match_key: str
    key_columns: tuple[str, ...] = ()
    batch_id: int | None = None
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    invalid: int = 0
    merged: int = 0
    issues: list[RowIssue] = field(default_factory=list)
    skips: list[RowIssue] = field(default_factory=list)
    duplicates: list[DuplicateHint] = field(default_factory=list)
    duplicates_note: str | None = None
    erased: list[RowIssue] = field(default_factory=list)
    already_imported: list[int] = field(default_factory=list)
    rejected: bool = False
    seconds: float = 0.0
    _rejects: IO[str] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.invalid == 0

    def counts(self) -> dict[str, int]:
        return {
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "invalid": self.invalid,
            "merged": self.merged,
        }

    def rejects_csv(self) -> bytes:
        """The invalid rows as CSV (UTF-8 with BOM, opens in Excel): the file's columns plus
        ``line`` and ``error``; empty when every row was valid."""
        if self._rejects is None or not self.invalid:
            return b""
        self._rejects.seek(0)
        return ("\ufeff" + self._rejects.read()).encode("utf-8")

    def summary(self) -> str:
        if self.rejected:
            return (
                f"{self.total} rows, {self.invalid} invalid: nothing was imported (the valid "
                f"rows hold {self.created} new customers and {self.updated} updates)"
            )
        verb = "would be" if self.dry_run else "were"
        return (
            f"{self.total} rows: {self.created} {verb} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.skipped} skipped, {self.invalid} invalid"
            + (f", {self.merged} merged into another row with the same key" if self.merged else "")
        )


# ---------------------------------------------------------------- the run


def _neutral_text(text: str) -> str:
    """Undo the apostrophe our exports put before formula-like text."""
    return text[1:] if text.startswith(_FORMULA_PREFIX) else text


#: ``(customer data, errors, match keys, content hash)`` of one file row.
_Shaped = tuple[dict[str, Any], dict[str, str], list[tuple[str, str]], str | None]
#: Rows shaped in worker processes when the file's first chunk has this many rows.
PARALLEL_SHAPING_FROM = 20_000
_SHAPE_PART = 5_000
_SHAPE_ARGS: dict[str, Any] = {}


def _set_shape_args(args: dict[str, Any]) -> None:
    """What every row of one import is shaped with (a worker's initializer)."""
    _SHAPE_ARGS.clear()
    _SHAPE_ARGS.update(args)


def _shape_part(part: Sequence[Sequence[str]]) -> list[_Shaped]:
    """Clean and shape rows of a chunk: ``(customer data, errors, match keys, content
    hash)`` each; the keys are ``(kind, value)`` with e-mails as written (the caller folds
    their case), the hash is that of the row's text (``None`` for an invalid row). An ISO
    birthday is a ``date`` in the data, which the validator takes as it is."""
    with gc_paused():
        return _shape(part)


def _shape(part: Sequence[Sequence[str]]) -> list[_Shaped]:
    columns = _SHAPE_ARGS["columns"]
    owners = _SHAPE_ARGS["owners"]
    default_region = _SHAPE_ARGS["region"]
    key_kinds = _SHAPE_ARGS["keys"]
    out: list[_Shaped] = []
    for original in part:
        text = "\x1f".join(original)
        values: Sequence[str] = original
        if "'" in text:  # only then can a cell hold an export's apostrophe
            values = [_neutral_text(v) for v in original]
            text = "\x1f".join(values)
        raw = cleaning.row_values(values, columns)
        data, errors = cleaning.to_customer_data(raw, owners=owners)
        keys: list[tuple[str, str]] = []
        content = None
        if not errors:
            region = str(data.get("country") or default_region).upper()
            for kind in key_kinds:
                value = cleaning.match_value(kind, data, region=region, raw=raw)
                if value is not None:
                    keys.append((kind, value))
            if not keys:
                mapped = "\x1f".join(values[i] for i, _ in columns if i < len(values))
                keys.append(("row", hashlib.sha256(mapped.encode()).hexdigest()))
            content = hashlib.sha256(text.encode()).hexdigest()
            data = _with_dates(data)
        out.append((data, errors, keys, content))
    return out


def _with_dates(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with an ISO birthday (as ``cleaning.clean_date`` writes dates) as a ``date``,
    which the validator takes as it is (its ``strptime`` was a quarter of its work)."""
    text = data.get("birthday")
    birthday = cleaning.iso_date(text) if isinstance(text, str) else None
    return data if birthday is None else {**data, "birthday": birthday}


def _shape_rows(rows: Sequence[Sequence[str]], pool: ProcessPoolExecutor | None) -> list[_Shaped]:
    """``_shape_part`` over a chunk of the file, in parts, by ``pool``'s workers when there
    is one (cleaning and phone parsing are most of an import's work); results keep file
    order. Without a pool, ``_SHAPE_ARGS`` must be set (``_set_shape_args``)."""
    parts = [rows[i : i + _SHAPE_PART] for i in range(0, len(rows), _SHAPE_PART)]
    if pool is None:
        return [item for part in parts for item in _shape_part(part)]
    return [item for part in pool.map(_shape_part, parts) for item in part]


@dataclass
class _Row:
    """One customer's input: a file row, or several rows sharing a key, merged.
    ``originals`` are the file rows as read, ``content`` the hash of a single row's text."""

    lines: list[int]
    originals: list[Sequence[str]]
    data: dict[str, Any]
    keys: list[tuple[str, str]] = field(default_factory=list)
    content: str | None = None

    @property
    def line(self) -> int:
        return self.lines[0]

    @property
    def values(self) -> list[list[str]]:
        """The text of each line as imported (export apostrophes undone)."""
        return [[_neutral_text(v) for v in original] for original in self.originals]

    @property
    def digest(self) -> str | None:
        return next((v for k, v in self.keys if k == "row"), None)

    @property
    def fingerprint(self) -> str:
        """What the batch row records: the match digest of a key-less row, otherwise a hash
        of the file content of every line merged into this input. A later import of the same
        content into the same, since unchanged customer changes nothing (see ``_update``)."""
        digest = self.digest
        if digest is not None:
            return digest
        if len(self.originals) == 1 and self.content is not None:
            return self.content
        text = "\x1e".join("\x1f".join(v) for v in self.values)
        return hashlib.sha256(text.encode()).hexdigest()


def _merge_data(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Rows of one customer as one input: later values win, phones/e-mails/tags add up."""
    out: dict[str, Any] = {}
    for data in parts:
        for key, value in data.items():
            if key in ("phones", "emails", "tags"):
                items = out.setdefault(key, [])
                items.extend(v for v in value if v not in items)
            elif key == "custom":
                out.setdefault("custom", {}).update(value)
            else:
                out[key] = value
    return out


def _merge_groups(rows: list[_Row]) -> list[_Row]:
    """Rows of a chunk sharing any key (id, external id, e-mail, phone, or identical content)
    become one, so a file naming a person twice makes one record, and re-importing it again
    compares that same merged input (idempotent)."""
    parent = list(range(len(rows)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        for key in row.keys:
            if key in owner:
                a, b = root(owner[key]), root(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                owner[key] = i
    groups: dict[int, list[_Row]] = defaultdict(list)
    for i, row in enumerate(rows):
        groups[root(i)].append(row)
    out = []
    for members in groups.values():
        if len(members) == 1:
            out.append(members[0])
            continue
        keys: list[tuple[str, str]] = []
        for member in members:
            keys.extend(k for k in member.keys if k not in keys)
        out.append(
            _Row(
                [n for m in members for n in m.lines],
                [o for m in members for o in m.originals],
                _merge_data([m.data for m in members]),
                keys,
            )
        )
    return out


class _Run:
    def __init__(
        self,
        session: Session,
        actor: Actor,
        batch: ImportBatch,
        report: ImportReport,
        options: ImportOptions,
        columns: list[tuple[int, str]],
        header: list[str],
    ) -> None:
        self.session = session
        self.actor = actor
        self.batch = batch
        self.report = report
        self.options = options
        self.columns = columns
        self.keys = report.key_columns
        self.region = get_settings().default_region
        self.validator = _Validator(session)
        self.owners = {
            u.casefold(): i
            for u, i in session.execute(select(User.username, User.id).where(User.active))
        }
        self.source = f"import:{batch.id}"
        self._rejects = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=8 << 20, mode="w+", encoding="utf-8", newline=""
        )
        self.report._rejects = self._rejects
        self._reject_writer = csv.writer(self._rejects)
        self._reject_writer.writerow([*header, "line", "error"])
        self.created_rows: list[tuple[int, dict[str, Any]]] | None = []
        # ids of the created customers while they are few (the duplicate check's); past
        # that only their count, so that memory does not grow with the file
        self.created_ids: list[int] | None = []
        self.created_count = 0
        self.email_forms: dict[str, set[str]] = defaultdict(set)
        self.deferred = _DeferredIndexes(session, rolled_back=report.dry_run)
        self.recorded_unchanged = False  # ``unchanged`` batch rows written (see ``_update``)

    # -- bookkeeping

    def _invalid(self, row: _Row, errors: Mapping[str, str]) -> None:
        text = "; ".join(f"{k}: {v}" for k, v in errors.items())
        if len(row.lines) > 1:
            text += f" (lines {', '.join(str(n) for n in row.lines)} share a key and were merged)"
        for line, values in zip(row.lines, row.values, strict=True):
            self.report.invalid += 1
            for name, message in errors.items():
                if len(self.report.issues) < MAX_ISSUES:
                    self.report.issues.append(RowIssue(line, name, message))
            self._reject_writer.writerow([*values, line, text])

    def _done(self, row: _Row, outcome: str) -> None:
        """Count a created, updated or unchanged row; the other lines merged into it."""
        setattr(self.report, outcome, getattr(self.report, outcome) + 1)
        self.report.merged += len(row.lines) - 1

    def _skip(self, row: _Row, name: str, message: str) -> None:
        self.report.skipped += 1
        self.report.merged += len(row.lines) - 1
        if len(self.report.skips) < MAX_ISSUES:
            self.report.skips.append(RowIssue(row.line, name, message))

    # -- one chunk

    def shaped_chunks(
        self, first: Chunk, rest: Iterator[Chunk]
    ) -> Generator[tuple[Chunk, list[_Shaped]], None, None]:
        """The file's chunks with their rows shaped. The next chunk is read and shaped in a
        thread (its cleaning in worker processes) while the caller imports the current one,
        so that cleaning and writing overlap; at most two chunks are in memory. Close the
        generator before the file (``contextlib.closing``): that waits for the read ahead.

        The workers are forked once, here, while this process is still small, and get each
        part of the rows pickled: forking anew for each chunk, once this process holds a
        large page cache and the file's earlier work, cost it a copy of every page it wrote
        while the workers lived (copy on write; at 1,000,000 rows its system time was 30.9 s
        against 26.2 s forked once, the import 190.4 s against 185.6 s, one run each)."""
        args = {
            "columns": list(self.columns),
            "owners": dict(self.owners),
            "region": self.region,
            "keys": list(self.keys),
        }
        _set_shape_args(args)
        workers = min(4, os.cpu_count() or 1)
        pool = None
        # on exit the read ahead ends first, then the workers, then the arguments go
        with ExitStack() as stack:
            stack.callback(_SHAPE_ARGS.clear)
            if workers > 1 and len(first.rows) >= PARALLEL_SHAPING_FROM:
                pool = stack.enter_context(
                    ProcessPoolExecutor(
                        max_workers=workers,
                        mp_context=multiprocessing.get_context("fork"),
                        initializer=_set_shape_args,
                        initargs=(args,),
                    )
                )

            def shape(chunk: Chunk) -> tuple[Chunk, list[_Shaped]]:
                return chunk, _shape_rows(chunk.rows, pool)

            def read_next() -> tuple[Chunk, list[_Shaped]] | None:
                chunk = next(rest, None)
                return None if chunk is None else shape(chunk)

            ahead = stack.enter_context(
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-ahead")
            )
            pending: Future[tuple[Chunk, list[_Shaped]] | None] = ahead.submit(shape, first)
            del first
            while (item := pending.result()) is not None:
                pending = ahead.submit(read_next)
                yield item
                del item

    def process(self, chunk: Chunk, shaped: Sequence[_Shaped]) -> None:
        rows: list[_Row] = []
        for (data, errors, keys, content), original, line in zip(
            shaped, chunk.rows, chunk.line_numbers, strict=True
        ):
            self.report.total += 1
            row = _Row([line], [original], data, content=content)
            if errors:
                self._invalid(row, errors)
                continue
            for kind, value in keys:
                if kind == "email":
                    self.email_forms[value.lower()].add(value)
                    value = value.lower()
                row.keys.append((kind, value))
            rows.append(row)
        self._match(_merge_groups(rows))
        self.email_forms.clear()

    def _match(self, rows: list[_Row]) -> None:
        matches = self._lookup([k for row in rows for k in row.keys])
        mode = self.options.mode
        creates: list[_Row] = []
        updates: list[tuple[_Row, int]] = []
        matched = []
        for row in rows:
            ids = sorted({cid for k in row.keys for cid in matches.get(k, ())})
            if row.keys[0][0] == "row" and ids:
                ids = ids[:1]  # the same key-less row imported before
            matched.append((row, ids))
        self._imported_into_one(matched)
        for row, ids in matched:
            kind = row.keys[0][0]
            field_name = "key" if kind == "row" else kind
            if len(ids) > 1:
                shown = ", ".join(str(i) for i in ids[:5])
                self._invalid(
                    row, {field_name: f"matches {len(ids)} customers ({shown}); use another key"}
                )
            elif ids and mode == "create":
                self._skip(row, field_name, f"exists already as customer {ids[0]}")
            elif ids:
                updates.append((row, ids[0]))
            elif kind == "id":
                self._invalid(row, {"id": f"no customer {row.keys[0][1]} to update"})
            elif mode == "update":
                label = _LABELS.get(kind)
                why = f"no customer has this {label}" if label else "the row has no key to match"
                self._skip(row, field_name, why)
            else:
                creates.append(row)
        if creates:
            self._create(creates)
        if updates:
            self._update(updates)

    def _imported_into_one(self, matched: list[tuple[_Row, list[int]]]) -> None:
        """A row matching several customers stays with the one it was imported into when
        that one is as the last import left it (``matched`` is changed in place): a person
        whose keys are spread over the file's chunks can gain, through a later row, a key
        that another record already had (matching uses primary phones and e-mails), and
        re-importing the file must not refuse the earlier row then."""
        several = [i for i, (_, ids) in enumerate(matched) if len(ids) > 1]
        if not several:
            return
        ids = sorted({cid for i in several for cid in matched[i][1]})
        imported = self._imported_content(ids)
        versions = self._versions(ids)
        for i in several:
            row, candidates = matched[i]
            into = [
                cid
                for cid in candidates
                if cid in imported
                and row.fingerprint in imported[cid][0]
                and versions.get(cid) == imported[cid][1]
            ]
            if len(into) == 1:
                matched[i] = (row, into)

    def _versions(self, ids: Sequence[int]) -> dict[int, int]:
        """``{customer id: version}`` of ``ids`` (sorted)."""
        versions: dict[int, int] = {}
        conn = self.session.connection()
        by_id = select(Customer.id, Customer.version).where(Customer.id.in_(one_of(conn, "ids")))
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            part = ids[start : start + _LOOKUP_CHUNK]
            versions.update(
                {cid: version for cid, version in conn.execute(by_id, {"ids": listed(conn, part)})}
            )
        return versions

    def _lookup(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], set[int]]:
        """``{key: customer ids}`` of live customers (visible to the actor) having the key.

        Each kind's statement is built once with a list parameter (``db.one_of``) and run
        through the connection for each part of the values (building the ``IN`` list of
        literals and ORM rows cost more than SQLite's lookups)."""
        found: dict[tuple[str, str], set[int]] = defaultdict(set)
        by_kind: dict[str, set[str]] = defaultdict(set)
        for kind, value in keys:
            by_kind[kind].add(value)
        visible = visible_customers(self.actor)
        self.session.flush()
        conn = self.session.connection()
        values: Any = one_of(conn, "values")
        for kind, wanted_set in by_kind.items():
            wanted = sorted(wanted_set)
            stmt: Any
            if kind == "email":
                # keys are the first (primary) e-mail and phone, so is the match
                # found through the indexed e-mail table (customers.email has no index),
                # matched on the primary address as before
                stmt = (
                    select(CustomerEmail.email, CustomerEmail.customer_id)
                    .join(Customer, Customer.id == CustomerEmail.customer_id)
                    .where(
                        CustomerEmail.email.in_(values),
                        Customer.email == CustomerEmail.email,
                        visible,
                    )
                )
            elif kind == "phone":
                stmt = (
                    select(CustomerPhone.e164, CustomerPhone.customer_id)
                    .join(Customer, Customer.id == CustomerPhone.customer_id)
                    .where(
                        CustomerPhone.e164.in_(values),
                        Customer.phone == CustomerPhone.e164,
                        visible,
                    )
                )
            elif kind == "row":
                stmt = (
                    select(ImportBatchRow.row_key, ImportBatchRow.customer_id)
                    .join(ImportBatch, ImportBatch.id == ImportBatchRow.batch_id)
                    .join(Customer, Customer.id == ImportBatchRow.customer_id)
                    .where(
                        ImportBatchRow.row_key.in_(values),
                        ImportBatch.status == "committed",
                        visible,
                    )
                )
            elif kind == "id":
                stmt = select(Customer.id, Customer.id).where(Customer.id.in_(values), visible)
            else:
                stmt = select(Customer.external_id, Customer.id).where(
                    Customer.external_id.in_(values), visible
                )
            for start in range(0, len(wanted), _LOOKUP_CHUNK):
                part: list[Any] = wanted[start : start + _LOOKUP_CHUNK]
                if kind == "email":
                    part = sorted({v for k in part for v in self.email_forms[k]} | set(part))
                    for value, cid in conn.execute(stmt, {"values": listed(conn, part)}):
                        found[(kind, value.lower())].add(cid)
                    continue
                if kind == "id":
                    part = [int(v) for v in part if len(v) < 18]
                for value, cid in conn.execute(stmt, {"values": listed(conn, part)}):
                    found[(kind, str(value))].add(cid)
        return found

    def _create(self, creates: list[_Row]) -> None:
        result = bulk_create_customers(
            self.session,
            actor=self.actor,
            rows=[row.data for row in creates],
            source=self.source,
            skip_invalid=True,
            idle=self.deferred.fill_some,
        )
        self.deferred.written(result.ids)
        for error in result.errors:
            self._invalid(creates[error.row], error.errors)
        batch_rows = []
        for cid, index in zip(result.ids, result.rows, strict=True):
            row = creates[index]
            self._done(row, "created")
            batch_rows.append(
                {
                    "batch_id": self.batch.id,
                    "row_number": row.line,
                    "action": "created",
                    "customer_id": cid,
                    "version_after": 1,
                    "prior": None,
                    "row_digest": row.fingerprint,
                    "row_key": row.digest,
                }
            )
            self.created_count += 1
            if self.created_rows is not None:
                if len(self.created_rows) >= DEDUPE_MAX_ROWS:
                    self.created_rows = self.created_ids = None
                else:
                    self.created_rows.append((row.line, {"id": cid, **row.data}))
                    assert self.created_ids is not None
                    self.created_ids.append(cid)
        insert_many(self.session.connection(), _BATCH_ROWS, batch_rows)

    def _update(self, updates: list[tuple[_Row, int]]) -> None:
        ids = sorted({cid for _, cid in updates})
        imported = self._imported_content(ids)
        versions = self._versions(ids)
        rest: list[tuple[_Row, int]] = []
        for row, cid in updates:
            fingerprints, version_after = imported.get(cid, ((), None))
            if versions.get(cid) == version_after and row.fingerprint in fingerprints:
                # this very content was imported into this customer, and nobody changed the
                # record since the last import did: the file has nothing new to say (also
                # when other rows of the file, in other chunks, updated it after this one)
                self._done(row, "unchanged")
            else:
                rest.append((row, cid))
        ids = sorted({cid for _, cid in rest})
        loaded: dict[int, Customer] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            stmt = select(Customer).where(Customer.id.in_(ids[start : start + _LOOKUP_CHUNK]))
            loaded.update({c.id: c for c in self.session.scalars(stmt)})
        changed: list[tuple[_Row, Customer, dict[str, Any], dict[str, list[Any]]]] = []
        kept: list[tuple[_Row, Customer]] = []
        with _search_index_after(self.session) as search_before:
            self._apply_updates(rest, loaded, changed, kept, search_before)
        # A row that changes nothing is recorded as well: when a later row of the file
        # changes that customer (also one that was there before the import), a re-import
        # knows that this row's content is in it (see the check above). Those of customers
        # the import changes nowhere go again at its end (``drop_idle_rows``).
        unchanged = [
            {
                "batch_id": self.batch.id,
                "row_number": row.line,
                "action": "unchanged",
                "customer_id": customer.id,
                "version_after": customer.version,
                "prior": None,
                "row_digest": row.fingerprint,
                "row_key": row.digest,
            }
            for row, customer in kept
        ]
        if unchanged:
            self.session.execute(insert(ImportBatchRow), unchanged)
            self.recorded_unchanged = True
        if not changed:
            self._forget(loaded.values())
            return
        now = utcnow()
        self.session.execute(
            insert(AuditEntry),
            [
                {
                    "at": now,
                    "actor_id": self.actor.id,
                    "actor_name": self.actor.username,
                    "action": "customer.update",
                    "entity_type": "customer",
                    "entity_id": customer.id,
                    "changes": diff,
                    "source": self.source,
                }
                for _, customer, _, diff in changed
            ],
        )
        self.session.execute(
            insert(ImportBatchRow),
            [
                {
                    "batch_id": self.batch.id,
                    "row_number": row.line,
                    "action": "updated",
                    "customer_id": customer.id,
                    "version_after": customer.version,
                    "prior": audit.jsonable(prior),
                    "row_digest": row.fingerprint,
                    "row_key": row.digest,
                }
                for row, customer, prior, _ in changed
            ],
        )
        for row, *_ in changed:
            self._done(row, "updated")
        self._forget(loaded.values())

    def drop_idle_rows(self) -> None:
        """Forget the ``unchanged`` rows of customers this import neither created nor
        changed: only the import's changes are its own (a revert would otherwise refuse when
        such a customer is edited later, its version being checked)."""
        if not self.recorded_unchanged:
            return
        rows = ImportBatchRow
        touched = select(rows.customer_id).where(
            rows.batch_id == self.batch.id, rows.action.in_(("created", "updated"))
        )
        self.session.execute(
            delete(rows).where(
                rows.batch_id == self.batch.id,
                rows.action == "unchanged",
                rows.customer_id.not_in(touched),
            )
        )

    def _apply_updates(
        self,
        rest: list[tuple[_Row, int]],
        loaded: Mapping[int, Customer],
        changed: list[tuple[_Row, Customer, dict[str, Any], dict[str, list[Any]]]],
        kept: list[tuple[_Row, Customer]],
        search_before: dict[int, str | None],
    ) -> None:
        """Validate and apply the updates (flushed); ``changed`` gets those that changed a
        record, ``kept`` those that changed nothing, ``search_before`` the search text before
        of the changed records that are in the search index.

        The session does not flush before each record's tag look-up (one flush per record
        was most of an update's time): it flushes before a record it changed already (so
        each change stays one new version) and before tags it has not yet seen stored (so
        a tag made for an earlier record is found, not made twice)."""
        stored_tags: set[str] = set()
        pending_tags: set[str] = set()
        unflushed: set[int] = set()
        with self.session.no_autoflush:
            for row, cid in rest:
                self._apply_update(
                    row,
                    loaded[cid],
                    changed,
                    kept,
                    search_before,
                    (stored_tags, pending_tags, unflushed),
                )
        self.session.flush()

    def _apply_update(
        self,
        row: _Row,
        customer: Customer,
        changed: list[tuple[_Row, Customer, dict[str, Any], dict[str, list[Any]]]],
        kept: list[tuple[_Row, Customer]],
        search_before: dict[int, str | None],
        flushing: tuple[set[str], set[str], set[int]],
    ) -> None:
        stored_tags, pending_tags, unflushed = flushing
        cid = customer.id
        if customer.anonymised_at is not None:
            self._skip(row, "customer", f"customer {cid} was anonymised (erased)")
            return
        if customer.archived_at is not None:
            self._skip(row, "customer", f"customer {cid} is archived; restore it first")
            return
        if cid in unflushed:
            self._flush(flushing)  # the record as stored (defaults filled in) is compared
        merged = _merge_lists(customer, row.data)
        try:
            if "owner_id" in merged and merged["owner_id"] != customer.owner_id:
                _check_owner_change(self.actor, self.session, merged["owner_id"])
            clean = self.validator.clean(merged, existing=customer)
        except InvalidInput as exc:
            self._invalid(row, exc.errors or {exc.field or "row": exc.message})
            return
        prior = _prior(customer, clean)
        if not prior:
            self._done(row, "unchanged")
            kept.append((row, customer))
            return
        if not stored_tags.issuperset(clean.tags or ()):
            self._flush(flushing)
        before = _snapshot(customer)
        prior["version_before"] = customer.version
        if self.deferred.indexed(customer.id):
            search_before.setdefault(customer.id, customer.search_text)
        _apply(self.session, customer, clean)
        customer.updated_at = utcnow()  # an UPDATE (and a new version) even for tags only
        changed.append((row, customer, prior, audit.diff(before, _snapshot(customer))))
        pending_tags.update(clean.tags or ())
        unflushed.add(cid)

    def _flush(self, flushing: tuple[set[str], set[str], set[int]]) -> None:
        stored_tags, pending_tags, unflushed = flushing
        self.session.flush()
        stored_tags |= pending_tags
        pending_tags.clear()
        unflushed.clear()

    def _imported_content(self, ids: Sequence[int]) -> dict[int, tuple[set[str], int]]:
        """``{customer id: (fingerprints of committed import rows, version the last import
        left)}``."""
        out: dict[int, tuple[set[str], int]] = {}
        conn = self.session.connection()
        stmt = (
            select(
                ImportBatchRow.customer_id,
                ImportBatchRow.row_digest,
                ImportBatchRow.version_after,
            )
            .join(ImportBatch, ImportBatch.id == ImportBatchRow.batch_id)
            .where(
                ImportBatchRow.customer_id.in_(one_of(conn, "ids")),
                ImportBatch.status == "committed",
                ImportBatch.id != self.batch.id,  # earlier imports, not this one's rows
            )
        )
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            part = ids[start : start + _LOOKUP_CHUNK]
            for cid, fingerprint, version in conn.execute(stmt, {"ids": listed(conn, part)}):
                seen, last = out.get(cid, (set(), 0))
                if fingerprint:
                    seen.add(fingerprint)
                out[cid] = (seen, max(last, version or 0))
        return out

    def _forget(self, customers: Iterable[Customer]) -> None:
        """Keep the session's memory flat over a big file."""
        for customer in customers:
            if customer in self.session:
                self.session.expunge(customer)


#: Tables whose secondary indexes a big import builds once at its end (SQLite), and the
#: columns of those it keeps up to date because the matching reads them between chunks.
_DEFERRED_TABLES = (
    "customers",
    "customer_phones",
    "customer_emails",
    "customer_tags",
    "audit_entries",
)
_LOOKUP_COLUMNS = {
    "customers": frozenset({"external_id"}),
    "customer_phones": frozenset({"e164", "customer_id"}),
    "customer_emails": frozenset({"email", "customer_id"}),
}
#: A table's indexes are deferred once the rows read reach this share of its rows, and
#: at least ``DEFER_FROM_ROWS`` rows were read (a small import keeps them row by row).
DEFER_FROM_SHARE = 0.5
DEFER_FROM_ROWS = 20_000
#: The search index of the customers created from this many rows read on is filled in one
#: statement at the import's end (the customers table's indexes deferred too). Before, each
#: ``bulk_create_customers`` call fills it beside its worker processes, in 5,000-row
#: statements: cheaper while the index is small (100,000 rows: 12.5-13.5 s against
#: 13.7-14.1 s for one fill at the end), dearer once it is big, as its segments pile up and
#: merge (1,000,000 rows: 204.6 s against 190.6 s, one run each).
DEFER_SEARCH_FROM_ROWS = 250_000
#: Customers indexed per statement while the import waits for its workers
#: (``_DeferredIndexes.fill_some``).
IDLE_FILL_ROWS = 5_000


class _DeferredIndexes:
    """On SQLite, for an import that is big against the tables it fills: their secondary
    indexes are dropped and built once at the end, and for a big import, the search index
    of the customers created from ``DEFER_SEARCH_FROM_ROWS`` on is filled in one statement at
    the end (``bulk_create_customers`` fills it call by call, chunk by chunk). The indexes
    the matching reads between chunks (phones, e-mails, external ids, each customer's
    phones and e-mails) stay. All inside the caller's
    transaction, which holds the write lock: a rollback restores every index as it was."""

    def __init__(self, session: Session, *, rolled_back: bool = False) -> None:
        self.session = session
        # a preview's savepoint is rolled back, which brings the indexes back by itself
        self.rolled_back = rolled_back
        self.stack = ExitStack()
        self.search_stack = ExitStack()
        self.set_aside: list[SetAside] = []
        self.waiting: list[str] = []
        if session.connection().dialect.name == "sqlite":
            self.waiting = list(_DEFERRED_TABLES)
        self.search_waiting = bool(self.waiting)  # the search index is not deferred yet
        self.search_from: int | None = None  # customers from this id wait for the search index
        self.written_to = 0  # the highest id of a customer this import finished writing
        self.fill_search: Any = None

    def indexed(self, customer_id: int) -> bool:
        """Whether the customer is in the search index now (not created since deferring)."""
        return self.search_from is None or customer_id < self.search_from

    def consider(self, rows_read: int) -> None:
        """Defer the indexes of the tables holding no more than ``rows_read`` (the rows read
        so far, the next chunk's included) divided by ``DEFER_FROM_SHARE``: rebuilding them
        costs less than keeping them row by row. The highest row id stands for the count (one
        look-up, not a scan)."""
        if rows_read < DEFER_FROM_ROWS:
            return
        conn = self.session.connection()
        for table in list(self.waiting):
            if highest_rowid(conn, table) * DEFER_FROM_SHARE > rows_read:
                continue
            self.waiting.remove(table)
            keep = _LOOKUP_COLUMNS.get(table, frozenset())
            indexes = [
                (name, sql)
                for name, sql in secondary_indexes(conn, table)
                if not keep & set(conn.exec_driver_sql(f'PRAGMA index_info("{name}")').scalars(2))
            ]
            self.set_aside.append(self.stack.enter_context(indexes_set_aside(conn, indexes)))
        if (
            self.search_waiting
            and "customers" not in self.waiting
            and rows_read >= DEFER_SEARCH_FROM_ROWS
        ):
            self.search_waiting = False
            self.fill_search = self.search_stack.enter_context(batched_search_index(self.session))
            self.search_from = highest_rowid(conn, "customers") + 1

    def written(self, ids: Sequence[int]) -> None:
        """Customers ``ids`` are written (a ``bulk_create_customers`` call returned)."""
        if ids:
            self.written_to = max(self.written_to, max(ids))

    def fill_some(self) -> bool:
        """Index the search text of the next ``IDLE_FILL_ROWS`` customers waiting for it and
        written; false when there are none (or for a preview, whose rollback undoes it). It
        is called while the import waits for its worker processes: the end's one fill is
        that much shorter, and each call adds to the index in ascending ids, as the end's."""
        if self.rolled_back or self.search_from is None or self.written_to < self.search_from:
            return False
        self._fill_to(min(self.written_to, self.search_from + IDLE_FILL_ROWS - 1))
        return True

    def _fill_to(self, top: int) -> None:
        """Index the customers from ``search_from`` to ``top`` (ascending ids)."""
        assert self.search_from is not None
        if top >= self.search_from:
            self.fill_search([self.search_from, top])
            self.search_from = top + 1

    def close(self) -> None:
        """Build the indexes, then fill the search index (also after an error), except for a
        preview: its rollback undoes both the rows and the dropped indexes, so the search
        index is not filled and the indexes are not built (at 1,000,000 rows, 40 of its
        180 s).

        The builds come first: they run with a small page cache, which writes out the pages
        the chunks left in the cache, and the fill then works in a cache of its own pages
        (1,000,000 rows: the fill took 22 s after the builds, 25-30 s before them, in four
        runs)."""
        with self.search_stack:
            with self.stack:
                if self.rolled_back:
                    for state in self.set_aside:
                        state.rolled_back = True
                    self.search_from = None
            if self.search_from is not None:
                self._fill_to(highest_rowid(self.session.connection(), "customers"))
                self.search_from = None


@contextmanager
def _search_index_after(session: Session) -> Iterator[dict[int, str | None]]:
    """On SQLite, keep the search index of updated customers in two statements at the end
    instead of through the update trigger: each statement that writes to the FTS5 table
    writes its pending terms out as a new segment (about 20 ms each at 100,000 customers).

    The caller fills ``{customer id: search text before}``; records whose search text
    changed get the trigger's delete-and-insert. The trigger is dropped and re-created inside
    the caller's transaction, which holds SQLite's write lock: no other writer sees it away.
    """
    before: dict[int, str | None] = {}
    conn = session.connection()
    with trigger_set_aside(conn, "customer_fts_au") as aside:
        try:
            yield before
        finally:
            if aside and before:
                # ascending ids: FTS5 writes its pending terms out whenever a row id goes
                # back (about 3 ms a row in file order)
                payload = json.dumps(sorted(before.items()), ensure_ascii=False)
                # CROSS JOIN: the payload is walked in its order, each id looked up
                changed = (
                    "FROM json_each(:payload) AS j CROSS JOIN customers AS c "
                    "ON c.id = json_extract(j.value, '$[0]') "
                    "WHERE c.search_text IS NOT json_extract(j.value, '$[1]')"
                )
                conn.execute(
                    text(
                        "INSERT INTO customer_fts(customer_fts, rowid, search_text) "
                        f"SELECT 'delete', c.id, json_extract(j.value, '$[1]') {changed}"
                    ),
                    {"payload": payload},
                )
                conn.execute(
                    text(
                        "INSERT INTO customer_fts(rowid, search_text) "
                        f"SELECT c.id, c.search_text {changed}"
                    ),
                    {"payload": payload},
                )


def _snapshot(customer: Customer) -> dict[str, Any]:
    from crm_core.customers import _snapshot as snap

    return snap(customer)


def _merge_lists(customer: Customer, data: Mapping[str, Any]) -> dict[str, Any]:
    """Phones, e-mails and tags of the file added after the stored ones (never replacing)."""
    out = dict(data)
    if "phones" in out:
        out["phones"] = [p.raw for p in customer.phones] + list(out["phones"])
    if "emails" in out:
        stored = [e.email for e in customer.emails]
        known = {e.lower() for e in stored}
        out["emails"] = stored + [e for e in out["emails"] if e.strip().lower() not in known]
    if "tags" in out:
        out["tags"] = [t.name for t in customer.tags] + list(out["tags"])
    return out


def _prior(customer: Customer, clean: CleanCustomer) -> dict[str, Any]:
    """The stored values the clean input would change (empty: nothing changes)."""
    prior: dict[str, Any] = {}
    columns = {
        k: getattr(customer, k) for k, v in clean.columns.items() if getattr(customer, k) != v
    }
    if columns:
        prior["columns"] = columns
        if "owner_id" in columns:
            columns["team_id"] = customer.team_id
    if clean.phones is not None and [p[0] for p in clean.phones] != [
        p.e164 for p in customer.phones
    ]:
        prior["phones"] = [[p.e164, p.raw, p.label] for p in customer.phones]
    if clean.emails is not None and clean.emails != [e.email for e in customer.emails]:
        prior["emails"] = [[e.email, e.label] for e in customer.emails]
    if clean.tags is not None and clean.tags != [t.name for t in customer.tags]:
        prior["tags"] = [t.name for t in customer.tags]
    if clean.custom is not None and clean.custom != dict(customer.custom or {}):
        prior["custom"] = dict(customer.custom or {})
    return prior


def _prepare(
    session: Session,
    actor: Actor,
    info: FileInfo,
    header: list[str],
    options: ImportOptions,
    file_name: str,
) -> tuple[dict[str, str], tuple[str, ...]]:
    chosen = options.mapping
    if chosen is None:
        chosen = mapping_mod.guess_mapping(header, session)
    columns = mapping_mod.check_mapping(chosen, header, session)
    keys = mapping_mod.key_targets(options.match_key, columns)
    if options.match_key != "auto" and not keys:
        raise InvalidInput(
            f"no column is mapped to '{options.match_key}', the match key", field="match_key"
        )
    if not keys and options.mode == "update":
        raise InvalidInput(
            "map an id, external id, e-mail or phone column to match the customers to update",
            field="match_key",
        )
    return columns, keys


def run_import(
    session: Session,
    *,
    actor: Actor,
    source: Source,
    file_name: str = "",
    options: ImportOptions | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import a CSV or ``.xlsx`` file of customers as one batch (see the module docs).

    ``source`` is the file's bytes, a binary file object, or a path given by an operator;
    ``file_name`` is only a label. With ``dry_run`` nothing stays written (a preview).
    """
    require(actor, "import.run")
    require(actor, "customer.create")
    options = options or ImportOptions()
    options.check()
    started = time.perf_counter()
    spool, info = open_source(source, encoding=options.encoding)
    info.sheet = options.sheet
    with spool:
        chunks = iter_chunks(spool, info, chunk_rows=reading.CHUNK_ROWS)
        first = next(chunks)
        header = first.header
        columns, keys = _prepare(session, actor, info, header, options, file_name)
        report = ImportReport(
            dry_run=dry_run,
            file_name=display_name(file_name),
            file_format=info.format,
            encoding=info.encoding,
            sheet=info.sheet,
            headers=header,
            mapping=columns,
            mode=options.mode,
            match_key=options.match_key,
            key_columns=keys,
        )
        report.already_imported = list(
            session.scalars(
                select(ImportBatch.id).where(
                    ImportBatch.file_sha256 == info.sha256, ImportBatch.status == "committed"
                )
            )
        )
        savepoint = session.begin_nested() if dry_run else None
        try:
            batch = ImportBatch(
                actor_id=actor.id,
                file_name=report.file_name,
                file_sha256=info.sha256,
                file_size=info.size,
                file_format=info.format,
                encoding=info.encoding,
                mode=options.mode,
                match_key=options.match_key,
                all_or_nothing=options.all_or_nothing,
                mapping=dict(columns),
                status="committed",
            )
            session.add(batch)
            session.flush()
            report.batch_id = None if dry_run else batch.id
            index = {h: i for i, h in enumerate(header)}
            run = _Run(
                session,
                actor,
                batch,
                report,
                options,
                [(index[h], t) for h, t in columns.items()],
                header,
            )
            # the collector would walk every row of a chunk again and again while it is read
            # and imported; it runs once between chunks instead (cycles are rare and young)
            with (
                gc_paused(),
                big_write_settings(session.connection()),
                closing(run.deferred),
                closing(run.shaped_chunks(first, chunks)) as shaped_chunks,
            ):
                del first
                for number, (chunk, shaped) in enumerate(shaped_chunks):
                    if number:
                        # now and then a full collection: cycles (ORM objects of updated
                        # records among them) reach the oldest generation, which the
                        # young collections never look at, and would pile up over a big file
                        gc.collect(2 if number % FULL_COLLECT_EVERY == 0 else 1)
                    run.deferred.consider(run.report.total + len(chunk.rows))
                    run.process(chunk, shaped)
                    del chunk, shaped
            run.drop_idle_rows()
            if options.check_duplicates:
                _duplicate_hints(session, run)
            _erased_flags(session, run)
            _finish(session, actor, batch, report)
        finally:
            if savepoint is not None:
                savepoint.rollback()
    if options.all_or_nothing and report.invalid and not dry_run:
        report.batch_id = None
        report.rejected = True
        report.seconds = time.perf_counter() - started
        raise ImportRejected(report)
    report.seconds = time.perf_counter() - started
    return report


def preview_import(
    session: Session,
    *,
    actor: Actor,
    source: Source,
    file_name: str = "",
    options: ImportOptions | None = None,
) -> ImportReport:
    """What ``run_import`` would do, row by row, without keeping anything (a dry run)."""
    return run_import(
        session, actor=actor, source=source, file_name=file_name, options=options, dry_run=True
    )


def _finish(session: Session, actor: Actor, batch: ImportBatch, report: ImportReport) -> None:
    batch.rows_total = report.total
    batch.created_count = report.created
    batch.updated_count = report.updated
    batch.unchanged_count = report.unchanged
    batch.skipped_count = report.skipped
    batch.invalid_count = report.invalid
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="import.commit",
        entity_type="import_batch",
        entity_id=batch.id,
        changes={k: [None, v] for k, v in report.counts().items()},
        detail=f"{report.file_name} ({batch.file_format}, sha256 {batch.file_sha256[:12]})",
        source=f"import:{batch.id}",
    )


def _duplicate_hints(session: Session, run: _Run) -> None:
    """Likely duplicates among the created rows and against existing customers (advisory):
    the same phone or e-mail exactly, then the fuzzy scores of the de-duplication engine."""
    report = run.report
    rows = run.created_rows
    if not run.created_count:
        return
    if rows is None or run.created_ids is None:
        report.duplicates_note = (
            f"more than {DEDUPE_MAX_ROWS} new customers: run the duplicate review after the import"
        )
        return
    created = set(run.created_ids)
    line_of = {r["id"]: line for line, r in rows}
    hints: dict[tuple[int, int], DuplicateHint] = {}

    def add(new: int, other: int, score: float, reason: str) -> None:
        if other in created:
            a, b = sorted((line_of[new], line_of[other]))
            key, hint = (b, -a), DuplicateHint(line=b, other_line=a, score=score, reason=reason)
        else:
            key = (line_of[new], other)
            hint = DuplicateHint(line=line_of[new], customer_id=other, score=score, reason=reason)
        if key not in hints or hints[key].score < score:
            hints[key] = hint

    for new, other, reason in _exact_matches(session, run.actor, sorted(created)):
        add(new, other, 1.0, reason)
    fuzzy: Callable[..., Any] | None = None
    try:
        import pandas as pd

        from crm_core.dedupe import find_duplicates as fuzzy
    except Exception as exc:  # the engine is optional here: a broken one must not stop imports
        report.duplicates_note = f"fuzzy duplicate check unavailable ({type(exc).__name__})"
    if fuzzy is not None:
        file_frame = pd.DataFrame(
            {
                "id": [r["id"] for _, r in rows],
                "name": [r.get("name") for _, r in rows],
                "company": [r.get("company_name") for _, r in rows],
                "email": [(r.get("emails") or [None])[0] for _, r in rows],
                "phone": [(r.get("phones") or [None])[0] for _, r in rows],
                "city": [r.get("city") for _, r in rows],
                "address": [r.get("street") for _, r in rows],
            }
        )
        existing = _existing_candidates(session, run, created)
        frame = (
            pd.concat([file_frame, existing], ignore_index=True) if len(existing) else file_frame
        )
        try:
            pairs = (
                fuzzy(frame.astype(object).where(frame.notna(), None), id_column="id").pairs
                if len(frame) >= 3
                else []
            )
        except Exception as exc:  # advisory only, see above
            report.duplicates_note = f"fuzzy duplicate check failed ({type(exc).__name__}: {exc})"
            pairs = []
        for left, right, score in getattr(pairs, "itertuples", lambda **_: [])(index=False):
            left, right = int(left), int(right)
            if left in created:
                add(left, right, float(score), "similar")
            elif right in created:
                add(right, left, float(score), "similar")
    ordered = sorted(hints.values(), key=lambda h: (-h.score, h.line))
    report.duplicates = ordered[:MAX_ISSUES]


def _erased_flags(session: Session, run: _Run) -> None:
    """Rows that created a customer with a phone or e-mail of a person anonymised earlier
    (keyed fingerprints kept by ``crm_core.privacy``): flagged for a person to decide."""
    from crm_core import privacy
    from crm_core.models import ErasureFingerprint

    if not run.created_count or session.scalar(select(ErasureFingerprint.id).limit(1)) is None:
        return
    for part in _created_ids(session, run.batch.id):
        phones: dict[int, list[str]] = defaultdict(list)
        emails: dict[int, list[str]] = defaultdict(list)
        for cid, value in session.execute(
            select(CustomerPhone.customer_id, CustomerPhone.e164).where(
                CustomerPhone.customer_id.in_(part)
            )
        ):
            phones[cid].append(value)
        for cid, value in session.execute(
            select(CustomerEmail.customer_id, CustomerEmail.email).where(
                CustomerEmail.customer_id.in_(part)
            )
        ):
            emails[cid].append(value)
        every_phone = [v for values in phones.values() for v in values]
        every_email = [v for values in emails.values() for v in values]
        if not privacy.erased_matches(session, phones=every_phone, emails=every_email):
            continue
        lines = dict(
            session.execute(
                select(ImportBatchRow.customer_id, ImportBatchRow.row_number).where(
                    ImportBatchRow.batch_id == run.batch.id,
                    ImportBatchRow.action == "created",
                    ImportBatchRow.customer_id.in_(part),
                )
            ).all()
        )
        for cid in part:
            found = privacy.erased_matches(session, phones=phones[cid], emails=emails[cid])
            for match in found:
                if len(run.report.erased) < MAX_ISSUES:
                    run.report.erased.append(
                        RowIssue(
                            lines.get(cid, 0),
                            match.kind,
                            f"belongs to a person erased on {match.erased_at:%Y-%m-%d}; "
                            "check the consent before keeping this record",
                        )
                    )


def _created_ids(session: Session, batch_id: int) -> Iterator[list[int]]:
    """The ids of the customers the batch created, ascending, ``_LOOKUP_CHUNK`` at a time."""
    rows = ImportBatchRow
    last = 0
    while True:
        part = list(
            session.scalars(
                select(rows.customer_id)
                .where(rows.batch_id == batch_id, rows.action == "created")
                .where(rows.customer_id > last)
                .order_by(rows.customer_id)
                .limit(_LOOKUP_CHUNK)
            )
        )
        if not part:
            return
        yield part
        last = part[-1]


def _exact_matches(
    session: Session, actor: Actor, created: list[int]
) -> Iterator[tuple[int, int, str]]:
    """``(created id, other id, reason)`` for records sharing a phone or an e-mail."""
    visible = visible_customers(actor)
    for model, reason in ((CustomerPhone, "same phone"), (CustomerEmail, "same e-mail")):
        # the two models differ in their key column, which mypy cannot tell from ``model``
        mine: Any = aliased(model)
        other: Any = aliased(model)
        # plain equality keeps the indexes in use (domains are stored lower-cased)
        mine_col = mine.e164 if model is CustomerPhone else mine.email
        other_col = other.e164 if model is CustomerPhone else other.email
        for start in range(0, len(created), _LOOKUP_CHUNK):
            part = created[start : start + _LOOKUP_CHUNK]
            stmt = (
                select(mine.customer_id, other.customer_id)
                .join(other, (mine_col == other_col) & (mine.customer_id != other.customer_id))
                .join(Customer, Customer.id == other.customer_id)
                .where(mine.customer_id.in_(part), visible, Customer.anonymised_at.is_(None))
                .distinct()
            )
            for a, b in session.execute(stmt):
                yield int(a), int(b), reason


def _existing_candidates(session: Session, run: _Run, created: set[int]) -> Any:
    """Existing customers sharing a phone, an e-mail or the exact name with a new row."""
    import pandas as pd

    rows = run.created_rows or []
    phones = {p for _, r in rows for p in (r.get("phones") or [])}
    phones = {e for e in (cleaning.try_normalize_phone(p, region=run.region) for p in phones) if e}
    emails = {e.strip() for _, r in rows for e in (r.get("emails") or [])}
    emails |= {e.lower() for e in emails}
    names = {r["name"] for _, r in rows if r.get("name")}
    ids: set[int] = set()
    visible = visible_customers(run.actor)
    for values, column, owner in (
        (phones, CustomerPhone.e164, CustomerPhone.customer_id),
        (emails, CustomerEmail.email, CustomerEmail.customer_id),
        (names, Customer.name, Customer.id),
    ):
        ordered = sorted(values)
        for start in range(0, len(ordered), _LOOKUP_CHUNK):
            stmt: Any = select(owner).where(column.in_(ordered[start : start + _LOOKUP_CHUNK]))
            ids.update(session.scalars(stmt))
    ids -= created
    if not ids:
        return pd.DataFrame()
    records: list[Any] = []
    ordered_ids = sorted(ids)[:50_000]
    for start in range(0, len(ordered_ids), _LOOKUP_CHUNK):
        stmt = select(
            Customer.id,
            Customer.name,
            Customer.company_name,
            Customer.email,
            Customer.phone,
            Customer.city,
            Customer.street,
        ).where(
            Customer.id.in_(ordered_ids[start : start + _LOOKUP_CHUNK]),
            visible,
            Customer.anonymised_at.is_(None),
        )
        records.extend(session.execute(stmt).all())
    return pd.DataFrame(
        records, columns=["id", "name", "company", "email", "phone", "city", "address"]
    )


# ---------------------------------------------------------------- revert


@dataclass
class RevertResult:
    batch_id: int
    removed: int
    restored: int


def _referencing_tables() -> list[tuple[Any, Any]]:
    """``(table, column)`` of every foreign key to ``customers.id`` outside the customer's own
    phones, e-mails and tags."""
    out = []
    for table in Base.metadata.sorted_tables:
        if table.name in _OWNED:
            continue
        for fk in table.foreign_keys:
            if fk.column.table.name == "customers" and fk.column.name == "id":
                out.append((table, fk.parent))
    return out


def revert_check(session: Session, *, actor: Actor, batch_id: int) -> list[str]:
    """Why the batch cannot be reverted (empty when it can)."""
    require(actor, "import.run")
    batch = session.get(ImportBatch, batch_id)
    if batch is None:
        raise NotFound(f"import batch {batch_id} does not exist")
    if batch.status != "committed":
        return [
            f"import batch {batch_id} was reverted already ({batch.reverted_at:%Y-%m-%d %H:%M})"
        ]
    reasons: list[str] = []
    rows = ImportBatchRow
    expected = (
        select(rows.customer_id, func.max(rows.version_after).label("version"))
        .where(rows.batch_id == batch_id)
        .group_by(rows.customer_id)
        .subquery()
    )
    stmt = (
        select(expected.c.customer_id, expected.c.version, Customer.version)
        .outerjoin(Customer, Customer.id == expected.c.customer_id)
        .where((Customer.id.is_(None)) | (Customer.version != expected.c.version))
        .order_by(expected.c.customer_id)
        .limit(6)
    )
    for cid, left, now in session.execute(stmt):
        if now is None:
            reasons.append(f"customer {cid} no longer exists")
        else:
            reasons.append(
                f"customer {cid} was changed after the import (version {now}, the import left "
                f"version {left})"
            )
    created = select(rows.customer_id).where(rows.batch_id == batch_id, rows.action == "created")
    for table, column in _referencing_tables():
        if table.name == "customers":
            stmt = (
                select(Customer.id, column)
                .where(column.in_(created), Customer.id.not_in(created))
                .limit(3)
            )
            for other, cid in session.execute(stmt):
                reasons.append(f"customer {cid} is referenced by customer {other} made later")
            continue
        stmt = select(column).where(column.in_(created)).distinct().limit(3)
        for cid in session.scalars(stmt):
            what = table.name.replace("_", " ").rstrip("s")
            reasons.append(f"customer {cid} has a {what} added after the import")
    return reasons


def revert_batch(
    session: Session, *, actor: Actor, batch_id: int, reason: str | None = None
) -> RevertResult:
    """Undo an import: created customers are removed, updated ones get their prior values.

    Refused with ``ConflictError`` (naming the records) when later edits make it unsafe: a
    record changed since, or history (interactions, deals …) added to a created record.
    """
    reasons = revert_check(session, actor=actor, batch_id=batch_id)
    if reasons:
        shown = "; ".join(reasons[:5])
        more = " …" if len(reasons) > 5 else ""
        raise ConflictError(f"import batch {batch_id} cannot be reverted: {shown}{more}")
    batch = session.get(ImportBatch, batch_id)
    assert batch is not None
    source = f"import-revert:{batch_id}"
    rows = ImportBatchRow
    created = set(
        session.scalars(
            select(rows.customer_id).where(rows.batch_id == batch_id, rows.action == "created")
        )
    )
    restored = 0
    updated = select(rows.id, rows.customer_id, rows.prior).where(
        rows.batch_id == batch_id, rows.action == "updated"
    )
    for _, cid, prior in session.execute(updated.order_by(rows.id.desc())).all():
        if cid in created:
            continue
        customer = session.get(Customer, cid)
        assert customer is not None
        before = _snapshot(customer)
        _restore(session, customer, prior or {})
        session.flush()
        # the record is again as an earlier batch left it: that batch stays revertible
        session.execute(
            update(ImportBatchRow)
            .where(
                ImportBatchRow.customer_id == cid,
                ImportBatchRow.batch_id != batch_id,
                ImportBatchRow.version_after == (prior or {}).get("version_before", -1),
                ImportBatchRow.batch_id.in_(
                    select(ImportBatch.id).where(ImportBatch.status == "committed")
                ),
            )
            .values(version_after=customer.version)
        )
        audit.record(
            session,
            actor=actor,
            action="customer.update",
            entity_type="customer",
            entity_id=cid,
            changes=audit.diff(before, _snapshot(customer)),
            source=source,
        )
        restored += 1
    ordered = sorted(created)
    now = utcnow()
    for start in range(0, len(ordered), 5000):
        part = ordered[start : start + 5000]
        session.execute(
            update(Customer)
            .where(Customer.id.in_(part))
            .values(company_id=None)
            .execution_options(synchronize_session=False)
        )
    for start in range(0, len(ordered), 5000):
        part = ordered[start : start + 5000]
        names = dict(
            session.execute(select(Customer.id, Customer.name).where(Customer.id.in_(part))).all()
        )
        session.execute(
            insert(AuditEntry),
            [
                {
                    "at": now,
                    "actor_id": actor.id,
                    "actor_name": actor.username,
                    "action": "customer.delete",
                    "entity_type": "customer",
                    "entity_id": cid,
                    "changes": {"name": [names.get(cid), None]},
                    "detail": f"created by import batch {batch_id}, removed by its revert",
                    "source": source,
                }
                for cid in part
            ],
        )
        session.execute(
            delete(Customer)
            .where(Customer.id.in_(part))
            .execution_options(synchronize_session=False)
        )
    session.expire_all()
    batch = session.get(ImportBatch, batch_id)
    assert batch is not None
    batch.status = "reverted"
    batch.reverted_at = now
    batch.reverted_by_id = actor.id
    batch.revert_reason = reason
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="import.revert",
        entity_type="import_batch",
        entity_id=batch_id,
        changes={"removed": [None, len(ordered)], "restored": [None, restored]},
        detail=reason,
        source=source,
    )
    return RevertResult(batch_id=batch_id, removed=len(ordered), restored=restored)


def _restore(session: Session, customer: Customer, prior: Mapping[str, Any]) -> None:
    from datetime import date

    columns = dict(prior.get("columns") or {})
    if isinstance(columns.get("birthday"), str):
        columns["birthday"] = date.fromisoformat(columns["birthday"])
    team = columns.pop("team_id", None)
    phones = prior.get("phones")
    emails = prior.get("emails")
    clean = CleanCustomer(
        columns=columns,
        phones=[(p[0], p[1]) for p in phones] if phones is not None else None,
        emails=[e[0] for e in emails] if emails is not None else None,
        tags=prior.get("tags"),
        custom=prior.get("custom"),
    )
    _apply(session, customer, clean)
    customer.updated_at = utcnow()
    if "owner_id" in columns:
        customer.team_id = team
    if phones is not None:
        for phone, (_, _, label) in zip(customer.phones, phones, strict=True):
            phone.label = label
    if emails is not None:
        for email, (_, label) in zip(customer.emails, emails, strict=True):
            email.label = label


def list_batches(session: Session, *, actor: Actor, limit: int = 50) -> list[ImportBatch]:
    """The latest import batches, newest first."""
    require(actor, "import.run")
    stmt = select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)
    return list(session.scalars(stmt))


def reject_rows(report: ImportReport) -> list[dict[str, str]]:
    """The rejects file as dicts (for a face that shows them)."""
    data = report.rejects_csv().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(data))) if data else []
