"""The group counts (revision 0040) stay equal to a recount after order and customer changes,
and the reports that read them give what the straightforward queries give, for every role
(a manager sees only their team's customers, a sales rep only their own) and filter."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from reports_dataset import NOW
from sqlalchemy import delete, func, insert, select, update

from crm_core import reports
from crm_core.models import (
    Customer,
    GroupActivityCount,
    GroupCount,
    GroupLineCount,
    Interaction,
    Order,
)
from crm_core.reports import activity, churn, cohorts, revenue, rfm
from crm_core.reports._common import frame
from crm_core.reports.activity_groups import (
    activity_differences,
    compact_group_activity,
    rebuild_group_activity,
)
from crm_core.reports.customer_groups import customer_count_differences
from crm_core.reports.groups import (
    compact_group_counts,
    group_differences,
    group_scope,
    rebuild_group_counts,
)
from crm_core.reports.lines import compact_group_lines, line_differences, rebuild_line_rollups

STAGES = ["lead", "prospect", "customer", "vip", "dormant"]
FILTERS = [
    reports.ReportFilter(),
    reports.ReportFilter(include_archived=False),
    reports.ReportFilter(date_from=date(2024, 3, 15), date_to=date(2025, 11, 20)),
    reports.ReportFilter(date_from=date(2025, 1, 1), date_to=date(2025, 6, 30)),
    reports.ReportFilter(date_from=date(2025, 2, 3), date_to=date(2025, 2, 20)),
]


def _build(db, staff, seed: int = 7) -> list[int]:
    """Forty customers of random owners, teams, stages and archive state, 500 orders."""
    rng = random.Random(seed)
    owners = [staff.sales1.id, staff.sales2.id, staff.manager.id, None]
    stamp = datetime(2024, 1, 1, tzinfo=UTC)
    customers = []
    for i in range(40):
        owner = rng.choice(owners)
        customers.append(
            {
                "kind": "person",
                "name": f"Group {i}",
                "name_key": f"group {i}",
                "search_text": "",
                "lifecycle_stage": rng.choice(STAGES),
                "owner_id": owner,
                "team_id": rng.choice([staff.team_a, staff.team_b, None]),
                "province": "浙江" if i % 3 == 0 else None,
                "archived_at": stamp if rng.random() < 0.15 else None,
                "custom": {},
                "created_at": stamp,
                "updated_at": stamp,
                "version": 1,
            }
        )
    with db.transaction() as s:
        ids = list(s.scalars(insert(Customer).returning(Customer.id), customers))
    orders = []
    for i in range(500):
        when = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(
            days=rng.randrange(0, 880), hours=rng.randrange(24)
        )
        orders.append(
            {
                "customer_id": rng.choice(ids),
                "number": f"G-{i}",
                "ordered_at": when,
                "total": rng.randrange(100, 100_000) / 100,
                "currency": "CNY",
                "status": "cancelled" if rng.random() < 0.05 else "paid",
                # no product line and an empty one are two lines
                "product_line": rng.choice(["A", "B", "Hardware & more", None, ""]),
                "created_at": stamp,
                "updated_at": stamp,
                "version": 1,
            }
        )
    interactions = [
        {
            "customer_id": rng.choice(ids),
            "user_id": rng.choice([staff.sales1.id, staff.sales2.id, None]),
            "kind": rng.choice(["call", "email", "visit"]),
            "subject": "",
            "occurred_at": datetime(2024, 1, 1, tzinfo=UTC)
            + timedelta(days=rng.randrange(0, 880), hours=rng.randrange(24)),
            "created_at": stamp,
            "updated_at": stamp,
            "version": 1,
        }
        for _ in range(300)
    ]
    with db.transaction() as s:
        s.execute(insert(Order), orders)
        s.execute(insert(Interaction), interactions)
    return ids


def _exact(db) -> None:
    with db.transaction() as s:
        assert group_differences(s) == []
        assert line_differences(s) == []
        assert activity_differences(s) == []
        assert customer_count_differences(s) == []


def _reference_revenue(s, actor, f) -> pd.DataFrame:
    stmt = revenue._revenue_from_orders(s, actor, f, None)
    return revenue._typed(frame(s.execute(stmt), ["month", "orders", "revenue", "customers"]))


def _reference_lines(s, actor, f) -> pd.DataFrame:
    stmt = revenue._revenue_from_orders(s, actor, f, "product_line")
    columns = ["month", "product_line", "orders", "revenue", "customers"]
    return revenue._typed(frame(s.execute(stmt), columns))


def _compare_lines(db, actor, f) -> None:
    """Revenue by product line from the line roll-ups equals the query over the orders."""
    with db.transaction() as s:
        fast = reports.revenue_by_month(s, actor=actor, filters=f, by="product_line")
        want = _reference_lines(s, actor, f)
    pd.testing.assert_frame_equal(fast, want, rtol=1e-9, obj=f"lines {actor.username} {f}")


def _compare_activity(db, actor, f, monkeypatch) -> None:
    """Interactions by month from the group counts equal the query over the interactions."""
    with db.transaction() as s:
        fast = reports.interactions_by_month(s, actor=actor, filters=f)
        with monkeypatch.context() as m:
            m.setattr(activity, "group_scope", lambda *a, **k: None)
            want = reports.interactions_by_month(s, actor=actor, filters=f)
    pd.testing.assert_frame_equal(fast, want, obj=f"activity {actor.username} {f}")


def _compare(db, staff, monkeypatch) -> None:
    actors = [staff.admin, staff.manager, staff.sales1, staff.sales2, staff.analyst]
    extra = [
        reports.ReportFilter(owner_id=staff.sales1.id),
        reports.ReportFilter(team_id=staff.team_b),
    ]
    for actor in actors:
        for f in FILTERS + extra:
            with db.transaction() as s:
                assert group_scope(s, actor=actor, filters=f) is not None
                fast_revenue = reports.revenue_by_month(s, actor=actor, filters=f)
                fast_churn = reports.monthly_churn(s, actor=actor, filters=f, now=NOW)
                fast_cohorts = reports.cohort_retention(s, actor=actor, filters=f)
                with monkeypatch.context() as m:  # the straightforward queries
                    m.setattr(churn, "group_scope", lambda *a, **k: None)
                    m.setattr(churn, "MIN_ROLLUP_INACTIVE_DAYS", 10**6)
                    m.setattr(cohorts, "group_scope", lambda *a, **k: None)
                    want_revenue = _reference_revenue(s, actor, f)
                    want_churn = reports.monthly_churn(s, actor=actor, filters=f, now=NOW)
                    want_cohorts = reports.cohort_retention(s, actor=actor, filters=f)
            where = f"{actor.username} {f}"
            pd.testing.assert_frame_equal(fast_revenue, want_revenue, rtol=1e-9, obj=where)
            pd.testing.assert_frame_equal(fast_churn, want_churn, obj=where)
            pd.testing.assert_frame_equal(fast_cohorts, want_cohorts, obj=where)
            assert fast_cohorts.attrs == want_cohorts.attrs
            _compare_rfm(db, actor, f, monkeypatch)
            _compare_lines(db, actor, f)
            # a province filter reads the customer-line roll-up instead of the group lines
            _compare_lines(db, actor, f.with_(province="浙江"))
            _compare_activity(db, actor, f, monkeypatch)


def _compare_rfm(db, actor, f, monkeypatch) -> None:
    """RFM scored in numpy equals RFM scored by window functions in SQL."""
    with db.transaction() as s:
        fast_segments = reports.rfm_segments(s, actor=actor, filters=f, now=NOW)
        fast_top = reports.rfm_scores(s, actor=actor, filters=f, now=NOW, limit=15)
        with monkeypatch.context() as m:
            m.setattr(rfm, "_totals_window", lambda *a, **k: (False, None))
            want_segments = reports.rfm_segments(s, actor=actor, filters=f, now=NOW)
            want_top = reports.rfm_scores(s, actor=actor, filters=f, now=NOW, limit=15)
    where = f"rfm {actor.username} {f}"
    pd.testing.assert_frame_equal(fast_segments, want_segments, rtol=1e-9, obj=where)
    pd.testing.assert_frame_equal(fast_top, want_top, rtol=1e-9, obj=where)


def test_group_reports_equal_the_straightforward_queries_for_every_role(db, staff, monkeypatch):
    _build(db, staff)
    _exact(db)
    with db.transaction() as s:
        admin = reports.revenue_by_month(s, actor=staff.admin)
        sales = reports.revenue_by_month(s, actor=staff.sales1)
    assert admin["orders"].sum() > sales["orders"].sum() > 0
    _compare(db, staff, monkeypatch)


def test_group_counts_follow_customer_and_order_changes(db, staff, monkeypatch):
    ids = _build(db, staff, seed=11)
    rng = random.Random(3)
    with db.transaction() as s:  # owners, teams, archive, stages of unowned leads, a merge
        s.execute(update(Customer).where(Customer.id.in_(ids[:8])).values(owner_id=None))
        s.execute(update(Customer).where(Customer.id.in_(ids[:4])).values(lifecycle_stage="lead"))
        s.execute(
            update(Customer).where(Customer.id.in_(ids[8:14])).values(owner_id=staff.sales1.id)
        )
        s.execute(update(Customer).where(Customer.id.in_(ids[14:18])).values(team_id=None))
        s.execute(
            update(Customer)
            .where(Customer.id.in_(ids[18:22]))
            .values(archived_at=datetime(2026, 1, 1, tzinfo=UTC))
        )
        s.execute(update(Customer).where(Customer.id == ids[22]).values(merged_into_id=ids[23]))
        s.execute(update(Customer).values(last_contact_at=NOW))  # not a group column
    _exact(db)
    with db.transaction() as s:  # orders moved, cancelled, re-dated, deleted, added
        order_ids = list(s.scalars(select(Order.id).order_by(Order.id)))
        for oid in rng.sample(order_ids, 40):
            s.execute(
                update(Order)
                .where(Order.id == oid)
                .values(
                    customer_id=rng.choice(ids),
                    ordered_at=datetime(2024, 6, 1, tzinfo=UTC)
                    + timedelta(days=rng.randrange(700)),
                )
            )
        s.execute(update(Order).where(Order.id.in_(order_ids[:20])).values(status="refunded"))
        s.execute(delete(Order).where(Order.id.in_(order_ids[20:40])))
        s.execute(update(Order).where(Order.id.in_(order_ids[40:50])).values(product_line=None))
        s.execute(update(Order).where(Order.id.in_(order_ids[50:55])).values(product_line="C"))
        s.execute(update(Order).where(Order.id.in_(order_ids[55:60])).values(total=12.34))
        contacts = list(s.scalars(select(Interaction.id).order_by(Interaction.id)))
        s.execute(update(Interaction).where(Interaction.id.in_(contacts[:10])).values(user_id=None))
        s.execute(
            update(Interaction).where(Interaction.id.in_(contacts[10:20])).values(kind="chat")
        )
        s.execute(
            update(Interaction)
            .where(Interaction.id.in_(contacts[20:30]))
            .values(customer_id=ids[0], occurred_at=datetime(2025, 3, 3, tzinfo=UTC))
        )
        s.execute(
            update(Interaction).where(Interaction.id.in_(contacts[30:40])).values(subject="x")
        )
        s.execute(delete(Interaction).where(Interaction.id.in_(contacts[40:50])))
        s.execute(
            update(Customer)
            .where(Customer.id.in_(ids[30:35]))
            .values(owner_id=staff.sales2.id, team_id=staff.team_b)
        )
    _exact(db)
    _compare(db, staff, monkeypatch)
    with db.transaction() as s:
        compact_group_counts(s)
        compact_group_lines(s)
        compact_group_activity(s)
    with db.transaction() as s:  # one row per key, none of them a pending delta
        keys = [getattr(GroupCount, k) for k in ("kind", "owner_id", "team_id", "k1", "k2")]
        keys += [GroupCount.archived, GroupCount.unowned_lead]
        assert (
            s.scalar(select(func.count()).select_from(GroupCount).where(GroupCount.delta == 1)) == 0
        )
        per_key = s.scalars(select(func.count()).select_from(GroupCount).group_by(*keys)).all()
        assert per_key and max(per_key) == 1
        lines = [getattr(GroupLineCount, k) for k in ("owner_id", "team_id", "archived")]
        lines += [GroupLineCount.unowned_lead, GroupLineCount.month, GroupLineCount.line]
        per_key = s.scalars(select(func.count()).select_from(GroupLineCount).group_by(*lines)).all()
        assert per_key and max(per_key) == 1
        g = GroupActivityCount
        keys = [g.owner_id, g.team_id, g.archived, g.unowned_lead, g.month, g.user_id, g.kind]
        per_key = s.scalars(select(func.count()).select_from(g).group_by(*keys)).all()
        assert per_key and max(per_key) == 1
    _exact(db)
    with db.transaction() as s:
        rebuild_group_counts(s)
        rebuild_line_rollups(s)
        rebuild_group_activity(s)
    _exact(db)
    _compare(db, staff, monkeypatch)


@pytest.mark.parametrize("f", [reports.ReportFilter(city="杭州"), reports.ReportFilter(tag="vip")])
def test_filters_on_other_customer_columns_fall_back(db, staff, f):
    with db.transaction() as s:
        assert group_scope(s, actor=staff.admin, filters=f) is None
