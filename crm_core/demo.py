"""Load generated demo data (``crm_core.datagen``) into a database.

Customers go through ``bulk.bulk_create_customers`` (the same validation as the services);
their history is written set-based, as a seeding step, with one audit entry per loaded batch.
Demo users get random passwords that are never shown: an admin resets them when needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from crm_core import audit
from crm_core.activities import ensure_pipeline_stages
from crm_core.bulk import bulk_create_customers, reserve_ids
from crm_core.db import Database
from crm_core.models import (
    Contract,
    Customer,
    Deal,
    Interaction,
    LoyaltyEntry,
    Order,
    Payment,
    Role,
    Task,
    Team,
    Ticket,
    User,
)
from crm_core.users import generate_password, get_system_user, hash_password

CHUNK = 20_000


@dataclass
class DemoSummary:
    users: int
    customers: int
    interactions: int
    deals: int
    orders: int
    tickets: int
    tasks: int
    seconds: float = 0.0


def _py(value: Any) -> Any:
    """pandas/numpy scalars to plain Python values (NaN/NaT to None)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp):
        ts = value.to_pydatetime()
        return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    if hasattr(value, "item"):
        return value.item()
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _py(v) for k, v in row.items()} for row in frame.to_dict("records")]


def _ts(value: Any) -> datetime | None:
    value = _py(value)
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return pd.Timestamp(value).to_pydatetime().replace(tzinfo=UTC)


def _insert(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    conn = session.connection()
    for i in range(0, len(rows), CHUNK):
        conn.execute(insert(model.__table__), rows[i : i + CHUNK])


def is_empty(session: Session) -> bool:
    """True when the database holds no customers yet."""
    return not session.scalar(select(func.count()).select_from(Customer))


def load_demo(
    db: Database,
    *,
    n_customers: int = 500,
    seed: int = 42,
    history: bool = True,
    orders_per_customer: float = 2.0,
) -> DemoSummary:
    """Generate and store a realistic CRM (about half Chinese, half English customers)."""
    from crm_core.datagen import generate

    started = datetime.now(UTC)
    data = generate(
        n_customers, seed=seed, history=history, orders_per_customer=orders_per_customer
    )
    with db.transaction() as session:
        ensure_pipeline_stages(session)
        system = get_system_user(session)
        team_ids: dict[int, int] = {}
        for team in _records(data.teams):
            name = team["name"]
            row = session.scalar(select(Team).where(Team.name == name))
            if row is None:
                row = Team(name=name)
                session.add(row)
                session.flush()
            team_ids[int(team["id"])] = row.id
        user_ids: dict[int, int] = {}
        unusable = hash_password(generate_password())
        for user in _records(data.users):
            row = session.scalar(select(User).where(User.username == user["username"]))
            if row is None:
                row = User(
                    username=user["username"],
                    display_name=user.get("display_name") or "",
                    role=user["role"],
                    email=user.get("email"),
                    team_id=team_ids.get(int(user["team_id"])) if user.get("team_id") else None,
                    locale=user.get("locale") or "en",
                    password_hash=unusable,
                    active=True,
                )
                session.add(row)
                session.flush()
            user_ids[int(user["id"])] = row.id

        customers = data.customers
        id_map: dict[int, int] = {}
        for companies_first in (True, False):
            part = customers[(customers["kind"] == "company") == companies_first]
            rows, created = [], []
            for rec in _records(part):
                phones = [p for p in (rec.get("phone"), rec.get("phone2")) if p]
                company_ref = rec.get("company_ref")
                rows.append(
                    {
                        "kind": rec["kind"],
                        "name": rec["name"],
                        "phones": phones,
                        "emails": [rec["email"]] if rec.get("email") else [],
                        "company_name": rec.get("company"),
                        "company_id": id_map.get(int(company_ref)) if company_ref else None,
                        "position": rec.get("position"),
                        "industry": rec.get("industry"),
                        "size": rec.get("size"),
                        "source": rec.get("source"),
                        "country": rec.get("country"),
                        "province": rec.get("province"),
                        "city": rec.get("city"),
                        "district": rec.get("district"),
                        "street": rec.get("street"),
                        "postcode": rec.get("postcode"),
                        "birthday": rec.get("birthday"),
                        "lifecycle_stage": rec.get("lifecycle_stage"),
                        "value_tier": rec.get("value_tier"),
                        "owner_id": user_ids.get(int(rec["owner_id"]))
                        if rec.get("owner_id")
                        else None,
                        "tags": [t for t in str(rec.get("tags") or "").split(";") if t],
                        "external_id": f"demo-{rec['id']}",
                    }
                )
                created.append(_ts(rec.get("created_at")))
            result = bulk_create_customers(
                session,
                actor=system,
                rows=rows,
                source="demo",
                skip_invalid=True,
                created_at=created,
            )
            source_ids = part["id"].tolist()
            for position, new_id in zip(result.rows, result.ids, strict=True):
                id_map[int(source_ids[position])] = new_id

        def cust(value: Any) -> int | None:
            return id_map.get(int(value)) if _py(value) is not None else None

        def usr(value: Any) -> int | None:
            return user_ids.get(int(value)) if _py(value) is not None else None

        now = datetime.now(UTC)
        stamp = {"created_at": now, "updated_at": now, "version": 1}
        counts: dict[str, int] = {}

        if history:
            rows = []
            for r in _records(data.interactions):
                if (c := cust(r["customer_id"])) is not None:
                    rows.append(
                        {
                            "customer_id": c,
                            "user_id": usr(r.get("user_id")),
                            "kind": r["kind"],
                            "subject": r.get("subject") or "",
                            "body": r.get("body"),
                            "occurred_at": _ts(r["occurred_at"]),
                            **stamp,
                        }
                    )
            _insert(session, Interaction, rows)
            counts["interactions"] = len(rows)

            rows = []
            for r in _records(data.deals):
                if (c := cust(r["customer_id"])) is not None:
                    rows.append(
                        {
                            "customer_id": c,
                            "owner_id": usr(r.get("owner_id")),
                            "title": r["title"],
                            "stage": r["stage"],
                            "status": r["status"],
                            "amount": Decimal(str(round(r["amount"], 2))),
                            "currency": r.get("currency") or "CNY",
                            "expected_close": r.get("expected_close"),
                            "closed_at": _ts(r.get("closed_at")),
                            "lost_reason": r.get("lost_reason"),
                            "stage_changed_at": _ts(r.get("created_at")),
                            **stamp,
                            "created_at": _ts(r.get("created_at")) or now,
                        }
                    )
            _insert(session, Deal, rows)
            counts["deals"] = len(rows)

            order_ids: dict[int, int] = {}
            rows, source_order_ids = [], []
            for r in _records(data.orders):
                if (c := cust(r["customer_id"])) is not None:
                    rows.append(
                        {
                            "customer_id": c,
                            "number": r["number"],
                            "ordered_at": _ts(r["ordered_at"]),
                            "total": Decimal(str(round(r["total"], 2))),
                            "currency": r.get("currency") or "CNY",
                            "status": r.get("status") or "paid",
                            "product_line": r.get("product_line"),
                            "channel": r.get("channel"),
                            **stamp,
                        }
                    )
                    source_order_ids.append(int(r["id"]))
            new_ids = reserve_ids(session, Order.__table__, len(rows))
            for row, new_id in zip(rows, new_ids, strict=True):
                row["id"] = new_id
            order_ids.update(zip(source_order_ids, new_ids, strict=True))
            _insert(session, Order, rows)
            counts["orders"] = len(rows)
            rows = [
                {
                    "order_id": order_ids[int(r["order_id"])],
                    "paid_at": _ts(r["paid_at"]),
                    "amount": Decimal(str(round(r["amount"], 2))),
                    "method": r.get("method") or "transfer",
                    "created_at": now,
                    "updated_at": now,
                }
                for r in _records(data.payments)
                if int(r["order_id"]) in order_ids
            ]
            _insert(session, Payment, rows)

            rows = []
            for r in _records(data.contracts):
                if (c := cust(r["customer_id"])) is not None:
                    rows.append(
                        {
                            "customer_id": c,
                            "number": r["number"],
                            "title": r["title"],
                            "start_date": r["start_date"],
                            "end_date": r["end_date"],
                            "value": Decimal(str(round(r["value"], 2))),
                            "currency": r.get("currency") or "CNY",
                            "status": r.get("status") or "active",
                            **stamp,
                        }
                    )
            _insert(session, Contract, rows)

            rows = []
            for r in _records(data.tickets):
                if (c := cust(r["customer_id"])) is not None:
                    rows.append(
                        {
                            "customer_id": c,
                            "kind": r["kind"],
                            "subject": r["subject"],
                            "body": r.get("body"),
                            "status": r["status"],
                            "priority": r.get("priority") or "normal",
                            "assignee_id": usr(r.get("assignee_id")),
                            "due_at": _ts(r.get("due_at")),
                            "resolved_at": _ts(r.get("resolved_at")),
                            "satisfaction": r.get("satisfaction"),
                            **stamp,
                            "created_at": _ts(r.get("created_at")) or now,
                        }
                    )
            _insert(session, Ticket, rows)
            counts["tickets"] = len(rows)

            rows = []
            for r in _records(data.tasks):
                rows.append(
                    {
                        "customer_id": cust(r.get("customer_id")),
                        "assignee_id": usr(r.get("assignee_id")),
                        "title": r["title"],
                        "due_at": _ts(r.get("due_at")),
                        "done_at": _ts(r.get("done_at")),
                        **stamp,
                    }
                )
            _insert(session, Task, rows)
            counts["tasks"] = len(rows)

            rows = []
            for r in _records(data.loyalty):
                if (c := cust(r["customer_id"])) is not None:
                    rows.append(
                        {
                            "customer_id": c,
                            "points": int(r["points"]),
                            "reason": r.get("reason") or "",
                            "occurred_at": _ts(r["occurred_at"]),
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
            _insert(session, LoyaltyEntry, rows)

            last = (
                select(func.max(Interaction.occurred_at))
                .where(Interaction.customer_id == Customer.id)
                .scalar_subquery()
            )
            session.execute(
                update(Customer)
                .values(last_contact_at=last)
                .execution_options(synchronize_session=False)
            )
        audit.record(
            session,
            actor=system,
            action="demo.load",
            entity_type="database",
            entity_id=None,
            changes={"customers": [None, len(id_map)], **{k: [None, v] for k, v in counts.items()}},
            detail=f"seed={seed}",
        )
        users = session.scalar(
            select(func.count()).select_from(User).where(User.role != Role.SYSTEM)
        )
    db.analyze()
    return DemoSummary(
        users=int(users or 0),
        customers=len(id_map),
        interactions=counts.get("interactions", 0),
        deals=counts.get("deals", 0),
        orders=counts.get("orders", 0),
        tickets=counts.get("tickets", 0),
        tasks=counts.get("tasks", 0),
        seconds=(datetime.now(UTC) - started).total_seconds(),
    )
