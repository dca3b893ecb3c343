"""Churn, churn risk, RFM and cohort retention against hand-computed numbers
(see reports_dataset; NOW is 2026-06-15 12:00 UTC)."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
from reports_dataset import NOW, ORDERS, at, build

from crm_core import reports


@pytest.fixture
def data(db, staff):
    return build(db, staff)


# month: (active at start, new or returning, churned); inactive after 90 days without an order
EXPECTED_CHURN = {
    "2025-01": (0, 3, 0),  # c1, c2, c6 start
    "2025-02": (3, 1, 0),  # c3 starts
    "2025-03": (4, 0, 0),
    "2025-04": (4, 0, 1),  # c6: 2025-01-25 + 90 days
    "2025-05": (3, 0, 2),  # c1 (02-10 + 90), c3 (02-05 + 90)
    "2025-06": (1, 0, 0),
    "2025-07": (1, 0, 0),
    "2025-08": (1, 1, 1),  # c1 back on 08-15; c2 lapses on 08-30
    "2025-09": (1, 0, 0),
    "2025-10": (1, 0, 0),
    "2025-11": (1, 0, 0),
    "2025-12": (1, 1, 0),  # c4's first order
    "2026-01": (2, 0, 0),
    "2026-02": (2, 0, 0),  # the cancelled order does not count
    "2026-03": (2, 0, 1),  # c4 (12-01 + 90)
    "2026-04": (1, 0, 1),  # c1 (01-05 + 90)
    "2026-05": (0, 1, 0),  # c2 back
    "2026-06": (1, 1, 0),  # c3 back
}


def test_monthly_churn(db, staff, data):
    with db.transaction() as s:
        df = reports.monthly_churn(s, actor=staff.admin, now=NOW)
    got = {
        r.month: (r.active_at_start, r.new_or_returning, r.churned)
        for r in df.itertuples(index=False)
    }
    assert got == EXPECTED_CHURN
    rates = dict(zip(df["month"], df["churn_rate"], strict=True))
    assert rates["2025-05"] == pytest.approx(2 / 3)
    assert rates["2025-04"] == pytest.approx(0.25)
    assert rates["2026-06"] == 0.0 and math.isnan(rates["2026-05"])
    assert df.set_index("month").loc["2026-06", "active_at_end"] == 2


def test_monthly_churn_date_range_and_access(db, staff, data):
    with db.transaction() as s:
        f = reports.ReportFilter(date_from=date(2026, 3, 1), date_to=date(2026, 4, 30))
        window = reports.monthly_churn(s, actor=staff.admin, filters=f, now=NOW)
        sales1 = reports.monthly_churn(s, actor=staff.sales1, now=NOW)
    # history before the range still counts for who is active
    assert window[["month", "active_at_start", "churned"]].values.tolist() == [
        ["2026-03", 2, 1],
        ["2026-04", 1, 1],
    ]
    # sales1 sees c1 and c2 only
    assert int(sales1["new_or_returning"].sum()) == 4  # c1 twice, c2 twice
    assert sales1.set_index("month").loc["2025-03", "active_at_start"] == 2


def test_churn_risk_lists_reasons(db, staff, data):
    with db.transaction() as s:
        risk = reports.churn_risk(s, actor=staff.admin, now=NOW)
        zh = reports.churn_risk(s, actor=staff.admin, now=NOW, locale="zh")
    assert list(risk["customer_id"]) == [data.ids["c1"], data.ids["c3"]]
    c1, c3 = risk.iloc[0], risk.iloc[1]
    # c1: 3 orders in the 360 days before the last 90, none since; last contact 2026-01-05
    assert c1["reason_codes"] == "orders_dropped,no_contact"
    assert (c1["recent_orders"], c1["usual_orders"], c1["risk_score"]) == (0, 0.75, 2)
    assert c1["days_since_contact"] == pytest.approx(161.0)
    assert c1["name"] == "王小明" and c1["owner"] == "sales1"
    assert "no contact for 161 days" in c1["reasons"]
    # c3: a complaint on 2026-06-01
    assert (c3["reason_codes"], c3["recent_complaints"], c3["risk_score"]) == ("complaints", 1, 1)
    assert "1 complaint(s) in the last 90 days" in c3["reasons"]
    assert zh.iloc[0]["reasons"] != risk.iloc[0]["reasons"]  # written in Chinese


def test_churn_risk_for_sales_and_masked_for_analysts(db, staff, data):
    with db.transaction() as s:
        sales2 = reports.churn_risk(s, actor=staff.sales2, now=NOW)
        analyst = reports.churn_risk(s, actor=staff.analyst, now=NOW)
    assert list(sales2["customer_id"]) == [data.ids["c3"]]
    assert list(analyst["name"]) == ["王**", "B** J****"]


def _recency(key):
    return (NOW - max(o[0] for o in ORDERS[key])).total_seconds() / 86400


def test_rfm_scores_and_segments(db, staff, data):
    with db.transaction() as s:
        scores = reports.rfm_scores(s, actor=staff.admin, now=NOW)
        segments = reports.rfm_segments(s, actor=staff.admin, now=NOW)
    by_id = scores.set_index("customer_id")
    expected = {  # key: (frequency, monetary, rfm, segment)
        "c2": (4, 2400.0, "445", "champions"),
        "c1": (5, 900.0, "354", "loyal"),
        "c3": (2, 300.0, "533", "loyal"),
        "c4": (1, 80.0, "222", "hibernating"),  # frequency ties with c6: same F
        "c6": (1, 40.0, "121", "hibernating"),
    }
    assert list(scores["customer_id"]) == [data.ids[k] for k in expected]  # biggest first
    for key, (freq, money, rfm, segment) in expected.items():
        row = by_id.loc[data.ids[key]]
        assert (row["frequency"], row["monetary"], row["rfm"], row["segment"]) == (
            freq,
            money,
            rfm,
            segment,
        )
        assert row["recency_days"] == pytest.approx(_recency(key))
    seg = segments.set_index("segment")
    assert list(segments["segment"]) == [name for name, _ in reports.SEGMENTS]
    assert seg["customers"].to_dict() == {
        "champions": 1,
        "loyal": 2,
        "promising": 0,
        "at_risk": 0,
        "need_attention": 0,
        "hibernating": 2,
    }
    assert seg.loc["loyal", "revenue"] == 1200.0 and seg.loc["loyal", "share"] == 0.4
    assert seg.loc["loyal", "avg_recency_days"] == pytest.approx((161 + 14) / 2)
    assert seg.loc["hibernating", "avg_frequency"] == 1.0


def test_rfm_masks_names_for_analysts(db, staff, data):
    with db.transaction() as s:
        analyst = reports.rfm_scores(s, actor=staff.analyst, now=NOW)
        manager = reports.rfm_scores(s, actor=staff.manager, now=NOW)
    assert set(analyst["name"]) == {"A**** S****", "王**", "B** J****", "李*", "O** C*"}
    # the manager's team A holds c1 and c2; scores are ranks among those two
    assert list(manager["name"]) == ["Alice Smith", "王小明"]
    assert list(manager["rfm"]) == ["535", "353"]  # of two, the lower scores 3


def test_cohort_retention(db, staff, data):
    with db.transaction() as s:
        cohorts = reports.cohort_retention(s, actor=staff.admin)
    jan = cohorts[cohorts["cohort"] == "2025-01"].set_index("period")
    # c1, c2 and c6 first bought in January 2025; c2's order of 2026-05 is period 16
    assert jan["customers"].to_dict() == {0: 3, 1: 1, 2: 1, 5: 1, 7: 1, 9: 1, 12: 1}
    assert (jan["cohort_size"] == 3).all()
    assert jan.loc[1, "retention"] == pytest.approx(1 / 3)
    assert cohorts[cohorts["cohort"] != "2025-01"][
        ["cohort", "period", "customers"]
    ].values.tolist() == [
        ["2025-02", 0, 1],
        ["2025-12", 0, 1],
    ]
    matrix = reports.retention_matrix(cohorts)
    assert list(matrix.index) == ["2025-01", "2025-02", "2025-12"]
    assert matrix.loc["2025-01", 3] == 0.0  # nobody bought in month 3
    assert matrix.loc["2025-12", 6] == 0.0  # 2026-06 has passed: c4 did not buy
    assert matrix.loc["2025-02", 12] == 0.0
    assert matrix.loc["2025-01", 0] == 1.0


def test_cohorts_filtered_by_first_order_month(db, staff, data):
    with db.transaction() as s:
        f = reports.ReportFilter(date_from=date(2025, 2, 1), date_to=date(2025, 12, 31))
        cohorts = reports.cohort_retention(s, actor=staff.admin, filters=f)
    assert sorted(set(cohorts["cohort"])) == ["2025-02", "2025-12"]
    assert isinstance(reports.retention_matrix(cohorts), pd.DataFrame)


def test_order_after_now_is_not_history_for_churn(db, staff, data):
    from crm_core import activities

    with db.transaction() as s:
        activities.create_order(
            s, actor=staff.admin, customer_id=data.ids["c4"], total=10, ordered_at=at(2026, 7, 1)
        )
    with db.transaction() as s:
        df = reports.monthly_churn(s, actor=staff.admin, now=NOW)
    assert df["month"].iloc[-1] == "2026-06"


def _risk_dataset(db, staff, seed: int = 5) -> None:
    """Sixty customers of random owners, teams, stages, tags, cities and last contacts (some
    equal, some missing), with orders that rise, fall or stop and complaints."""
    import random
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from crm_core.models import Customer, Order, Tag, Ticket, customer_tags

    rng = random.Random(seed)
    stamp = datetime(2024, 1, 1, tzinfo=UTC)
    contacts = [None, NOW - timedelta(days=400), NOW - timedelta(days=200), NOW]
    rows = []
    for i in range(60):
        contact = rng.choice(contacts) if rng.random() < 0.5 else None
        if contact is None and rng.random() < 0.7:
            contact = NOW - timedelta(days=rng.randrange(0, 500))
        rows.append(
            {
                "kind": "person",
                "name": f"Risk {i}",
                "name_key": f"risk {i}",
                "search_text": "",
                "lifecycle_stage": rng.choice(["lead", "customer", "vip", "dormant"]),
                "owner_id": rng.choice([staff.sales1.id, staff.sales2.id, staff.manager.id, None]),
                "team_id": rng.choice([staff.team_a, staff.team_b, None]),
                "city": rng.choice(["杭州", "深圳"]),
                "archived_at": stamp if rng.random() < 0.1 else None,
                "last_contact_at": contact,
                "custom": {},
                "created_at": stamp,
                "updated_at": stamp,
                "version": 1,
            }
        )
    with db.transaction() as s:
        ids = list(s.scalars(insert(Customer).returning(Customer.id), rows))
        tag = Tag(name="risky")
        s.add(tag)
        s.flush()
        s.execute(insert(customer_tags), [{"customer_id": c, "tag_id": tag.id} for c in ids[::4]])
        orders, tickets = [], []
        for n, cid in enumerate(ids):
            for _ in range(rng.choice([0, 1, 2, 3, 6, 12])):
                days = rng.choice([rng.randrange(0, 90), rng.randrange(90, 450)])
                orders.append(
                    {
                        "customer_id": cid,
                        "number": f"R-{n}-{len(orders)}",
                        "ordered_at": NOW - timedelta(days=days, hours=rng.randrange(24)),
                        "total": 10,
                        "currency": "CNY",
                        "status": "cancelled" if rng.random() < 0.05 else "paid",
                        "created_at": stamp,
                        "updated_at": stamp,
                        "version": 1,
                    }
                )
            for _ in range(rng.choice([0, 0, 0, 1, 2])):
                tickets.append(
                    {
                        "customer_id": cid,
                        "kind": rng.choice(["complaint", "complaint", "request"]),
                        "subject": "Hm",
                        "status": "open",
                        "priority": "normal",
                        "created_at": NOW - timedelta(days=rng.randrange(0, 150)),
                        "updated_at": stamp,
                        "version": 1,
                    }
                )
        # orders on the windows' edges: at the start of the last 90 days, just before it, at
        # the start of the four windows before and just before that
        edges = [timedelta(days=90), timedelta(days=90, microseconds=1)]
        edges += [timedelta(days=450), timedelta(days=450, microseconds=1)]
        for n, cid in enumerate(ids[:12]):
            for k in range(3):
                orders.append(
                    {
                        "customer_id": cid,
                        "number": f"E-{n}-{k}",
                        "ordered_at": NOW - edges[(n + k) % 4],
                        "total": 10,
                        "currency": "CNY",
                        "status": "paid",
                        "created_at": stamp,
                        "updated_at": stamp,
                        "version": 1,
                    }
                )
        s.execute(insert(Order), orders)
        s.execute(insert(Ticket), tickets)


def test_churn_risk_scores_only_candidates_yet_lists_what_scoring_everyone_lists(
    db, staff, monkeypatch
):
    """The risk list scores the customers that can be in it; it equals the list scored over
    every customer for every role, filter and length (ties in last contact included)."""

    _risk_dataset(db, staff)
    filters = [
        reports.ReportFilter(),
        reports.ReportFilter(team_id=staff.team_b),
        reports.ReportFilter(owner_id=staff.sales1.id),
        reports.ReportFilter(city="杭州"),
        reports.ReportFilter(tag="risky"),
    ]
    with db.transaction() as s:
        every = reports.churn_risk(s, actor=staff.admin, now=NOW)
    codes = set(",".join(every["reason_codes"]).split(","))
    assert codes == {"orders_dropped", "no_contact", "complaints"}
    # silent-only customers (score 1, no complaint) are listed by last contact after the
    # others: lengths that end among them must not miss one the full scoring lists
    quiet = [i for i, codes in enumerate(every["reason_codes"]) if codes == "no_contact"]
    assert len(quiet) > 10 and quiet[0] > 3
    limits = (1, quiet[0] - 1, quiet[0] + 1, quiet[0] + 4, quiet[-3], 500)
    actors = [staff.admin, staff.manager, staff.sales1, staff.sales2, staff.analyst]
    _assert_narrowed_like_full(db, monkeypatch, actors, filters, limits)


@pytest.mark.parametrize("first, most", [(1, 10**9), (3, 10**9), (1, 6)])
def test_churn_risk_walk_by_last_contact_in_small_steps(db, staff, monkeypatch, first, most):
    """The risk list walks the customers by last contact step by step (doubling): tiny steps,
    and a walk that gives up and scores everyone, list what scoring everyone lists."""
    from crm_core.reports import churn

    _risk_dataset(db, staff)
    monkeypatch.setattr(churn, "RISK_WALK_FIRST", first)
    monkeypatch.setattr(churn, "RISK_WALK_MAX", most)
    with db.transaction() as s:
        every = reports.churn_risk(s, actor=staff.admin, now=NOW)
    quiet = [i for i, codes in enumerate(every["reason_codes"]) if codes == "no_contact"]
    both = [i for i, codes in enumerate(every["reason_codes"]) if codes.count(",") == 1]
    limits = sorted({1, 2, len(both), len(both) + 1, quiet[0], quiet[0] + 3, quiet[-1], 500})
    filters = [reports.ReportFilter(), reports.ReportFilter(team_id=staff.team_b)]
    actors = (staff.admin, staff.manager, staff.sales1)
    _assert_narrowed_like_full(db, monkeypatch, actors, filters, limits)


def _assert_narrowed_like_full(db, monkeypatch, actors, filters, limits) -> None:
    """The narrowed churn-risk list equals the one that scores every customer, for each
    actor, filter and list length."""
    from crm_core.reports import churn

    for actor in actors:
        for f in filters:
            for limit in limits:
                with db.transaction() as s:
                    fast = reports.churn_risk(s, actor=actor, filters=f, now=NOW, limit=limit)
                    with monkeypatch.context() as m:
                        m.setattr(churn, "NARROW_RISK_CANDIDATES", False)
                        want = reports.churn_risk(s, actor=actor, filters=f, now=NOW, limit=limit)
                pd.testing.assert_frame_equal(fast, want, obj=f"{actor.username} {f} {limit}")
