"""Churn: the monthly churn rate from purchase history, and a list of customers at risk with
the reason for each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import (
    Integer,
    and_,
    case,
    func,
    literal_column,
    null,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.db import one_of
from crm_core.i18n import translator
from crm_core.models import (
    Customer,
    CustomerOrderMonth,
    CustomerOrderTotals,
    GroupCount,
    Lifecycle,
    Order,
    Ticket,
    TicketKind,
)
from crm_core.reports._common import counted_order, month_range, now_or, user_names
from crm_core.reports._sql import (
    days_between,
    dialect_of,
    month_key,
    month_key_after,
    timestamp,
)
from crm_core.reports.filters import ReportFilter, customer_scope
from crm_core.reports.groups import (
    GROUP_INACTIVE_DAYS,
    LAPSE,
    SPELL_START,
    group_scope,
    group_sums,
)
from crm_core.reports.rollups import customer_months, history_end

_ORDER = (Order.ordered_at, Order.id)

CHURN_COLUMNS = (
    "month",
    "active_at_start",
    "new_or_returning",
    "churned",
    "churn_rate",
    "active_at_end",
)

RISK_COLUMNS = (
    "customer_id",
    "name",
    "owner_id",
    "owner",
    "lifecycle_stage",
    "last_order_at",
    "recent_orders",
    "usual_orders",
    "days_since_contact",
    "recent_complaints",
    "risk_score",
    "reason_codes",
    "reasons",
)


def monthly_churn(
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None = None,
    inactive_days: int = 90,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Monthly churn rate computed from orders.

    A customer is *active* while their last order is less than ``inactive_days`` old, and
    *churns* on the day that gap is reached without a new order. Columns: ``month``
    (``'YYYY-MM'``), ``active_at_start``, ``new_or_returning`` (customers who became active in
    the month: first order, or first after a lapse), ``churned`` (customers who churned in the
    month), ``churn_rate`` (``churned / active_at_start``) and ``active_at_end``.
    The whole history is read; the date range selects the months shown.
    """
    now = now_or(now)
    dialect = dialect_of(session)
    f = filters or ReportFilter()
    scope_filter = f.with_(date_from=None, date_to=None)
    scope = customer_scope(session, actor=actor, filters=scope_filter)
    groups = group_scope(session, actor=actor, filters=scope_filter)
    if (
        inactive_days == GROUP_INACTIVE_DAYS
        and groups is not None
        and history_end(session, now) is None
    ):
        counts = _spells_from_groups(session, groups, scope, now, dialect)
    else:
        if inactive_days >= MIN_ROLLUP_INACTIVE_DAYS:
            spells = _spells_from_rollup(session, scope, inactive_days, now, dialect)
        else:
            spells = [_spells_from_orders(session, scope, inactive_days, now, dialect)]
        counts = [tuple(row) for stmt in spells for row in session.execute(stmt)]
    started: dict[str, int] = {}
    ended: dict[str, int] = {}
    for start_month, end_month, is_start, is_end, n in counts:
        if is_start:
            started[str(start_month)] = started.get(str(start_month), 0) + int(n)
        if is_end:
            ended[str(end_month)] = ended.get(str(end_month), 0) + int(n)
    if not started:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in CHURN_COLUMNS}).astype(
            {"month": "string"}
        )
    months = month_range(min(started), f"{now:%Y-%m}")
    rows = []
    active = 0
    for month in months:
        new, churned = started.get(month, 0), ended.get(month, 0)
        rate = churned / active if active else float("nan")
        rows.append((month, active, new, churned, rate, active + new - churned))
        active = active + new - churned
    df = pd.DataFrame(rows, columns=list(CHURN_COLUMNS))
    if f.date_from:
        df = df[df["month"] >= f"{f.date_from:%Y-%m}"]
    if f.date_to:
        df = df[df["month"] <= f"{f.date_to:%Y-%m}"]
    df["month"] = df["month"].astype("string")
    return df.reset_index(drop=True)


#: Consecutive orders within one month are less than 31 days apart, so from this many days of
#: inactivity on, spells can be read from the customer-month roll-up.
MIN_ROLLUP_INACTIVE_DAYS = 31


def _spells_from_rollup(
    session: Session, scope: Any, inactive_days: int, now: datetime, dialect: str
) -> list[Any]:
    """Starts and ends of active spells per month, from the customer-month roll-up: a month
    starts a spell when the customer's last order before it (``prev_last_at``) is more than
    ``inactive_days`` older than its first order (or there is none), and then ends the spell
    before; a customer's last order ends the last spell."""
    lapse = now - timedelta(days=inactive_days)
    end = history_end(session, now)
    if end is not None:  # orders after ``now``: the months up to it, compared in order
        return [_spells_over_months(session, scope, inactive_days, lapse, end, dialect)]
    m = CustomerOrderMonth
    gap = and_(
        m.prev_last_at.is_not(None),
        days_between(m.prev_last_at, m.first_at, dialect) > inactive_days,
    )
    ended = month_key_after(m.prev_last_at, inactive_days, dialect)
    is_end = case((and_(gap, m.prev_last_at <= lapse), 1), else_=0)
    returns = (
        select(m.month, ended, literal_column("1"), is_end, func.count())
        .join(Customer, Customer.id == m.customer_id)
        .where(scope, or_(m.prev_last_at.is_(None), gap))
        .group_by(m.month, ended, is_end)
    )
    t = CustomerOrderTotals
    last_month = month_key_after(t.last_at, inactive_days, dialect)
    lapses: Any = (
        select(null(), last_month, literal_column("0"), literal_column("1"), func.count())
        .join(Customer, Customer.id == t.customer_id)
        .where(scope, t.last_at <= lapse)
        .group_by(last_month)
    )
    return [returns, lapses]


def _spells_from_groups(
    session: Session, groups: Any, scope: Any, now: datetime, dialect: str
) -> list[tuple[Any, Any, int, int, int]]:
    """Spell starts and ends per month from the group counts (no order after ``now``): every
    start after a gap ends the spell before; a customer's last spell ends in the month of
    their last order plus the span, counted up to ``now`` (that month exactly, from the
    per-customer roll-up)."""
    out: list[tuple[Any, Any, int, int, int]] = []
    for k1, k2, n in group_sums(session, SPELL_START, groups)[["k1", "k2", "n"]].itertuples(
        index=False
    ):
        out.append((k1, k2 or None, 1, 1 if k2 else 0, int(n)))
    current = f"{now:%Y-%m}"
    for k1, n in group_sums(session, LAPSE, groups, GroupCount.k1 < current)[
        ["k1", "n"]
    ].itertuples(index=False):
        out.append((None, k1, 0, 1, int(n)))
    t = CustomerOrderTotals
    month_start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    lapse = now - timedelta(days=GROUP_INACTIVE_DAYS)
    edge = session.scalar(
        select(func.count())
        .select_from(t)
        .join(Customer, Customer.id == t.customer_id)
        .where(
            scope,
            t.last_at >= month_start - timedelta(days=GROUP_INACTIVE_DAYS),
            t.last_at <= lapse,
        )
    )
    if edge:
        out.append((None, current, 0, 1, int(edge)))
    return out


def _spells_over_months(
    session: Session, scope: Any, inactive_days: int, lapse: datetime, end: datetime, dialect: str
) -> Any:
    """Spells from the customer-months before ``end``, each compared with its neighbours."""
    cm = customer_months(session, end=end)
    history = (
        select(
            cm.c.month.label("month"),
            cm.c.first_at.label("first_at"),
            cm.c.last_at.label("last_at"),
            func.lag(cm.c.last_at)
            .over(partition_by=cm.c.customer_id, order_by=cm.c.month)
            .label("prev_at"),
            func.lead(cm.c.first_at)
            .over(partition_by=cm.c.customer_id, order_by=cm.c.month)
            .label("next_at"),
        )
        .join(Customer, Customer.id == cm.c.customer_id)
        .where(scope)
        .subquery()
    )
    h = history.c
    return _spell_counts(
        h.month,
        or_(h.prev_at.is_(None), days_between(h.prev_at, h.first_at, dialect) > inactive_days),
        month_key_after(h.last_at, inactive_days, dialect),
        and_(
            or_(h.next_at.is_(None), days_between(h.last_at, h.next_at, dialect) > inactive_days),
            h.last_at <= lapse,
        ),
    )


def _spells_from_orders(
    session: Session, scope: Any, inactive_days: int, now: datetime, dialect: str
) -> Any:
    """Starts and ends of active spells per month, order by order (short inactivity spans)."""
    history = (
        select(
            Order.customer_id.label("customer_id"),
            Order.ordered_at.label("at"),
            func.lag(Order.ordered_at)
            .over(partition_by=Order.customer_id, order_by=_ORDER)
            .label("prev_at"),
            func.lead(Order.ordered_at)
            .over(partition_by=Order.customer_id, order_by=_ORDER)
            .label("next_at"),
        )
        .join(Customer, Customer.id == Order.customer_id)
        .where(scope, counted_order())
        .where(Order.ordered_at <= now)
        .subquery()
    )
    h = history.c
    return _spell_counts(
        month_key(h.at, dialect),
        or_(h.prev_at.is_(None), days_between(h.prev_at, h.at, dialect) > inactive_days),
        month_key_after(h.at, inactive_days, dialect),
        and_(
            or_(h.next_at.is_(None), days_between(h.at, h.next_at, dialect) > inactive_days),
            h.at <= now - timedelta(days=inactive_days),
        ),
    )


def _spell_counts(start_month: Any, starts: Any, end_month: Any, ends: Any) -> Any:
    """One pass: ``(start month, end month, starts a spell, ends one, count)`` rows."""
    is_start = case((starts, 1), else_=0).label("is_start")
    is_end = case((ends, 1), else_=0).label("is_end")
    return (
        select(start_month, end_month, is_start, is_end, func.count())
        .where(or_(starts, ends))
        .group_by(start_month, end_month, is_start, is_end)
    )


#: Score only the customers that can be in the list (see ``_risk_candidates``) instead of
#: every customer in scope (tests compare both).
NARROW_RISK_CANDIDATES = True


def _risk_candidates(orders: Any, complaints: Any, scope: Any, silent: Any, limit: int) -> Any:
    """The ids of the customers that can be among the first ``limit`` of the risk list: those
    whose orders dropped or who complained (a score of 2 or more needs one of these), and the
    first ``limit`` other silent customers by last contact and id (every other customer has
    score 1 and no complaint, so the list orders them by last contact and id: those in it are
    a prefix of that order). The list's own query then scores only these, in the same order
    as over every customer."""
    flagged = union(
        select(orders.c.customer_id).where(_orders_dropped(orders.c.recent, orders.c.prior)),
        select(complaints.c.customer_id),
    ).cte("risk_flagged")
    quiet = (
        select(Customer.id.label("customer_id"))
        .where(scope, silent, Customer.id.not_in(select(flagged.c.customer_id)))
        .order_by(Customer.last_contact_at, Customer.id)
        .limit(limit)
        .cte("risk_quiet")
    )
    return union(select(flagged.c.customer_id), select(quiet.c.customer_id))


def _orders_dropped(recent: Any, prior: Any) -> Any:
    """The risk rule "orders dropped": at least two orders in the four windows before, and
    the last window's orders at most an eighth of them (a quarter of their average)."""
    return and_(prior >= 2, recent * 8 <= prior)


#: The risk list's walk over the customers by last contact (``_risk_walk``): customers read
#: in the first step (each next step reads twice as many), and how many it reads at most
#: before it gives up and every customer in scope is scored instead.
RISK_WALK_FIRST = 2_000
RISK_WALK_MAX = 250_000


def _risk_walk(
    session: Session,
    scope: Any,
    silent: Any,
    complaints: Any,
    windows: Callable[[Any], Any],
    limit: int,
) -> Any:
    """A ``SELECT`` of the ids of the customers that can be among the first ``limit`` of the
    risk list, found without counting every customer's orders (``None``: too many to walk).

    Customers who complained are all candidates. Every other listed customer scores 2
    (orders dropped and silent) or 1 (one of the two), and the list orders those of one score
    by last contact and id: so the candidates are the first ``limit`` silent customers whose
    orders dropped in that order, and, when there are fewer, the first ``limit`` with exactly
    one of the two. Both are found by walking the customers in that order (the index on the
    last contact), counting the orders of a step's customers only (indexed look-ups)."""
    dialect = dialect_of(session)
    if limit <= 0:
        return one_of(dialect, "risk_candidates", array_of=Integer(), values=[])
    complainers = list(session.scalars(select(complaints.c.customer_id)))
    quiet = Customer.id.not_in(
        one_of(dialect, "risk_complainers", array_of=Integer(), values=map(int, complainers))
    )
    hits = _walk_by_contact(session, [scope, quiet, silent], silent, windows, limit, "both")
    if hits is not None and len(hits) < limit:
        more = _walk_by_contact(session, [scope, quiet], silent, windows, limit, "one")
        hits = None if more is None else hits + more
    if hits is None:
        return None
    ids = sorted({*hits, *complainers})
    return one_of(dialect, "risk_candidates", array_of=Integer(), values=map(int, ids))


def _walk_by_contact(
    session: Session,
    where: list[Any],
    silent: Any,
    windows: Callable[[Any], Any],
    want: int,
    rule: str,
) -> list[int] | None:
    """The first ``want`` customers meeting ``where`` by last contact and id (the database's
    order, ``NULL`` included) that are silent with dropped orders (``rule="both"``) or exactly
    one of the two (``"one"``); ``None`` when that needs more than ``RISK_WALK_MAX`` read."""
    found: list[int] = []
    offset, step = 0, RISK_WALK_FIRST
    while offset < RISK_WALK_MAX:
        walked = (
            select(
                Customer.id.label("id"),
                Customer.last_contact_at.label("contact"),
                case((silent, 1), else_=0).label("silent"),
            )
            .where(*where)
            .order_by(Customer.last_contact_at, Customer.id)
            .offset(offset)
            .limit(step)
            .cte("risk_walked")
        )
        counts = windows(select(walked.c.id)).subquery()
        dropped = _orders_dropped(
            func.coalesce(counts.c.recent, 0), func.coalesce(counts.c.prior, 0)
        )
        rows = session.execute(
            select(walked.c.id, walked.c.silent, case((dropped, 1), else_=0))
            .outerjoin(counts, counts.c.customer_id == walked.c.id)
            .order_by(walked.c.contact, walked.c.id)
        ).all()
        for cid, is_silent, has_dropped in rows:
            both = bool(has_dropped) and bool(is_silent)
            if both if rule == "both" else (bool(has_dropped) != bool(is_silent)):
                found.append(int(cid))
                if len(found) >= want:
                    return found
        if len(rows) < step:
            return found
        offset += step
        step *= 2
    return None


def churn_risk(
    session: Session,
    *,
    actor: Actor,
    filters: ReportFilter | None = None,
    window_days: int = 90,
    now: datetime | None = None,
    locale: str | None = "en",
    limit: int = 500,
) -> pd.DataFrame:
    """Live customers at risk of churning, riskiest first, each with its reasons.

    Reasons (``reason_codes``): ``orders_dropped`` (in the last ``window_days`` at most half the
    usual orders per window, the usual being the average of the four windows before, and at
    least two orders then), ``no_contact`` (a customer or VIP not contacted for
    ``window_days``) and ``complaints`` (complaint tickets opened in the last ``window_days``).
    ``risk_score`` counts the reasons, plus one for two or more complaints.
    Columns: see ``RISK_COLUMNS``; ``name`` is shaped for the actor (masked for analysts),
    ``reasons`` is the text in ``locale``.
    """
    now = now_or(now)
    dialect = dialect_of(session)
    recent_start = now - timedelta(days=window_days)
    prior_start = recent_start - timedelta(days=4 * window_days)
    scope = customer_scope(
        session, actor=actor, filters=(filters or ReportFilter()).with_(include_archived=False)
    )
    end = history_end(session, now)

    def windows(customers: Any = None) -> Any:
        """Orders per customer in the last window and the four before (month roll-up)."""
        recent_months = customer_months(session, start=recent_start, end=end, customers=customers)
        prior_months = customer_months(
            session, start=prior_start, end=recent_start, customers=customers
        )
        both = union_all(
            select(
                recent_months.c.customer_id,
                recent_months.c.orders.label("recent"),
                literal_column("0").label("prior"),
                recent_months.c.last_at,
            ),
            select(
                prior_months.c.customer_id,
                literal_column("0"),
                prior_months.c.orders,
                prior_months.c.last_at,
            ),
        ).subquery()
        return select(
            both.c.customer_id.label("customer_id"),
            func.sum(both.c.recent).label("recent"),
            func.sum(both.c.prior).label("prior"),
            func.max(both.c.last_at).label("last_order_at"),
        ).group_by(both.c.customer_id)

    complaints = (
        select(Ticket.customer_id.label("customer_id"), func.count().label("n"))
        .where(Ticket.kind == TicketKind.COMPLAINT, Ticket.created_at >= recent_start)
        .where(Ticket.created_at <= now)
        .group_by(Ticket.customer_id)
        .cte("risk_complaints")
    )
    silent = and_(
        Customer.lifecycle_stage.in_((Lifecycle.CUSTOMER, Lifecycle.VIP)),
        Customer.last_contact_at < recent_start,
    )
    candidates = None
    if NARROW_RISK_CANDIDATES:
        candidates = _risk_walk(session, scope, silent, complaints, windows, limit)
    if candidates is None:
        orders = windows().cte("risk_orders")
    else:
        orders = windows(candidates).cte("risk_orders")
    recent = func.coalesce(orders.c.recent, 0)
    prior = func.coalesce(orders.c.prior, 0)
    n_complaints = func.coalesce(complaints.c.n, 0)
    dropped = _orders_dropped(recent, prior)
    complained = n_complaints >= 1
    score = (
        case((dropped, 1), else_=0)
        + case((silent, 1), else_=0)
        + case((complained, 1), else_=0)
        + case((n_complaints >= 2, 1), else_=0)
    )
    contact_days = days_between(Customer.last_contact_at, timestamp(now, dialect), dialect)
    stmt = (
        select(
            Customer.id,
            Customer.name,
            Customer.owner_id,
            Customer.lifecycle_stage,
            orders.c.last_order_at,
            recent,
            prior,
            contact_days,
            n_complaints,
            score.label("score"),
            dropped,
            silent,
            complained,
        )
        .outerjoin(orders, orders.c.customer_id == Customer.id)
        .outerjoin(complaints, complaints.c.customer_id == Customer.id)
        .where(scope, or_(dropped, silent, complained))
        .order_by(score.desc(), n_complaints.desc(), Customer.last_contact_at.asc(), Customer.id)
        .limit(limit)
    )
    if candidates is not None:
        stmt = stmt.where(Customer.id.in_(candidates))
    elif NARROW_RISK_CANDIDATES:
        stmt = stmt.where(
            Customer.id.in_(_risk_candidates(orders, complaints, scope, silent, limit))
        )
    rows = session.execute(stmt).all()
    owners = user_names(session, [r[2] for r in rows])
    _ = translator(locale, "reports")
    out = []
    for cid, name, owner_id, stage, last_order, rec, pri, days, comp, sc, d, s, c in rows:
        codes, texts = [], []
        usual = float(pri) / 4
        if d:
            codes.append("orders_dropped")
            texts.append(
                _("orders dropped: {recent} in the last {days} days, usually {usual}").format(
                    recent=int(rec), days=window_days, usual=f"{usual:.2f}"
                )
            )
        if s:
            codes.append("no_contact")
            texts.append(_("no contact for {days} days").format(days=int(days or 0)))
        if c:
            codes.append("complaints")
            texts.append(
                _("{count} complaint(s) in the last {days} days").format(
                    count=int(comp), days=window_days
                )
            )
        shown = access.shape_for(actor, {"name": name})["name"]
        out.append(
            (
                cid,
                shown,
                owner_id,
                owners.get(owner_id, ("", None, ""))[0] if owner_id else "",
                stage,
                last_order,
                int(rec),
                usual,
                float(days) if days is not None else float("nan"),
                int(comp),
                int(sc),
                ",".join(codes),
                "; ".join(texts),
            )
        )
    df = pd.DataFrame(out, columns=list(RISK_COLUMNS))
    df["owner_id"] = df["owner_id"].astype("Int64")
    return df.astype({"usual_orders": "float64", "days_since_contact": "float64"})
