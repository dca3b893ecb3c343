"""A manager's reports over deals, tickets, interactions and orders read the ids of their
team's and their own customers from the indexes (SQLite, ``filters._team_customer_ids``)
instead of joining every record to its customer: the same frames as the join, for a manager
with a team and one without, with every filter, after merges and archiving."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
from reports_dataset import build
from sqlalchemy import update

from crm_core import reports
from crm_core.models import Customer, User
from crm_core.reports import filters as report_filters
from crm_core.reports import sales, service

FILTERS = [
    reports.ReportFilter(),
    reports.ReportFilter(date_from=date(2025, 3, 1), date_to=date(2026, 3, 31)),
    reports.ReportFilter(owner_id=None, include_archived=False),
    reports.ReportFilter(city="深圳"),
]

FRAMES = {
    "funnel": lambda s, a, f: reports.sales_funnel(s, actor=a, filters=f),
    "owners": lambda s, a, f: reports.sales_performance(s, actor=a, filters=f),
    "teams": lambda s, a, f: reports.sales_performance(s, actor=a, filters=f, by="team"),
    "tickets": lambda s, a, f: reports.tickets_by_status(s, actor=a, filters=f),
    "satisfaction": lambda s, a, f: reports.satisfaction_scores(s, actor=a, filters=f),
    "resolution": lambda s, a, f: service.ticket_resolution(s, actor=a, filters=f),
    "activity": lambda s, a, f: reports.interactions_by_month(s, actor=a, filters=f),
    "revenue": lambda s, a, f: reports.revenue_by_month(s, actor=a, filters=f),
}


def _compare(db, actor, monkeypatch) -> int:
    """Each frame with the team ids equals the frame with the join; returns how many frames
    took the team ids."""
    used = 0
    real = report_filters._team_customer_ids
    for f in FILTERS:
        for name, compute in FRAMES.items():
            calls: list[bool] = []

            def spy(*args, calls=calls, **kwargs):
                found = real(*args, **kwargs)
                calls.append(found is not None)
                return found

            with db.transaction() as s, monkeypatch.context() as m:
                m.setattr(report_filters, "_team_customer_ids", spy)
                fast = compute(s, actor, f)
                m.setattr(report_filters, "_team_customer_ids", lambda *a, **k: None)
                want = compute(s, actor, f)
            used += any(calls)
            pd.testing.assert_frame_equal(
                fast, want, check_exact=True, obj=f"{name} {actor.username} {f}"
            )
    return used


@pytest.mark.parametrize("team", [True, False], ids=["team", "no-team"])
def test_manager_reports_from_team_ids_equal_the_join(db, staff, monkeypatch, team):
    data = build(db, staff)
    with db.transaction() as s:  # the manager owns a customer of the other team
        s.execute(
            update(Customer).where(Customer.id == data.ids["c3"]).values(owner_id=staff.manager.id)
        )
        if not team:
            s.execute(update(User).where(User.id == staff.manager.id).values(team_id=None))
        manager = s.get(User, staff.manager.id)
        s.refresh(manager)
        s.expunge(manager)
    assert (manager.team_id is not None) == team
    used = _compare(db, manager, monkeypatch)
    with db.transaction() as s:  # a merged and an archived customer of the team
        s.execute(
            update(Customer)
            .where(Customer.id == data.ids["c2"])
            .values(merged_into_id=data.ids["c1"])
        )
        s.execute(
            update(Customer)
            .where(Customer.id == data.ids["c1"])
            .values(archived_at=datetime(2026, 1, 1, tzinfo=UTC))
        )
    used += _compare(db, manager, monkeypatch)
    with db.transaction() as s:
        funnel = sales.sales_funnel(s, actor=manager, filters=None)
        everyone = sales.sales_funnel(s, actor=staff.admin, filters=None)
    assert 0 < funnel["deals"].sum() < everyone["deals"].sum()
    # SQLite takes the team ids (deals and tickets always; orders and interactions where
    # the group counts do not answer); PostgreSQL keeps the join
    assert used >= (2 * 2 * 6 if db.dialect == "sqlite" else 0)
    if db.dialect != "sqlite":
        assert used == 0
