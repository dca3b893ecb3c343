"""Value segmentation: RFM (recency, frequency, monetary) scores and segments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Integer, and_, case, cast, func, select
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.models import Customer, CustomerOrderTotals
from crm_core.reports._common import frame, now_or, to_float, to_int
from crm_core.reports._sql import days_between, dialect_of, timestamp
from crm_core.reports.filters import ReportFilter, customer_scope
from crm_core.reports.rollups import customer_months, history_end

#: Segments in the order their rules are tried (R, F, M are scores 1-5; FM = (F + M) / 2).
SEGMENTS = (
    ("champions", "R >= 4 and FM >= 4"),
    ("loyal", "R >= 3 and FM >= 3"),
    ("promising", "R >= 4"),
    ("at_risk", "R <= 2 and FM >= 3"),
    ("need_attention", "R = 3"),
    ("hibernating", "everyone else (R <= 2 and FM < 3)"),
)

SCORE_COLUMNS = (
    "customer_id",
    "name",
    "last_order_at",
    "recency_days",
    "frequency",
    "monetary",
    "r",
    "f",
    "m",
    "rfm",
    "segment",
)
SEGMENT_COLUMNS = (
    "segment",
    "customers",
    "share",
    "avg_recency_days",
    "avg_frequency",
    "avg_monetary",
    "revenue",
)


def _quintile(column: Any, dialect: str) -> Any:
    """Score 1-5 from the cumulative distribution: equal values get equal scores."""
    scaled = func.cume_dist().over(order_by=column) * 5 - 0.000001
    if dialect != "sqlite":  # PostgreSQL rounds when casting to an integer; SQLite truncates
        scaled = func.floor(scaled)
    return cast(scaled, Integer) + 1


def _scored(session: Session, actor: Actor, filters: ReportFilter | None, now: datetime) -> Any:
    dialect = dialect_of(session)
    scope = customer_scope(session, actor=actor, filters=filters)
    f = filters or ReportFilter()
    end = history_end(session, now)
    if f.end is not None:
        end = f.end if end is None else min(end, f.end)
    if f.start is None and end is None:  # every order: the per-customer roll-up
        t = CustomerOrderTotals
        per_customer = (
            select(
                t.customer_id.label("customer_id"),
                t.last_at.label("last_order_at"),
                t.orders.label("frequency"),
                t.revenue.label("monetary"),
            )
            .join(Customer, Customer.id == t.customer_id)
            .where(scope)
            .subquery()
        )
    else:
        cm = customer_months(session, start=f.start, end=end)
        per_customer = (
            select(
                cm.c.customer_id.label("customer_id"),
                func.max(cm.c.last_at).label("last_order_at"),
                func.sum(cm.c.orders).label("frequency"),
                func.sum(cm.c.revenue).label("monetary"),
            )
            .join(Customer, Customer.id == cm.c.customer_id)
            .where(scope)
            .group_by(cm.c.customer_id)
            .subquery()
        )
    c = per_customer.c
    scores = select(
        c.customer_id,
        c.last_order_at,
        days_between(c.last_order_at, timestamp(now, dialect), dialect).label("recency_days"),
        c.frequency,
        c.monetary,
        _quintile(c.last_order_at, dialect).label("r"),
        _quintile(c.frequency, dialect).label("f"),
        _quintile(c.monetary, dialect).label("m"),
    ).subquery()
    s = scores.c
    fm2 = s.f + s.m  # FM >= 4  <=>  F + M >= 8
    segment = case(
        (and_(s.r >= 4, fm2 >= 8), "champions"),
        (and_(s.r >= 3, fm2 >= 6), "loyal"),
        (s.r >= 4, "promising"),
        (and_(s.r <= 2, fm2 >= 6), "at_risk"),
        (s.r == 3, "need_attention"),
        else_="hibernating",
    ).label("segment")
    return select(scores, segment).subquery()


def rfm_scores(
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None = None,
    now: datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """RFM scores of every customer with orders (in the date range), biggest spenders first.

    Columns: ``customer_id``, ``name`` (shaped for the actor: masked for analysts),
    ``last_order_at``, ``recency_days``, ``frequency`` (orders), ``monetary`` (their total),
    ``r``, ``f``, ``m`` (1-5, from each value's rank among the customers: 5 is the most recent,
    most frequent, biggest; equal values score the same), ``rfm`` (e.g. ``'545'``) and
    ``segment`` (see ``SEGMENTS``).
    """
    now = now_or(now)
    scored = _scored(session, actor, filters, now)
    stmt = (
        select(
            scored.c.customer_id,
            Customer.name,
            scored.c.last_order_at,
            scored.c.recency_days,
            scored.c.frequency,
            scored.c.monetary,
            scored.c.r,
            scored.c.f,
            scored.c.m,
            scored.c.segment,
        )
        .join(Customer, Customer.id == scored.c.customer_id)
        .order_by(scored.c.monetary.desc(), scored.c.customer_id)
    )
    if limit:
        stmt = stmt.limit(limit)
    columns = [c for c in SCORE_COLUMNS if c != "rfm"]
    df = frame(session.execute(stmt), columns)
    df = to_float(df, "recency_days", "monetary")
    df = to_int(df, "frequency", "r", "f", "m")
    if access.field_mode(actor) != "full":
        df["name"] = [access.shape_for(actor, {"name": n})["name"] for n in df["name"]]
    df.insert(9, "rfm", df["r"].astype(str) + df["f"].astype(str) + df["m"].astype(str))
    return df


def rfm_segments(
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Customers per RFM segment, in the order of ``SEGMENTS`` (empty segments included).

    Columns: ``segment``, ``customers``, ``share`` (0-1), ``avg_recency_days``,
    ``avg_frequency``, ``avg_monetary`` and ``revenue`` (total of the segment's orders).
    """
    scored = _scored(session, actor, filters, now_or(now))
    c = scored.c
    stmt = select(
        c.segment,
        func.count(),
        func.avg(c.recency_days),
        func.avg(c.frequency),
        func.avg(c.monetary),
        func.sum(c.monetary),
    ).group_by(c.segment)
    found = {row[0]: row[1:] for row in session.execute(stmt)}
    rows = [(name, *found.get(name, (0, None, None, None, 0))) for name, _ in SEGMENTS]
    df = frame(rows, [c for c in SEGMENT_COLUMNS if c != "share"])
    df = to_int(df, "customers")
    df = to_float(df, "avg_recency_days", "avg_frequency", "avg_monetary", "revenue")
    total = int(df["customers"].sum())
    df.insert(2, "share", (df["customers"] / total if total else df["customers"] * 0.0))
    df["share"] = df["share"].astype("float64")
    return df
