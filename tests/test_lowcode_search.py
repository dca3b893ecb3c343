"""Quick search of module records on SQLite (FTS5 trigram index, revision 0010) and PostgreSQL
(pg_trgm): it follows create, update, archive, restore and import, matches words of any length,
and on SQLite is answered by the index rather than a scan of every record's text."""

from __future__ import annotations

import pandas as pd
from conftest import make_staff
from sqlalchemy import text

from crm_core.lowcode import modules as mod
from crm_core.lowcode import records as rec
from crm_core.lowcode.records import RecordFilter
from crm_core.migrate import alembic_config
from crm_core.migrate import upgrade as migrate_up

FIELDS = [
    {"key": "title", "label_en": "Title", "field_type": "text", "required": True},
    {"key": "site", "label_en": "Site", "field_type": "text"},
    {"key": "notes", "label_en": "Notes", "field_type": "long_text"},
    {"key": "stage", "label_en": "Stage", "field_type": "choice", "choices": ["Plan", "Build"]},
]


def define(db, staff, key="jobs"):
    with db.transaction() as s:
        mod.define_module(
            s, actor=staff.admin, key=key, name_en=key.title(), fields=FIELDS,
            display_field="title",
        )  # fmt: skip


def create(db, actor, key="jobs", **data):
    with db.transaction() as s:
        return rec.create_record(s, actor=actor, module_key=key, data=data).id


def found(db, actor, query, key="jobs", archived=False):
    with db.transaction() as s:
        page = rec.list_records(
            s, actor=actor, module_key=key,
            filters=RecordFilter(query=query, archived=archived), limit=500,
        )  # fmt: skip
        return sorted(r.display_name for r in page.items)


def test_search_follows_create_update_archive_restore_and_import(db, staff):
    define(db, staff)
    define(db, staff, key="other")
    crane = create(db, staff.admin, title="Tower crane", site="North harbour", stage="Build",
                   notes="Bolts checked by 王伟")  # fmt: skip
    create(db, staff.admin, title="Bridge", site="South harbour")
    create(db, staff.admin, key="other", title="Tower elsewhere")  # another module
    assert found(db, staff.admin, "tower") == ["Tower crane"]
    assert found(db, staff.admin, "HARBOUR") == ["Bridge", "Tower crane"]
    assert found(db, staff.admin, "harbour north") == ["Tower crane"]  # every word, any order
    assert found(db, staff.admin, "build") == ["Tower crane"]  # choice values are searched
    assert found(db, staff.admin, "王伟") == ["Tower crane"]  # two characters: no trigram
    assert found(db, staff.admin, "wei") == []
    assert found(db, staff.admin, "crane 王") == ["Tower crane"]  # long and short words
    assert found(db, staff.admin, 'tow"er') == []  # quotes are plain text
    assert found(db, staff.admin, "100%") == []
    with db.transaction() as s:
        rec.update_record(
            s, actor=staff.admin, module_key="jobs", record_id=crane,
            data={"title": "Harbour crane", "site": "East pier"},
        )  # fmt: skip
    assert found(db, staff.admin, "tower") == []
    assert found(db, staff.admin, "pier") == ["Harbour crane"]
    assert found(db, staff.admin, "harbour") == ["Bridge", "Harbour crane"]
    with db.transaction() as s:
        rec.archive_record(s, actor=staff.admin, module_key="jobs", record_id=crane)
    assert found(db, staff.admin, "pier") == []
    assert found(db, staff.admin, "pier", archived=True) == ["Harbour crane"]
    with db.transaction() as s:
        rec.restore_record(s, actor=staff.admin, module_key="jobs", record_id=crane)
    assert found(db, staff.admin, "pier") == ["Harbour crane"]
    frame = pd.DataFrame({"Title": ["Dock gate", "Slipway"], "Site": ["West pier", "Yard"]})
    with db.transaction() as s:
        rec.import_records(s, actor=staff.admin, module_key="jobs", frame=frame)
    assert found(db, staff.admin, "pier") == ["Dock gate", "Harbour crane"]
    # a sales user finds only what they may see (records of others' customers stay hidden)
    assert found(db, staff.sales1, "pier") == []


def test_sqlite_search_reads_the_trigram_index(sqlite_db):
    staff = make_staff(sqlite_db)
    define(sqlite_db, staff)
    rid = create(sqlite_db, staff.admin, title="Tower crane", site="North harbour")
    with sqlite_db.transaction() as s:
        hits = s.execute(
            text("SELECT rowid FROM module_record_fts WHERE module_record_fts MATCH :q"),
            {"q": '"harbour"'},
        ).scalars()
        assert list(hits) == [rid]
        query = rec.record_query(
            s, actor=staff.admin, module_key="jobs", filters=RecordFilter(query="harbour")
        )
        plan = " ".join(
            str(row[-1])
            for row in s.execute(text("EXPLAIN QUERY PLAN " + str(query.compile(
                compile_kwargs={"literal_binds": True}))))
        )  # fmt: skip
    assert "module_record_fts VIRTUAL TABLE INDEX" in plan


def test_records_written_before_the_index_existed_are_found(sqlite_db):
    from alembic import command

    staff = make_staff(sqlite_db)
    cfg = alembic_config(sqlite_db.engine)
    with sqlite_db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0007")
    define(sqlite_db, staff)
    create(sqlite_db, staff.admin, title="Old record", site="Harbour")
    migrate_up(sqlite_db.engine)
    assert found(sqlite_db, staff.admin, "harbour") == ["Old record"]
