"""Reports: DataFrames computed by SQL aggregation for the acting user, and Plotly figures.

Each report function has the service shape ``report(session, *, actor, filters=None, ...)``,
applies the access policy through ``filters.customer_scope`` and returns a documented
``pandas.DataFrame``; ``figures`` turns those frames into labelled ``go.Figure`` objects.

    from crm_core import reports
    with db.transaction() as s:
        df = reports.revenue_by_month(s, actor=user, filters=reports.ReportFilter(city="杭州"))
        fig = reports.figures.revenue_figure(df, locale="zh")
"""

import importlib
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm_core.reports import figures
    from crm_core.reports.activity import interactions_by_month, overdue_tasks
    from crm_core.reports.churn import churn_risk, monthly_churn
    from crm_core.reports.cohorts import cohort_retention, retention_matrix
    from crm_core.reports.dashboard import (
        DASHBOARD,
        REPORTS,
        ReportResult,
        ReportSpec,
        build_dashboard,
        run_report,
    )
    from crm_core.reports.distribution import DIMENSIONS, customer_distribution
    from crm_core.reports.export import (
        ExportUnavailable,
        export_report,
        to_html,
        to_png,
        to_xlsx,
    )
    from crm_core.reports.filters import ReportFilter, customer_scope
    from crm_core.reports.revenue import revenue_by_month, revenue_yoy
    from crm_core.reports.rfm import SEGMENTS, rfm_scores, rfm_segments
    from crm_core.reports.sales import sales_funnel, sales_kpis, sales_performance
    from crm_core.reports.service import satisfaction_scores, ticket_resolution, tickets_by_status

#: Where each public name lives. The package imports a module when one of its names is first
#: asked for (PEP 562), so that importing one report module (``crm_core.bulk`` imports
#: ``customer_groups``) does not load every report and Plotly with them.
_WHERE = {
    "interactions_by_month": "activity",
    "overdue_tasks": "activity",
    "churn_risk": "churn",
    "monthly_churn": "churn",
    "cohort_retention": "cohorts",
    "retention_matrix": "cohorts",
    "DASHBOARD": "dashboard",
    "REPORTS": "dashboard",
    "ReportResult": "dashboard",
    "ReportSpec": "dashboard",
    "build_dashboard": "dashboard",
    "run_report": "dashboard",
    "DIMENSIONS": "distribution",
    "customer_distribution": "distribution",
    "ExportUnavailable": "export",
    "export_report": "export",
    "to_html": "export",
    "to_png": "export",
    "to_xlsx": "export",
    "ReportFilter": "filters",
    "customer_scope": "filters",
    "revenue_by_month": "revenue",
    "revenue_yoy": "revenue",
    "SEGMENTS": "rfm",
    "rfm_scores": "rfm",
    "rfm_segments": "rfm",
    "sales_funnel": "sales",
    "sales_kpis": "sales",
    "sales_performance": "sales",
    "satisfaction_scores": "service",
    "ticket_resolution": "service",
    "tickets_by_status": "service",
}


def __getattr__(name: str) -> Any:
    """A public name (``reports.churn_risk``) or a submodule (``reports.figures``), imported
    on first use."""
    if name in _WHERE:
        value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    if not name.startswith("__") and find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "DASHBOARD",
    "DIMENSIONS",
    "REPORTS",
    "SEGMENTS",
    "ExportUnavailable",
    "ReportFilter",
    "ReportResult",
    "ReportSpec",
    "build_dashboard",
    "churn_risk",
    "cohort_retention",
    "customer_distribution",
    "customer_scope",
    "export_report",
    "figures",
    "interactions_by_month",
    "monthly_churn",
    "overdue_tasks",
    "retention_matrix",
    "revenue_by_month",
    "revenue_yoy",
    "rfm_scores",
    "rfm_segments",
    "run_report",
    "sales_funnel",
    "sales_kpis",
    "sales_performance",
    "satisfaction_scores",
    "ticket_resolution",
    "tickets_by_status",
    "to_html",
    "to_png",
    "to_xlsx",
]
