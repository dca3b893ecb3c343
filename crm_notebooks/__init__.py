"""Notebook face of the CRM: a user-bound connection, DataFrames, and ipywidgets over the same
``crm_core`` services as the web panel (access rules and masking apply in notebooks too).

    import crm_notebooks as crm
    ctx = crm.connect()                       # the demo database, as an analyst
    crm.customers_frame(ctx, city="杭州")
    crm.CustomerExplorer(ctx)                 # filter, browse, open a profile and timeline
    crm.Dashboard(ctx)                        # report figures with the common filters
"""

from __future__ import annotations

from typing import Any

from crm_notebooks.context import NotebookContext, connect
from crm_notebooks.dashboard import Dashboard
from crm_notebooks.explorer import CustomerExplorer
from crm_notebooks.frames import (
    customers_frame,
    deals_frame,
    interactions_frame,
    orders_frame,
    tickets_frame,
    timeline_frame,
)
from crm_notebooks.modules import module_frame, modules_frame, saved_report

__all__ = [
    "CustomerExplorer",
    "Dashboard",
    "DedupeReview",
    "NotebookContext",
    "connect",
    "customers_frame",
    "deals_frame",
    "interactions_frame",
    "module_frame",
    "modules_frame",
    "orders_frame",
    "saved_report",
    "tickets_frame",
    "timeline_frame",
]


def __getattr__(name: str) -> Any:
    if name == "DedupeReview":  # written in its own module by the de-duplication work
        from crm_notebooks.dedupe_review import DedupeReview

        return DedupeReview
    raise AttributeError(f"module 'crm_notebooks' has no attribute {name!r}")
