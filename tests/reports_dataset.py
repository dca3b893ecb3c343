"""A small fixed dataset for the report tests, built with the services (then back-dated, as
history is), with the numbers computed by hand in the test modules.

NOW is 2026-06-15 12:00 UTC. Every order is at 12:00 UTC.

| id | name        | owner  | industry | province/city | source   | stage    | tags |
| c1 | 王小明      | sales1 | Retail   | 浙江 杭州     | web      | customer | vip  |
| c2 | Alice Smith | sales1 | Retail   | 浙江 宁波     | referral | vip      |      |
| c3 | Bob Jones   | sales2 | Finance  | 广东 深圳     | web      | customer | vip  |
| c4 | 李四        | sales2 | Finance  | 广东 广州     | event    | prospect |      |
| c5 | Carol King  | -      | -        | -             | web      | lead     |      |
| c6 | Old Co      | sales2 | Retail   | 广东 深圳     | web      | customer | (archived) |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import update

from crm_core import activities as act
from crm_core import customers as svc
from crm_core.db import Database
from crm_core.models import Deal, Ticket

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def at(y: int, m: int, d: int, h: int = 12) -> datetime:
    return datetime(y, m, d, h, 0, tzinfo=UTC)


ORDERS = {
    "c1": [
        (at(2025, 1, 10), 100, "A", "online"),
        (at(2025, 2, 10), 200, "A", "online"),
        (at(2025, 8, 15), 150, "A", "online"),
        (at(2025, 10, 15), 150, "A", "online"),
        (at(2026, 1, 5), 300, "B", "store"),
    ],
    "c2": [
        (at(2025, 1, 20), 1000, "B", "store"),
        (at(2025, 3, 15), 500, "B", "store"),
        (at(2025, 6, 1), 500, "A", "online"),
        (at(2026, 5, 20), 400, "A", "online"),
    ],
    "c3": [(at(2025, 2, 5), 50, "A", "online"), (at(2026, 6, 1), 250, "B", "online")],
    "c4": [(at(2025, 12, 1), 80, "A", "online")],
    "c6": [(at(2025, 1, 25), 40, None, None)],
}


@dataclass
class Dataset:
    ids: dict[str, int]
    deals: dict[str, int]
    tasks: dict[str, int]


def build(db: Database, staff) -> Dataset:
    ids: dict[str, int] = {}
    with db.transaction() as s:
        rows = {
            "c1": (
                "王小明",
                staff.sales1,
                "Retail",
                "浙江",
                "杭州",
                "web",
                "customer",
                "A",
                ["vip"],
            ),
            "c2": (
                "Alice Smith",
                staff.sales1,
                "Retail",
                "浙江",
                "宁波",
                "referral",
                "vip",
                "A",
                [],
            ),
            "c3": (
                "Bob Jones",
                staff.sales2,
                "Finance",
                "广东",
                "深圳",
                "web",
                "customer",
                "B",
                ["vip"],
            ),
            "c4": ("李四", staff.sales2, "Finance", "广东", "广州", "event", "prospect", "C", []),
            "c5": ("Carol King", None, None, None, None, "web", "lead", None, []),
            "c6": ("Old Co", staff.sales2, "Retail", "广东", "深圳", "web", "customer", "C", []),
        }
        for key, (name, owner, industry, prov, city, source, stage, tier, tags) in rows.items():
            customer = svc.create_customer(
                s,
                actor=staff.admin,
                data={
                    "name": name,
                    "owner_id": owner.id if owner else None,
                    "industry": industry,
                    "province": prov,
                    "city": city,
                    "source": source,
                    "lifecycle_stage": stage,
                    "value_tier": tier,
                    "tags": tags,
                },
            )
            ids[key] = customer.id
        for key, orders in ORDERS.items():
            for when, total, line, channel in orders:
                act.create_order(
                    s,
                    actor=staff.admin,
                    customer_id=ids[key],
                    total=total,
                    ordered_at=when,
                    product_line=line,
                    channel=channel,
                )
        act.create_order(
            s,
            actor=staff.admin,
            customer_id=ids["c4"],
            total=999,
            ordered_at=at(2026, 2, 1),
            status="cancelled",
        )

        # interactions (who logged them matters for the activity report)
        act.log_interaction(
            s,
            actor=staff.sales1,
            customer_id=ids["c1"],
            kind="call",
            subject="renewal",
            occurred_at=at(2026, 1, 5),
        )
        act.log_interaction(
            s,
            actor=staff.sales1,
            customer_id=ids["c2"],
            kind="meeting",
            subject="review",
            occurred_at=at(2026, 4, 1),
        )
        act.log_interaction(
            s,
            actor=staff.sales1,
            customer_id=ids["c2"],
            kind="email",
            subject="offer",
            occurred_at=at(2026, 4, 15),
        )
        act.log_interaction(
            s,
            actor=staff.sales2,
            customer_id=ids["c3"],
            kind="call",
            subject="pilot",
            occurred_at=at(2026, 6, 10),
        )

        # deals: (customer, title, amount, final stage, created, closed)
        deal_rows = {
            "d1": ("c1", "Hangzhou rollout", 1000, "won", at(2026, 1, 10), at(2026, 2, 9)),
            "d2": ("c2", "Ningbo upgrade", 3000, "won", at(2026, 2, 1), at(2026, 2, 11)),
            "d3": ("c2", "Support plan", 500, "lost", at(2026, 3, 1), at(2026, 3, 20)),
            "d4": ("c3", "Shenzhen pilot", 2000, "proposal", at(2026, 4, 1), None),
            "d5": ("c4", "Guangzhou lead", 800, "qualified", at(2026, 5, 1), None),
            "d6": ("c3", "Card terminals", 1200, "negotiation", at(2026, 5, 10), None),
        }
        deals: dict[str, int] = {}
        for key, (cust, title, amount, stage, created, closed) in deal_rows.items():
            deal = act.create_deal(
                s, actor=staff.admin, customer_id=ids[cust], title=title, amount=amount
            )
            if stage != "new":
                act.move_deal(
                    s,
                    actor=staff.admin,
                    deal_id=deal.id,
                    stage=stage,
                    reason="price" if stage == "lost" else None,
                )
            s.execute(
                update(Deal)
                .where(Deal.id == deal.id)
                .values(created_at=created, closed_at=closed)
                .execution_options(synchronize_session=False)
            )
            deals[key] = deal.id

        # tickets: (customer, kind, created, resolved, status, satisfaction)
        ticket_rows = [
            ("c3", "complaint", at(2026, 6, 1), None, None, None),
            ("c1", "request", at(2026, 2, 1), at(2026, 2, 2, 0), "resolved", 4),
            ("c2", "request", at(2026, 3, 1), at(2026, 3, 2), "closed", 5),
            ("c4", "feedback", at(2026, 4, 1), at(2026, 4, 1, 18), "closed", 2),
        ]
        for cust, kind, created, resolved, status, score in ticket_rows:
            ticket = act.create_ticket(
                s, actor=staff.admin, customer_id=ids[cust], kind=kind, subject=f"{kind} {cust}"
            )
            if status:
                act.update_ticket(
                    s, actor=staff.admin, ticket_id=ticket.id, status=status, satisfaction=score
                )
            s.execute(
                update(Ticket)
                .where(Ticket.id == ticket.id)
                .values(created_at=created, resolved_at=resolved)
                .execution_options(synchronize_session=False)
            )

        # tasks
        tasks = {
            "t1": act.create_task(
                s,
                actor=staff.sales1,
                title="Call back about renewal",
                customer_id=ids["c1"],
                due_at=at(2026, 6, 1),
            ).id,
            "t2": act.create_task(
                s,
                actor=staff.sales2,
                title="Send quote",
                customer_id=ids["c3"],
                due_at=at(2026, 6, 14),
            ).id,
            "t3": act.create_task(
                s,
                actor=staff.sales1,
                title="Plan visit",
                customer_id=ids["c2"],
                due_at=at(2026, 6, 20),
            ).id,
            "t4": act.create_task(
                s,
                actor=staff.sales1,
                title="Done already",
                customer_id=ids["c1"],
                due_at=at(2026, 5, 1),
            ).id,
            "t5": act.create_task(
                s, actor=staff.admin, title="Quarterly review", due_at=at(2026, 6, 10)
            ).id,
        }
        act.complete_task(s, actor=staff.sales1, task_id=tasks["t4"])
    with db.transaction() as s:
        svc.archive_customer(s, actor=staff.admin, customer_id=ids["c6"], reason="closed down")
    return Dataset(ids=ids, deals=deals, tasks=tasks)
