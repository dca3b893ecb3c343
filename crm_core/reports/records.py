"""Frames of customers' records (orders, deals, tickets, interactions) for analysis in
notebooks, limited to the customers a report may count for the actor."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.errors import InvalidInput
from crm_core.models import Customer, Deal, Interaction, Order, Ticket
from crm_core.reports._common import frame
from crm_core.reports.filters import ReportFilter, customer_scope, in_range

#: kind -> (model, event time column, columns). Free text (bodies, notes) is left out.
RECORDS: dict[str, tuple[Any, Any, tuple[str, ...]]] = {
    "orders": (
        Order,
        Order.ordered_at,
        (
            "id",
            "customer_id",
            "number",
            "ordered_at",
            "total",
            "currency",
            "status",
            "product_line",
            "channel",
        ),
    ),
    "deals": (
        Deal,
        Deal.created_at,
        (
            "id",
            "customer_id",
            "owner_id",
            "title",
            "stage",
            "status",
            "amount",
            "currency",
            "created_at",
            "closed_at",
            "expected_close",
        ),
    ),
    "tickets": (
        Ticket,
        Ticket.created_at,
        (
            "id",
            "customer_id",
            "kind",
            "status",
            "priority",
            "assignee_id",
            "created_at",
            "resolved_at",
            "satisfaction",
        ),
    ),
    "interactions": (
        Interaction,
        Interaction.occurred_at,
        ("id", "customer_id", "user_id", "kind", "subject", "occurred_at"),
    ),
}


def records_frame(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    filters: ReportFilter | None = None,
    customer_id: int | None = None,
    limit: int = 100_000,
) -> pd.DataFrame:
    """Rows of one kind of record (``orders``, ``deals``, ``tickets``, ``interactions``) of the
    customers in the actor's report scope, newest first; the date range applies to the
    record's own time. Columns: see ``RECORDS``; money as float."""
    if kind not in RECORDS:
        raise InvalidInput(f"must be one of {', '.join(RECORDS)}", field="kind")
    model, when, columns = RECORDS[kind]
    stmt = (
        select(*(getattr(model, c) for c in columns))
        .join(Customer, Customer.id == model.customer_id)
        .where(customer_scope(session, actor=actor, filters=filters))
        .where(*in_range(when, filters))
        .order_by(when.desc(), model.id.desc())
        .limit(limit)
    )
    if customer_id is not None:
        stmt = stmt.where(model.customer_id == customer_id)
    df = frame(session.execute(stmt), columns)
    for money in ("total", "amount"):
        if money in df.columns:
            df[money] = df[money].map(lambda v: None if v is None else float(v)).astype("float64")
    return df
