"""Reading the interaction group counts (``GroupActivityCount``, revision 0043): interactions
per month, user and kind summed per group of customers (the groups of
``crm_core.reports.groups``), kept exact by triggers on the interactions and the customers.

``activity_differences`` compares them with a recount (tests, checks) and
``rebuild_group_activity`` refills them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select
from sqlalchemy.orm import Session

from crm_core.models import Customer, GroupActivityCount, Interaction
from crm_core.reports._sql import count_differences, dialect_of, fold_deltas, month_key
from crm_core.reports.groups import FOLD_AFTER, group_columns

_KEY = ("owner_id", "team_id", "archived", "unowned_lead", "month", "user_id", "kind")


def activity_sums(
    session: Session, scope: ColumnElement[bool], *where: Any
) -> list[tuple[str, int | None, str, int]]:
    """``(month, user_id or None, kind, interactions)`` summed over the groups in ``scope``
    (no order). On PostgreSQL the delta rows are folded first once there are ``FOLD_AFTER``
    of them."""
    g = GroupActivityCount
    if dialect_of(session) == "postgresql":
        deltas = select(g.id).where(g.delta == 1).limit(FOLD_AFTER).subquery()
        if (session.scalar(select(func.count()).select_from(deltas)) or 0) >= FOLD_AFTER:
            compact_group_activity(session)
    stmt = (
        select(g.month, g.user_id, g.kind, func.sum(g.n))
        .where(scope, *where)
        .group_by(g.month, g.user_id, g.kind)
        .having(func.sum(g.n) != 0)
    )
    return [
        (month, int(user) or None, kind, int(n)) for month, user, kind, n in session.execute(stmt)
    ]


def compact_group_activity(session: Session) -> None:
    """Fold the rows of each key into one (``fold_deltas``)."""
    fold_deltas(session, "report_group_activity", _KEY, ("n",))


def expected_group_activity(session: Session) -> Any:
    """``SELECT`` of the interaction group counts recounted from the interactions."""
    group = group_columns()
    month = month_key(Interaction.occurred_at, dialect_of(session))
    user = func.coalesce(Interaction.user_id, 0)
    return (
        select(
            *group,
            month.label("month"),
            user.label("user_id"),
            Interaction.kind.label("kind"),
            func.count().label("n"),
        )
        .join(Customer, Customer.id == Interaction.customer_id)
        .where(Customer.merged_into_id.is_(None))
        .group_by(*group, month, user, Interaction.kind)
    )


def activity_differences(session: Session) -> list[tuple[Any, Any, Any]]:
    """Where the stored interaction group counts differ from a recount: ``(key, stored,
    expected)`` rows (empty when they are exact)."""
    g = GroupActivityCount
    keys = [getattr(g, k) for k in _KEY]
    stored = select(*keys, func.sum(g.n)).group_by(*keys)
    return count_differences(session, stored, expected_group_activity(session))


def rebuild_group_activity(session: Session) -> None:
    """Refill the interaction group counts from the interactions (a repair)."""
    session.execute(delete(GroupActivityCount))
    recount = expected_group_activity(session).subquery()
    names = [*_KEY, "n"]
    session.execute(
        insert(GroupActivityCount).from_select(names, select(*[recount.c[c] for c in names]))
    )
