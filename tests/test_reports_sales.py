"""Sales funnel and sales performance against hand-computed numbers (see reports_dataset)."""

from __future__ import annotations

import math
from datetime import date

import pytest
from reports_dataset import build

from crm_core import reports
from crm_core.errors import PermissionDenied


@pytest.fixture
def data(db, staff):
    return build(db, staff)


def test_funnel_counts_reached_and_conversion(db, staff, data):
    with db.transaction() as s:
        df = reports.sales_funnel(s, actor=staff.admin)
    rows = df.set_index("stage")
    assert list(df["stage"]) == ["new", "qualified", "proposal", "negotiation", "won", "lost"]
    assert rows["deals"].to_dict() == {
        "new": 0,
        "qualified": 1,
        "proposal": 1,
        "negotiation": 1,
        "won": 2,
        "lost": 1,
    }
    assert rows.loc["won", "amount"] == 4000.0 and rows.loc["proposal", "amount"] == 2000.0
    # every deal reached "new"; a won deal passed every open stage
    assert rows["reached"].iloc[:5].tolist() == [6.0, 5.0, 4.0, 3.0, 2.0]
    assert math.isnan(rows.loc["lost", "reached"])
    assert math.isnan(rows.loc["new", "conversion"])
    assert rows.loc["qualified", "conversion"] == pytest.approx(5 / 6)
    assert rows.loc["won", "conversion"] == pytest.approx(2 / 3)


def test_performance_per_owner_and_team(db, staff, data):
    with db.transaction() as s:
        by_owner = reports.sales_performance(s, actor=staff.admin).set_index("owner")
        by_team = reports.sales_performance(s, actor=staff.admin, by="team").set_index("team")
    s1 = by_owner.loc["sales1"]
    assert (s1["deals"], s1["open_deals"], s1["won"], s1["lost"]) == (3, 0, 2, 1)
    assert s1["win_rate"] == pytest.approx(2 / 3)
    assert s1["won_amount"] == 4000.0 and s1["avg_deal_size"] == 2000.0
    assert s1["avg_cycle_days"] == pytest.approx(20.0)  # 30 and 10 days
    assert s1["team"] == "Team A"
    s2 = by_owner.loc["sales2"]
    assert (s2["deals"], s2["open_deals"], s2["won"]) == (3, 3, 0)
    assert math.isnan(s2["win_rate"]) and s2["pipeline_amount"] == 4000.0
    assert by_team.loc["Team A", "won_amount"] == 4000.0
    assert by_team.loc["Team B", "pipeline_amount"] == 4000.0
    kpis = reports.sales_kpis(by_owner.reset_index())
    assert kpis["deals"] == 6 and kpis["win_rate"] == pytest.approx(2 / 3)
    assert kpis["avg_deal_size"] == 2000.0 and kpis["avg_cycle_days"] == pytest.approx(20.0)


def test_sales_user_sees_only_own_deals(db, staff, data):
    with db.transaction() as s:
        funnel = reports.sales_funnel(s, actor=staff.sales1)
        perf = reports.sales_performance(s, actor=staff.sales1)
    assert int(funnel["deals"].sum()) == 3
    assert funnel.set_index("stage").loc["new", "reached"] == 3.0
    assert list(perf["owner"]) == ["sales1"]


def test_filters_owner_and_date_range(db, staff, data):
    with db.transaction() as s:
        f = reports.ReportFilter(owner_id=staff.sales2.id)
        assert int(reports.sales_funnel(s, actor=staff.admin, filters=f)["deals"].sum()) == 3
        since_april = reports.ReportFilter(date_from=date(2026, 4, 1))
        df = reports.sales_funnel(s, actor=staff.admin, filters=since_april)
        assert int(df["deals"].sum()) == 3  # d4, d5, d6 were created from April on


def test_support_may_not_read_reports(db, staff, data):
    with pytest.raises(PermissionDenied), db.transaction() as s:
        reports.sales_funnel(s, actor=staff.support)
