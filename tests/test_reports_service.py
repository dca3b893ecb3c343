"""Service (tickets) and activity (interactions, overdue tasks) reports by hand
(see reports_dataset; NOW is 2026-06-15 12:00 UTC)."""

from __future__ import annotations

import math
from datetime import date

import pytest
from reports_dataset import NOW, build

from crm_core import reports


@pytest.fixture
def data(db, staff):
    return build(db, staff)


def test_tickets_by_kind_and_status(db, staff, data):
    with db.transaction() as s:
        df = reports.tickets_by_status(s, actor=staff.admin)
    assert df.values.tolist() == [
        ["complaint", "open", 1],
        ["feedback", "closed", 1],
        ["request", "closed", 1],
        ["request", "resolved", 1],
    ]


def test_resolution_time_and_satisfaction(db, staff, data):
    with db.transaction() as s:
        df = reports.ticket_resolution(s, actor=staff.admin).set_index("kind")
        scores = reports.satisfaction_scores(s, actor=staff.admin)
    complaint = df.loc["complaint"]
    assert (complaint["tickets"], complaint["open"], complaint["resolved"]) == (1, 1, 0)
    assert math.isnan(complaint["avg_hours_to_resolve"]) and complaint["rated"] == 0
    request = df.loc["request"]
    assert (request["tickets"], request["resolved"], request["rated"]) == (2, 2, 2)
    assert request["avg_hours_to_resolve"] == pytest.approx(18.0)  # 12 h and 24 h
    assert request["max_hours_to_resolve"] == pytest.approx(24.0)
    assert request["avg_satisfaction"] == 4.5
    assert df.loc["feedback", "avg_hours_to_resolve"] == pytest.approx(6.0)
    assert dict(zip(scores["score"], scores["tickets"], strict=True)) == {
        1: 0,
        2: 1,
        3: 0,
        4: 1,
        5: 1,
    }
    assert scores.set_index("score").loc[5, "share"] == pytest.approx(1 / 3)


def test_ticket_reports_follow_access_and_dates(db, staff, data):
    with db.transaction() as s:
        sales1 = reports.tickets_by_status(s, actor=staff.sales1)
        april_on = reports.ticket_resolution(
            s, actor=staff.admin, filters=reports.ReportFilter(date_from=date(2026, 4, 1))
        )
    assert sales1["tickets"].sum() == 2  # c1 and c2's requests
    assert sorted(april_on["kind"]) == ["complaint", "feedback"]


def test_interactions_by_month_user_and_kind(db, staff, data):
    with db.transaction() as s:
        df = reports.interactions_by_month(s, actor=staff.admin)
        sales2 = reports.interactions_by_month(s, actor=staff.sales2)
    assert df[["month", "user", "kind", "interactions"]].values.tolist() == [
        ["2026-01", "sales1", "call", 1],
        ["2026-04", "sales1", "email", 1],
        ["2026-04", "sales1", "meeting", 1],
        ["2026-06", "sales2", "call", 1],
    ]
    assert sales2[["month", "user", "interactions"]].values.tolist() == [["2026-06", "sales2", 1]]


def test_overdue_tasks(db, staff, data):
    with db.transaction() as s:
        admin = reports.overdue_tasks(s, actor=staff.admin, now=NOW)
        sales1 = reports.overdue_tasks(s, actor=staff.sales1, now=NOW)
        zj = reports.overdue_tasks(
            s, actor=staff.admin, now=NOW, filters=reports.ReportFilter(province="浙江")
        )
    t = data.tasks
    assert list(admin["task_id"]) == [t["t1"], t["t5"], t["t2"]]  # most overdue first
    assert list(admin["days_overdue"]) == pytest.approx([14.0, 5.0, 1.0])
    assert list(admin["assignee"]) == ["sales1", "admin", "sales2"]
    # sales1 sees the task on their customer, not the admin's own task or sales2's
    assert list(sales1["task_id"]) == [t["t1"]]
    # a customer filter leaves out tasks about no customer
    assert list(zj["task_id"]) == [t["t1"]]
