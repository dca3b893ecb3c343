"""Reading the group counts (``models.GroupCount``, revision 0040): the order figures of the
dashboard summed per group of customers (owner, team, archived, unowned lead), kept exact by
triggers on the customer roll-ups and on the customers.

A report reads them when the actor's access rule and the filters can be told from those
columns alone (``group_scope``); a tag, province or city filter falls back to the customer
roll-ups. ``group_differences`` compares the stored counts with a recount (tests, checks) and
``rebuild_group_counts`` refills them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session

from crm_core.access import UNRESTRICTED_READERS, Actor
from crm_core.models import Customer, CustomerOrderMonth, CustomerOrderTotals, GroupCount, Role
from crm_core.models.customers import Lifecycle
from crm_core.reports._sql import days_between, dialect_of, fold_deltas, month_key, month_key_after
from crm_core.reports.filters import ReportFilter, customer_scope

#: What ``GroupCount.kind`` counts (``k1``/``k2`` are ``'YYYY-MM'`` months, ``''`` unused).
REVENUE = 1  # k1 month: orders, revenue_cents, n buyers
SPELL_START = 2  # k1 month a spell starts, k2 month the spell before ended ('' if none)
LAPSE = 3  # k1 month of a customer's last order plus GROUP_INACTIVE_DAYS
COHORT = 4  # k1 month of the first order, k2 a month with orders

#: The inactivity span (days) the spell counts are kept for.
GROUP_INACTIVE_DAYS = 90

_KEY = ("kind", "owner_id", "team_id", "archived", "unowned_lead", "k1", "k2")


def group_scope(
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None = None,
    table: Any = GroupCount,
) -> ColumnElement[bool] | None:
    """SQL condition on ``GroupCount`` (or another table of the same group columns, such as
    ``GroupLineCount``) selecting the groups whose customers the report may count: the twin
    of ``filters.customer_scope`` (and so of ``access.visible_customers``) over the group
    columns. ``None`` when the filters need other customer columns (tag, province, city)."""
    f = filters or ReportFilter()
    customer_scope(session, actor=actor, filters=f)  # the same permission checks and errors
    if f.tag or f.province or f.city:
        return None
    g = table
    if actor.role in UNRESTRICTED_READERS:
        rule: ColumnElement[bool] = true()
    elif actor.role == Role.MANAGER:
        mine = g.owner_id == actor.id
        rule = mine if actor.team_id is None else or_(g.team_id == actor.team_id, mine)
    elif actor.role == Role.SALES:
        rule = or_(g.owner_id == actor.id, g.unowned_lead == 1)
    else:
        rule = false()
    conditions = [rule]
    if f.owner_id is not None:
        conditions.append(g.owner_id == f.owner_id)
    if f.team_id is not None:
        conditions.append(g.team_id == f.team_id)
    if not f.include_archived:
        conditions.append(g.archived == 0)
    return and_(*conditions)


#: Unfolded delta rows (PostgreSQL) that make a reader fold them first.
FOLD_AFTER = 2000


def group_sums(
    session: Session, kind: int, scope: ColumnElement[bool], *where: Any
) -> pd.DataFrame:
    """Summed counts of one kind over the groups in ``scope``.

    Columns: ``k1``, ``k2``, ``orders``, ``revenue`` (float, from whole cents) and ``n``; one
    row per ``(k1, k2)`` with a non-zero count. On PostgreSQL the appended delta rows are
    folded first (``compact_group_counts``) once there are ``FOLD_AFTER`` of them.
    """
    if dialect_of(session) == "postgresql":
        deltas = select(GroupCount.id).where(GroupCount.delta == 1).limit(FOLD_AFTER).subquery()
        if (session.scalar(select(func.count()).select_from(deltas)) or 0) >= FOLD_AFTER:
            compact_group_counts(session)
    g = GroupCount
    stmt = (
        select(g.k1, g.k2, func.sum(g.orders), func.sum(g.revenue_cents), func.sum(g.n))
        .where(g.kind == kind, scope, *where)
        .group_by(g.k1, g.k2)
        .having(or_(func.sum(g.n) != 0, func.sum(g.orders) != 0, func.sum(g.revenue_cents) != 0))
    )
    rows = session.execute(stmt).all()
    df = pd.DataFrame(
        [tuple(r) for r in rows], columns=["k1", "k2", "orders", "revenue_cents", "n"]
    )
    df = df.astype({"orders": "int64", "revenue_cents": "int64", "n": "int64"})
    df["revenue"] = df.pop("revenue_cents") / 100.0
    return df


def compact_group_counts(session: Session) -> None:
    """Fold the rows of each key into one (``fold_deltas``)."""
    fold_deltas(session, "report_group_counts", _KEY, ("orders", "revenue_cents", "n"))


def group_columns() -> list[Any]:
    c = Customer
    return [
        func.coalesce(c.owner_id, 0).label("owner_id"),
        func.coalesce(c.team_id, 0).label("team_id"),
        case((c.archived_at.is_(None), 0), else_=1).label("archived"),
        case((and_(c.owner_id.is_(None), c.lifecycle_stage == Lifecycle.LEAD), 1), else_=0).label(
            "unowned_lead"
        ),
    ]


def expected_group_counts(session: Session) -> Any:
    """``SELECT`` of the group counts recomputed from the customer roll-ups (one row per key:
    ``kind, owner_id, team_id, archived, unowned_lead, k1, k2, orders, revenue_cents, n``)."""
    dialect = dialect_of(session)
    m, t, c = CustomerOrderMonth, CustomerOrderTotals, Customer
    live = c.merged_into_id.is_(None)
    group = group_columns()
    cents = func.round(m.revenue * 100)
    revenue = select(
        literal(REVENUE).label("kind"),
        *group,
        m.month.label("k1"),
        literal("").label("k2"),
        m.orders.label("orders"),
        cents.label("revenue_cents"),
        literal(1).label("n"),
    ).join(c, c.id == m.customer_id)
    gap = days_between(m.prev_last_at, m.first_at, dialect) > GROUP_INACTIVE_DAYS
    starts = (
        select(
            literal(SPELL_START),
            *group,
            m.month,
            func.coalesce(month_key_after(m.prev_last_at, GROUP_INACTIVE_DAYS, dialect), ""),
            literal(0),
            literal(0),
            literal(1),
        )
        .join(c, c.id == m.customer_id)
        .where(or_(m.prev_last_at.is_(None), gap))
    )
    lapses = select(
        literal(LAPSE),
        *group,
        month_key_after(t.last_at, GROUP_INACTIVE_DAYS, dialect),
        literal(""),
        literal(0),
        literal(0),
        literal(1),
    ).join(c, c.id == t.customer_id)
    cohorts = (
        select(
            literal(COHORT),
            *group,
            month_key(t.first_at, dialect),
            m.month,
            literal(0),
            literal(0),
            literal(1),
        )
        .select_from(m)
        .join(t, t.customer_id == m.customer_id)
        .join(c, c.id == m.customer_id)
    )
    parts = union_all(*(s.where(live) for s in (revenue, starts, lapses, cohorts))).subquery()
    keys = [parts.c[k] for k in _KEY]
    return select(
        *keys,
        func.sum(parts.c.orders).label("orders"),
        func.sum(parts.c.revenue_cents).label("revenue_cents"),
        func.sum(parts.c.n).label("n"),
    ).group_by(*keys)


def group_differences(session: Session) -> list[tuple[Any, Any, Any]]:
    """Where the stored group counts differ from a recount: ``(key, stored, expected)`` rows,
    each value ``(orders, revenue_cents, n)`` (empty when they are exact)."""
    g = GroupCount
    keys = [getattr(g, k) for k in _KEY]
    stored_rows = session.execute(
        select(*keys, func.sum(g.orders), func.sum(g.revenue_cents), func.sum(g.n)).group_by(*keys)
    )
    stored = {
        tuple(r[:7]): (int(r[7]), int(r[8]), int(r[9]))
        for r in stored_rows
        if (int(r[7]), int(r[8]), int(r[9])) != (0, 0, 0)
    }
    expected = {
        tuple(r[:7]): (int(r[7]), int(round(float(r[8]))), int(r[9]))
        for r in session.execute(expected_group_counts(session))
    }
    return [
        (key, stored.get(key), expected.get(key))
        for key in sorted(set(stored) | set(expected), key=repr)
        if stored.get(key) != expected.get(key)
    ]


def rebuild_group_counts(session: Session) -> None:
    """Refill the group counts from the customer roll-ups (a repair)."""
    session.execute(delete(GroupCount))
    recount = expected_group_counts(session).subquery()
    session.execute(
        insert(GroupCount).from_select(
            [*_KEY, "orders", "revenue_cents", "n"],
            select(*[recount.c[k] for k in (*_KEY, "orders", "revenue_cents", "n")]),
        )
    )
