"""Revenue and customer distribution against hand-computed numbers (see reports_dataset)."""

from __future__ import annotations

import math
from datetime import date

import pandas as pd
import pytest
from reports_dataset import build

from crm_core import reports


def plain(values):
    """Missing values (NaN in pandas' string columns) as ``None``."""
    return [None if pd.isna(v) else v for v in values]


@pytest.fixture
def data(db, staff):
    return build(db, staff)


def test_revenue_by_month_counts_archived_history_not_cancelled_orders(db, staff, data):
    with db.transaction() as s:
        df = reports.revenue_by_month(s, actor=staff.admin)
    got = {m: (o, r, c) for m, o, r, c in df[["month", "orders", "revenue", "customers"]].values}
    assert got == {
        "2025-01": (3, 1140.0, 3),  # c1 100 + c2 1000 + archived c6 40
        "2025-02": (2, 250.0, 2),
        "2025-03": (1, 500.0, 1),
        "2025-06": (1, 500.0, 1),
        "2025-08": (1, 150.0, 1),
        "2025-10": (1, 150.0, 1),
        "2025-12": (1, 80.0, 1),
        "2026-01": (1, 300.0, 1),
        "2026-05": (1, 400.0, 1),
        "2026-06": (1, 250.0, 1),
    }  # the cancelled 999 order of 2026-02 is no revenue


def test_revenue_by_product_line_and_source(db, staff, data):
    with db.transaction() as s:
        lines = reports.revenue_by_month(s, actor=staff.admin, by="product_line")
        sources = reports.revenue_by_month(s, actor=staff.admin, by="source")
    jan = lines[lines["month"] == "2025-01"]
    assert set(zip(plain(jan["product_line"]), jan["revenue"], strict=True)) == {
        ("A", 100.0),
        ("B", 1000.0),
        (None, 40.0),
    }
    assert lines.groupby("product_line")["revenue"].sum().to_dict() == {
        "A": 100.0 + 200 + 150 + 150 + 500 + 400 + 50 + 80,
        "B": 300.0 + 1000 + 500 + 250,
    }
    assert sources.groupby("source")["revenue"].sum().to_dict() == {
        "web": 900.0 + 300.0 + 40.0,  # c1, c3, archived c6
        "referral": 2400.0,
        "event": 80.0,
    }


def test_revenue_respects_access_and_filters(db, staff, data):
    with db.transaction() as s:
        sales1 = reports.revenue_by_month(s, actor=staff.sales1)
        manager = reports.revenue_by_month(s, actor=staff.manager)
        vip = reports.revenue_by_month(
            s, actor=staff.admin, filters=reports.ReportFilter(tag="vip")
        )
        zj = reports.revenue_by_month(
            s, actor=staff.admin, filters=reports.ReportFilter(province="浙江")
        )
        shenzhen = reports.revenue_by_month(
            s, actor=staff.admin, filters=reports.ReportFilter(city="深圳", include_archived=False)
        )
        in_2026 = reports.revenue_by_month(
            s, actor=staff.admin, filters=reports.ReportFilter(date_from=date(2026, 1, 1))
        )
    assert sales1["revenue"].sum() == 900.0 + 2400.0  # c1 and c2 only
    assert manager["revenue"].sum() == 3300.0  # team A = sales1's customers
    assert vip["revenue"].sum() == 900.0 + 300.0  # c1 and c3
    assert zj["revenue"].sum() == 3300.0
    assert shenzhen["revenue"].sum() == 300.0  # c3; archived c6 left out
    assert list(in_2026["month"]) == ["2026-01", "2026-05", "2026-06"]


def test_year_on_year(db, staff, data):
    with db.transaction() as s:
        yoy = reports.revenue_yoy(
            s, actor=staff.admin, filters=reports.ReportFilter(date_from=date(2026, 1, 1))
        )
    rows = {(r.year, r.month): r for r in yoy.itertuples()}
    assert set(rows) == {(2026, 1), (2026, 5), (2026, 6)}
    assert rows[2026, 1].previous_year == 1140.0
    assert rows[2026, 1].yoy_growth == pytest.approx(300 / 1140 - 1)
    assert rows[2026, 6].yoy_growth == pytest.approx(-0.5)
    assert rows[2026, 5].previous_year == 0.0 and math.isnan(rows[2026, 5].yoy_growth)


def test_distribution_by_industry_city_and_stage(db, staff, data):
    with db.transaction() as s:
        industry = reports.customer_distribution(s, actor=staff.admin, by="industry")
        city = reports.customer_distribution(s, actor=staff.admin, by="city")
        stage = reports.customer_distribution(s, actor=staff.admin, by="lifecycle_stage")
        tier = reports.customer_distribution(s, actor=staff.admin, by="value_tier")
    # archived c6 (Retail) is not a current customer
    assert plain(industry["industry"]) == ["Finance", "Retail", None]
    assert list(industry["customers"]) == [2, 2, 1]
    assert list(industry["share"]) == [0.4, 0.4, 0.2]
    assert city.iloc[0].tolist()[:2] == ["广东", "广州"]
    assert set(zip(plain(city["city"]), city["customers"], strict=True)) == {
        ("广州", 1),
        ("深圳", 1),
        ("杭州", 1),
        ("宁波", 1),
        (None, 1),
    }
    assert dict(zip(stage["lifecycle_stage"], stage["customers"], strict=True)) == {
        "customer": 2,
        "vip": 1,
        "prospect": 1,
        "lead": 1,
    }
    assert dict(zip(plain(tier["value_tier"]), tier["customers"], strict=True)) == {
        "A": 2,
        "B": 1,
        "C": 1,
        None: 1,
    }


def test_distribution_for_sales_covers_own_customers_and_unowned_leads(db, staff, data):
    with db.transaction() as s:
        df = reports.customer_distribution(s, actor=staff.sales2, by="industry")
    assert plain(df["industry"]) == ["Finance", None]
    assert list(df["customers"]) == [2, 1]
    assert list(df["share"]) == pytest.approx([2 / 3, 1 / 3])
