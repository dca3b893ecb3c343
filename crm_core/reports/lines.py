"""Reading the product-line roll-ups (revision 0042): counted orders per customer, month and
product line (``CustomerOrderLine``), and the same summed per group of customers
(``GroupLineCount``, the groups of ``crm_core.reports.groups``) with the distinct buyers, kept
exact by triggers on the orders, on the customer-line roll-up and on the customers.

``line_differences`` compares both with a recount from the orders (tests, checks) and
``rebuild_line_rollups`` refills them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    case,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy.orm import Session

from crm_core.models import Customer, CustomerOrderLine, GroupLineCount, Order
from crm_core.reports._common import counted_order
from crm_core.reports._sql import dialect_of, fold_deltas, month_key
from crm_core.reports.groups import FOLD_AFTER, group_columns

_KEY = ("owner_id", "team_id", "archived", "unowned_lead", "month", "line")


def line_key(product_line: Any) -> ColumnElement[str]:
    """The stored ``line`` of a product line: ``'=' || product_line``, ``''`` for none."""
    return func.coalesce(literal("=").concat(product_line), "")


def product_line(line: Any) -> ColumnElement[str | None]:
    """The product line of a stored ``line`` (``None`` for ``''``)."""
    return case((line == "", null()), else_=func.substr(line, 2))


def line_sums(session: Session, scope: ColumnElement[bool], *where: Any) -> list[tuple[Any, ...]]:
    """``(month, product_line, orders, revenue_cents, buyers)`` summed over the groups in
    ``scope``, ordered by month and product line as the database orders them (as a query over
    the orders would). On PostgreSQL the delta rows are folded first once there are
    ``FOLD_AFTER`` of them."""
    if dialect_of(session) == "postgresql":
        g = GroupLineCount
        deltas = select(g.id).where(g.delta == 1).limit(FOLD_AFTER).subquery()
        if (session.scalar(select(func.count()).select_from(deltas)) or 0) >= FOLD_AFTER:
            compact_group_lines(session)
    g = GroupLineCount
    line = product_line(g.line)
    stmt = (
        select(g.month, line, func.sum(g.orders), func.sum(g.revenue_cents), func.sum(g.n))
        .where(scope, *where)
        .group_by(g.month, g.line)
        .having(or_(func.sum(g.n) != 0, func.sum(g.orders) != 0, func.sum(g.revenue_cents) != 0))
        .order_by(g.month, line)
    )
    return [tuple(r) for r in session.execute(stmt)]


def compact_group_lines(session: Session) -> None:
    """Fold the rows of each key into one (``fold_deltas``)."""
    fold_deltas(session, "report_group_lines", _KEY, ("orders", "revenue_cents", "n"))


def raw_customer_lines(session: Session) -> Any:
    """``SELECT`` of counted orders per customer, month and ``line`` straight from the orders
    (the customer-line roll-up's definition)."""
    month = month_key(Order.ordered_at, dialect_of(session))
    line = line_key(Order.product_line)
    return (
        select(
            Order.customer_id.label("customer_id"),
            month.label("month"),
            line.label("line"),
            func.count().label("orders"),
            func.sum(Order.total).label("revenue"),
        )
        .where(counted_order())
        .group_by(Order.customer_id, month, line)
    )


def expected_group_lines(session: Session) -> Any:
    """``SELECT`` of the group line counts recounted from the customer-line roll-up (one row
    per key: the ``_KEY`` columns, ``orders``, ``revenue_cents``, ``n``)."""
    lines = CustomerOrderLine
    group = group_columns()
    cents = func.round(lines.revenue * 100)
    return (
        select(
            *group,
            lines.month.label("month"),
            lines.line.label("line"),
            func.sum(lines.orders).label("orders"),
            func.sum(cents).label("revenue_cents"),
            func.count().label("n"),
        )
        .join(Customer, Customer.id == lines.customer_id)
        .where(Customer.merged_into_id.is_(None))
        .group_by(*group, lines.month, lines.line)
    )


def line_differences(session: Session) -> list[tuple[str, Any, Any, Any]]:
    """Where the product-line roll-ups differ from a recount: ``(table, key, stored,
    expected)`` rows (empty when they are exact)."""
    out: list[tuple[str, Any, Any, Any]] = []
    expected = {
        tuple(r[:3]): (int(r[3]), round(float(r[4]), 2))
        for r in session.execute(raw_customer_lines(session))
    }
    lines = CustomerOrderLine
    stored = {
        (r.customer_id, r.month, r.line): (int(r.orders), round(float(r.revenue), 2))
        for r in session.scalars(select(lines))
    }
    for key in sorted(set(expected) | set(stored), key=repr):
        if stored.get(key) != expected.get(key):
            out.append(("report_customer_lines", key, stored.get(key), expected.get(key)))
    g = GroupLineCount
    keys = [getattr(g, k) for k in _KEY]
    stored_rows = session.execute(
        select(*keys, func.sum(g.orders), func.sum(g.revenue_cents), func.sum(g.n)).group_by(*keys)
    )
    stored_groups = {
        tuple(r[:6]): (int(r[6]), int(r[7]), int(r[8]))
        for r in stored_rows
        if (int(r[6]), int(r[7]), int(r[8])) != (0, 0, 0)
    }
    expected_groups = {
        tuple(r[:6]): (int(r[6]), int(round(float(r[7]))), int(r[8]))
        for r in session.execute(expected_group_lines(session))
    }
    for key in sorted(set(stored_groups) | set(expected_groups), key=repr):
        got, want = stored_groups.get(key), expected_groups.get(key)
        if got != want:
            out.append(("report_group_lines", key, got, want))
    return out


def rebuild_line_rollups(session: Session) -> None:
    """Refill the customer-line roll-up from the orders and the group line counts from it
    (a repair; the triggers keep them exact)."""
    session.execute(delete(CustomerOrderLine))
    raw = raw_customer_lines(session).subquery()
    columns = ["customer_id", "month", "line", "orders", "revenue"]
    session.execute(
        insert(CustomerOrderLine).from_select(columns, select(*[raw.c[c] for c in columns]))
    )
    session.execute(delete(GroupLineCount))
    recount = expected_group_lines(session).subquery()
    names = [*_KEY, "orders", "revenue_cents", "n"]
    session.execute(
        insert(GroupLineCount).from_select(names, select(*[recount.c[c] for c in names]))
    )
