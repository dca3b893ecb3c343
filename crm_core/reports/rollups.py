"""Reading the order roll-ups (``models.reports``): counted orders per customer and month, and
per customer, kept exact by database triggers on ``orders`` (revision 0031).

Reports read ``customer_months`` instead of every order: whole months come from the roll-up,
the partial months at the edges of a date range from the orders themselves, so any range is
answered exactly. ``rollup_differences`` compares the roll-ups with the orders (tests, repair
checks) and ``rebuild_order_rollups`` refills them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, cast, delete, func, insert, literal, select, text, union_all
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from crm_core.models import CustomerOrderMonth, CustomerOrderTotals, Order
from crm_core.reports._common import counted_order
from crm_core.reports._sql import dialect_of, month_key

#: One microsecond: the stored resolution of times, to turn "at or before" into "before".
TICK = timedelta(microseconds=1)


def _month_start(value: datetime) -> datetime:
    value = value.astimezone(UTC)
    return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(value: datetime) -> datetime:
    start = _month_start(value)
    return (start + timedelta(days=32)).replace(day=1)


def month_number(month: Any) -> ColumnElement[int]:
    """``year * 12 + month - 1`` of a ``'YYYY-MM'`` text column."""
    year = cast(func.substr(month, 1, 4), Integer)
    return year * 12 + cast(func.substr(month, 6, 2), Integer) - 1


def split_range(
    start: datetime | None, end: datetime | None
) -> tuple[str | None, str | None, list[tuple[datetime | None, datetime | None]]]:
    """``[start, end)`` as whole months and partial edges: ``(from_month, to_month, edges)``
    where the whole months are ``from_month <= month < to_month`` (``None``: unbounded) and
    ``edges`` are the ``[start, end)`` spans to read from the orders themselves."""
    if start is not None and end is not None and _month_start(start) == _month_start(end):
        return "", "", [(start, end)]  # no whole month
    edges: list[tuple[datetime | None, datetime | None]] = []
    full_from = full_to = None
    if start is not None:
        full_from = start if start == _month_start(start) else _next_month(start)
        if full_from != start:
            edges.append((start, full_from if end is None else min(full_from, end)))
    if end is not None:
        full_to = _month_start(end)
        if full_to != end and (start is None or full_to >= start):
            edges.append((full_to, end))
    return (
        None if full_from is None else f"{full_from:%Y-%m}",
        None if full_to is None else f"{full_to:%Y-%m}",
        edges,
    )


def raw_customer_months(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    customers: Any = None,
) -> Any:
    """``SELECT`` of counted orders in ``[start, end)`` aggregated per customer and month,
    straight from ``orders`` (the roll-up's definition); ``customers`` (a ``SELECT`` of ids),
    when given, keeps to those customers."""
    month = month_key(Order.ordered_at, dialect_of(session))
    stmt = select(
        Order.customer_id.label("customer_id"),
        month.label("month"),
        func.count().label("orders"),
        func.sum(Order.total).label("revenue"),
        func.min(Order.ordered_at).label("first_at"),
        func.max(Order.ordered_at).label("last_at"),
    ).where(counted_order())
    if start is not None:
        stmt = stmt.where(Order.ordered_at >= start)
    if end is not None:
        stmt = stmt.where(Order.ordered_at < end)
    if customers is not None:
        stmt = stmt.where(Order.customer_id.in_(customers))
    return stmt.group_by(Order.customer_id, month)


def customer_months(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    customers: Any = None,
) -> Any:
    """Subquery of counted orders with ``start <= ordered_at < end`` per customer and month.

    Columns: ``customer_id``, ``month`` (``'YYYY-MM'``), ``orders``, ``revenue``, ``first_at``,
    ``last_at``; one row per customer and month with orders. Whole months inside the range are
    read from the roll-up, a partial first or last month from the orders. ``customers`` (a
    ``SELECT`` of ids), when given, keeps every part to those customers (indexed look-ups).
    """
    m = CustomerOrderMonth
    rollup = select(
        m.customer_id.label("customer_id"),
        m.month.label("month"),
        m.orders.label("orders"),
        m.revenue.label("revenue"),
        m.first_at.label("first_at"),
        m.last_at.label("last_at"),
    )
    if customers is not None:
        rollup = rollup.where(m.customer_id.in_(customers))
    if start is None and end is None:
        return rollup.subquery("customer_months")
    parts = []
    full_from = full_to = None  # whole months: full_from <= month < full_to
    if start is not None and end is not None and _month_start(start) == _month_start(end):
        parts.append(raw_customer_months(session, start=start, end=end, customers=customers))
        rollup = rollup.where(literal(False))
    else:
        if start is not None:
            full_from = start if start == _month_start(start) else _next_month(start)
            if full_from != start:
                edge_end = full_from if end is None else min(full_from, end)
                parts.append(
                    raw_customer_months(session, start=start, end=edge_end, customers=customers)
                )
        if end is not None:
            full_to = _month_start(end)
            if full_to != end and (start is None or full_to >= start):
                parts.append(
                    raw_customer_months(session, start=full_to, end=end, customers=customers)
                )
    if full_from is not None:
        rollup = rollup.where(m.month >= f"{full_from:%Y-%m}")
    if full_to is not None:
        rollup = rollup.where(m.month < f"{full_to:%Y-%m}")
    if not parts:
        return rollup.subquery("customer_months")
    return union_all(rollup, *parts).subquery("customer_months")


def history_end(session: Session, now: datetime) -> datetime | None:
    """The exclusive end of "orders at or before ``now``": ``None`` (no bound) when no order
    is later than ``now``, so whole roll-up months can be read."""
    latest = session.scalar(select(func.max(Order.ordered_at)))
    if latest is None or latest <= now:
        return None
    return now + TICK


def rollup_differences(session: Session) -> list[tuple[str, Any, Any, Any]]:
    """Where the roll-ups differ from the orders: ``(table, key, stored, expected)`` rows
    (empty when they are exact)."""
    out: list[tuple[str, Any, Any, Any]] = []
    expected_months = {
        (r.customer_id, r.month): (int(r.orders), round(float(r.revenue), 2), r.first_at, r.last_at)
        for r in session.execute(raw_customer_months(session))
    }
    stored = list(session.scalars(select(CustomerOrderMonth)))
    stored_months = {
        (r.customer_id, r.month): (int(r.orders), round(float(r.revenue), 2), r.first_at, r.last_at)
        for r in stored
    }
    stored_prev = {(r.customer_id, r.month): r.prev_last_at for r in stored}
    previous: dict[int, Any] = {}
    for cid, month in sorted(expected_months):
        want_prev = previous.get(cid)
        previous[cid] = expected_months[(cid, month)][3]
        got_prev = stored_prev.get((cid, month))
        if got_prev != want_prev:
            out.append(("report_customer_months.prev_last_at", (cid, month), got_prev, want_prev))
    for key in sorted(set(expected_months) | set(stored_months)):
        got, want = stored_months.get(key), expected_months.get(key)
        if got != want:
            out.append(("report_customer_months", key, got, want))
    totals: dict[int, list[Any]] = {}
    for (cid, _), (n, revenue, first, last) in expected_months.items():
        t = totals.setdefault(cid, [0, 0.0, first, last])
        t[0] += n
        t[1] += revenue
        t[2], t[3] = min(t[2], first), max(t[3], last)
    stored_totals = {
        r.customer_id: (int(r.orders), float(r.revenue), r.first_at, r.last_at)
        for r in session.scalars(select(CustomerOrderTotals))
    }
    for cid in sorted(set(totals) | set(stored_totals)):
        got = stored_totals.get(cid)
        want = tuple(totals[cid]) if cid in totals else None
        if got is not None and want is not None and got[0] == want[0]:
            got = (got[0], round(got[1], 2), got[2], got[3])
            want = (want[0], round(want[1], 2), want[2], want[3])
        if got != want:
            out.append(("report_customer_orders", cid, got, want))
    return out


def rebuild_order_rollups(session: Session) -> None:
    """Refill both roll-ups from the orders (a repair; the triggers keep them exact)."""
    session.execute(delete(CustomerOrderTotals))
    session.execute(delete(CustomerOrderMonth))
    raw = raw_customer_months(session).subquery()
    session.execute(
        insert(CustomerOrderMonth).from_select(
            ["customer_id", "month", "orders", "revenue", "first_at", "last_at"],
            select(
                raw.c.customer_id,
                raw.c.month,
                raw.c.orders,
                raw.c.revenue,
                raw.c.first_at,
                raw.c.last_at,
            ),
        )
    )
    m = CustomerOrderMonth
    session.execute(
        insert(CustomerOrderTotals).from_select(
            ["customer_id", "orders", "revenue", "first_at", "last_at"],
            select(
                m.customer_id,
                func.sum(m.orders),
                func.sum(m.revenue),
                func.min(m.first_at),
                func.max(m.last_at),
            ).group_by(m.customer_id),
        )
    )
    session.execute(
        text(
            "UPDATE report_customer_months SET prev_last_at = w.prev FROM ("
            " SELECT customer_id, month,"
            " lag(last_at) OVER (PARTITION BY customer_id ORDER BY month) AS prev"
            " FROM report_customer_months) AS w"
            " WHERE report_customer_months.customer_id = w.customer_id"
            " AND report_customer_months.month = w.month"
            " AND report_customer_months.prev_last_at IS DISTINCT FROM w.prev"
        )
    )
