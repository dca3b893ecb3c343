"""Sales reports: the pipeline funnel and win rate, deal size and cycle time per owner or team."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.activities import pipeline_stages
from crm_core.errors import InvalidInput
from crm_core.models import Deal, DealStatus, User
from crm_core.reports._common import frame, team_names, to_float, to_int, user_names
from crm_core.reports._sql import days_between, dialect_of
from crm_core.reports.filters import ReportFilter, in_range, scoped

FUNNEL_COLUMNS = (
    "stage",
    "name_en",
    "name_zh",
    "position",
    "kind",
    "deals",
    "amount",
    "reached",
    "conversion",
)

PERFORMANCE_METRICS = (
    "deals",
    "open_deals",
    "won",
    "lost",
    "win_rate",
    "won_amount",
    "avg_deal_size",
    "avg_cycle_days",
    "pipeline_amount",
)


def _deals_scoped(stmt: Any, session: Session, actor: Actor, filters: ReportFilter | None) -> Any:
    stmt = stmt.where(*in_range(Deal.created_at, filters))
    return scoped(stmt, session, actor=actor, filters=filters, customer_id=Deal.customer_id)


def sales_funnel(
    session: Session, *, actor: Actor, filters: ReportFilter | None = None
) -> pd.DataFrame:
    """Deals per pipeline stage (deals created in the date range), in board order.

    Columns: ``stage`` (key), ``name_en``, ``name_zh``, ``position``, ``kind`` (``open``, ``won``
    or ``lost``), ``deals`` (deals now at the stage), ``amount`` (their total), ``reached``
    (deals that got at least this far: now at this or a later open stage, or won; every deal
    reached the first stage) and ``conversion`` (``reached`` over the previous stage's
    ``reached``). The lost row has no ``reached``: the stage a deal was lost at is not kept.
    """
    stmt = _deals_scoped(
        select(Deal.stage, func.count(Deal.id), func.coalesce(func.sum(Deal.amount), 0))
        .select_from(Deal)
        .group_by(Deal.stage),
        session,
        actor,
        filters,
    )
    counts = {stage: (int(n), float(amount)) for stage, n, amount in session.execute(stmt)}
    stages = pipeline_stages(session)
    rows = []
    for st in stages:
        n, amount = counts.pop(st.key, (0, 0.0))
        kind = "won" if st.is_won else "lost" if st.is_lost else "open"
        rows.append([st.key, st.name_en, st.name_zh, st.position, kind, n, amount])
    for key, (n, amount) in sorted(counts.items()):  # stages removed from the board
        rows.append([key, key, key, len(rows), "open", n, amount])
    df = pd.DataFrame(rows, columns=list(FUNNEL_COLUMNS[:-2]))
    total = int(df["deals"].sum())
    open_rows = df[df["kind"] == "open"].sort_values("position")
    won = int(df.loc[df["kind"] == "won", "deals"].sum())
    reached: dict[str, float] = {}
    later = won
    for _, row in open_rows.iloc[::-1].iterrows():
        later += int(row["deals"])
        reached[row["stage"]] = float(later)
    if not open_rows.empty:
        reached[open_rows.iloc[0]["stage"]] = float(total)
    for key in df.loc[df["kind"] == "won", "stage"]:
        reached[key] = float(won)
    df["reached"] = df["stage"].map(reached).astype("float64")
    funnel = df[df["kind"] != "lost"].sort_values("position")
    previous = funnel["reached"].shift(1)
    conversion = (funnel["reached"] / previous).where(previous > 0)
    df["conversion"] = conversion.reindex(df.index).astype("float64")
    return df.sort_values("position").reset_index(drop=True)


def sales_performance(
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None = None,
    by: str = "owner",
) -> pd.DataFrame:
    """Deals, win rate, average won deal size and cycle time per deal owner or team.

    ``by="owner"`` gives columns ``owner_id``, ``owner``, ``team``; ``by="team"`` gives
    ``team_id``, ``team``. Then: ``deals``, ``open_deals``, ``won``, ``lost``, ``win_rate``
    (won / (won + lost)), ``won_amount``, ``avg_deal_size`` (mean amount of won deals),
    ``avg_cycle_days`` (mean days from creation to close of won deals) and ``pipeline_amount``
    (total of open deals). Deals created in the date range; a deal's team is its owner's team.
    """
    if by not in ("owner", "team"):
        raise InvalidInput("must be 'owner' or 'team'", field="by")
    dialect = dialect_of(session)
    won = Deal.status == DealStatus.WON
    cycle = days_between(Deal.created_at, Deal.closed_at, dialect)
    key = Deal.owner_id if by == "owner" else User.team_id
    stmt = (
        select(
            key,
            func.count(Deal.id),
            func.sum(case((Deal.status == DealStatus.OPEN, 1), else_=0)),
            func.sum(case((won, 1), else_=0)),
            func.sum(case((Deal.status == DealStatus.LOST, 1), else_=0)),
            func.sum(case((won, Deal.amount), else_=0)),
            func.avg(case((won, Deal.amount))),
            func.avg(case((won, cycle))),
            func.sum(case((Deal.status == DealStatus.OPEN, Deal.amount), else_=0)),
        )
        .select_from(Deal)
        .group_by(key)
    )
    if by == "team":
        stmt = stmt.outerjoin(User, User.id == Deal.owner_id)
    stmt = _deals_scoped(stmt, session, actor, filters)
    raw = [
        "key",
        "deals",
        "open_deals",
        "won",
        "lost",
        "won_amount",
        "avg_deal_size",
        "avg_cycle_days",
        "pipeline_amount",
    ]
    df = frame(session.execute(stmt), raw)
    df = to_int(df, "deals", "open_deals", "won", "lost")
    df = to_float(df, "won_amount", "avg_deal_size", "avg_cycle_days", "pipeline_amount")
    closed = df["won"] + df["lost"]
    df["win_rate"] = (df["won"] / closed).where(closed > 0).astype("float64")
    if by == "owner":
        names = user_names(session, df["key"])
        df.insert(1, "owner", df["key"].map(lambda u: names.get(u, ("", None, ""))[0] if u else ""))
        df.insert(2, "team", df["key"].map(lambda u: names.get(u, ("", None, ""))[2] if u else ""))
        df = df.rename(columns={"key": "owner_id"})
        df["owner_id"] = df["owner_id"].astype("Int64")
        head = ["owner_id", "owner", "team"]
    else:
        teams = team_names(session)
        df.insert(1, "team", df["key"].map(lambda t: teams.get(t, "") if t else ""))
        df = df.rename(columns={"key": "team_id"})
        df["team_id"] = df["team_id"].astype("Int64")
        head = ["team_id", "team"]
    df = df[head + list(PERFORMANCE_METRICS)]
    return df.sort_values(["won_amount", "deals"], ascending=False).reset_index(drop=True)


def sales_kpis(performance: pd.DataFrame) -> dict[str, float]:
    """Totals of a ``sales_performance`` frame: deals, won, lost, win rate, won amount,
    average won deal size and average cycle time (weighted by won deals)."""
    won = float(performance["won"].sum())
    lost = float(performance["lost"].sum())
    won_amount = float(performance["won_amount"].sum())
    cycle_total = float((performance["avg_cycle_days"].fillna(0) * performance["won"]).sum())
    nan = float("nan")
    return {
        "deals": float(performance["deals"].sum()),
        "won": won,
        "lost": lost,
        "win_rate": won / (won + lost) if won + lost else nan,
        "won_amount": won_amount,
        "avg_deal_size": won_amount / won if won else nan,
        "avg_cycle_days": cycle_total / won if won else nan,
        "pipeline_amount": float(performance["pipeline_amount"].sum()),
    }
