"""Revenue reports: orders by month, by product line, channel or customer source, and
year-on-year."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.errors import InvalidInput
from crm_core.models import Customer, CustomerOrderLine, GroupCount, GroupLineCount, Order
from crm_core.reports._common import counted_order, frame, to_float, to_int
from crm_core.reports._sql import dialect_of, month_bucket, month_text
from crm_core.reports.filters import ReportFilter, customer_scope, in_range, scoped
from crm_core.reports.groups import REVENUE, group_scope, group_sums
from crm_core.reports.lines import line_sums, product_line
from crm_core.reports.rollups import customer_months, split_range

#: What revenue can be broken down by, and the column that holds it.
REVENUE_GROUPS = {
    "product_line": Order.product_line,
    "channel": Order.channel,
    "source": Customer.source,
}


def revenue_by_month(
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None = None,
    by: str | None = None,
) -> pd.DataFrame:
    """Revenue of orders per calendar month (UTC), optionally broken down.

    Columns: ``month`` (``'YYYY-MM'``), then ``by`` when given (``product_line``, ``channel``
    or ``source``; missing values as ``None``), ``orders``, ``revenue`` and ``customers``
    (distinct buyers). Cancelled, refunded and void orders bring no revenue.
    """
    if by is not None and by not in REVENUE_GROUPS:
        raise InvalidInput(f"must be one of {', '.join(REVENUE_GROUPS)}", field="by")
    if by is None:
        scope = group_scope(session, actor=actor, filters=filters)
        if scope is not None:
            return _revenue_from_groups(session, actor, filters, scope)
    if by in (None, "source"):
        return _revenue_from_rollup(session, actor, filters, by)
    if by == "product_line":
        return _revenue_by_line(session, actor, filters)
    return _typed(
        frame(
            session.execute(_revenue_from_orders(session, actor, filters, by)),
            ["month", by, "orders", "revenue", "customers"],
        )
    )


def _revenue_from_orders(
    session: Session, actor: Actor, filters: ReportFilter | None, by: str | None
) -> Any:
    """``SELECT`` of the revenue per month (and ``by``) straight from the orders."""
    month = month_bucket(Order.ordered_at, dialect_of(session)).label("month")
    keys = [month] + ([REVENUE_GROUPS[by].label(by)] if by else [])
    stmt = (
        select(
            *keys,
            func.count(Order.id),
            func.coalesce(func.sum(Order.total), 0),
            func.count(func.distinct(Order.customer_id)),
        )
        .where(counted_order(), *in_range(Order.ordered_at, filters))
        .group_by(*keys)
        .order_by(*keys)
    )
    return scoped(stmt, session, actor=actor, filters=filters, customer_id=Order.customer_id)


def _revenue_from_groups(
    session: Session, actor: Actor, filters: ReportFilter | None, scope: Any
) -> pd.DataFrame:
    """``revenue_by_month`` from the group counts: whole months summed over the groups, the
    partial months at the edges of the date range from the orders."""
    f = filters or ReportFilter()
    from_month, to_month, edges = split_range(f.start, f.end)
    g = GroupCount
    where = []
    if from_month is not None:
        where.append(g.k1 >= from_month)
    if to_month is not None:
        where.append(g.k1 < to_month)
    sums = group_sums(session, REVENUE, scope, *where)
    parts = [
        pd.DataFrame(
            {
                "month": sums["k1"],
                "orders": sums["orders"],
                "revenue": sums["revenue"],
                "customers": sums["n"],
            }
        )
    ]
    for start, end in edges:
        edge = f.with_(date_from=None, date_to=None)
        stmt = _revenue_from_orders(session, actor, edge, None)
        if start is not None:
            stmt = stmt.where(Order.ordered_at >= start)
        if end is not None:
            stmt = stmt.where(Order.ordered_at < end)
        part = frame(session.execute(stmt), ["month", "orders", "revenue", "customers"])
        part["month"] = month_text(part["month"])
        parts.append(part)
    df = pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)
    df = df.sort_values("month", kind="stable").reset_index(drop=True)
    return _typed(df[["month", "orders", "revenue", "customers"]])


def _revenue_by_line(session: Session, actor: Actor, filters: ReportFilter | None) -> pd.DataFrame:
    """``revenue_by_month`` by product line from the product-line roll-ups (revision 0042):
    whole months summed over the groups of customers (or, when a tag, province or city
    filter needs the customers, over the customer-line roll-up), the partial months at the
    edges of the date range from the orders. Rows in the order a query over the orders gives
    (month, then product line as the database sorts it)."""
    f = filters or ReportFilter()
    from_month, to_month, edges = split_range(f.start, f.end)
    scope = group_scope(session, actor=actor, filters=f, table=GroupLineCount)
    whole: list[tuple[Any, ...]]
    if scope is not None:
        g = GroupLineCount
        where = []
        if from_month is not None:
            where.append(g.month >= from_month)
        if to_month is not None:
            where.append(g.month < to_month)
        whole = [
            (month, line, int(orders), int(cents) / 100.0, int(n))
            for month, line, orders, cents, n in line_sums(session, scope, *where)
        ]
    else:
        cl = CustomerOrderLine
        line = product_line(cl.line)
        stmt = (
            select(
                cl.month,
                line,
                func.sum(cl.orders),
                func.coalesce(func.sum(cl.revenue), 0),
                func.count(),
            )
            .join(Customer, Customer.id == cl.customer_id)
            .where(customer_scope(session, actor=actor, filters=f))
            .group_by(cl.month, cl.line)
            .order_by(cl.month, line)
        )
        if from_month is not None:
            stmt = stmt.where(cl.month >= from_month)
        if to_month is not None:
            stmt = stmt.where(cl.month < to_month)
        whole = [tuple(r) for r in session.execute(stmt)]
    rows = list(whole)
    for start, end in edges:
        stmt = _revenue_from_orders(
            session, actor, f.with_(date_from=None, date_to=None), "product_line"
        )
        if start is not None:
            stmt = stmt.where(Order.ordered_at >= start)
        if end is not None:
            stmt = stmt.where(Order.ordered_at < end)
        part = [tuple(r) for r in session.execute(stmt)]
        rows += [
            (m, *rest) for m, (_, *rest) in zip(month_text([r[0] for r in part]), part, strict=True)
        ]
    rows.sort(key=lambda r: r[0])  # stable: each month comes from one part, in its order
    columns = ["month", "product_line", "orders", "revenue", "customers"]
    return _typed(frame(rows, columns))


def _revenue_from_rollup(
    session: Session, actor: Actor, filters: ReportFilter | None, by: str | None
) -> pd.DataFrame:
    """``revenue_by_month`` over the customer-month roll-up (a customer's month is one row, so
    the buyers of a month are its rows)."""
    f = filters or ReportFilter()
    cm = customer_months(session, start=f.start, end=f.end)
    keys = [cm.c.month.label("month")] + ([Customer.source.label("source")] if by else [])
    stmt = (
        select(
            *keys,
            func.sum(cm.c.orders),
            func.coalesce(func.sum(cm.c.revenue), 0),
            func.count(),
        )
        .join(Customer, Customer.id == cm.c.customer_id)
        .where(customer_scope(session, actor=actor, filters=filters))
        .group_by(*keys)
        .order_by(*keys)
    )
    columns = ["month"] + ([by] if by else []) + ["orders", "revenue", "customers"]
    return _typed(frame(session.execute(stmt), columns))


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    df = to_int(to_float(df, "revenue"), "orders", "customers")
    df["month"] = month_text(df["month"])
    df["month"] = df["month"].astype("string")
    return df


def revenue_yoy(
    session: Session, *, actor: Actor, filters: ReportFilter | None = None
) -> pd.DataFrame:
    """Monthly revenue beside the same month a year before.

    Columns: ``year``, ``month`` (1-12), ``revenue``, ``previous_year`` (revenue of the same
    month one year earlier, 0 when none) and ``yoy_growth`` (``revenue / previous_year - 1``,
    NaN when the previous year had none). Rows cover the months in the date range that had
    orders; the year before the range is read to compare with.
    """
    f = filters or ReportFilter()
    widened = f.with_(date_from=f.date_from - timedelta(days=366)) if f.date_from else f
    monthly = revenue_by_month(session, actor=actor, filters=widened)
    revenue = {m: r for m, r in zip(monthly["month"], monthly["revenue"], strict=True)}
    rows = []
    first = f"{f.date_from:%Y-%m}" if f.date_from else None
    for month, value in revenue.items():
        if first and month < first:
            continue
        year, mon = int(month[:4]), int(month[5:7])
        previous = revenue.get(f"{year - 1:04d}-{mon:02d}", 0.0)
        growth = value / previous - 1 if previous else float("nan")
        rows.append((year, mon, value, previous, growth))
    df = pd.DataFrame(rows, columns=["year", "month", "revenue", "previous_year", "yoy_growth"])
    return df.astype(
        {"year": "int64", "month": "int64", "revenue": "float64", "previous_year": "float64"}
    ).astype({"yoy_growth": "float64"})
