"""Alembic: an empty database migrates to the newest schema, which equals the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from crm_core.db import Database
from crm_core.migrate import current_revisions, head_revisions, is_up_to_date
from crm_core.models import Base


def _ignored(diff: tuple) -> bool:
    # search objects created by hand in revisions 0002, 0007 and 0010 (FTS5 tables, trigram
    # indexes)
    name = getattr(diff[1], "name", "") if len(diff) > 1 else ""
    fts = ("customer_fts", "module_record_fts")
    return bool(name) and (name.startswith(fts) or name.endswith("_trgm"))


def test_empty_database_migrates_to_the_models(db: Database) -> None:
    assert is_up_to_date(db.engine)
    assert current_revisions(db.engine) == head_revisions()
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(context, Base.metadata) if not _ignored(d)]
    assert diffs == []


def test_init_twice_is_a_no_op_and_keeps_data(tmp_path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    db.init()
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO tags (name) VALUES ('kept')"))
    db.init()
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM tags")).scalar() == "kept"
    tables = set(inspect(db.engine).get_table_names())
    assert {"customers", "audit_entries", "alembic_version", "customer_fts"} <= tables
    db.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_search_triggers_survive_all_migrations(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        triggers = set(
            conn.execute(text("SELECT name FROM sqlite_master WHERE type='trigger'")).scalars()
        )
    assert {"customer_fts_ai", "customer_fts_ad", "customer_fts_au"} <= triggers
    assert {"module_record_fts_ai", "module_record_fts_ad", "module_record_fts_au"} <= triggers
