"""Helpers shared by the report modules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import DateTime, select
from sqlalchemy.orm import Session

from crm_core.models import Order, Team, User, utcnow

#: Orders in these states bring no revenue.
EXCLUDED_ORDER_STATUSES = ("cancelled", "canceled", "refunded", "void")


def counted_order() -> Any:
    """SQL condition: the order counts as revenue."""
    return Order.status.not_in(EXCLUDED_ORDER_STATUSES)


def as_float(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, Decimal):
        return float(value)
    return float(value)


def frame(rows: Iterable[Sequence[Any]], columns: Sequence[str]) -> pd.DataFrame:
    """A DataFrame of SQL rows with the given column names."""
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def to_float(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        df[column] = pd.to_numeric(df[column].map(lambda v: None if v is None else float(v)))
        df[column] = df[column].astype("float64")
    return df


def to_int(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    for column in columns:
        df[column] = df[column].fillna(0).astype("int64")
    return df


def _bound(compiled: Any) -> dict[str, Any]:
    """The parameters of a compiled statement as the driver gets them from SQLAlchemy (each
    type's bind processing applied: a time as SQLite stores it)."""
    out = {}
    for name, value in compiled.params.items():
        bind = compiled.binds.get(name)  # (an expanded IN list's values are plain)
        processor = bind.type.bind_processor(compiled.dialect) if bind is not None else None
        out[name] = processor(value) if processor is not None else value
    return out


def raw_rows(session: Session, stmt: Any) -> list[tuple[Any, ...]]:
    """The rows of ``stmt`` as plain tuples from the driver's cursor, for results of a million
    rows (no result processing: use it for numbers and text only)."""
    compiled = stmt.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    params: Any = _bound(compiled)
    if compiled.positiontup is not None:
        params = tuple(params[name] for name in compiled.positiontup)
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(str(compiled), params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def number_columns(session: Session, stmt: Any, dtypes: Sequence[str]) -> list[np.ndarray]:
    """The columns of ``stmt`` (numbers, no ``NULL``) as numpy arrays of ``dtypes``, for results
    of a million rows (on PostgreSQL a time column comes as microseconds since 1970).
    PostgreSQL: one ``bytea`` value of every row's numbers in binary (``int8send`` /
    ``float8send``: the exact values, no text), read straight into numpy (a ``COPY`` sends a
    message per row, and reading those took most of the time); SQLite: the driver's rows."""
    if session.get_bind().dialect.name != "postgresql":
        # as float64 in one go (exact for integers below 2**53), then each column's type;
        # ``fromiter`` over the flattened rows is about a third faster than ``np.array`` of
        # the row tuples (same values)
        rows = raw_rows(session, stmt)
        data = np.fromiter(
            chain.from_iterable(rows), dtype="float64", count=len(rows) * len(dtypes)
        ).reshape(-1, len(dtypes))
        return [data[:, i].astype(d) for i, d in enumerate(dtypes)]
    compiled = stmt.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    floats = [np.dtype(d).kind == "f" for d in dtypes]
    columns = list(stmt.selected_columns)[: len(dtypes)]
    times = [isinstance(getattr(c.type, "impl", c.type), DateTime) for c in columns]
    names = [f"c{i}" for i in range(len(dtypes))]
    packed = " || ".join(
        f"timestamptz_send(q.{n})"
        if t
        else (f"float8send(q.{n}::float8)" if f else f"int8send(q.{n}::int8)")
        for n, f, t in zip(names, floats, times, strict=True)
    )
    sql = (
        f"SELECT count(*), string_agg({packed}, ''::bytea)"
        f" FROM ({compiled}) AS q({', '.join(names)})"
    )
    cursor = session.connection().connection.cursor(binary=True)
    try:
        cursor.execute(sql, _bound(compiled))
        count, blob = cursor.fetchone() or (0, None)
    finally:
        cursor.close()
    layout = np.dtype([(n, ">f8" if f else ">i8") for n, f in zip(names, floats, strict=True)])
    rows = np.frombuffer(blob or b"", dtype=layout)
    if len(rows) != count:  # a NULL leaves its row out of the aggregate
        raise ValueError("number_columns: the statement returned NULL")
    return [
        rows[n].astype(d) + (_PG_EPOCH_US if t else 0)
        for n, d, t in zip(names, dtypes, times, strict=True)
    ]


#: PostgreSQL sends a time as microseconds since 2000-01-01 UTC; this many more since 1970.
_PG_EPOCH_US = 946_684_800 * 1_000_000


def user_names(session: Session, user_ids: Iterable[Any]) -> dict[int, tuple[str, int | None, str]]:
    """``{user_id: (display name, team id, team name)}`` for the given ids."""
    ids = sorted({int(u) for u in user_ids if u is not None and not pd.isna(u)})
    if not ids:
        return {}
    stmt = (
        select(User.id, User.display_name, User.username, User.team_id, Team.name)
        .outerjoin(Team, Team.id == User.team_id)
        .where(User.id.in_(ids))
    )
    return {
        uid: (display or username, team_id, team or "")
        for uid, display, username, team_id, team in session.execute(stmt)
    }


def team_names(session: Session) -> dict[int, str]:
    return {tid: name for tid, name in session.execute(select(Team.id, Team.name))}


def now_or(now: datetime | None) -> datetime:
    return now or utcnow()


def month_range(first: str, last: str) -> list[str]:
    """Every ``'YYYY-MM'`` from ``first`` to ``last`` inclusive."""
    periods = pd.period_range(pd.Period(first, "M"), pd.Period(last, "M"), freq="M")
    return [str(p) for p in periods]
