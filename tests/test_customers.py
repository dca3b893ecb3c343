"""Customer services on SQLite and PostgreSQL: validation, access, audit, conflicts, archive."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from crm_core import customers as svc
from crm_core.db import Database
from crm_core.errors import ConflictError, InvalidInput, NotFound, PermissionDenied
from crm_core.models import AuditEntry, Customer


def _create(db, actor, **data):
    with db.transaction() as s:
        customer = svc.create_customer(s, actor=actor, data=data)
        return customer.id, customer.version


def test_create_normalises_phone_email_and_pinyin(db, staff):
    cid, _ = _create(
        db,
        staff.sales1,
        name="王伟",
        phones=["138 0013 8000", "+86 (139) 1234-5678"],
        emails=["Wang.Wei@Example.COM"],
        city="杭州",
        tags=["vip", "wechat"],
    )
    with db.transaction() as s:
        out = svc.get_customer(s, actor=staff.sales1, customer_id=cid)
        stored = s.get(Customer, cid)
        assert out.phone == "+8613800138000"
        assert out.phones == ["+8613800138000", "+8613912345678"]
        assert [p.raw for p in stored.phones] == ["138 0013 8000", "+86 (139) 1234-5678"]
        assert out.email == "Wang.Wei@example.com"
        assert stored.name_key == "wangwei ww"
        assert out.owner_id == staff.sales1.id and out.team_id == staff.team_a
        assert out.tags == ["vip", "wechat"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "A", "phones": ["12345"]}, "phone"),
        ({"name": "A", "emails": ["not-an-email"]}, "email"),
        ({"name": "A", "birthday": (date.today() + timedelta(days=3)).isoformat()}, "birthday"),
        ({"name": "A", "birthday": "31/31/1990"}, "birthday"),
        ({"name": ""}, "name"),
        ({"name": "A", "lifecycle_stage": "king"}, "lifecycle_stage"),
        ({"name": "A", "custom": {"nope": 1}}, "custom.nope"),
        ({"name": "A", "shoe_size": 44}, "shoe_size"),
    ],
)
def test_invalid_values_name_the_field(db, staff, data, field):
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        svc.create_customer(s, actor=staff.admin, data=data)
    assert err.value.field == field
    assert field in str(err.value)
    with db.transaction() as s:
        assert s.scalar(select(Customer.id)) is None  # nothing half-written


def test_custom_field_choice_validated(db, staff):
    from crm_core.customfields import define_field

    with db.transaction() as s:
        define_field(
            s,
            actor=staff.admin,
            key="plan",
            label_en="Plan",
            label_zh="套餐",
            field_type="choice",
            choices=["Basic", "Pro"],
        )
        define_field(s, actor=staff.admin, key="seats", label_en="Seats", field_type="number")
    cid, _ = _create(db, staff.admin, name="Acme", custom={"plan": "pro", "seats": "12"})
    with db.transaction() as s:
        assert svc.get_customer(s, actor=staff.admin, customer_id=cid).custom == {
            "plan": "Pro",
            "seats": 12,
        }
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        svc.create_customer(s, actor=staff.admin, data={"name": "B", "custom": {"plan": "Gold"}})
    assert err.value.field == "custom.plan" and "Gold" in err.value.message


def test_every_change_is_audited_with_old_and_new(db, staff):
    cid, version = _create(db, staff.sales1, name="Alice Smith", city="London")
    with db.transaction() as s:
        svc.update_customer(
            s,
            actor=staff.sales1,
            customer_id=cid,
            expected_version=version,
            changes={"city": "Leeds", "position": "CTO"},
        )
    with db.transaction() as s:
        svc.archive_customer(s, actor=staff.manager, customer_id=cid, reason="moved abroad")
        svc.restore_customer(s, actor=staff.manager, customer_id=cid)
    with db.transaction() as s:
        entries = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity_id == cid, AuditEntry.entity_type == "customer")
            .order_by(AuditEntry.id)
        ).all()
        assert [e.action for e in entries] == [
            "customer.create",
            "customer.update",
            "customer.archive",
            "customer.restore",
        ]
        update = entries[1]
        assert update.actor_id == staff.sales1.id
        assert update.changes == {"city": ["London", "Leeds"], "position": [None, "CTO"]}
        assert entries[2].changes["archive_reason"] == [None, "moved abroad"]


def test_stale_edit_raises_conflict_and_overwrites_nothing(db, staff):
    cid, version = _create(db, staff.sales1, name="Bob Stone", city="Paris")
    with db.transaction() as s:
        svc.update_customer(
            s,
            actor=staff.sales1,
            customer_id=cid,
            expected_version=version,
            changes={"city": "Lyon"},
        )
    with pytest.raises(ConflictError) as err, db.transaction() as s:
        svc.update_customer(
            s,
            actor=staff.manager,
            customer_id=cid,
            expected_version=version,
            changes={"city": "Nice"},
        )
    assert err.value.current == {"city": "Lyon"} and err.value.attempted == {"city": "Nice"}
    with db.transaction() as s:
        assert s.get(Customer, cid).city == "Lyon"


def test_concurrent_sessions_cannot_both_write_the_same_version(db, staff):
    cid, version = _create(db, staff.admin, name="Race Condition")
    s1, s2 = db.session(), db.session()
    try:
        with s1.begin():
            svc.update_customer(
                s1,
                actor=staff.admin,
                customer_id=cid,
                expected_version=version,
                changes={"city": "A"},
            )
        with pytest.raises(ConflictError), s2.begin():
            svc.update_customer(
                s2,
                actor=staff.admin,
                customer_id=cid,
                expected_version=version,
                changes={"city": "B"},
            )
    finally:
        s1.close()
        s2.close()


def test_role_access_and_forged_ids(db, staff):
    mine, v1 = _create(db, staff.sales1, name="Sales One Customer")
    theirs, v2 = _create(db, staff.sales2, name="Sales Two Customer")
    lead, _ = _create(db, staff.admin, name="Unowned Lead", lifecycle_stage="lead")
    with db.transaction() as s:
        # sales sees own customers and unowned leads, never another's (forged id -> NotFound)
        assert (
            svc.get_customer(s, actor=staff.sales1, customer_id=mine).name == "Sales One Customer"
        )
        assert svc.get_customer(s, actor=staff.sales1, customer_id=lead).id == lead
        with pytest.raises(NotFound):
            svc.get_customer(s, actor=staff.sales1, customer_id=theirs)
        with pytest.raises(NotFound):
            svc.update_customer(
                s,
                actor=staff.sales1,
                customer_id=theirs,
                expected_version=v2,
                changes={"city": "X"},
            )
        names = {c.name for c in svc.list_customers(s, actor=staff.sales1).items}
        assert names == {"Sales One Customer", "Unowned Lead"}
        # manager of team A sees team A only
        names = {c.name for c in svc.list_customers(s, actor=staff.manager).items}
        assert names == {"Sales One Customer"}
        # analyst sees everyone masked and may change nothing
        out = svc.get_customer(s, actor=staff.analyst, customer_id=mine)
        assert out.name == "S**** O** C*******" and out.field_mode == "masked"
        with pytest.raises(PermissionDenied):
            svc.update_customer(
                s, actor=staff.analyst, customer_id=mine, expected_version=v1, changes={"city": "X"}
            )
        with pytest.raises(PermissionDenied):
            svc.create_customer(s, actor=staff.analyst, data={"name": "x"})
        # support sees contact fields only
        with pytest.raises(PermissionDenied):
            svc.archive_customer(s, actor=staff.support, customer_id=mine, reason="x")
        with pytest.raises(PermissionDenied):
            svc.archive_customer(s, actor=staff.sales1, customer_id=mine, reason="x")
        # sales cannot give a customer to someone else
        with pytest.raises(PermissionDenied):
            svc.create_customer(
                s, actor=staff.sales1, data={"name": "x", "owner_id": staff.sales2.id}
            )


def test_support_sees_contact_fields_only(db, staff):
    cid, _ = _create(
        db,
        staff.admin,
        name="Carol",
        phones=["13800138000"],
        birthday="1990-01-02",
        value_tier="A",
        notes="likes tea",
    )
    with db.transaction() as s:
        out = svc.get_customer(s, actor=staff.support, customer_id=cid)
    assert out.name == "Carol" and out.phone == "+8613800138000"
    assert out.birthday is None and out.value_tier is None and out.notes is None
    assert out.field_mode == "contact"


def test_archive_and_restore(db, staff):
    cid, _ = _create(db, staff.sales1, name="Dora Archive")
    with pytest.raises(InvalidInput), db.transaction() as s:
        svc.archive_customer(s, actor=staff.manager, customer_id=cid, reason="  ")
    with db.transaction() as s:
        svc.archive_customer(s, actor=staff.manager, customer_id=cid, reason="duplicate account")
    with db.transaction() as s:
        assert svc.list_customers(s, actor=staff.admin).items == []
        assert svc.search_customers(s, actor=staff.admin, query="Dora") == []
        archived = svc.list_customers(
            s, actor=staff.admin, filters=svc.CustomerFilter(archived=True)
        ).items
        assert [(c.id, c.archive_reason, c.archived_by_id) for c in archived] == [
            (cid, "duplicate account", staff.manager.id)
        ]
        with pytest.raises(ConflictError):
            svc.update_customer(
                s,
                actor=staff.admin,
                customer_id=cid,
                expected_version=archived[0].version,
                changes={"city": "x"},
            )
    with db.transaction() as s:
        svc.restore_customer(s, actor=staff.manager, customer_id=cid)
    with db.transaction() as s:
        assert [c.id for c in svc.search_customers(s, actor=staff.admin, query="Dora")] == [cid]


@pytest.mark.parametrize(
    "query",
    [
        "王伟",
        "wangwei",
        "wang wei",
        "Wang",
        "138 0013 8000",
        "+86-138-0013-8000",
        "13800138000",
        "wei@example",
        "王",
        "wangw",
        "0013 8000",
        "星辰科技",
    ],
)
def test_search_by_name_pinyin_phone_email(db, staff, query):
    target, _ = _create(
        db,
        staff.admin,
        name="王伟",
        phones=["13800138000"],
        emails=["wei@example.com"],
        company_name="杭州星辰科技有限公司",
    )
    _create(db, staff.admin, name="John Smith", phones=["+1 415 555 2671"], emails=["js@acme.com"])
    with db.transaction() as s:
        hits = [c.id for c in svc.search_customers(s, actor=staff.admin, query=query)]
    assert hits == [target]


def test_search_text_holds_each_part_once_and_still_finds_every_part(db, staff):
    cid, _ = _create(
        db,
        staff.admin,
        name="Hahn Manufacturing Ltd",
        kind="company",
        company_name="Hahn Manufacturing Ltd",
        phones=["+44 20 7946 0018"],
        emails=["Sales@Hahn.example"],
    )
    with db.transaction() as s:
        stored = s.get(Customer, cid).search_text
        # the Latin name is its own pinyin key and the company name; the national number
        # 2079460018 is the tail of the E.164 digits
        assert stored == "hahn manufacturing ltd sales@hahn.example 442079460018"
        for query in ("manufacturing", "hahn manu", "2079 4600", "+44 20 7946 0018", "sales@hahn"):
            hits = [c.id for c in svc.search_customers(s, actor=staff.admin, query=query)]
            assert hits == [cid], query


def test_keyset_paging_visits_every_row_once(db, staff):
    for i in range(23):
        _create(db, staff.admin, name=f"Person {i:02d}")
    seen, cursor = [], None
    with db.transaction() as s:
        while True:
            page = svc.list_customers(
                s, actor=staff.admin, sort="name", descending=False, cursor=cursor, limit=10
            )
            seen += [c.name for c in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
    assert seen == [f"Person {i:02d}" for i in range(23)]


@pytest.mark.parametrize(("query", "expected"), [("小明", "王小明"), ("欧阳", "欧阳娜娜"),
                                                  ("阳娜", "欧阳娜娜"), ("ln", "李娜"), ("wxm", "王小明")])  # fmt: skip
def test_two_character_fragments_match_inside_chinese_names(db, staff, query, expected):
    ids = {}
    for name in ("王小明", "欧阳娜娜", "李娜", "小明 Smith", "Xiao Ming"):
        ids[name], _ = _create(db, staff.admin, name=name)
    with db.transaction() as s:
        hits = [c.name for c in svc.search_customers(s, actor=staff.admin, query=query)]
    assert expected in hits
    # "小明 Smith" also starts with 小明; nothing without the fragment is returned
    assert all(query in n or query in svc.pinyin_key(n).replace(" ", "") or n == expected
               for n in hits)  # fmt: skip
    assert "Xiao Ming" not in hits


def test_two_character_keys_are_added_to_existing_customers_by_the_migration(tmp_path):
    from sqlalchemy import text

    from crm_core.migrate import upgrade
    from crm_core.users import get_system_user

    db = Database(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    db.init()
    with db.transaction() as s:
        cid = svc.create_customer(s, actor=get_system_user(s), data={"name": "王小明"}).id
    with db.engine.begin() as conn:  # as the revision before 0020 left it: no short keys
        conn.execute(text("UPDATE customers SET search_text = '王小明 wangxiaoming wxm'"))
        conn.execute(
            text(
                "UPDATE alembic_version SET version_num = '0009' "
                "WHERE version_num IN ('0020', '0048', '0049')"  # this branch's head
            )
        )
    with db.transaction() as s:
        assert svc.search_customers(s, actor=get_system_user(s), query="小明") == []
    upgrade(db.engine)
    with db.transaction() as s:
        hits = svc.search_customers(s, actor=get_system_user(s), query="小明")
    assert [c.id for c in hits] == [cid]
    db.dispose()


def test_the_search_index_keeps_no_column_sizes_and_survives_a_downgrade(sqlite_db):
    from alembic import command
    from sqlalchemy import text

    from crm_core.migrate import alembic_config, upgrade
    from crm_core.users import get_system_user

    def docsize_table() -> bool:
        with sqlite_db.engine.connect() as conn:
            found = "SELECT 1 FROM sqlite_master WHERE name = 'customer_fts_docsize'"
            return conn.execute(text(found)).scalar() is not None

    with sqlite_db.transaction() as s:
        first = svc.create_customer(s, actor=get_system_user(s), data={"name": "周杰伦"}).id
    assert not docsize_table()  # revision 0048: FTS5 columnsize=0
    cfg = alembic_config(sqlite_db.engine)
    with sqlite_db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0048-1")
    assert docsize_table()
    with sqlite_db.transaction() as s:  # written while the older index is in place
        second = svc.create_customer(s, actor=get_system_user(s), data={"name": "周润发"}).id
    upgrade(sqlite_db.engine)
    assert not docsize_table()
    with sqlite_db.engine.connect() as conn:
        check = "INSERT INTO customer_fts(customer_fts, rank) VALUES ('integrity-check', 1)"
        conn.execute(text(check))  # raises if the index and the customers disagree
    with sqlite_db.transaction() as s:
        actor = get_system_user(s)
        hits = svc.search_customers(s, actor=actor, query="zhou")
        assert sorted(c.id for c in hits) == [first, second]
        assert [c.id for c in svc.search_customers(s, actor=actor, query="润发")] == [second]


def test_the_search_index_keeps_no_positions_and_finds_fragments_as_written(sqlite_db):
    """Revision 0049: FTS5 ``detail=none``; ``LIKE`` takes the candidates from the index and
    checks the fragment, so ``_`` and ``%`` in a fragment are characters, not wildcards; a
    downgrade brings positions back and the search finds the same records."""
    from alembic import command
    from sqlalchemy import text

    from crm_core.migrate import alembic_config, upgrade
    from crm_core.users import get_system_user

    def index_sql() -> str:
        with sqlite_db.engine.connect() as conn:
            found = "SELECT sql FROM sqlite_master WHERE name = 'customer_fts'"
            return conn.execute(text(found)).scalar()

    names = ("Ann_Bell", "AnnxBell", "Cara 50%off", "Cara 500ff", "王伟", "王小伟")
    with sqlite_db.transaction() as s:
        actor = get_system_user(s)
        ids = {n: svc.create_customer(s, actor=actor, data={"name": n}).id for n in names}

    def found(query: str) -> list[str]:
        with sqlite_db.transaction() as s:
            hits = svc.search_customers(s, actor=get_system_user(s), query=query)
            return sorted(c.name for c in hits)

    def check() -> None:
        assert found("n_b") == ["Ann_Bell"]
        assert found("nxb") == ["AnnxBell"]
        assert found("0%o") == ["Cara 50%off"]
        assert found("ann bell") == ["Ann_Bell", "AnnxBell"]  # both fragments, any order
        assert found("wang wei") == ["王伟", "王小伟"]  # fragments, or joined as "wangwei"
        assert found("wangwei") == ["王伟"]
        assert found("zzz") == []

    assert "detail=none" in index_sql()
    check()
    cfg = alembic_config(sqlite_db.engine)
    with sqlite_db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "0049-1")
    assert "detail=none" not in index_sql()
    check()
    upgrade(sqlite_db.engine)
    assert "detail=none" in index_sql()
    with sqlite_db.engine.connect() as conn:
        check_sql = "INSERT INTO customer_fts(customer_fts, rank) VALUES ('integrity-check', 1)"
        conn.execute(text(check_sql))  # raises if the index and the customers disagree
    check()
    assert set(ids) == set(names)
