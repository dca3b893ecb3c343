"""The customer group counts (revision 0044) stay equal to a recount after customer inserts,
changes, merges and deletes (also inserts with the SQLite trigger set aside), and the
customer distributions that read them give what the count over the customers gives, for
every role and filter."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlalchemy import delete, func, insert, select, text, update

from crm_core import customers as svc
from crm_core import reports
from crm_core.bulk import bulk_create_customers
from crm_core.dedupe import merge as mg
from crm_core.models import Customer
from crm_core.models.reports import GroupCustomerCount
from crm_core.reports import distribution
from crm_core.reports.customer_groups import (
    COUNTED,
    INSERT_TRIGGER,
    compact_customer_counts,
    customer_count_differences,
    customer_counts_set_aside,
    rebuild_customer_counts,
)

INDUSTRIES = ["Retail", "Finance", "", None]
PLACES = [("浙江", "杭州"), ("浙江", "宁波"), ("浙江", None), (None, None), ("", ""), (None, "X")]
STAGES = ["lead", "prospect", "customer", "vip", "dormant"]
STAMP = datetime(2024, 1, 1, tzinfo=UTC)


def _rows(staff, rng: random.Random, n: int, start: int = 0) -> list[dict]:
    owners = [staff.sales1.id, staff.sales2.id, staff.manager.id, None]
    out = []
    for i in range(start, start + n):
        province, city = rng.choice(PLACES)
        out.append(
            {
                "kind": "person",
                "name": f"Count {i}",
                "name_key": f"count {i}",
                "search_text": "",
                "industry": rng.choice(INDUSTRIES),
                "province": province,
                "city": city,
                "lifecycle_stage": rng.choice(STAGES),
                "owner_id": rng.choice(owners),
                "team_id": rng.choice([staff.team_a, staff.team_b, None]),
                "archived_at": STAMP if rng.random() < 0.15 else None,
                "custom": {},
                "created_at": datetime(2024, 1 + i % 12, 1, tzinfo=UTC),
                "updated_at": STAMP,
                "version": 1,
            }
        )
    return out


def _build(db, staff, seed: int = 5) -> list[int]:
    rng = random.Random(seed)
    with db.transaction() as s:
        return list(s.scalars(insert(Customer).returning(Customer.id), _rows(staff, rng, 60)))


def _exact(db) -> None:
    with db.transaction() as s:
        assert customer_count_differences(s) == []


def _compare(db, staff, monkeypatch) -> None:
    """Every counted distribution equals the count over the customers, for every role and
    filter (filters the counts cannot answer fall back, and are compared too)."""
    actors = [staff.admin, staff.manager, staff.sales1, staff.sales2, staff.analyst]
    filters = [
        reports.ReportFilter(),
        reports.ReportFilter(owner_id=staff.sales1.id),
        reports.ReportFilter(team_id=staff.team_b),
        reports.ReportFilter(date_from=date(2024, 3, 1), date_to=date(2024, 8, 31)),
        reports.ReportFilter(province="浙江"),
    ]
    for actor in actors:
        for f in filters:
            for by in COUNTED:
                with db.transaction() as s:
                    fast = reports.customer_distribution(s, actor=actor, filters=f, by=by)
                    with monkeypatch.context() as m:
                        m.setattr(distribution, "COUNTED", {})
                        want = reports.customer_distribution(s, actor=actor, filters=f, by=by)
                pd.testing.assert_frame_equal(fast, want, obj=f"{by} {actor.username} {f}")


def test_distributions_from_the_counts_equal_the_customers_for_every_role(db, staff, monkeypatch):
    _build(db, staff)
    _exact(db)
    with db.transaction() as s:
        admin = reports.customer_distribution(s, actor=staff.admin, by="city")
        manager = reports.customer_distribution(s, actor=staff.manager, by="city")
        # the hand count: live customers, not archived, of the manager's team or their own
        live = (Customer.merged_into_id.is_(None), Customer.archived_at.is_(None))
        everyone = s.scalar(select(func.count()).where(*live))
        team = s.scalar(
            select(func.count()).where(
                *live,
                (Customer.team_id == staff.manager.team_id)
                | (Customer.owner_id == staff.manager.id),
            )
        )
        assert s.scalar(select(func.count()).select_from(GroupCustomerCount)) > 0
    assert int(admin["customers"].sum()) == everyone > int(manager["customers"].sum()) == team
    # no city and an empty one, no province and an empty one, are kept apart
    assert admin[["province", "city"]].isna().all(axis=1).sum() == 1
    assert ((admin["province"] == "") & (admin["city"] == "")).sum() == 1
    _compare(db, staff, monkeypatch)


def test_counts_follow_customer_changes_merges_and_deletes(db, staff, monkeypatch):
    ids = _build(db, staff, seed=9)
    rng = random.Random(4)
    with db.transaction() as s:
        s.execute(update(Customer).where(Customer.id.in_(ids[:8])).values(owner_id=None))
        s.execute(update(Customer).where(Customer.id.in_(ids[:4])).values(lifecycle_stage="lead"))
        s.execute(update(Customer).where(Customer.id.in_(ids[8:12])).values(team_id=None))
        s.execute(update(Customer).where(Customer.id.in_(ids[12:16])).values(archived_at=STAMP))
        s.execute(update(Customer).where(Customer.id.in_(ids[16:20])).values(archived_at=None))
        s.execute(update(Customer).where(Customer.id.in_(ids[20:24])).values(industry=None))
        s.execute(update(Customer).where(Customer.id.in_(ids[24:28])).values(industry="Mining"))
        s.execute(update(Customer).where(Customer.id.in_(ids[28:32])).values(city="温州"))
        s.execute(
            update(Customer).where(Customer.id.in_(ids[32:36])).values(province=None, city=None)
        )
        s.execute(update(Customer).where(Customer.id == ids[36]).values(merged_into_id=ids[37]))
        s.execute(update(Customer).values(last_contact_at=STAMP))  # not a counted column
        s.execute(delete(Customer).where(Customer.id.in_(ids[38:40])))
        for cid in rng.sample(ids[40:], 8):  # one row at a time, several columns at once
            s.execute(
                update(Customer)
                .where(Customer.id == cid)
                .values(
                    owner_id=staff.sales2.id,
                    team_id=staff.team_b,
                    lifecycle_stage=rng.choice(STAGES),
                    industry=rng.choice(INDUSTRIES),
                )
            )
    _exact(db)
    with db.transaction() as s:  # the merged customer back, then merged through the service
        s.execute(update(Customer).where(Customer.id == ids[36]).values(merged_into_id=None))
    _exact(db)
    with db.transaction() as s:
        created = svc.create_customer(
            s, actor=staff.admin, data={"name": "Svc", "industry": "Retail", "city": "杭州"}
        )
        merge = mg.merge_customers(
            s, actor=staff.admin, customer_ids=[ids[41], created.id], survivor_id=ids[41]
        )
        merge_id = merge.id
    _exact(db)
    with db.transaction() as s:
        mg.undo_merge(s, actor=staff.admin, merge_id=merge_id)
    _exact(db)
    _compare(db, staff, monkeypatch)
    with db.transaction() as s:
        compact_customer_counts(s)
    with db.transaction() as s:  # one row per key, none of them a pending delta
        g = GroupCustomerCount
        keys = [g.owner_id, g.team_id, g.archived, g.unowned_lead, g.dimension, g.value, g.city]
        assert s.scalar(select(func.count()).select_from(g).where(g.delta == 1)) == 0
        per_key = s.scalars(select(func.count()).select_from(g).group_by(*keys)).all()
        assert per_key and max(per_key) == 1
    _exact(db)
    with db.transaction() as s:
        s.execute(delete(GroupCustomerCount))
        assert customer_count_differences(s) != []
        rebuild_customer_counts(s)
    _exact(db)
    _compare(db, staff, monkeypatch)


def _trigger_exists(s) -> bool:
    if s.get_bind().dialect.name == "sqlite":
        sql = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = :n"
    else:
        sql = "SELECT count(*) FROM pg_trigger WHERE tgname = :n"
    return bool(s.scalar(text(sql), {"n": INSERT_TRIGGER}))


def test_bulk_inserts_with_the_trigger_set_aside_keep_the_counts(db, staff, monkeypatch):
    _build(db, staff, seed=2)
    rng = random.Random(8)
    with db.transaction() as s:
        with customer_counts_set_aside(s):
            # SQLite: no row trigger meanwhile; PostgreSQL: its statement trigger counts
            assert _trigger_exists(s) == (s.get_bind().dialect.name != "sqlite")
            s.execute(insert(Customer), _rows(staff, rng, 50, start=100))
            s.execute(update(Customer).where(Customer.id <= 5).values(industry="Updated"))
        assert _trigger_exists(s)
    _exact(db)
    # an error rolls the rows back, the trigger stays
    with pytest.raises(RuntimeError), db.transaction() as s, customer_counts_set_aside(s):
        s.execute(insert(Customer), _rows(staff, rng, 5, start=200))
        raise RuntimeError("stop")
    with db.transaction() as s:
        assert _trigger_exists(s)
    _exact(db)
    with db.transaction() as s:  # the service's bulk path, with the trigger in place
        bulk_create_customers(
            s,
            actor=staff.admin,
            rows=[{"name": f"Bulk {i}", "industry": "Retail", "city": "宁波"} for i in range(30)],
        )
    _exact(db)
    with db.transaction() as s:
        s.execute(update(Customer).where(Customer.name.like("Bulk %")).values(archived_at=STAMP))
    _exact(db)
    _compare(db, staff, monkeypatch)
