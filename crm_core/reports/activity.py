"""Activity reports: interactions per user and kind over time, and overdue tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.models import Customer, GroupActivityCount, Interaction, Role, Task
from crm_core.reports._common import frame, now_or, to_int, user_names
from crm_core.reports._sql import days_between, dialect_of, month_bucket, month_text, timestamp
from crm_core.reports.activity_groups import activity_sums
from crm_core.reports.filters import ReportFilter, customer_scope, in_range, scoped
from crm_core.reports.groups import group_scope
from crm_core.reports.rollups import split_range

OVERDUE_COLUMNS = (
    "task_id",
    "title",
    "assignee_id",
    "assignee",
    "customer_id",
    "due_at",
    "days_overdue",
)


def interactions_by_month(
    session: Session, *, actor: Actor, filters: ReportFilter | None = None
) -> pd.DataFrame:
    """Interactions (calls, emails, meetings …) per month, user and kind.

    Columns: ``month`` (``'YYYY-MM'``), ``user_id`` (who logged it), ``user``, ``kind``,
    ``interactions``. Interactions with the filtered customers, in the date range.
    """
    f = filters or ReportFilter()
    scope = group_scope(session, actor=actor, filters=f, table=GroupActivityCount)
    if scope is not None:
        rows = _activity_from_groups(session, actor, f, scope)
    else:
        rows = [tuple(r) for r in session.execute(_activity_from_interactions(session, actor, f))]
    df = frame(rows, ["month", "user_id", "kind", "interactions"])
    df["month"] = month_text(df["month"])
    nulls = "first" if dialect_of(session) == "sqlite" else "last"  # as each orders NULLs
    df = df.sort_values(["month", "user_id", "kind"], na_position=nulls, kind="stable")
    df = df.reset_index(drop=True)
    names = user_names(session, df["user_id"])
    df.insert(2, "user", df["user_id"].map(lambda u: names.get(u, ("", None, ""))[0] if u else ""))
    df["user_id"] = df["user_id"].astype("Int64")
    df["month"] = df["month"].astype("string")
    return to_int(df, "interactions")


def _activity_from_interactions(session: Session, actor: Actor, filters: ReportFilter) -> Any:
    """``SELECT`` of the interactions per month, user and kind straight from the interactions
    (grouped, not ordered: PostgreSQL sorted the million rows to group them)."""
    month = month_bucket(Interaction.occurred_at, dialect_of(session)).label("month")
    stmt = (
        select(month, Interaction.user_id, Interaction.kind, func.count(Interaction.id))
        .where(*in_range(Interaction.occurred_at, filters))
        .group_by(month, Interaction.user_id, Interaction.kind)
    )
    return scoped(stmt, session, actor=actor, filters=filters, customer_id=Interaction.customer_id)


def _activity_from_groups(
    session: Session, actor: Actor, filters: ReportFilter, scope: Any
) -> list[tuple[Any, ...]]:
    """The rows of ``_activity_from_interactions`` from the interaction group counts: whole
    months summed over the groups, the partial months at the edges of the date range from
    the interactions."""
    from_month, to_month, edges = split_range(filters.start, filters.end)
    g = GroupActivityCount
    where = []
    if from_month is not None:
        where.append(g.month >= from_month)
    if to_month is not None:
        where.append(g.month < to_month)
    rows: list[tuple[Any, ...]] = list(activity_sums(session, scope, *where))
    for start, end in edges:
        stmt = _activity_from_interactions(
            session, actor, filters.with_(date_from=None, date_to=None)
        )
        if start is not None:
            stmt = stmt.where(Interaction.occurred_at >= start)
        if end is not None:
            stmt = stmt.where(Interaction.occurred_at < end)
        part = [tuple(r) for r in session.execute(stmt)]
        months = month_text([r[0] for r in part])
        rows += [(m, *r[1:]) for m, r in zip(months, part, strict=True)]
    return rows


def overdue_tasks(
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None = None,
    now: datetime | None = None,
    limit: int = 1000,
) -> pd.DataFrame:
    """Open tasks past their due time, most overdue first.

    Tasks about a customer count when the customer is in the report's scope; tasks about no
    customer count for their assignee, and for admins and managers. The date range selects
    the due dates. Columns: see ``OVERDUE_COLUMNS``.
    """
    now = now_or(now)
    dialect = dialect_of(session)
    scope = customer_scope(session, actor=actor, filters=filters)
    own: ColumnElement[bool]
    if actor.role in (Role.ADMIN, Role.MANAGER, Role.SYSTEM):
        own = Task.customer_id.is_(None)
    else:
        own = and_(Task.customer_id.is_(None), Task.assignee_id == actor.id)
    f = filters or ReportFilter()
    customer_filtered = any(
        v is not None for v in (f.owner_id, f.team_id, f.tag or None, f.province, f.city)
    )
    visible = and_(Task.customer_id.is_not(None), scope)
    condition = visible if customer_filtered else or_(visible, own)
    stmt = (
        select(
            Task.id,
            Task.title,
            Task.assignee_id,
            Task.customer_id,
            Task.due_at,
            days_between(Task.due_at, timestamp(now, dialect), dialect),
        )
        .outerjoin(Customer, Customer.id == Task.customer_id)
        .where(Task.done_at.is_(None), Task.due_at < now, condition)
        .where(*in_range(Task.due_at, filters))
        .order_by(Task.due_at, Task.id)
        .limit(limit)
    )
    rows = session.execute(stmt).all()
    names = user_names(session, [r[2] for r in rows])
    out = [
        (tid, title, uid, names.get(uid, ("", None, ""))[0] if uid else "", cid, due, float(days))
        for tid, title, uid, cid, due, days in rows
    ]
    df = pd.DataFrame(out, columns=list(OVERDUE_COLUMNS))
    df["assignee_id"] = df["assignee_id"].astype("Int64")
    df["customer_id"] = df["customer_id"].astype("Int64")
    df["days_overdue"] = df["days_overdue"].astype("float64")
    return to_int(df, "task_id")
