"""Cohort retention: customers grouped by the month of their first order, and the share of
each cohort still buying in the months after."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.models import Customer, CustomerOrderTotals
from crm_core.reports._common import frame, to_int
from crm_core.reports._sql import dialect_of, month_key
from crm_core.reports.filters import ReportFilter, customer_scope, in_range
from crm_core.reports.groups import COHORT, REVENUE, group_scope, group_sums
from crm_core.reports.rollups import customer_months, month_number

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
    f = filters or ReportFilter()
    unbounded = f.with_(date_from=None, date_to=None)
    groups = group_scope(session, actor=actor, filters=unbounded)
    if groups is not None and f.start is None and f.end is None:
        return _cohorts_from_groups(session, groups, max_period)
    scope = customer_scope(session, actor=actor, filters=unbounded)
    totals = CustomerOrderTotals
    first_month = month_key(totals.first_at, dialect_of(session))
    conditions = [*in_range(totals.first_at, f)]
    cm = customer_months(session)
    cohort = first_month.label("cohort")
    period = (month_number(cm.c.month) - month_number(first_month)).label("period")
    activity = (
        select(cohort, period)
        .select_from(cm)
        .join(totals, totals.customer_id == cm.c.customer_id)
        .join(Customer, Customer.id == cm.c.customer_id)
        .where(scope, *conditions)
        .subquery()
    )
    a = activity.c
    stmt = (  # a customer's month is one roll-up row: rows are distinct buyers
        select(a.cohort, a.period, func.count())
        .where(a.period <= max_period)
        .group_by(a.cohort, a.period)
        .order_by(a.cohort, a.period)
    )
    df = to_int(
        frame(session.execute(stmt), ["cohort", "period", "customers"]), "period", "customers"
    )
    last = session.scalar(
        select(func.max(totals.last_at))
        .join(Customer, Customer.id == totals.customer_id)
        .where(scope)
    )
    return _finish(df, f"{last:%Y-%m}" if last is not None else None)


def _cohorts_from_groups(session: Session, groups: Any, max_period: int) -> pd.DataFrame:
    """``cohort_retention`` over every cohort from the group counts."""
    sums = group_sums(session, COHORT, groups)
    cohort, month = sums["k1"].astype(str), sums["k2"].astype(str)
    number = lambda m: m.str[:4].astype("int64") * 12 + m.str[5:7].astype("int64") - 1  # noqa: E731
    df = pd.DataFrame(
        {
            "cohort": cohort,
            "period": (number(month) - number(cohort)) if len(sums) else 0,
            "customers": sums["n"],
        }
    )
    df = df[(df["period"] <= max_period) & (df["customers"] > 0)]
    df = df.groupby(["cohort", "period"], as_index=False)["customers"].sum()
    df = to_int(df.sort_values(["cohort", "period"]), "period", "customers")
    revenue = group_sums(session, REVENUE, groups)
    months = revenue.loc[revenue["n"] > 0, "k1"]
    return _finish(df.reset_index(drop=True), str(months.max()) if len(months) else None)


def _finish(df: pd.DataFrame, last_month: str | None) -> pd.DataFrame:
    sizes = df[df["period"] == 0].set_index("cohort")["customers"]
    df["cohort_size"] = df["cohort"].map(sizes).fillna(0).astype("int64")
    df["retention"] = (df["customers"] / df["cohort_size"]).where(df["cohort_size"] > 0)
    df["retention"] = df["retention"].astype("float64")
    df["cohort"] = df["cohort"].astype("string")
    df = df[list(COHORT_COLUMNS)].copy()
    df.attrs["last_month"] = last_month
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
