"""Service reports: tickets by kind and status, time to resolve, satisfaction scores."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.models import Ticket
from crm_core.reports._common import frame, to_float, to_int
from crm_core.reports._sql import days_between, dialect_of
from crm_core.reports.filters import ReportFilter, in_range, scoped


def _scoped(stmt: Any, session: Session, actor: Actor, filters: ReportFilter | None) -> Any:
    stmt = stmt.where(*in_range(Ticket.created_at, filters))
    return scoped(stmt, session, actor=actor, filters=filters, customer_id=Ticket.customer_id)


def tickets_by_status(
    session: Session, *, actor: Actor, filters: ReportFilter | None = None
) -> pd.DataFrame:
    """Tickets opened in the date range, counted by ``kind`` and ``status``.

    Columns: ``kind``, ``status``, ``tickets``.
    """
    stmt = _scoped(
        select(Ticket.kind, Ticket.status, func.count(Ticket.id))
        .group_by(Ticket.kind, Ticket.status)
        .order_by(Ticket.kind, Ticket.status),
        session,
        actor,
        filters,
    )
    return to_int(frame(session.execute(stmt), ["kind", "status", "tickets"]), "tickets")


def ticket_resolution(
    session: Session, *, actor: Actor, filters: ReportFilter | None = None
) -> pd.DataFrame:
    """Resolution time and satisfaction per ticket kind (tickets opened in the date range).

    Columns: ``kind``, ``tickets``, ``open`` (not resolved yet), ``resolved``,
    ``avg_hours_to_resolve`` (of resolved tickets), ``max_hours_to_resolve``, ``rated``
    (tickets with a satisfaction score) and ``avg_satisfaction`` (1-5).
    """
    dialect = dialect_of(session)
    resolved = Ticket.resolved_at.is_not(None)
    hours = days_between(Ticket.created_at, Ticket.resolved_at, dialect) * 24
    stmt = (
        select(
            Ticket.kind,
            func.count(Ticket.id),
            func.sum(case((resolved, 0), else_=1)),
            func.sum(case((resolved, 1), else_=0)),
            func.avg(case((resolved, hours))),
            func.max(case((resolved, hours))),
            func.count(Ticket.satisfaction),
            func.avg(Ticket.satisfaction),
        )
        .group_by(Ticket.kind)
        .order_by(Ticket.kind)
    )
    stmt = _scoped(stmt, session, actor, filters)
    columns = [
        "kind",
        "tickets",
        "open",
        "resolved",
        "avg_hours_to_resolve",
        "max_hours_to_resolve",
        "rated",
        "avg_satisfaction",
    ]
    df = frame(session.execute(stmt), columns)
    df = to_int(df, "tickets", "open", "resolved", "rated")
    return to_float(df, "avg_hours_to_resolve", "max_hours_to_resolve", "avg_satisfaction")


def satisfaction_scores(
    session: Session, *, actor: Actor, filters: ReportFilter | None = None
) -> pd.DataFrame:
    """How many tickets got each satisfaction score (1-5, every score listed).

    Columns: ``score``, ``tickets``, ``share`` (of rated tickets, 0-1).
    """
    stmt = (
        select(Ticket.satisfaction, func.count(Ticket.id))
        .where(Ticket.satisfaction.is_not(None))
        .group_by(Ticket.satisfaction)
    )
    stmt = _scoped(stmt, session, actor, filters)
    counts = {int(score or 0): int(n) for score, n in session.execute(stmt)}
    df = pd.DataFrame({"score": range(1, 6), "tickets": [counts.get(s, 0) for s in range(1, 6)]})
    total = int(df["tickets"].sum())
    df["share"] = (df["tickets"] / total if total else df["tickets"] * 0.0).astype("float64")
    return df.astype({"score": "int64", "tickets": "int64"})
