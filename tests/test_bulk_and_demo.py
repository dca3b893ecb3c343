"""Bulk creation follows the rules of create_customer; demo data loads and is searchable."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm_core import customers as svc
from crm_core.bulk import bulk_create_customers
from crm_core.errors import InvalidInput, PermissionDenied
from crm_core.models import AuditEntry, Customer, CustomerPhone


def test_bulk_create_validates_like_create_customer(db, staff):
    rows = [
        {"name": "张三", "phones": ["139 1234 5678"], "tags": ["import"]},
        {"name": "Bad Phone", "phones": ["12"]},
        {"name": "", "emails": ["x@example.com"]},
        {
            "name": "Jane Roe",
            "emails": ["Jane@Example.com"],
            "country": "GB",
            "phones": ["020 7946 0958"],
        },
    ]
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        bulk_create_customers(s, actor=staff.steward, rows=rows)
    assert "row 2: phone" in str(err.value) and "row 3: name: is required" in str(err.value)
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 0  # all or nothing

    with db.transaction() as s:
        result = bulk_create_customers(s, actor=staff.steward, rows=rows, skip_invalid=True)
    assert result.rows == [0, 3] and [e.row for e in result.errors] == [1, 2]
    with db.transaction() as s:
        phones = sorted(s.scalars(select(CustomerPhone.e164)))
        assert phones == ["+442079460958", "+8613912345678"]
        audits = s.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "customer.create")
        )
        assert audits == 2
        assert [c.id for c in svc.search_customers(s, actor=staff.admin, query="zhang san")] == [
            result.ids[0]
        ]
        assert svc.get_customer(s, actor=staff.admin, customer_id=result.ids[0]).tags == ["import"]


def test_bulk_create_respects_roles(db, staff):
    with pytest.raises(PermissionDenied), db.transaction() as s:
        bulk_create_customers(s, actor=staff.analyst, rows=[{"name": "x"}])
    with pytest.raises(PermissionDenied), db.transaction() as s:
        bulk_create_customers(
            s, actor=staff.sales1, rows=[{"name": "x", "owner_id": staff.sales2.id}]
        )
    with db.transaction() as s:
        result = bulk_create_customers(s, actor=staff.sales1, rows=[{"name": "Mine"}])
        assert s.get(Customer, result.ids[0]).owner_id == staff.sales1.id


def test_demo_data_loads_with_history_and_planted_duplicates(db):
    from crm_core.demo import load_demo

    summary = load_demo(db, n_customers=300, seed=3)
    assert summary.customers >= 290 and summary.interactions > 0 and summary.orders > 0
    with db.transaction() as s:
        chinese = s.scalar(
            select(func.count()).select_from(Customer).where(Customer.name_key != "")
        )
        assert 0.35 < chinese / summary.customers < 0.65
        with_contact = s.scalar(
            select(func.count()).select_from(Customer).where(Customer.last_contact_at.is_not(None))
        )
        assert with_contact > 0


def _indexes(s) -> set[tuple[str, str]]:
    from sqlalchemy import text

    rows = s.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
    )
    return set(rows.all())


def test_a_big_first_load_rebuilds_the_indexes_and_keeps_them(sqlite_db, monkeypatch):
    from sqlalchemy import text

    from crm_core import bulk
    from crm_core.users import get_system_user

    monkeypatch.setattr(bulk, "REBUILD_INDEXES_FROM", 50)
    monkeypatch.setattr(bulk, "CHUNK", 64)  # the search index is filled chunk by chunk
    with sqlite_db.transaction() as s:
        before = _indexes(s)
        result = bulk_create_customers(
            s,
            actor=get_system_user(s),
            rows=[{"name": f"Person {i}", "phones": [f"1380013{i:04d}"]} for i in range(200)],
            workers=1,
        )
        assert len(result.ids) == 200
        assert _indexes(s) == before
    with sqlite_db.transaction() as s:
        assert _indexes(s) == before
        # the rebuilt indexes hold every row: an index-only lookup finds each one
        plan = " ".join(
            r[-1]
            for r in s.execute(
                text("EXPLAIN QUERY PLAN SELECT id FROM customers WHERE name = 'Person 7'")
            )
        )
        assert "ix_customers_name" in plan
        assert s.scalar(select(func.count()).where(Customer.name.like("Person %"))) == 200
        found = svc.search_customers(s, actor=get_system_user(s), query="13800130123")
        assert [c.name for c in found] == ["Person 123"]
        assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        # every chunk reached the trigram index, which agrees with the customers table
        matched = "SELECT count(*) FROM customer_fts WHERE search_text LIKE '%person%'"
        assert s.execute(text(matched)).scalar() == 200
        s.execute(text("INSERT INTO customer_fts(customer_fts) VALUES ('integrity-check')"))
        assert s.execute(text("PRAGMA threads")).scalar() == 0  # the index build's setting undone
        merge = "SELECT v FROM customer_fts_config WHERE k = 'automerge'"
        assert s.execute(text(merge)).scalar() == 4  # merging turned back on after the fill


def test_a_big_load_rolled_back_leaves_rows_and_indexes_as_they_were(sqlite_db, monkeypatch):
    from crm_core import bulk
    from crm_core.users import get_system_user

    monkeypatch.setattr(bulk, "REBUILD_INDEXES_FROM", 50)
    with sqlite_db.transaction() as s:
        before = _indexes(s)
    rows = [{"name": f"Person {i}"} for i in range(100)]
    with pytest.raises(RuntimeError), sqlite_db.transaction() as s:
        bulk_create_customers(s, actor=get_system_user(s), rows=rows, workers=1)
        raise RuntimeError("the caller fails after the load")
    with sqlite_db.transaction() as s:
        assert _indexes(s) == before
        assert s.scalar(select(func.count()).select_from(Customer)) == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_an_invalid_row_in_a_late_chunk_undoes_the_chunks_already_written(
    db, staff, monkeypatch, workers
):
    """All or nothing: earlier chunks are written before a later one turns out invalid; the
    savepoint takes them back even when the caller goes on and commits its own work."""
    from sqlalchemy import text

    from crm_core import bulk

    monkeypatch.setattr(bulk, "CHUNK", 3)
    monkeypatch.setattr(bulk, "REBUILD_INDEXES_FROM", 5)
    rows = [{"name": f"Person {i}", "phones": [f"1380013{i:04d}"]} for i in range(12)]
    rows[7]["phones"] = ["12"]
    rows[10]["name"] = ""
    with db.transaction() as s:
        kept = svc.create_customer(s, actor=staff.admin, data={"name": "Kept Before"}).id
        before = _indexes(s) if s.get_bind().dialect.name == "sqlite" else None
        with pytest.raises(InvalidInput) as err:
            bulk_create_customers(s, actor=staff.admin, rows=rows, workers=workers)
        message = str(err.value)
        assert "2 invalid row(s): row 8" in message
        assert "row 8: phone" in message and "row 11: name: is required" in message
    with db.transaction() as s:
        assert list(s.scalars(select(Customer.id))) == [kept]
        assert s.scalar(select(func.count()).select_from(CustomerPhone)) == 0
        assert [c.id for c in svc.search_customers(s, actor=staff.admin, query="kept")] == [kept]
        assert svc.search_customers(s, actor=staff.admin, query="person") == []
        if before is not None:
            assert _indexes(s) == before
            s.execute(text("INSERT INTO customer_fts(customer_fts) VALUES ('integrity-check')"))
            assert s.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    with db.transaction() as s:  # valid rows still go in afterwards, every chunk
        rows[7]["phones"], rows[10]["name"] = [], "Person 10"
        created = bulk_create_customers(s, actor=staff.admin, rows=rows, workers=workers)
        assert len(created.ids) == 12
        assert len(svc.search_customers(s, actor=staff.admin, query="person", limit=50)) == 12


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bulk_load_keeps_the_report_customer_counts_exact(db, staff, monkeypatch, workers):
    """The customer counts the distribution reports read (revision 0044) stay exact through a
    bulk load, which on SQLite adds them in one statement with their insert trigger set
    aside: customers already counted, new ones of the same and of new groups, an invalid row
    skipped; the trigger is back afterwards and counts a later single insert."""
    from sqlalchemy import text

    from crm_core import bulk
    from crm_core.reports.customer_groups import INSERT_TRIGGER, customer_count_differences

    monkeypatch.setattr(bulk, "CHUNK", 7)
    sqlite = db.engine.dialect.name == "sqlite"
    set_aside = []  # the trigger's state seen by each insert of the load (SQLite)

    def execute(self, conn, params):
        found = text("SELECT count(*) FROM sqlite_master WHERE name = :n")
        set_aside.append(sqlite and conn.execute(found, {"n": INSERT_TRIGGER}).scalar() == 0)
        return real_execute(self, conn, params)

    real_execute = bulk._Params.execute
    monkeypatch.setattr(bulk._Params, "execute", execute)
    with db.transaction() as s:
        svc.create_customer(s, actor=staff.admin, data={"name": "Old", "industry": "零售"})
    rows = [
        {
            "name": f"Person {i}",
            "industry": ["零售", "制造", None][i % 3],
            "province": "浙江省",
            "city": ["杭州市", "宁波市"][i % 2],
            "lifecycle_stage": ["lead", "customer"][i % 2],
            "owner_id": [None, staff.sales1.id, staff.sales2.id][i % 3],
        }
        for i in range(40)
    ]
    rows[5]["name"] = ""  # skipped
    with db.transaction() as s:
        result = bulk_create_customers(
            s, actor=staff.admin, rows=rows, skip_invalid=True, workers=workers
        )
        assert len(result.ids) == 39
        assert set_aside and set(set_aside) == {sqlite}  # no row trigger during the writes
        assert customer_count_differences(s) == []
        if sqlite:
            found = text("SELECT count(*) FROM sqlite_master WHERE name = :n")
            assert s.execute(found, {"n": INSERT_TRIGGER}).scalar() == 1
    with db.transaction() as s:
        svc.create_customer(s, actor=staff.admin, data={"name": "Later", "industry": "制造"})
    with db.transaction() as s:
        assert customer_count_differences(s) == []
        total = "SELECT sum(n) FROM report_group_customers WHERE dimension = 'industry'"
        assert s.execute(text(total)).scalar() == 41
