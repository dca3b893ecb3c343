"""Storage settings of crm_core.db: JSON columns, lists bound as one parameter and the
background WAL checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time

import pytest
from sqlalchemy import Integer, select, text

from crm_core import customers as svc
from crm_core.bulk import bulk_create_customers
from crm_core.db import (
    BIG_WRITE_CACHE_KIB,
    INDEX_BUILD_CACHE_KIB,
    WAL_AUTOCHECKPOINT_PAGES,
    WAL_SIZE_LIMIT,
    Database,
    WalCheckpointer,
    big_write_settings,
    index_build_settings,
    json_dumps,
    listed,
    one_of,
    wal_checkpointer,
)
from crm_core.models import AuditEntry, Customer
from crm_core.users import get_system_user


def test_json_columns_keep_chinese_text_readable_and_every_value_json_could_write():
    value = {"name": [None, "王伟"], 3: 2**70, "tags": ("a", "b")}
    assert json.loads(json_dumps({"name": [None, "王伟"]})) == {"name": [None, "王伟"]}
    assert "王伟" in json_dumps({"name": "王伟"})  # UTF-8, not \\u escapes
    assert json.loads(json_dumps(value)) == json.loads(json.dumps(value))  # beyond 64 bits too


def test_audit_changes_round_trip_through_the_json_column(db, staff):
    with db.transaction() as s:
        cid = svc.create_customer(
            s, actor=staff.admin, data={"name": "王伟", "custom": {}, "city": "深圳市"}
        ).id
    with db.transaction() as s:
        entry = s.scalars(
            select(AuditEntry).where(
                AuditEntry.entity_type == "customer", AuditEntry.entity_id == cid
            )
        ).one()
        assert entry.changes["name"] == [None, "王伟"]
        assert entry.changes["city"] == [None, "深圳市"]


def test_one_of_binds_a_list_of_strings_or_integers_as_one_parameter(db, staff):
    with db.transaction() as s:
        ids = {
            name: svc.create_customer(s, actor=staff.admin, data={"name": name}).id
            for name in ("王伟", "Alice", "Bob")
        }
    with db.transaction() as s:
        conn = s.connection()
        # one statement, each list passed when it runs
        by_name = select(Customer.name, Customer.id).where(Customer.name.in_(one_of(conn, "names")))
        for names in (["王伟", "Bob"], ["Alice"], [], ["nobody"]):
            found = dict(conn.execute(by_name, {"names": listed(conn, names)}).all())
            assert found == {n: ids[n] for n in names if n in ids}
        by_id = select(Customer.id).where(Customer.id.in_(one_of(conn, "ids")))
        assert list(conn.scalars(by_id, {"ids": listed(conn, [ids["Bob"], 0])})) == [ids["Bob"]]
        # bound with the statement, as one array on PostgreSQL: more values than its 65,535
        # parameters fit
        many = [*range(-70_000, 0), ids["Alice"]]
        bound = one_of(db.dialect, "many", array_of=Integer(), values=many)
        assert list(s.scalars(select(Customer.id).where(Customer.id.in_(bound)))) == [ids["Alice"]]
        outside = set(s.scalars(select(Customer.id).where(Customer.id.not_in(bound))))
        assert outside == {ids["王伟"], ids["Bob"]}


def _sqlite_file(tmp_path) -> tuple[str, Database, WalCheckpointer]:
    path = tmp_path / "crm.sqlite3"
    db = Database(f"sqlite:///{path}")
    db.init()
    checkpointer = wal_checkpointer(db.engine)
    assert checkpointer is not None
    return path, db, checkpointer


def test_a_big_commit_reaches_the_database_file_in_the_background(tmp_path):
    path, db, checkpointer = _sqlite_file(tmp_path)
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA wal_autocheckpoint")).scalar() == WAL_AUTOCHECKPOINT_PAGES
    rows = [{"name": f"Customer {i}", "phones": [f"1380013{i:04d}"]} for i in range(6000)]
    with db.transaction() as s:
        bulk_create_customers(s, actor=get_system_user(s), rows=rows, workers=1)
    deadline = time.monotonic() + 30
    while checkpointer.log_size() > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert checkpointer.log_size() == 0  # copied into the database and the log emptied
    copy = tmp_path / "copy.sqlite3"  # the database file alone, without its log
    shutil.copyfile(path, copy)
    with sqlite3.connect(copy) as alone:
        assert alone.execute("SELECT count(*) FROM customers").fetchone() == (6000,)
    db.dispose()
    assert checkpointer._thread is None  # the thread ended with the engine


def test_a_checkpoint_never_waits_for_a_reader(tmp_path):
    path, db, background = _sqlite_file(tmp_path)
    background.threshold = 1 << 40  # the engine's own thread stays out of the way
    checkpointer = WalCheckpointer(str(path), threshold=0)
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM customers").fetchone()  # holds the old snapshot
    rows = [{"name": f"Customer {i}"} for i in range(500)]
    with db.transaction() as s:
        bulk_create_customers(s, actor=get_system_user(s), rows=rows, workers=1)
    started = time.monotonic()
    assert checkpointer.checkpoint() is False  # the reader still needs the log's frames
    assert time.monotonic() - started < 5
    reader.rollback()
    reader.close()
    assert checkpointer.checkpoint() is True
    db.dispose()


def test_a_log_past_the_ceiling_is_left_to_the_committing_connection(tmp_path):
    path, db, background = _sqlite_file(tmp_path)
    assert background.ceiling == 4096 * WAL_AUTOCHECKPOINT_PAGES  # 4 KiB pages: 256 MiB
    background.threshold = 1 << 40  # the engine's own thread stays out of the way
    rows = [{"name": f"Customer {i}"} for i in range(2000)]
    with db.transaction() as s:
        bulk_create_customers(s, actor=get_system_user(s), rows=rows, workers=1)
    size = background.log_size()
    assert size > 0
    low = WalCheckpointer(str(path), threshold=0, ceiling=size)  # this log is "too big"
    assert low.checkpoint() is False
    low.wake()
    assert low._thread is None  # not even started
    assert background.log_size() == size  # nothing copied, the log still holds the rows
    high = WalCheckpointer(str(path), threshold=0, ceiling=size + 1)
    assert high.checkpoint() is True
    assert high.log_size() == 0
    db.dispose()


def test_a_copied_log_is_cut_down_when_it_starts_again(tmp_path):
    path, db, background = _sqlite_file(tmp_path)
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_size_limit")).scalar() == WAL_SIZE_LIMIT
    db.dispose()
    # what the limit does, with a 64 KiB limit instead of 64 MiB
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA journal_size_limit = 65536")
    raw.execute("CREATE TABLE filler (x BLOB)")
    raw.execute(
        "INSERT INTO filler WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        "WHERE i < 2000) SELECT randomblob(1000) FROM n"
    )
    raw.commit()
    assert os.path.getsize(f"{path}-wal") > 1 << 20
    assert raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0] == 0  # all copied
    assert os.path.getsize(f"{path}-wal") > 1 << 20  # ... but the file keeps its size
    raw.execute("INSERT INTO filler VALUES (x'00')")  # the log starts again: cut down
    raw.commit()
    assert os.path.getsize(f"{path}-wal") <= 65536
    raw.close()


def test_a_big_write_gets_a_larger_page_cache_and_temporary_files_on_disk(sqlite_db):
    """Both come back after the block, also after an error; outside SQLite's transaction
    the temporary files stay in memory (changing them there could drop temporary tables)."""
    settings = ("PRAGMA cache_size", "PRAGMA temp_store")
    with sqlite_db.transaction() as s:
        conn = s.connection()
        usual = [conn.exec_driver_sql(p).scalar() for p in settings]
        assert usual[1] == 2  # memory, as every connection is set up
        with big_write_settings(conn, 100_000):  # no write yet: outside SQLite's transaction
            assert [conn.exec_driver_sql(p).scalar() for p in settings] == [-100_000, 2]
        assert [conn.exec_driver_sql(p).scalar() for p in settings] == usual
        conn.exec_driver_sql("UPDATE customers SET name = name WHERE 0")  # SQLite's BEGIN
        with big_write_settings(conn, 100_000):
            assert [conn.exec_driver_sql(p).scalar() for p in settings] == [-100_000, 1]
        assert [conn.exec_driver_sql(p).scalar() for p in settings] == usual
        with pytest.raises(RuntimeError), big_write_settings(conn, 100_000):
            raise RuntimeError("the write failed")
        assert [conn.exec_driver_sql(p).scalar() for p in settings] == usual
        assert usual[0] != -100_000


def test_indexes_are_built_with_temporary_files_on_disk_and_a_small_cache(sqlite_db):
    """SQLite's sorter sorts in helper threads only with its temporary files on disk; a
    database bigger than the page cache gets a small one for the build, one that the cache
    holds keeps it; both settings come back after the block, also after an error."""
    settings = ("PRAGMA cache_size", "PRAGMA temp_store")
    with sqlite_db.transaction() as s:
        conn = s.connection()
        usual = [conn.exec_driver_sql(p).scalar() for p in settings]
        assert usual[1] == 2  # memory, as every connection is set up
        with index_build_settings(conn):  # no write yet: outside SQLite's transaction
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2
        conn.exec_driver_sql("UPDATE customers SET name = name WHERE 0")  # SQLite's BEGIN
        with index_build_settings(conn):  # the small test database fits in the cache
            assert [conn.exec_driver_sql(p).scalar() for p in settings] == [usual[0], 1]
            conn.exec_driver_sql("CREATE INDEX ix_test_name ON customers (name)")
        assert [conn.exec_driver_sql(p).scalar() for p in settings] == usual
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        conn.exec_driver_sql(f"PRAGMA cache_size = {pages // 2}")  # now it is bigger
        with index_build_settings(conn):
            assert [conn.exec_driver_sql(p).scalar() for p in settings] == [
                -INDEX_BUILD_CACHE_KIB,
                1,
            ]
        assert [conn.exec_driver_sql(p).scalar() for p in settings] == [pages // 2, 2]
        with pytest.raises(RuntimeError), index_build_settings(conn):
            raise RuntimeError("the build failed")
        assert [conn.exec_driver_sql(p).scalar() for p in settings] == [pages // 2, 2]
        conn.exec_driver_sql(f"PRAGMA cache_size = {usual[0]}")


def test_index_build_settings_keep_the_temporary_tables_of_the_connection(sqlite_db):
    """Changing ``temp_store`` would delete the connection's temporary tables: with one
    there, the connection keeps its temporary storage (and the table its rows)."""
    with sqlite_db.transaction() as s:
        conn = s.connection()
        conn.exec_driver_sql("CREATE TEMP TABLE scratch (x int)")
        conn.exec_driver_sql("INSERT INTO scratch VALUES (1)")
        with index_build_settings(conn):
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar() == 2
        assert conn.exec_driver_sql("SELECT x FROM scratch").scalar() == 1
        conn.exec_driver_sql("DROP TABLE scratch")


def test_an_import_runs_with_the_big_write_settings(sqlite_db, monkeypatch):
    from conftest import make_staff

    from crm_core.importing import ImportOptions, batches, run_import

    staff = make_staff(sqlite_db)
    seen = []
    original = batches._Run.process

    def process(run, chunk, shaped):
        conn = run.session.connection()
        seen.append(
            [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in ("cache_size", "temp_store")]
        )
        return original(run, chunk, shaped)

    monkeypatch.setattr(batches._Run, "process", process)
    with sqlite_db.transaction() as s:
        usual = s.connection().exec_driver_sql("PRAGMA cache_size").scalar()
        report = run_import(
            s,
            actor=staff.steward,
            source=b"name,email\nAnn Lee,ann@example.com\n",
            options=ImportOptions(),
        )
        assert report.created == 1
        assert seen == [[-BIG_WRITE_CACHE_KIB, 1]]  # temporary files on disk
        assert s.connection().exec_driver_sql("PRAGMA cache_size").scalar() == usual
