"""Reading the customer group counts (``GroupCustomerCount``, revision 0044): live customers
per industry, province and city, and lifecycle stage, summed per group of customers (the
groups of ``crm_core.reports.groups``), kept exact by triggers on the customers.

``customer_count_differences`` compares them with a recount (tests, checks),
``rebuild_customer_counts`` refills them, and ``customer_counts_set_aside`` lets a bulk insert
of customers add its rows in one statement instead of through the row trigger (SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from crm_core.db import highest_rowid, trigger_set_aside
from crm_core.models import Customer
from crm_core.models.reports import GroupCustomerCount
from crm_core.reports._sql import count_differences, dialect_of, fold_deltas
from crm_core.reports.groups import FOLD_AFTER, group_columns

_KEY = ("owner_id", "team_id", "archived", "unowned_lead", "dimension", "value", "city")

#: ``customer_distribution`` dimensions the counts answer, and the stored dimension each
#: reads (``province`` sums the province-and-city rows).
COUNTED = {
    "industry": "industry",
    "city": "city",
    "province": "city",
    "lifecycle_stage": "lifecycle_stage",
}

#: The SQLite trigger that counts each inserted customer.
INSERT_TRIGGER = "report_customer_counts_ai"


def customer_sums(session: Session, by: str, scope: ColumnElement[bool]) -> list[tuple[Any, ...]]:
    """Live customers per value of ``by`` (a key of ``COUNTED``) over the groups in ``scope``:
    ``(value, customers)`` rows, ``(province, city, customers)`` for ``by="city"``; no zero
    counts, no order. On PostgreSQL the delta rows are folded first once there are
    ``FOLD_AFTER`` of them."""
    g = GroupCustomerCount
    if dialect_of(session) == "postgresql":
        deltas = select(g.id).where(g.delta == 1).limit(FOLD_AFTER).subquery()
        if (session.scalar(select(func.count()).select_from(deltas)) or 0) >= FOLD_AFTER:
            compact_customer_counts(session)
    keys = [g.value, g.city] if by == "city" else [g.value]
    total = cast(func.sum(g.n), BigInteger)
    stmt = (
        select(*keys, total)
        .where(g.dimension == COUNTED[by], scope)
        .group_by(*keys)
        .having(func.sum(g.n) != 0)
    )
    return [tuple(r) for r in session.execute(stmt)]


def compact_customer_counts(session: Session) -> None:
    """Fold the rows of each key into one (``fold_deltas``)."""
    fold_deltas(session, "report_group_customers", _KEY, ("n",))


def expected_customer_counts(session: Session, *where: Any) -> Any:
    """``SELECT`` of the customer group counts recounted from the customers (``where``: more
    conditions on ``Customer``, e.g. the rows a bulk insert added)."""
    c = Customer
    group = group_columns()
    dimensions = (
        ("industry", c.industry, None),
        ("city", c.province, c.city),
        ("lifecycle_stage", c.lifecycle_stage, None),
    )
    parts = []
    for name, value, city in dimensions:
        keys = [*group, value] + ([city] if city is not None else [])
        parts.append(
            select(
                *group,
                literal(name).label("dimension"),
                value.label("value"),
                (city if city is not None else null()).label("city"),
                func.count().label("n"),
            )
            .where(c.merged_into_id.is_(None), *where)
            .group_by(*keys)
        )
    return union_all(*parts)


def customer_count_differences(session: Session) -> list[tuple[Any, Any, Any]]:
    """Where the stored customer group counts differ from a recount: ``(key, stored,
    expected)`` rows (empty when they are exact)."""
    g = GroupCustomerCount
    keys = [getattr(g, k) for k in _KEY]
    stored = select(*keys, func.sum(g.n)).group_by(*keys)
    return count_differences(session, stored, expected_customer_counts(session))


def _add_counts(session: Session, *where: Any) -> None:
    recount = expected_customer_counts(session, *where).subquery()
    names = [*_KEY, "n"]
    session.execute(
        insert(GroupCustomerCount).from_select(names, select(*[recount.c[c] for c in names]))
    )


def rebuild_customer_counts(session: Session) -> None:
    """Refill the customer group counts from the customers (a repair)."""
    session.execute(delete(GroupCustomerCount))
    _add_counts(session)


@contextmanager
def customer_counts_set_aside(session: Session) -> Iterator[None]:
    """For a bulk insert of customers: on SQLite the insert trigger is dropped for the block
    and the counts of the customers inserted in it (ids above the highest before it) are
    added at its end in one statement, then the trigger is created again, all inside the
    caller's transaction. Rows the block updates or deletes are still counted by their
    triggers. Elsewhere (PostgreSQL counts a whole statement at once) it does nothing."""
    conn = session.connection()
    with trigger_set_aside(conn, INSERT_TRIGGER) as aside:
        before = highest_rowid(conn, "customers") if aside else 0
        yield
        if aside:
            # rows of one group key may already exist: add the new counts as rows of their
            # own, then fold each key back into one row (SQLite keeps one row per key)
            _add_counts(session, Customer.id > before)
            _fold_sqlite(session)


def _fold_sqlite(session: Session) -> None:
    """Fold the rows of each key into one on SQLite (after ``customer_counts_set_aside``
    appended rows): the lowest id of each key keeps the sum, the others go."""
    match = " AND ".join(f"o.{k} IS g.{k}" for k in _KEY)
    session.execute(
        text(
            "UPDATE report_group_customers AS g SET n = (SELECT sum(o.n) FROM"
            f" report_group_customers o WHERE {match}) WHERE g.id = (SELECT min(o.id) FROM"
            f" report_group_customers o WHERE {match})"
        )
    )
    session.execute(
        text(
            "DELETE FROM report_group_customers AS g WHERE g.id > (SELECT min(o.id) FROM"
            f" report_group_customers o WHERE {match})"
        )
    )
