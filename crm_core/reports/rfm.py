"""Value segmentation: RFM (recency, frequency, monetary) scores and segments."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import BigInteger, Float, Integer, String, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.models import Customer, CustomerOrderTotals
from crm_core.reports._common import frame, now_or, number_columns, to_float, to_int
from crm_core.reports._sql import days_between, dialect_of, timestamp
from crm_core.reports.filters import (
    ReportFilter,
    customer_scope,
    not_merged,
    sees_every_live_customer,
)
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


#: ``rfm_scores`` with a limit up to this many rows scores in Python (names read for those).
SCORE_IN_PYTHON_LIMIT = 20_000


def _totals_window(
    session: Session, filters: ReportFilter | None, now: datetime
) -> tuple[bool, datetime | None]:
    """Whether every counted order up to ``now`` is in range (the per-customer roll-up
    answers), and the exclusive end of the orders to read otherwise."""
    f = filters or ReportFilter()
    end = history_end(session, now)
    if f.end is not None:
        end = f.end if end is None else min(end, f.end)
    return f.start is None and end is None, end


def _microseconds(column: Any, dialect: str) -> Any:
    """A UTC timestamp column as whole microseconds since 1970 (exact, for ranking)."""
    if dialect == "sqlite":  # text 'YYYY-MM-DD HH:MM:SS[.ffffff]'
        # ``unixepoch`` (SQLite 3.38) gives the seconds ``strftime('%s')`` gives, as an integer,
        # about six times faster (a million rows: 0.3 s instead of 2 s)
        if sqlite3.sqlite_version_info >= (3, 38, 0):
            seconds = func.unixepoch(column) * 1_000_000
        else:
            seconds = cast(func.strftime("%s", column), Integer) * 1_000_000
        # the fraction: the six digits SQLAlchemy always writes (26 characters) read as they
        # are, about three times faster than padding every value; other lengths padded
        padded = cast(func.substr(column.op("||")(literal("000000", String)), 21, 6), Integer)
        as_written = cast(func.substr(column, 21), Integer)
        return seconds + case((func.length(column) == 26, as_written), else_=padded)
    return cast(func.extract("epoch", column) * 1_000_000, BigInteger)


@dataclass(frozen=True)
class _Scores:
    """Every in-scope customer's RFM values and scores (numpy arrays of equal length)."""

    customer_id: np.ndarray
    recency_days: np.ndarray
    frequency: np.ndarray
    monetary: np.ndarray
    r: np.ndarray
    f: np.ndarray
    m: np.ndarray
    segment: np.ndarray


def _quintile_of(values: np.ndarray) -> np.ndarray:
    """``_quintile`` in numpy: 1-5 from ``cume_dist`` (the share of values at or below).

    The score only grows with the count at or below a value, so it is 1 plus the number of
    four thresholds the value reaches: the sorted value at the first count that scores 2, 3,
    4 and 5 (the counts scored with the same float arithmetic as before; sorting values is
    several times faster than ranking them)."""
    n = len(values)
    ordered = np.sort(values)
    scored = np.floor(np.arange(1, n + 1) / float(n) * 5 - 0.000001) + 1
    out = np.ones(n, dtype="int64")
    for k in (2, 3, 4, 5):
        first = int(np.searchsorted(scored, k, side="left"))  # 0-based: count - 1
        if first < n:
            out += values >= ordered[first]
    return out


def _segment_of(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    fm2 = f + m
    return np.select(
        [
            (r >= 4) & (fm2 >= 8),
            (r >= 3) & (fm2 >= 6),
            r >= 4,
            (r <= 2) & (fm2 >= 6),
            r == 3,
        ],
        ["champions", "loyal", "promising", "at_risk", "need_attention"],
        default="hibernating",
    )


def _scores_in_python(session: Session, scope: Any, now: datetime, everyone: bool) -> _Scores:
    """One pass over the per-customer roll-up: the in-scope customers' values, scored with
    numpy exactly as ``_scored`` scores them in SQL (equal values, equal scores)."""
    dialect = dialect_of(session)
    t = CustomerOrderTotals
    stmt = select(
        t.customer_id,
        # PostgreSQL: the stored time itself (``number_columns`` reads its microseconds)
        t.last_at if dialect == "postgresql" else _microseconds(t.last_at, dialect),
        t.orders,
        cast(t.revenue, Float),
    )
    if everyone:  # every live customer: leave out the merged ones (indexed), no join
        stmt = stmt.where(not_merged(t.customer_id))
    else:
        stmt = stmt.join(Customer, Customer.id == t.customer_id).where(scope)
    # a million rows: no ORM row objects (PostgreSQL: binary numbers read by numpy)
    ids, last, frequency, monetary = number_columns(
        session, stmt, ("int64", "int64", "int64", "float64")
    )
    # in customer order, so the sums (floats) do not depend on the order the plan gave
    if len(ids) > 1 and not bool((ids[1:] > ids[:-1]).all()):
        by_id = np.argsort(ids)
        ids, last = ids[by_id], last[by_id]
        frequency, monetary = frequency[by_id], monetary[by_id]
    now_us = int(now.astimezone(UTC).timestamp()) * 1_000_000 + now.microsecond
    recency = (now_us - last) / 86_400_000_000
    if len(ids):
        r, f, m = _quintile_of(last), _quintile_of(frequency), _quintile_of(monetary)
    else:
        r = f = m = np.zeros(0, dtype="int64")
    return _Scores(ids, recency, frequency, monetary, r, f, m, _segment_of(r, f, m))


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
    whole, _ = _totals_window(session, filters, now)
    if whole and limit and limit <= SCORE_IN_PYTHON_LIMIT:
        scope = customer_scope(session, actor=actor, filters=filters)
        everyone = sees_every_live_customer(actor, filters)
        scores = _scores_in_python(session, scope, now, everyone)
        if len(scores.customer_id):  # (none: the SQL below gives the typed empty frame)
            return _top_scores(session, actor, scores, limit)
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


def _top_scores(session: Session, actor: Actor, scores: _Scores, limit: int) -> pd.DataFrame:
    """The ``limit`` biggest spenders of ``scores`` as ``rfm_scores`` rows."""
    spent = -scores.monetary
    if limit < len(spent):  # those at or above the limit-th biggest total, then sorted
        kept = np.flatnonzero(spent <= np.partition(spent, limit - 1)[limit - 1])
    else:
        kept = np.arange(len(spent))
    order = kept[np.lexsort((scores.customer_id[kept], spent[kept]))][:limit]
    ids = [int(i) for i in scores.customer_id[order]]
    t = CustomerOrderTotals
    found = {
        cid: (name, last)
        for cid, name, last in session.execute(
            select(Customer.id, Customer.name, t.last_at)
            .join(t, t.customer_id == Customer.id)
            .where(Customer.id.in_(ids))
        )
    }
    df = pd.DataFrame(
        {
            "customer_id": pd.Series(ids, dtype="int64"),
            "name": [found[i][0] for i in ids],
            "last_order_at": [found[i][1] for i in ids],
            "recency_days": scores.recency_days[order].astype("float64"),
            "frequency": scores.frequency[order].astype("int64"),
            "monetary": scores.monetary[order].astype("float64"),
            "r": scores.r[order],
            "f": scores.f[order],
            "m": scores.m[order],
            "segment": scores.segment[order].astype(object),
        }
    )
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
    now = now_or(now)
    whole, _ = _totals_window(session, filters, now)
    if whole:
        scope = customer_scope(session, actor=actor, filters=filters)
        everyone = sees_every_live_customer(actor, filters)
        scores = _scores_in_python(session, scope, now, everyone)
        return _segments_frame(_segments_in_python(scores))
    scored = _scored(session, actor, filters, now)
    c = scored.c
    stmt = select(
        c.segment,
        func.count(),
        func.avg(c.recency_days),
        func.avg(c.frequency),
        func.avg(c.monetary),
        func.sum(c.monetary),
    ).group_by(c.segment)
    return _segments_frame({row[0]: tuple(row[1:]) for row in session.execute(stmt)})


def _segments_in_python(scores: _Scores) -> dict[str, tuple[Any, ...]]:
    """``{segment: (customers, avg recency, avg frequency, avg monetary, revenue)}``."""
    out: dict[str, tuple[Any, ...]] = {}
    for name, _ in SEGMENTS:
        mask = scores.segment == name
        n = int(mask.sum())
        if n:
            out[name] = (
                n,
                float(scores.recency_days[mask].mean()),
                float(scores.frequency[mask].mean()),
                float(scores.monetary[mask].mean()),
                float(scores.monetary[mask].sum()),
            )
    return out


def _segments_frame(found: dict[str, tuple[Any, ...]]) -> pd.DataFrame:
    rows = [(name, *found.get(name, (0, None, None, None, 0))) for name, _ in SEGMENTS]
    df = frame(rows, [c for c in SEGMENT_COLUMNS if c != "share"])
    df = to_int(df, "customers")
    df = to_float(df, "avg_recency_days", "avg_frequency", "avg_monetary", "revenue")
    total = int(df["customers"].sum())
    df.insert(2, "share", (df["customers"] / total if total else df["customers"] * 0.0))
    df["share"] = df["share"].astype("float64")
    return df
