"""Customer distribution: how many live customers by industry, region, source, stage, tier."""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.errors import InvalidInput
from crm_core.models import Customer
from crm_core.models.reports import GroupCustomerCount
from crm_core.reports._common import frame, to_int
from crm_core.reports.customer_groups import COUNTED, customer_sums
from crm_core.reports.filters import ReportFilter, customer_scope, in_range
from crm_core.reports.groups import group_scope

#: The dimensions a distribution can be taken over.
DIMENSIONS = ("industry", "province", "city", "source", "lifecycle_stage", "value_tier", "kind")


def customer_distribution(
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None = None,
    by: str = "industry",
) -> pd.DataFrame:
    """Live (not archived) customers counted by one dimension, largest group first.

    Columns: ``by`` (the dimension's value; ``None`` when not recorded), ``customers`` and
    ``share`` (of all counted customers, 0-1). A date range selects customers created in it.
    ``by="city"`` also returns ``province`` before ``city``.
    """
    if by not in DIMENSIONS:
        raise InvalidInput(f"must be one of {', '.join(DIMENSIONS)}", field="by")
    f = (filters or ReportFilter()).with_(include_archived=False)
    columns = (["province", "city"] if by == "city" else [by]) + ["customers"]
    df = to_int(frame(_counted(session, actor, f, by), columns), "customers")
    total = int(df["customers"].sum())
    df["share"] = (df["customers"] / total if total else df["customers"] * 0.0).astype("float64")
    df = df.sort_values(
        ["customers", *columns[:-1]],
        ascending=[False] + [True] * (len(columns) - 1),
        na_position="last",
    )
    return df.reset_index(drop=True)


def _counted(session: Session, actor: Actor, f: ReportFilter, by: str) -> list[tuple[Any, ...]]:
    """The ``(value..., customers)`` rows, in no order: from the customer group counts
    (revision 0044) when they answer (a counted dimension, no date range, an access rule and
    filters told from the group columns), else counted over the customers."""
    if by in COUNTED and f.start is None and f.end is None:
        scope = group_scope(session, actor=actor, filters=f, table=GroupCustomerCount)
        if scope is not None:
            return customer_sums(session, by, scope)
    keys = [Customer.province, Customer.city] if by == "city" else [getattr(Customer, by)]
    stmt = (
        select(*keys, func.count(Customer.id))
        .where(customer_scope(session, actor=actor, filters=f))
        .where(*in_range(Customer.created_at, f))
        .group_by(*keys)
    )
    return [tuple(r) for r in session.execute(stmt)]
