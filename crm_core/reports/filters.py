"""The filters every report shares: date range, owner, team, tag and region."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.orm import Session

from crm_core.access import UNRESTRICTED_READERS, Actor, manager_customer_ids, require
from crm_core.customers import CustomerFilter, customer_query
from crm_core.models import Customer, Role, Tag, Team, User, customer_tags


@dataclass(frozen=True)
class ReportFilter:
    """Common report filters. It describes and does nothing.

    ``date_from`` and ``date_to`` are inclusive calendar days (UTC) and apply to each report's
    own event date (order date, deal creation, ticket creation, interaction time, cohort month).
    ``owner_id``, ``team_id``, ``tag``, ``province`` and ``city`` select the customers whose
    records count. Archived customers count by default: their history is still history.
    """

    date_from: date | None = None
    date_to: date | None = None
    owner_id: int | None = None
    team_id: int | None = None
    tag: str | None = None
    province: str | None = None
    city: str | None = None
    include_archived: bool = True

    def customer_filter(self) -> CustomerFilter:
        """The same selection as a ``customers.CustomerFilter``."""
        return CustomerFilter(
            owner_id=self.owner_id,
            team_id=self.team_id,
            tag=self.tag or None,
            province=self.province or None,
            city=self.city or None,
            archived=None if self.include_archived else False,
        )

    @property
    def start(self) -> datetime | None:
        """``date_from`` as the first instant of that UTC day."""
        return datetime.combine(self.date_from, time.min, UTC) if self.date_from else None

    @property
    def end(self) -> datetime | None:
        """The first instant after ``date_to`` (an exclusive bound)."""
        if self.date_to is None:
            return None
        return datetime.combine(self.date_to + timedelta(days=1), time.min, UTC)

    def with_(self, **changes: Any) -> ReportFilter:
        """A copy with some fields changed."""
        return replace(self, **changes)


def customer_scope(
    session: Session, *, actor: Actor, filters: ReportFilter | None = None
) -> ColumnElement[bool]:
    """SQL condition on ``Customer`` selecting the customers a report may count for the actor.

    It is the ``WHERE`` clause of ``customers.customer_query`` (the access policy of
    ``access.visible_customers`` plus the filters), so reports never apply a rule of their own.
    """
    require(actor, "reports.read")
    f = filters or ReportFilter()
    stmt = customer_query(session, actor=actor, filters=f.customer_filter())
    clause = stmt.whereclause
    return clause if clause is not None else true()


def sees_every_live_customer(actor: Actor, filters: ReportFilter | None = None) -> bool:
    """True when ``customer_scope`` selects every customer that is not merged into another
    (an unrestricted reader and no customer filter): a report can then skip joining the
    customers and leave out the few merged ones instead."""
    f = filters or ReportFilter()
    narrowed = (f.owner_id, f.team_id, f.tag, f.province, f.city)
    return (
        actor.role in UNRESTRICTED_READERS
        and all(v is None or v == "" for v in narrowed)
        and f.include_archived
    )


def not_merged(customer_id: Any) -> ColumnElement[bool]:
    """SQL condition: ``customer_id`` is not a customer merged into another. ``NOT IN`` a
    subquery: both databases read the few merged customers once (indexed) and look each row
    up in that set (SQLite ran a correlated ``NOT EXISTS`` per row: 7.3 s instead of 2.7 s
    over a million interactions)."""
    merged = select(Customer.id).where(Customer.merged_into_id.is_not(None))
    return customer_id.not_in(merged)


def scoped(
    stmt: Any,
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None,
    customer_id: Any,
) -> Any:
    """``stmt`` (over a table with ``customer_id``) kept to the customers ``customer_scope``
    selects: joined with the customers, or, when that is every live customer, only leaving
    out the merged ones (no scan of the customers)."""
    scope = customer_scope(session, actor=actor, filters=filters)
    if sees_every_live_customer(actor, filters):
        return stmt.where(not_merged(customer_id))
    team = _team_customer_ids(session, actor, filters)
    if team is not None:
        # ``+ 0``: no index on the term, so the records are still read in the order the join
        # read them (float sums such as a deal total depend on that order), each looked up in
        # the set of ids instead of in the customers table
        return stmt.where((customer_id + 0).in_(team), not_merged(customer_id))
    return stmt.join(Customer, Customer.id == customer_id).where(scope)


def _team_customer_ids(session: Session, actor: Actor, filters: ReportFilter | None) -> Any:
    """On SQLite, for a manager and no customer filter: the ids of the customers of their team
    or their own (``access.manager_customer_ids``: ``access.visible_customers`` without its
    merged test, which ``scoped`` adds with ``not_merged``), read from the team and owner
    indexes alone. Joining the customers looked up each record's wide row (a random page) per
    deal, ticket or order: 300,000 deals read most of the customers table. ``None`` otherwise."""
    f = filters or ReportFilter()
    narrowed = (f.owner_id, f.team_id, f.tag, f.province, f.city)
    if (
        session.get_bind().dialect.name != "sqlite"
        or actor.role != Role.MANAGER
        or any(v is not None and v != "" for v in narrowed)
        or not f.include_archived
    ):
        return None
    return manager_customer_ids(actor)


def in_range(column: Any, filters: ReportFilter | None) -> list[ColumnElement[bool]]:
    """Conditions keeping ``column`` inside the filter's date range."""
    if filters is None:
        return []
    conditions = []
    if filters.start is not None:
        conditions.append(column >= filters.start)
    if filters.end is not None:
        conditions.append(column < filters.end)
    return conditions


@dataclass(frozen=True)
class FilterOptions:
    """The values the common filters can take for one actor (for dropdowns)."""

    owners: list[tuple[str, int]]  # (display name, user id)
    teams: list[tuple[str, int]]
    tags: list[str]
    provinces: list[str]
    cities: dict[str, list[str]]  # province ("" when unknown) -> cities


def filter_options(session: Session, *, actor: Actor) -> FilterOptions:
    """Owners, teams, tags, provinces and cities found among the customers the actor may see."""
    scope = customer_scope(session, actor=actor)
    owners = session.execute(
        select(User.display_name, User.username, User.id)
        .where(User.id.in_(select(Customer.owner_id).where(scope).distinct()))
        .order_by(User.display_name, User.username)
    ).all()
    teams = session.execute(
        select(Team.name, Team.id)
        .where(Team.id.in_(select(Customer.team_id).where(scope).distinct()))
        .order_by(Team.name)
    ).all()
    tags = session.scalars(
        select(Tag.name)
        .where(
            Tag.id.in_(
                select(customer_tags.c.tag_id)
                .join(Customer, Customer.id == customer_tags.c.customer_id)
                .where(scope)
            )
        )
        .order_by(Tag.name)
    ).all()
    places = session.execute(
        select(Customer.province, Customer.city)
        .where(scope, Customer.city.is_not(None))
        .group_by(Customer.province, Customer.city)
        .order_by(Customer.province, Customer.city)
    ).all()
    cities: dict[str, list[str]] = {}
    for province, city in places:
        if city:
            cities.setdefault(province or "", []).append(city)
    provinces = sorted(
        p
        for p in session.scalars(
            select(Customer.province).where(scope, Customer.province.is_not(None)).distinct()
        )
        if p
    )
    return FilterOptions(
        owners=[(display or username, uid) for display, username, uid in owners],
        teams=[(name, tid) for name, tid in teams],
        tags=list(tags),
        provinces=provinces,
        cities=cities,
    )
