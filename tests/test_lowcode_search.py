"""Quick search of module records on SQLite (FTS5 trigram index, revision 0010) and PostgreSQL
(pg_trgm): it follows create, update, archive, restore and import, matches words of any length,
and on SQLite is answered by the index rather than a scan of every record's text."""

from __future__ import annotations

import pandas as pd
import pytest
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


def test_link_pickers_offer_what_the_user_may_see(db, staff):
    from crm_core import customers as customer_svc
    from crm_core.errors import InvalidInput
    from crm_core.lowcode import links

    define(db, staff)
    with db.transaction() as s:
        mine = customer_svc.create_customer(s, actor=staff.sales1, data={"name": "Acme Mine"}).id
        theirs = customer_svc.create_customer(s, actor=staff.sales2, data={"name": "Acme Th"}).id
        mod.define_module(
            s, actor=staff.admin, key="visits", name_en="Visits",
            fields=[
                {"key": "title", "label_en": "Title", "field_type": "text"},
                {"key": "customer", "label_en": "Customer", "field_type": "customer"},
                {"key": "rep", "label_en": "Rep", "field_type": "user"},
                {"key": "job", "label_en": "Job", "field_type": "module", "link_module": "jobs"},
            ],
        )  # fmt: skip
    job = create(db, staff.sales1, title="Tower crane", site="Harbour")
    create(db, staff.sales2, title="Tower two")  # not linked to a customer: its creator's only

    def offered(actor, field_key, query):
        with db.transaction() as s:
            found = links.search_links(
                s, actor=actor, module_key="visits", field_key=field_key, query=query
            )
            return [(c.id, c.label) for c in found]

    assert offered(staff.sales1, "customer", "acme") == [(mine, f"Acme Mine (#{mine})")]
    assert sorted(i for i, _ in offered(staff.manager, "customer", "acme")) == [mine]  # team A
    assert sorted(i for i, _ in offered(staff.admin, "customer", "acme")) == [mine, theirs]
    assert [i for i, _ in offered(staff.sales1, "customer", "")] == [mine]  # newest first
    assert [i for i, _ in offered(staff.sales1, "rep", "SALES2")] == [staff.sales2.id]
    assert offered(staff.sales1, "job", "tower") == [(job, f"Tower crane (#{job})")]
    with db.transaction() as s:
        rid = rec.create_record(
            s, actor=staff.admin, module_key="visits",
            data={"title": "V", "customer": theirs, "rep": staff.sales2.id, "job": job},
        ).id  # fmt: skip
        data = rec.get_record(s, actor=staff.admin, module_key="visits", record_id=rid).data
        assert links.link_labels(s, actor=staff.admin, module_key="visits", data=data) == {
            "customer": f"Acme Th (#{theirs})",
            "rep": "sales2 (sales2)",
            "job": f"Tower crane (#{job})",
        }
        # a linked record the reader may not see shows as its number only
        labels = links.link_labels(s, actor=staff.sales1, module_key="visits", data=data)
        assert labels["customer"] == f"#{theirs}" and labels["job"] == f"Tower crane (#{job})"
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        links.search_links(s, actor=staff.admin, module_key="visits", field_key="title", query="")
    assert err.value.field == "title" and "not a link field" in err.value.message


def test_link_labels_of_a_whole_page_come_in_one_batch(db, staff):
    from sqlalchemy import event

    from crm_core import customers as customer_svc
    from crm_core.lowcode import links

    define(db, staff)
    with db.transaction() as s:
        mine = customer_svc.create_customer(s, actor=staff.sales1, data={"name": "Acme Mine"}).id
        theirs = customer_svc.create_customer(s, actor=staff.sales2, data={"name": "Acme Th"}).id
        mod.define_module(
            s, actor=staff.admin, key="visits", name_en="Visits",
            fields=[
                {"key": "title", "label_en": "Title", "field_type": "text"},
                {"key": "customer", "label_en": "Customer", "field_type": "customer"},
                {"key": "referrer", "label_en": "Referred by", "field_type": "customer"},
                {"key": "rep", "label_en": "Rep", "field_type": "user"},
                {"key": "job", "label_en": "Job", "field_type": "module", "link_module": "jobs"},
            ],
        )  # fmt: skip
    jobs = [create(db, staff.sales1, title=f"Job {n}") for n in range(3)]
    rows = [
        {"title": f"V{n}", "customer": mine, "referrer": theirs if n % 2 else None,
         "rep": staff.sales2.id, "job": jobs[n % 3]}
        for n in range(30)
    ]  # fmt: skip
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    def labels(actor, page):
        statements.clear()
        event.listen(db.engine, "before_cursor_execute", count)
        try:
            with db.transaction() as s:
                found = links.link_label_map(s, actor=actor, module_key="visits", rows=page)
        finally:
            event.remove(db.engine, "before_cursor_execute", count)
        return found, len(statements)

    few, few_queries = labels(staff.sales1, rows[:3])
    many, many_queries = labels(staff.sales1, rows)
    assert many_queries == few_queries  # no query per row
    assert many["customer"] == {mine: f"Acme Mine (#{mine})"}
    assert many["referrer"] == {theirs: f"#{theirs}"}  # another rep's customer: its number only
    assert many["rep"] == {staff.sales2.id: "sales2 (sales2)"}
    assert many["job"] == {j: f"Job {n} (#{j})" for n, j in enumerate(jobs)}
    everything, _ = labels(staff.admin, rows)
    assert everything["referrer"] == {theirs: f"Acme Th (#{theirs})"}
    masked, _ = labels(staff.analyst, rows)
    assert masked["customer"] == {mine: f"A*** M*** (#{mine})"}  # analysts: names masked
    with db.transaction() as s:
        assert set(
            links.link_label_map(s, actor=staff.admin, module_key="visits", rows=rows,
                                 fields=["rep"])
        ) == {"rep"}  # fmt: skip
