"""Engine and sessions for SQLite (default, WAL, foreign keys on) and PostgreSQL.

The caller owns the transaction::

    db = get_database()
    with db.transaction() as session:
        customers.create_customer(session, actor=user, data=...)

Services only ``flush``; they never commit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    event,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeEngine

from crm_core.settings import get_settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)

#: A connection checkpoints the write-ahead log itself only once it holds this many pages
#: (256 MiB): below that the background ``WalCheckpointer`` does it (SQLite's default, 1,000
#: pages, makes the committing connection copy the log into the database before its commit
#: returns: about 1.5 s after a 100,000-customer load).
WAL_AUTOCHECKPOINT_PAGES = 65536

#: After a checkpoint has copied a log, the next writer starts it again from the beginning and
#: cuts the file down to this size (SQLite leaves it at its largest otherwise).
WAL_SIZE_LIMIT = 64 << 20


def json_dumps(value: Any) -> str:
    """JSON for JSON columns: orjson (compact, UTF-8 text rather than ``\\u`` escapes, several
    times faster than ``json.dumps``), falling back to ``json.dumps`` for what orjson refuses
    (integers beyond 64 bits), so every value ``json.dumps`` wrote is still written."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def one_of(
    dialect: Connection | str,
    name: str,
    *,
    array_of: TypeEngine[Any] | None = None,
    values: Iterable[Any] | None = None,
) -> Any:
    """The right side of ``column.in_(...)`` for a list of values (strings or integers) bound
    as the one parameter ``name``, whose value is ``listed(dialect, values)``: one compiled
    statement serves every list. ``dialect`` is a connection or its dialect's name.

    On SQLite, ``SELECT value FROM json_each(:name)`` of one JSON text (SQLAlchemy renders an
    expanding parameter's values one bound name each, which cost more than SQLite's look-ups).
    On PostgreSQL, an expanding parameter; or, with ``array_of`` (the values' type), ``unnest``
    of one array parameter, so that any number of values fits (an expanding one binds each).
    ``values`` binds the list now, for a statement run elsewhere; otherwise pass
    ``{name: listed(dialect, values)}`` when executing."""
    bound: dict[str, Any] = {} if values is None else {"value": listed(dialect, values)}
    if _dialect_name(dialect) == "sqlite":
        return select(literal_column("value")).select_from(func.json_each(bindparam(name, **bound)))
    if array_of is not None:
        return select(func.unnest(bindparam(name, type_=ARRAY(array_of), **bound)))
    return bindparam(name, expanding=True, **bound)


def listed(dialect: Connection | str, values: Iterable[Any]) -> Any:
    """The value of a ``one_of`` parameter: a JSON list on SQLite, a list elsewhere."""
    if _dialect_name(dialect) == "sqlite":
        return json.dumps(list(values), ensure_ascii=False)
    return list(values)


def _dialect_name(dialect: Connection | str) -> str:
    return dialect if isinstance(dialect, str) else dialect.dialect.name


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # a 64 MiB page cache (the default is 2 MiB): bulk writes touch a dozen indexes and a
    # larger cache keeps their pages in memory; pages are only allocated when used
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


class WalCheckpointer:
    """Copies a SQLite database's write-ahead log back into the database file in a
    background thread, so that a commit returns as soon as its pages are in the log (the
    pattern SQLite's documentation suggests for applications that want to keep checkpoints
    off their writers' path).

    Each commit wakes the thread (a few times over the next seconds, as the commit event comes
    just before the commit); once the log holds more than ``threshold`` bytes it runs a
    ``PASSIVE`` checkpoint (never waits for, nor blocks, readers and writers) on a connection
    of its own, and when that copied everything, a ``TRUNCATE`` checkpoint that gives up at
    once if anyone is in the way, so that the log's size says again how much is left to copy.
    The thread starts with the first commit and ends when the engine is disposed. A failed
    checkpoint is harmless (the log keeps the data) and is retried on the next commit.

    A log of ``ceiling`` bytes or more (``WAL_AUTOCHECKPOINT_PAGES``: a load of hundreds of
    thousands of records) is left to the committing connection, which copies it itself right
    after its commit, as SQLite does by default: copied in the background, it would still be
    copying while the first queries after the load run, and each of their page reads looks
    through the whole log's index until the copy is done.
    """

    def __init__(
        self,
        path: str,
        *,
        threshold: int = 4 << 20,
        ceiling: int | None = None,
        idle: float = 30.0,
    ) -> None:
        self.path = path
        self.threshold = threshold
        self._ceiling = ceiling
        self.idle = idle
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def ceiling(self) -> int:
        """Bytes of log from which the committing connection copies the log itself."""
        if self._ceiling is None:
            try:  # the page size is bytes 16-17 of the database header (1 means 65,536)
                with open(self.path, "rb") as f:
                    f.seek(16)
                    size = int.from_bytes(f.read(2), "big")
            except OSError:
                return 4096 * WAL_AUTOCHECKPOINT_PAGES  # no file yet: not cached
            self._ceiling = (65536 if size == 1 else size or 4096) * WAL_AUTOCHECKPOINT_PAGES
        return self._ceiling

    def wake(self, *_: Any) -> None:
        if self._stopped.is_set() or self.log_size() >= self.ceiling:
            return
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="crm-wal-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._wake.set()

    def stop(self, *_: Any) -> None:
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None
        self._stopped.clear()  # a disposed engine may still be used again

    def _run(self) -> None:
        # Linux: a lower priority for this thread only, so that queries go first
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        while not self._stopped.is_set():
            self._wake.wait(timeout=self.idle)
            self._wake.clear()
            # The commit event comes just before the commit itself: try again a few times,
            # further apart, until the log is empty (or small, or a reader keeps it).
            delay = 0.05
            while delay < 4 and not self._stopped.wait(delay):
                try:
                    if self.checkpoint() or self.log_size() < self.threshold:
                        break
                except (sqlite3.Error, OSError) as exc:
                    log.debug("background checkpoint of %s failed: %s", self.path, exc)
                delay *= 2

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.path + "-wal")
        except OSError:
            return 0

    def checkpoint(self) -> bool:
        """One checkpoint if the log is big enough (and not too big: see ``ceiling``); whether
        it was copied and emptied."""
        size = self.log_size()
        if not self.threshold <= size < self.ceiling or not os.path.exists(self.path):
            return False
        conn = sqlite3.connect(self.path, timeout=0, check_same_thread=False)
        try:
            busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if busy or frames != copied:
                return False
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return not busy
        finally:
            conn.close()


def highest_rowid(conn: Connection, table: str) -> int:
    """The highest row id of ``table`` (0 when empty): one index look-up. It bounds the
    row count from above, where ``count(*)`` of a table whose indexes are set aside reads
    every row."""
    return int(conn.execute(text(f'SELECT coalesce(max(rowid), 0) FROM "{table}"')).scalar() or 0)


@contextmanager
def trigger_set_aside(conn: Connection, name: str) -> Iterator[bool]:
    """On SQLite, drop the trigger ``name`` for the block and create it again afterwards
    (also after an error), inside the caller's transaction: SQLite's DDL is transactional and
    the write lock is held throughout, so no other writer sees it away. Yields whether it was
    set aside (``False`` on other databases or when there is no such trigger)."""
    found = None
    if conn.dialect.name == "sqlite":
        query = text("SELECT tbl_name, sql FROM sqlite_master WHERE type = 'trigger' AND name = :n")
        found = conn.execute(query, {"n": name}).first()
    if found is None:
        yield False
        return
    table, trigger_sql = found
    # Python's sqlite3 opens the transaction only at a write (INSERT, UPDATE, DELETE): a DROP
    # before one would be committed at once. A write that changes nothing opens it and takes
    # the write lock first.
    conn.execute(text(f'UPDATE "{table}" SET rowid = rowid WHERE 0'))
    conn.execute(text(f'DROP TRIGGER "{name}"'))
    try:
        yield True
    finally:
        conn.execute(text(trigger_sql))


#: The page cache of a connection during a big write (an import), in KiB: 256 MiB.
BIG_WRITE_CACHE_KIB = 262_144


@contextmanager
def temporary_files_on_disk(conn: Connection) -> Iterator[bool]:
    """On SQLite, the connection's temporary files (sorts, statement journals) on disk for the
    block, not in memory; yields whether the setting took. Every connection keeps them in
    memory (``temp_store=MEMORY``, quick for the sorts of everyday queries).

    ``PRAGMA temp_store`` deletes the connection's temporary tables when it changes: it is
    only changed inside a transaction, where SQLite refuses the change once the connection
    has opened its temporary database (the only place such tables live); then the setting
    stays. It comes back after the block (also after an error)."""
    if conn.dialect.name != "sqlite" or not getattr(
        conn.connection.dbapi_connection, "in_transaction", False
    ):
        yield False
        return
    store = conn.exec_driver_sql("PRAGMA temp_store").scalar()
    try:
        conn.exec_driver_sql("PRAGMA temp_store = FILE")
    except OperationalError:  # "temporary storage cannot be changed ..."
        yield False
        return
    try:
        yield True
    finally:
        with contextlib.suppress(OperationalError):  # then the connection keeps FILE
            conn.exec_driver_sql(f"PRAGMA temp_store = {int(store or 0)}")


@contextmanager
def big_write_settings(conn: Connection, kib: int = BIG_WRITE_CACHE_KIB) -> Iterator[None]:
    """On SQLite, settings for a write of a million rows in one transaction (an import):
    a page cache of ``kib`` KiB and temporary files on disk, the usual ones back afterwards
    (also after an error).

    The cache: the write keeps indexes with random keys (phones, e-mails) up to date; with
    the usual 64 MiB their pages left the cache and were read back from the write-ahead log
    (a million-row import: 205 s against 247 s, its writing process's system time 49 s
    against 78 s). Pages are only allocated when used, so a small write costs nothing more.

    The temporary files: a statement that may fail half-way inside a transaction keeps the
    prior content of every page it changes in a statement journal, which is a temporary
    file. Filling the search index of 780,000 imported customers in one statement changed
    enough pages for its journal to take 260 MB of memory; on disk (the system's file cache)
    the import's peak memory stayed at 1,010-1,020 MB from 200,000 rows on instead of
    rising to 1,275 MB at its end, in the same time."""
    if conn.dialect.name != "sqlite":
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size = -{int(kib)}")
    try:
        with temporary_files_on_disk(conn):
            yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(before or 0)}")


#: Page cache (KiB) while ``index_build_settings`` holds: SQLite's sorter cuts its input
#: into runs of about this size, which its helper threads sort side by side.
INDEX_BUILD_CACHE_KIB = 4096


@contextmanager
def index_build_settings(conn: Connection) -> Iterator[None]:
    """On SQLite, settings for building indexes in the block: helper threads for the sort
    (one per core, at least two), temporary files on disk, not in memory, and, for a
    database bigger than the page cache, a small page cache. SQLite's
    sorter uses its helper threads (``PRAGMA threads``) only with temporary files on disk,
    and sorts in runs the size of the page cache; with the usual settings (memory, 256 MiB
    in an import) a build sorts everything in one thread in memory. Nineteen indexes of a
    million customers: 9.9 s and 34 MB against 13.6 s and 419 MB. A database the cache
    holds keeps its cache: the tables are read from it (100,000 customers: a commit of the
    import benchmark was 0.3 s slower with the small cache).

    The temporary files go on disk as ``temporary_files_on_disk`` can; the settings come
    back after the block (also after an error)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    threads = conn.exec_driver_sql("PRAGMA threads").scalar()
    conn.exec_driver_sql(f"PRAGMA threads = {max(2, os.cpu_count() or 1)}")
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    pages = conn.exec_driver_sql("PRAGMA page_count").scalar() or 0
    page_kib = (conn.exec_driver_sql("PRAGMA page_size").scalar() or 4096) / 1024
    cache_kib = -cache if cache and cache < 0 else (cache or 0) * page_kib
    if pages * page_kib > cache_kib:
        conn.exec_driver_sql(f"PRAGMA cache_size = -{INDEX_BUILD_CACHE_KIB}")
    try:
        with temporary_files_on_disk(conn):
            yield
    finally:
        conn.exec_driver_sql(f"PRAGMA threads = {int(threads or 0)}")
        conn.exec_driver_sql(f"PRAGMA cache_size = {int(cache or 0)}")


_checkpointers: weakref.WeakKeyDictionary[Engine, WalCheckpointer] = weakref.WeakKeyDictionary()


def wal_checkpointer(engine: Engine) -> WalCheckpointer | None:
    """The background checkpointer of a SQLite file engine made by ``make_engine``."""
    return _checkpointers.get(engine)


def make_engine(url: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` (default: ``CRM_DATABASE_URL`` or the SQLite file in the data dir)."""
    url = url or get_settings().resolved_database_url
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != url and not path.startswith(":memory:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("json_serializer", json_dumps)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        if path and path != url and not path.startswith(":memory:") and "mode=memory" not in path:
            checkpointer = WalCheckpointer(path.split("?", 1)[0])
            event.listen(engine, "commit", checkpointer.wake)
            event.listen(engine, "engine_disposed", checkpointer.stop)
            _checkpointers[engine] = checkpointer
        return engine
    if url.startswith("postgresql"):
        # prepare_threshold=None: server-side prepared statements turn trigram searches into
        # generic-plan table scans (see STACK-NOTES.md)
        connect_args = {"prepare_threshold": None} if "+psycopg" in url else {}
        kwargs.setdefault("json_serializer", json_dumps)
        return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    return create_engine(url, **kwargs)


class Database:
    """One database: its engine and a session factory."""

    def __init__(self, url: str | None = None, engine: Engine | None = None) -> None:
        self.engine = engine or make_engine(url)
        self.url = self.engine.url.render_as_string(hide_password=False)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        return self.sessionmaker()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        with self.sessionmaker() as session, session.begin():
            yield session

    def init(self) -> None:
        """Create the schema or upgrade it in place (Alembic ``upgrade heads``)."""
        from crm_core.migrate import upgrade

        upgrade(self.engine)
        self.analyze()

    def analyze(self) -> None:
        """Refresh the planner's statistics (after set-up or a large load)."""
        with self.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")

    def dispose(self) -> None:
        self.engine.dispose()


_databases: dict[str, Database] = {}
_lock = threading.Lock()


def analytics_settings(session: Session) -> None:
    """Prepare the session's transaction for a large aggregation (reports).

    On PostgreSQL: more sort/hash memory for the rest of the transaction (with the default
    4 MB, grouping by JSON or date expressions, whose group counts the planner cannot estimate,
    is planned as an on-disk sort instead of a hash aggregate: 2.7 s instead of 1.1 s over a
    million records) and no JIT compilation (about 0.1-0.5 s per query, more than it saves on
    these plans). SQLite needs nothing.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT set_config('work_mem', '128MB', true)"))
        session.execute(text("SELECT set_config('jit', 'off', true)"))


def get_database(url: str | None = None) -> Database:
    """The shared ``Database`` for ``url`` (created on first use)."""
    url = url or get_settings().resolved_database_url
    with _lock:
        if url not in _databases:
            _databases[url] = Database(url)
        return _databases[url]


def forget_databases() -> None:
    """Dispose every shared engine (tests, restore)."""
    with _lock:
        for db in _databases.values():
            db.dispose()
        _databases.clear()
