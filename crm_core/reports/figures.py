"""Plotly figures built from the report DataFrames, labelled in the reader's language.

Every function takes the frame its report returns and ``locale`` (``en`` or ``zh``) and
returns a ``go.Figure`` with a title, axis labels and hover text in that language.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from crm_core.i18n import normalize_locale, translator
from crm_core.reports.cohorts import retention_matrix

#: Display labels of codes found in report frames (translated through the catalogue).
LABELS = {
    # lifecycle stages and value tiers
    "lead": "Lead",
    "prospect": "Prospect",
    "customer": "Customer",
    "vip": "VIP",
    "dormant": "Dormant",
    "churned": "Churned",
    "person": "Person",
    "company": "Company",
    # ticket kinds and states
    "feedback": "Feedback",
    "complaint": "Complaint",
    "request": "Request",
    "open": "Open",
    "pending": "Pending",
    "resolved": "Resolved",
    "closed": "Closed",
    # interaction kinds
    "call": "Call",
    "email": "Email",
    "meeting": "Meeting",
    "visit": "Visit",
    "chat": "Chat",
    "note": "Note",
    # RFM segments
    "champions": "Champions",
    "loyal": "Loyal",
    "promising": "Promising",
    "at_risk": "At risk",
    "need_attention": "Needs attention",
    "hibernating": "Hibernating",
    # dimensions
    "industry": "Industry",
    "province": "Province",
    "city": "City",
    "source": "Source channel",
    "lifecycle_stage": "Lifecycle stage",
    "value_tier": "Value tier",
    "kind": "Kind",
    "product_line": "Product line",
    "channel": "Sales channel",
}

TEMPLATE = "plotly_white"


def _tr(locale: str | None) -> Callable[[str], str]:
    return translator(locale, "reports")


def label(value: object, locale: str | None = "en") -> str:
    """A code or value as the reader sees it (``None`` becomes "Unknown")."""
    _ = _tr(locale)
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return _("Unknown")
    text = str(value)
    return _(LABELS[text]) if text in LABELS else text


def _layout(fig: go.Figure, title: str, x: str | None = None, y: str | None = None) -> go.Figure:
    fig.update_layout(
        title={"text": title},
        template=TEMPLATE,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "yanchor": "bottom", "y": -0.3},
    )
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig


def _empty(fig: go.Figure, locale: str | None) -> go.Figure:
    fig.add_annotation(
        text=_tr(locale)("No data for these filters"),
        showarrow=False,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
    )
    return fig


def funnel_figure(funnel: pd.DataFrame, locale: str | None = "en") -> go.Figure:
    """The pipeline funnel: deals that reached each stage, with conversion in the hover."""
    _ = _tr(locale)
    rows = funnel[funnel["kind"] != "lost"].sort_values("position")
    names = rows["name_zh"] if normalize_locale(locale) == "zh" else rows["name_en"]
    conversion = rows["conversion"].map(lambda v: "–" if pd.isna(v) else f"{v:.0%}")
    fig = go.Figure(
        go.Funnel(
            y=list(names),
            x=list(rows["reached"]),
            customdata=list(zip(rows["deals"], rows["amount"], conversion, strict=True)),
            textinfo="value+percent initial",
            hovertemplate=(
                f"{_('Stage')}: %{{y}}<br>{_('Deals reached')}: %{{x}}<br>"
                f"{_('Deals now at stage')}: %{{customdata[0]}}<br>"
                f"{_('Amount')}: %{{customdata[1]:,.2f}}<br>"
                f"{_('Conversion from previous stage')}: %{{customdata[2]}}<extra></extra>"
            ),
        )
    )
    _layout(fig, _("Sales funnel"), _("Deals"), _("Stage"))
    return _empty(fig, locale) if funnel["deals"].sum() == 0 else fig


def performance_figure(performance: pd.DataFrame, locale: str | None = "en") -> go.Figure:
    """Won amount per owner (or team) with win rate, deal size and cycle time in the hover."""
    _ = _tr(locale)
    who = "owner" if "owner" in performance.columns else "team"
    names = [n or _("Unassigned") for n in performance[who]]
    hover = list(
        zip(
            performance["deals"],
            performance["win_rate"].map(lambda v: "–" if pd.isna(v) else f"{v:.0%}"),
            performance["avg_deal_size"].fillna(0),
            performance["avg_cycle_days"].map(lambda v: "–" if pd.isna(v) else f"{v:.1f}"),
            strict=True,
        )
    )
    fig = go.Figure(
        go.Bar(
            x=names,
            y=list(performance["won_amount"]),
            customdata=hover,
            name=_("Won amount"),
            hovertemplate=(
                f"%{{x}}<br>{_('Won amount')}: %{{y:,.2f}}<br>{_('Deals')}: %{{customdata[0]}}"
                f"<br>{_('Win rate')}: %{{customdata[1]}}<br>"
                f"{_('Average deal size')}: %{{customdata[2]:,.2f}}<br>"
                f"{_('Average cycle (days)')}: %{{customdata[3]}}<extra></extra>"
            ),
        )
    )
    title = _("Won deals by owner") if who == "owner" else _("Won deals by team")
    _layout(fig, title, _("Owner") if who == "owner" else _("Team"), _("Won amount"))
    return _empty(fig, locale) if performance.empty else fig


def revenue_figure(
    revenue: pd.DataFrame, locale: str | None = "en", by: str | None = None
) -> go.Figure:
    """Revenue per month, stacked by the breakdown column when there is one."""
    _ = _tr(locale)
    fig = go.Figure()
    hover = (
        f"{_('Month')}: %{{x}}<br>{_('Revenue')}: %{{y:,.2f}}<br>"
        f"{_('Orders')}: %{{customdata[0]}}<br>{_('Customers')}: %{{customdata[1]}}"
    )
    if by and by in revenue.columns:
        for key, part in revenue.groupby(revenue[by].astype(object).fillna("\0"), sort=True):
            name = label(None if key == "\0" else key, locale)
            fig.add_bar(
                x=list(part["month"]),
                y=list(part["revenue"]),
                name=name,
                customdata=list(zip(part["orders"], part["customers"], strict=True)),
                hovertemplate=f"{name}<br>{hover}<extra></extra>",
            )
        fig.update_layout(barmode="stack")
        title = _("Revenue by month and {dimension}").format(dimension=label(by, locale).lower())
    else:
        fig.add_scatter(
            x=list(revenue["month"]),
            y=list(revenue["revenue"]),
            mode="lines+markers",
            name=_("Revenue"),
            customdata=list(zip(revenue["orders"], revenue["customers"], strict=True)),
            hovertemplate=f"{hover}<extra></extra>",
        )
        title = _("Revenue by month")
    _layout(fig, title, _("Month"), _("Revenue"))
    return _empty(fig, locale) if revenue.empty else fig


def yoy_figure(yoy: pd.DataFrame, locale: str | None = "en") -> go.Figure:
    """Revenue per calendar month, one bar per year (year-on-year comparison)."""
    _ = _tr(locale)
    fig = go.Figure()
    for year, part in yoy.groupby("year", sort=True):
        growth = part["yoy_growth"].map(lambda v: "–" if pd.isna(v) else f"{v:+.0%}")
        fig.add_bar(
            x=list(part["month"]),
            y=list(part["revenue"]),
            name=str(year),
            customdata=list(growth),
            hovertemplate=(
                f"{year}-%{{x:02d}}<br>{_('Revenue')}: %{{y:,.2f}}<br>"
                f"{_('Change on the year before')}: %{{customdata}}<extra></extra>"
            ),
        )
    fig.update_layout(barmode="group")
    fig.update_xaxes(tickmode="array", tickvals=list(range(1, 13)))
    _layout(fig, _("Revenue year on year"), _("Month"), _("Revenue"))
    return _empty(fig, locale) if yoy.empty else fig


def distribution_figure(
    distribution: pd.DataFrame, locale: str | None = "en", by: str | None = None
) -> go.Figure:
    """Customers per value of the distribution's dimension (horizontal bars)."""
    _ = _tr(locale)
    by = by or next(c for c in distribution.columns if c not in ("customers", "share"))
    if by == "city" and "province" in distribution.columns:
        names = [
            f"{label(p, locale)} · {label(c, locale)}" if p else label(c, locale)
            for p, c in zip(distribution["province"], distribution["city"], strict=True)
        ]
    else:
        names = [label(v, locale) for v in distribution[by]]
    fig = go.Figure(
        go.Bar(
            y=names,
            x=list(distribution["customers"]),
            orientation="h",
            customdata=list(distribution["share"]),
            hovertemplate=(
                f"%{{y}}<br>{_('Customers')}: %{{x}}<br>{_('Share')}: %{{customdata:.1%}}"
                "<extra></extra>"
            ),
        )
    )
    fig.update_yaxes(autorange="reversed")
    title = _("Customers by {dimension}").format(dimension=label(by, locale).lower())
    _layout(fig, title, _("Customers"), label(by, locale))
    return _empty(fig, locale) if distribution.empty else fig


def churn_figure(churn: pd.DataFrame, locale: str | None = "en") -> go.Figure:
    """Churned customers per month (bars) and the churn rate (line, right axis)."""
    _ = _tr(locale)
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_bar(
        x=list(churn["month"]),
        y=list(churn["churned"]),
        name=_("Churned customers"),
        customdata=list(zip(churn["active_at_start"], churn["new_or_returning"], strict=True)),
        hovertemplate=(
            f"{_('Month')}: %{{x}}<br>{_('Churned customers')}: %{{y}}<br>"
            f"{_('Active at start of month')}: %{{customdata[0]}}<br>"
            f"{_('New or returning')}: %{{customdata[1]}}<extra></extra>"
        ),
        secondary_y=False,
    )
    fig.add_scatter(
        x=list(churn["month"]),
        y=list(churn["churn_rate"]),
        name=_("Churn rate"),
        mode="lines+markers",
        hovertemplate=f"{_('Month')}: %{{x}}<br>{_('Churn rate')}: %{{y:.1%}}<extra></extra>",
        secondary_y=True,
    )
    _layout(fig, _("Monthly churn"), _("Month"))
    fig.update_yaxes(title_text=_("Churned customers"), secondary_y=False)
    fig.update_yaxes(title_text=_("Churn rate"), tickformat=".0%", secondary_y=True)
    return _empty(fig, locale) if churn.empty else fig


def rfm_figure(segments: pd.DataFrame, locale: str | None = "en") -> go.Figure:
    """Customers and revenue per RFM segment."""
    _ = _tr(locale)
    names = [label(s, locale) for s in segments["segment"]]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=list(segments["customers"]),
            customdata=list(
                zip(
                    segments["share"],
                    segments["revenue"].fillna(0),
                    segments["avg_recency_days"].fillna(0),
                    segments["avg_frequency"].fillna(0),
                    strict=True,
                )
            ),
            hovertemplate=(
                f"%{{x}}<br>{_('Customers')}: %{{y}} (%{{customdata[0]:.1%}})<br>"
                f"{_('Revenue')}: %{{customdata[1]:,.2f}}<br>"
                f"{_('Average days since last order')}: %{{customdata[2]:.0f}}<br>"
                f"{_('Average orders')}: %{{customdata[3]:.1f}}<extra></extra>"
            ),
        )
    )
    _layout(fig, _("RFM segments"), _("Segment"), _("Customers"))
    return _empty(fig, locale) if segments["customers"].sum() == 0 else fig


def cohort_figure(cohorts: pd.DataFrame, locale: str | None = "en") -> go.Figure:
    """Heatmap of cohort retention: first-order month by months since."""
    _ = _tr(locale)
    matrix = retention_matrix(cohorts)
    fig = go.Figure()
    if not matrix.empty:
        fig.add_heatmap(
            z=matrix.to_numpy(dtype="float64", na_value=float("nan")),
            x=[int(p) for p in matrix.columns],
            y=[str(c) for c in matrix.index],
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={"title": {"text": _("Retention")}, "tickformat": ".0%"},
            hovertemplate=(
                f"{_('Cohort')}: %{{y}}<br>{_('Months since first order')}: %{{x}}<br>"
                f"{_('Still buying')}: %{{z:.1%}}<extra></extra>"
            ),
        )
    fig.update_yaxes(autorange="reversed", type="category")
    _layout(fig, _("Cohort retention"), _("Months since first order"), _("First order month"))
    return _empty(fig, locale) if matrix.empty else fig


def tickets_figure(tickets: pd.DataFrame, locale: str | None = "en") -> go.Figure:
    """Tickets per kind, stacked by status."""
    _ = _tr(locale)
    fig = go.Figure()
    for status, part in tickets.groupby("status", sort=True):
        name = label(status, locale)
        fig.add_bar(
            x=[label(k, locale) for k in part["kind"]],
            y=list(part["tickets"]),
            name=name,
            hovertemplate=f"%{{x}} · {name}<br>{_('Tickets')}: %{{y}}<extra></extra>",
        )
    fig.update_layout(barmode="stack")
    _layout(fig, _("Tickets by kind and status"), _("Kind"), _("Tickets"))
    return _empty(fig, locale) if tickets.empty else fig


def satisfaction_figure(scores: pd.DataFrame, locale: str | None = "en") -> go.Figure:
    """Distribution of satisfaction scores 1-5."""
    _ = _tr(locale)
    fig = go.Figure(
        go.Bar(
            x=list(scores["score"]),
            y=list(scores["tickets"]),
            customdata=list(scores["share"]),
            hovertemplate=(
                f"{_('Score')}: %{{x}}<br>{_('Tickets')}: %{{y}} (%{{customdata:.1%}})"
                "<extra></extra>"
            ),
        )
    )
    _layout(fig, _("Satisfaction scores"), _("Score"), _("Tickets"))
    return _empty(fig, locale) if scores["tickets"].sum() == 0 else fig


def activity_figure(interactions: pd.DataFrame, locale: str | None = "en") -> go.Figure:
    """Interactions per month, stacked by kind."""
    _ = _tr(locale)
    fig = go.Figure()
    if not interactions.empty:
        per_kind = interactions.groupby(["month", "kind"], as_index=False)["interactions"].sum()
        for kind, part in per_kind.groupby("kind", sort=True):
            name = label(kind, locale)
            fig.add_bar(
                x=list(part["month"]),
                y=list(part["interactions"]),
                name=name,
                hovertemplate=f"{name}<br>{_('Month')}: %{{x}}<br>"
                f"{_('Interactions')}: %{{y}}<extra></extra>",
            )
    fig.update_layout(barmode="stack")
    _layout(fig, _("Interactions by month"), _("Month"), _("Interactions"))
    return _empty(fig, locale) if interactions.empty else fig
