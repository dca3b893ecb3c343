"""The catalogue of reports (frame + figure) and the manager's dashboard built from it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm_core.access import Actor, require
from crm_core.db import analytics_settings
from crm_core.errors import InvalidInput
from crm_core.i18n import translator
from crm_core.reports import activity, churn, cohorts, distribution, figures, revenue, rfm, sales
from crm_core.reports import service as service_reports
from crm_core.reports.filters import ReportFilter


@dataclass(frozen=True)
class ReportSpec:
    """One report of the catalogue: how to compute its frame and draw its figure."""

    key: str
    title: str  # English msgid of the ``reports`` catalogue
    compute: Callable[..., pd.DataFrame]
    draw: Callable[[pd.DataFrame, str | None], go.Figure]
    takes_now: bool = False


@dataclass
class ReportResult:
    """A computed report: its frame, its figure and how long the database work took."""

    key: str
    title: str
    frame: pd.DataFrame
    figure: go.Figure
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _by(fn: Callable[..., pd.DataFrame], **fixed: Any) -> Callable[..., pd.DataFrame]:
    def compute(session: Session, **kwargs: Any) -> pd.DataFrame:
        return fn(session, **kwargs, **fixed)

    return compute


REPORTS: dict[str, ReportSpec] = {
    spec.key: spec
    for spec in (
        ReportSpec("funnel", "Sales funnel", sales.sales_funnel, figures.funnel_figure),
        ReportSpec(
            "performance",
            "Won deals by owner",
            sales.sales_performance,
            figures.performance_figure,
        ),
        ReportSpec("revenue", "Revenue by month", revenue.revenue_by_month, figures.revenue_figure),
        ReportSpec(
            "revenue_by_product",
            "Revenue by month and product line",
            _by(revenue.revenue_by_month, by="product_line"),
            lambda df, loc: figures.revenue_figure(df, loc, by="product_line"),
        ),
        ReportSpec("yoy", "Revenue year on year", revenue.revenue_yoy, figures.yoy_figure),
        ReportSpec(
            "industry",
            "Customers by industry",
            _by(distribution.customer_distribution, by="industry"),
            lambda df, loc: figures.distribution_figure(df, loc, by="industry"),
        ),
        ReportSpec(
            "region",
            "Customers by city",
            _by(distribution.customer_distribution, by="city"),
            lambda df, loc: figures.distribution_figure(df, loc, by="city"),
        ),
        ReportSpec(
            "lifecycle",
            "Customers by lifecycle stage",
            _by(distribution.customer_distribution, by="lifecycle_stage"),
            lambda df, loc: figures.distribution_figure(df, loc, by="lifecycle_stage"),
        ),
        ReportSpec(
            "churn", "Monthly churn", churn.monthly_churn, figures.churn_figure, takes_now=True
        ),
        ReportSpec("rfm", "RFM segments", rfm.rfm_segments, figures.rfm_figure, takes_now=True),
        ReportSpec("cohorts", "Cohort retention", cohorts.cohort_retention, figures.cohort_figure),
        ReportSpec(
            "tickets",
            "Tickets by kind and status",
            service_reports.tickets_by_status,
            figures.tickets_figure,
        ),
        ReportSpec(
            "satisfaction",
            "Satisfaction scores",
            service_reports.satisfaction_scores,
            figures.satisfaction_figure,
        ),
        ReportSpec(
            "activity",
            "Interactions by month",
            activity.interactions_by_month,
            figures.activity_figure,
        ),
    )
}

#: The figures of the manager's dashboard, in display order.
DASHBOARD = (
    "funnel",
    "performance",
    "revenue",
    "yoy",
    "industry",
    "region",
    "churn",
    "rfm",
    "cohorts",
    "tickets",
    "activity",
)


def _spec(key: str) -> ReportSpec:
    spec = REPORTS.get(key)
    if spec is None:
        raise InvalidInput(f"unknown report '{key}' (one of {', '.join(REPORTS)})", field="report")
    return spec


def _frame(
    session: Session,
    spec: ReportSpec,
    *,
    actor: Actor,
    filters: ReportFilter | None,
    now: datetime | None,
) -> tuple[pd.DataFrame, float]:
    """The report's frame and the seconds its database work took."""
    require(actor, "reports.read")
    kwargs: dict[str, Any] = {"actor": actor, "filters": filters}
    if spec.takes_now:
        kwargs["now"] = now
    started = time.perf_counter()
    analytics_settings(session)
    df = spec.compute(session, **kwargs)
    return df, time.perf_counter() - started


def _result(spec: ReportSpec, df: pd.DataFrame, seconds: float, locale: str | None) -> ReportResult:
    title = translator(locale, "reports")(spec.title)
    return ReportResult(spec.key, title, df, spec.draw(df, locale), seconds)


def run_report(
    session: Session,
    *,
    actor: Actor,
    key: str,
    filters: ReportFilter | None = None,
    locale: str | None = "en",
    now: datetime | None = None,
) -> ReportResult:
    """Compute one report of ``REPORTS`` (frame and figure) for the actor."""
    spec = _spec(key)
    df, seconds = _frame(session, spec, actor=actor, filters=filters, now=now)
    return _result(spec, df, seconds, locale)


#: Dashboard reports computed beside the others, on a connection of their own (the slowest).
BESIDE = frozenset({"rfm"})


def _own_engine(session: Session) -> Engine | None:
    """The session's engine when another connection of it reads the same database (a
    SQLite file or a server), else ``None`` (an in-memory SQLite database, a session bound to
    one connection)."""
    bind = session.get_bind()
    if not isinstance(bind, Engine):
        return None
    url = bind.url
    if url.get_backend_name() == "sqlite":
        name = url.database or ""
        if not name or name == ":memory:" or "mode=memory" in str(url):
            return None
    return bind


def build_dashboard(
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None = None,
    locale: str | None = "en",
    now: datetime | None = None,
    keys: Sequence[str] = DASHBOARD,
) -> list[ReportResult]:
    """Every dashboard report for the actor and filters, in display order.

    The reports of ``BESIDE`` (RFM, the slowest) are computed at the same time as the others,
    in a thread with a session of its own on the same engine, when there is one (see
    ``_own_engine``): the database works on both cores. That session reads what is committed
    (a dashboard reads only). Figures are all drawn in the calling thread."""
    specs = [_spec(k) for k in keys]
    require(actor, "reports.read")
    engine = _own_engine(session)
    beside = [spec for spec in specs if spec.key in BESIDE] if engine is not None else []
    frames: dict[str, tuple[pd.DataFrame, float]] = {}
    if beside:
        assert engine is not None
        # the thread never touches the caller's objects: a plain copy of who acts
        who = SimpleNamespace(
            id=actor.id, username=actor.username, role=actor.role, team_id=actor.team_id
        )

        def compute_beside() -> dict[str, tuple[pd.DataFrame, float]]:
            with Session(engine) as own, own.begin():
                return {
                    spec.key: _frame(own, spec, actor=who, filters=filters, now=now)
                    for spec in beside
                }

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crm-dashboard") as pool:
            future = pool.submit(compute_beside)
            for spec in specs:
                if spec not in beside:
                    frames[spec.key] = _frame(session, spec, actor=actor, filters=filters, now=now)
            frames.update(future.result())
    else:
        for spec in specs:
            frames[spec.key] = _frame(session, spec, actor=actor, filters=filters, now=now)
    return [_result(spec, *frames[spec.key], locale) for spec in specs]
