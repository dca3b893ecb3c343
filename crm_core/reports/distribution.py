"""Customer distribution: how many live customers by industry, region, source, stage, tier."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.errors import InvalidInput
from crm_core.models import Customer
from crm_core.reports._common import frame, to_int
from crm_core.reports.filters import ReportFilter, customer_scope, in_range

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
    keys = [Customer.province, Customer.city] if by == "city" else [getattr(Customer, by)]
    stmt = (
        select(*keys, func.count(Customer.id))
        .where(customer_scope(session, actor=actor, filters=f))
        .where(*in_range(Customer.created_at, f))
        .group_by(*keys)
    )
    columns = (["province", "city"] if by == "city" else [by]) + ["customers"]
    df = to_int(frame(session.execute(stmt), columns), "customers")
    total = int(df["customers"].sum())
    df["share"] = (df["customers"] / total if total else df["customers"] * 0.0).astype("float64")
    df = df.sort_values(
        ["customers", *columns[:-1]],
        ascending=[False] + [True] * (len(columns) - 1),
        na_position="last",
    )
    return df.reset_index(drop=True)
