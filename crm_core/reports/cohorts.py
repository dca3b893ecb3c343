"""Cohort retention: customers grouped by the month of their first order, and the share of
each cohort still buying in the months after."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.models import Customer, Order
from crm_core.reports._common import counted_order, frame, to_int
from crm_core.reports._sql import dialect_of, month_index, month_key
from crm_core.reports.filters import ReportFilter, customer_scope

COHORT_COLUMNS = ("cohort", "period", "customers", "cohort_size", "retention")


def cohort_retention(
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None = None,
    max_period: int = 12,
) -> pd.DataFrame:
    """Retention by first-order cohort, one row per cohort and period (long form).

    Columns: ``cohort`` (``'YYYY-MM'`` of the first order), ``period`` (months since the first
    order, 0 to ``max_period``), ``customers`` (of the cohort who ordered in that month),
    ``cohort_size`` and ``retention`` (``customers / cohort_size``; period 0 is 1.0).
    The date range selects the cohorts (by their first order month). Use
    ``retention_matrix`` for the cohort x period table.
    """
    dialect = dialect_of(session)
    f = filters or ReportFilter()
    base = (
        select(Order.customer_id, Order.ordered_at)
        .join(Customer, Customer.id == Order.customer_id)
        .where(customer_scope(session, actor=actor, filters=f.with_(date_from=None, date_to=None)))
        .where(counted_order())
        .subquery()
    )
    first = (
        select(base.c.customer_id, func.min(base.c.ordered_at).label("first_at"))
        .group_by(base.c.customer_id)
        .subquery()
    )
    conditions = []
    if f.start is not None:
        conditions.append(first.c.first_at >= f.start)
    if f.end is not None:
        conditions.append(first.c.first_at < f.end)
    cohort = month_key(first.c.first_at, dialect).label("cohort")
    period = (
        month_index(base.c.ordered_at, dialect) - month_index(first.c.first_at, dialect)
    ).label("period")
    activity = (
        select(cohort, period, base.c.customer_id)
        .join(first, first.c.customer_id == base.c.customer_id)
        .where(*conditions)
        .subquery()
    )
    a = activity.c
    stmt = (
        select(a.cohort, a.period, func.count(func.distinct(a.customer_id)))
        .where(a.period <= max_period)
        .group_by(a.cohort, a.period)
        .order_by(a.cohort, a.period)
    )
    df = to_int(
        frame(session.execute(stmt), ["cohort", "period", "customers"]), "period", "customers"
    )
    sizes = df[df["period"] == 0].set_index("cohort")["customers"]
    df["cohort_size"] = df["cohort"].map(sizes).fillna(0).astype("int64")
    df["retention"] = (df["customers"] / df["cohort_size"]).where(df["cohort_size"] > 0)
    df["retention"] = df["retention"].astype("float64")
    df["cohort"] = df["cohort"].astype("string")
    df = df[list(COHORT_COLUMNS)].copy()
    last = session.scalar(select(func.max(base.c.ordered_at)))
    df.attrs["last_month"] = f"{last:%Y-%m}" if last is not None else None
    return df


def retention_matrix(cohorts: pd.DataFrame) -> pd.DataFrame:
    """The ``cohort_retention`` frame as a table: cohorts as rows, periods as columns, retention
    as values (0 where nobody of the cohort bought; NaN where the cohort has not reached the
    period by the last month with orders, ``cohorts.attrs["last_month"]``)."""
    if cohorts.empty:
        return pd.DataFrame()
    matrix = cohorts.pivot(index="cohort", columns="period", values="retention")
    periods = list(range(0, int(cohorts["period"].max()) + 1))
    matrix = matrix.reindex(columns=periods)
    index = {c: int(c[:4]) * 12 + int(c[5:7]) - 1 for c in matrix.index}
    last = max(index[c] + int(p) for c, p in zip(cohorts["cohort"], cohorts["period"], strict=True))
    if cohorts.attrs.get("last_month"):
        month = str(cohorts.attrs["last_month"])
        last = max(last, int(month[:4]) * 12 + int(month[5:7]) - 1)
    for cohort in matrix.index:
        for period in periods:
            if pd.isna(matrix.at[cohort, period]) and index[cohort] + period <= last:
                matrix.at[cohort, period] = 0.0
    matrix.columns.name = "period"
    return matrix
