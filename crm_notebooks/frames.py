"""DataFrames of customers and their records, shaped for the notebook's user."""

from __future__ import annotations

from typing import Any

import pandas as pd

from crm_core import activities
from crm_core.customers import CustomerFilter, CustomerOut, customer_query, to_out
from crm_core.models import Customer
from crm_core.reports.filters import ReportFilter
from crm_core.reports.records import records_frame
from crm_notebooks.context import NotebookContext

CUSTOMER_COLUMNS = tuple(f for f in CustomerOut.model_fields if f != "custom")


def customers_frame(
    ctx: NotebookContext,
    filters: CustomerFilter | None = None,
    *,
    limit: int = 10_000,
    **criteria: Any,
) -> pd.DataFrame:
    """Customers the user may see, shaped for them (analysts get personal fields masked),
    newest first. Filter with a ``CustomerFilter`` or its fields as keywords
    (``query``, ``city``, ``province``, ``tag``, ``lifecycle_stage``, ``owner_id`` …)."""
    f = filters or CustomerFilter(**criteria)
    with ctx.session() as session:
        stmt = customer_query(session, actor=ctx.user, filters=f)
        rows = session.scalars(stmt.order_by(Customer.id.desc()).limit(limit))
        data = [to_out(ctx.user, c).model_dump() for c in rows]
    df = pd.DataFrame(data, columns=[*CUSTOMER_COLUMNS, "custom"])
    return df


def _records(ctx: NotebookContext, kind: str, **kwargs: Any) -> pd.DataFrame:
    filters = kwargs.pop("filters", None) or (ReportFilter(**kwargs) if kwargs else None)
    with ctx.session() as session:
        return records_frame(session, actor=ctx.user, kind=kind, filters=filters)


def orders_frame(ctx: NotebookContext, **filters: Any) -> pd.DataFrame:
    """Orders of the user's customers (``ReportFilter`` fields as keywords)."""
    return _records(ctx, "orders", **filters)


def deals_frame(ctx: NotebookContext, **filters: Any) -> pd.DataFrame:
    """Deals of the user's customers."""
    return _records(ctx, "deals", **filters)


def tickets_frame(ctx: NotebookContext, **filters: Any) -> pd.DataFrame:
    """Tickets of the user's customers."""
    return _records(ctx, "tickets", **filters)


def interactions_frame(ctx: NotebookContext, **filters: Any) -> pd.DataFrame:
    """Interactions with the user's customers (subjects only, no bodies)."""
    return _records(ctx, "interactions", **filters)


def timeline_frame(ctx: NotebookContext, customer_id: int, limit: int = 200) -> pd.DataFrame:
    """One customer's history, newest first: ``at``, ``kind``, ``title``, ``detail``,
    ``status``, ``id``."""
    items = ctx.run(activities.timeline, customer_id=customer_id, limit=limit)
    return pd.DataFrame(
        [(i.at, i.kind, i.title, i.detail, i.status, i.id) for i in items],
        columns=["at", "kind", "title", "detail", "status", "id"],
    )
