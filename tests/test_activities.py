"""A customer's history: interactions, deals, orders, contracts, tickets, tasks, loyalty and the
timeline, with access checks and audit entries, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_core import activities as act
from crm_core import customers as svc
from crm_core.errors import ConflictError, InvalidInput, NotFound, PermissionDenied
from crm_core.models import AuditEntry, Customer


@pytest.fixture
def cust(db, staff):
    with db.transaction() as s:
        return svc.create_customer(s, actor=staff.sales1, data={"name": "李娜"}).id


def test_interaction_updates_last_contact_without_bumping_version(db, staff, cust):
    when = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    with db.transaction() as s:
        version = s.get(Customer, cust).version
        act.log_interaction(
            s,
            actor=staff.sales1,
            customer_id=cust,
            kind="call",
            subject="Intro call",
            occurred_at=when,
        )
    with db.transaction() as s:
        c = s.get(Customer, cust)
        assert c.last_contact_at == when and c.version == version
        assert [
            i.subject for i in act.list_interactions(s, actor=staff.sales1, customer_id=cust)
        ] == ["Intro call"]
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        act.log_interaction(s, actor=staff.sales1, customer_id=cust, kind="telepathy", subject="x")
    assert err.value.field == "kind"


def test_support_logs_interactions_and_tickets_but_not_deals(db, staff, cust):
    with db.transaction() as s:
        act.log_interaction(s, actor=staff.support, customer_id=cust, kind="chat", subject="Help")
        ticket = act.create_ticket(
            s,
            actor=staff.support,
            customer_id=cust,
            kind="complaint",
            subject="Late delivery",
            priority="high",
        )
        with pytest.raises(PermissionDenied):
            act.create_deal(s, actor=staff.support, customer_id=cust, title="x")
    with db.transaction() as s:
        act.add_ticket_note(s, actor=staff.support, ticket_id=ticket.id, body="Called the courier")
        closed = act.close_ticket(s, actor=staff.support, ticket_id=ticket.id, satisfaction=4)
        assert closed.status == "closed" and closed.resolved_at is not None
        with pytest.raises(InvalidInput):
            act.update_ticket(s, actor=staff.support, ticket_id=ticket.id, satisfaction=9)


def test_deal_moves_through_the_pipeline_and_is_audited(db, staff, cust):
    with db.transaction() as s:
        deal = act.create_deal(
            s,
            actor=staff.sales1,
            customer_id=cust,
            title="ERP licence",
            amount="12500.50",
            currency="cny",
        )
        assert deal.amount == Decimal("12500.50") and deal.currency == "CNY"
        deal_id, version = deal.id, deal.version
    with db.transaction() as s:
        act.move_deal(
            s, actor=staff.sales1, deal_id=deal_id, stage="proposal", expected_version=version
        )
    with pytest.raises(ConflictError), db.transaction() as s:
        act.move_deal(s, actor=staff.sales1, deal_id=deal_id, stage="won", expected_version=version)
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        act.move_deal(s, actor=staff.sales1, deal_id=deal_id, stage="lost")
    assert err.value.field == "reason"
    with db.transaction() as s:
        deal = act.move_deal(
            s, actor=staff.sales1, deal_id=deal_id, stage="lost", reason="Chose a competitor"
        )
        assert deal.status == "lost" and deal.closed_at is not None
        moves = s.scalars(select(AuditEntry).where(AuditEntry.action == "deal.move")).all()
        assert [m.changes["stage"] for m in moves] == [["new", "proposal"], ["proposal", "lost"]]
        # sales2 cannot see sales1's deal, whatever id it passes
        with pytest.raises(NotFound):
            act.move_deal(s, actor=staff.sales2, deal_id=deal_id, stage="new")
        assert act.list_deals(s, actor=staff.sales2) == []
        assert [d.id for d in act.list_deals(s, actor=staff.manager)] == [deal_id]


def test_tasks_overdue_first_complete_and_reschedule(db, staff, cust):
    now = datetime.now(UTC)
    with db.transaction() as s:
        later = act.create_task(
            s,
            actor=staff.sales1,
            customer_id=cust,
            title="Send quote",
            due_at=now + timedelta(days=2),
        )
        overdue = act.create_task(
            s,
            actor=staff.sales1,
            customer_id=cust,
            title="Call back",
            due_at=now - timedelta(days=1),
        )
        with pytest.raises(PermissionDenied):
            act.create_task(s, actor=staff.sales1, title="x", assignee_id=staff.sales2.id)
    with db.transaction() as s:
        assert [t.title for t in act.list_tasks(s, actor=staff.sales1)] == [
            "Call back",
            "Send quote",
        ]
        act.complete_task(s, actor=staff.sales1, task_id=overdue.id)
        act.reschedule_task(s, actor=staff.sales1, task_id=later.id, due_at=now + timedelta(days=5))
        with pytest.raises(NotFound):  # another sales user's task does not exist for sales2
            act.complete_task(s, actor=staff.sales2, task_id=later.id)
    with db.transaction() as s:
        assert [t.title for t in act.list_tasks(s, actor=staff.sales1)] == ["Send quote"]


def test_orders_contracts_loyalty_and_timeline(db, staff, cust):
    with db.transaction() as s:
        order = act.create_order(
            s,
            actor=staff.sales1,
            customer_id=cust,
            total="99.90",
            ordered_at=datetime(2026, 1, 2, tzinfo=UTC),
        )
        act.add_payment(s, actor=staff.sales1, order_id=order.id, amount="99.90")
        act.create_contract(
            s,
            actor=staff.sales1,
            customer_id=cust,
            title="Support 2026",
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
            value=1000,
        )
        with pytest.raises(InvalidInput):
            act.create_contract(
                s,
                actor=staff.sales1,
                customer_id=cust,
                title="bad",
                start_date=date(2026, 2, 1),
                end_date=date(2026, 1, 1),
            )
        act.add_points(s, actor=staff.sales1, customer_id=cust, points=100, reason="order")
        act.add_points(s, actor=staff.sales1, customer_id=cust, points=-40, reason="gift")
        with pytest.raises(InvalidInput):
            act.add_points(s, actor=staff.sales1, customer_id=cust, points=-100, reason="too much")
        assert act.points_balance(s, actor=staff.sales1, customer_id=cust) == 60
        act.log_interaction(
            s,
            actor=staff.sales1,
            customer_id=cust,
            kind="note",
            subject="Met",
            occurred_at=datetime(2025, 12, 1, tzinfo=UTC),
        )
    with db.transaction() as s:
        items = act.timeline(s, actor=staff.sales1, customer_id=cust)
        kinds = [i.kind for i in items]
        assert set(kinds) == {"order", "contract", "interaction"}
        assert items == sorted(items, key=lambda i: (i.at, i.id), reverse=True)
        support_view = {i.kind for i in act.timeline(s, actor=staff.support, customer_id=cust)}
        assert support_view == {"interaction"}
