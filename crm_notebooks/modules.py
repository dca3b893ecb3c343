"""Custom modules and saved reports in a notebook, under the notebook user's access rules.

import crm_notebooks as crm
ctx = crm.connect(user="analyst")
crm.module_frame(ctx, "projects", stage="Build")      # a module's records as a DataFrame
df, fig = crm.saved_report(ctx, 3)                     # a saved report: frame and figure
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from crm_core.lowcode import report_builder
from crm_core.lowcode.modules import list_modules
from crm_core.lowcode.records import Condition, RecordFilter, records_frame
from crm_notebooks.context import NotebookContext


def modules_frame(ctx: NotebookContext) -> pd.DataFrame:
    """The custom modules the user may read: ``key``, ``name_en``, ``name_zh``."""
    with ctx.session() as session:
        rows = [(m.key, m.name_en, m.name_zh) for m in list_modules(session, actor=ctx.user)]
    return pd.DataFrame(rows, columns=["key", "name_en", "name_zh"])


def module_frame(
    ctx: NotebookContext,
    module: str,
    *,
    query: str | None = None,
    conditions: list[Condition] | None = None,
    archived: bool | None = False,
    limit: int | None = None,
    labels: bool = False,
    **equals: Any,
) -> pd.DataFrame:
    """Records of a custom module the user may see (the panel's rules). Filter with a quick
    ``query``, ``conditions`` or ``field=value`` keywords; ``labels`` names columns by the
    fields' labels in the user's language."""
    filters = RecordFilter(
        query=query,
        conditions=[*(conditions or []), *(Condition(k, "eq", v) for k, v in equals.items())],
        archived=archived,
    )
    with ctx.session() as session:
        return records_frame(
            session,
            actor=ctx.user,
            module_key=module,
            filters=filters,
            limit=limit,
            locale=ctx.locale if labels else None,
        )


def saved_report(ctx: NotebookContext, report_id: int) -> tuple[pd.DataFrame, go.Figure]:
    """A saved report computed under the user's rights: its DataFrame and Plotly figure."""
    with ctx.session() as session:
        built = report_builder.run_saved(
            session, actor=ctx.user, report_id=report_id, locale=ctx.locale
        )
    return built.frame, built.figure
