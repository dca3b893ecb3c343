"""Conditions compiled to one SQL ``WHERE`` over customers (and their contract or ticket).

Everything here is set-based: a daily rule selects all its matching customers with one query,
whatever their number. Date arithmetic that differs between SQLite and PostgreSQL lives in the
small dialect helpers at the top.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from crm_core.automation.spec import Condition
from crm_core.models import (
    Contract,
    Customer,
    Deal,
    DealStatus,
    Interaction,
    Order,
    Tag,
    Task,
    Ticket,
    TicketStatus,
    customer_tags,
)

OPEN_TICKET = (TicketStatus.OPEN.value, TicketStatus.PENDING.value)
#: ``Task.source_key`` prefix of the tasks the rules create.
AUTO_TASK = "auto:"


# ---------------------------------------------------------------- dialect helpers


def epoch_day(session: Session, column: Any) -> ColumnElement[int]:
    """Whole days of a timestamp column (a stable number, only compared within one database)."""
    if session.get_bind().dialect.name == "sqlite":
        return cast(func.julianday(column), Integer)
    return cast(func.floor(func.extract("epoch", column) / 86400), Integer)


def month_day(session: Session, column: Any) -> ColumnElement[str]:
    """``MM-DD`` of a date column."""
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%m-%d", column)
    return func.to_char(column, "MM-DD")


def text_of(value: Any) -> ColumnElement[str]:
    return cast(value, String)


def concat(*parts: Any) -> ColumnElement[str]:
    """``a || b || …`` with numbers cast to text (portable string concatenation)."""
    out: Any = None
    for part in parts:
        piece = literal(part, String) if isinstance(part, str) else text_of(part)
        out = piece if out is None else out.concat(piece)
    return out


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def relative_day(value: str, today: date) -> date:
    """``today``, ``-30d``, ``+7d`` or an ISO date."""
    if value == "today":
        return today
    if value[:1] in "+-" and value.endswith("d"):
        return today + timedelta(days=int(value[:-1]))
    return date.fromisoformat(value)


# ---------------------------------------------------------------- field access


def field_column(name: str) -> Any:
    if name.startswith("custom."):
        return Customer.custom[name.removeprefix("custom.")].as_string()
    return getattr(Customer, name)


def activity_anchor() -> ColumnElement[Any]:
    """The last sign of life of a customer: last contact, or creation when never contacted."""
    return func.coalesce(Customer.last_contact_at, Customer.created_at)


def has_tag(tag: str) -> ColumnElement[bool]:
    return exists(
        select(1)
        .select_from(customer_tags.join(Tag, Tag.id == customer_tags.c.tag_id))
        .where(customer_tags.c.customer_id == Customer.id, Tag.name == tag)
    )


def nothing_open(today: date) -> ColumnElement[bool]:
    """No open deal, open ticket, open task (other than the rules' reminders) or running
    contract."""
    return and_(
        not_(exists().where(Deal.customer_id == Customer.id, Deal.status == DealStatus.OPEN)),
        not_(exists().where(Ticket.customer_id == Customer.id, Ticket.status.in_(OPEN_TICKET))),
        not_(
            exists().where(
                Task.customer_id == Customer.id,
                Task.done_at.is_(None),
                # the rules' own reminders do not keep a quiet customer "open"
                or_(Task.source_key.is_(None), not_(Task.source_key.like(f"{AUTO_TASK}%"))),
            )
        ),
        not_(
            exists().where(
                Contract.customer_id == Customer.id,
                Contract.status == "active",
                Contract.end_date >= today,
            )
        ),
    )


def birthday_matches(session: Session, target: date) -> ColumnElement[bool]:
    """Birthdays falling on ``target`` (29 February counts on 28 February in other years)."""
    days = [target.strftime("%m-%d")]
    if target.month == 2 and target.day == 28 and not calendar.isleap(target.year):
        days.append("02-29")
    return and_(Customer.birthday.is_not(None), month_day(session, Customer.birthday).in_(days))


def _field_condition(cond: Condition, today: date) -> ColumnElement[bool]:
    column = field_column(cond.field or "")
    op, value = cond.op, cond.value
    if op == "eq":
        return column == value
    if op == "ne":
        return or_(column.is_(None), column != value)
    if op == "in":
        return column.in_(list(value))
    if op == "not_in":
        return or_(column.is_(None), column.not_in(list(value)))
    if op == "contains":
        text = str(value).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return column.like(f"%{text}%", escape="\\")
    textual = isinstance(getattr(column, "type", None), String)
    if op == "empty":
        return or_(column.is_(None), column == "") if textual else column.is_(None)
    if op == "not_empty":
        return and_(column.is_not(None), column != "") if textual else column.is_not(None)
    day = relative_day(str(value), today)
    bound: Any = day.isoformat() if (cond.field or "").startswith("custom.") else day
    if cond.field in ("created_at", "last_contact_at"):
        bound = midnight(day)
    return column < bound if op == "before" else column >= bound


def compile_condition(
    session: Session, cond: Condition, *, now: datetime, ctx: dict[str, Any]
) -> ColumnElement[bool]:
    """One condition as SQL over ``Customer`` (and ``Contract``/``Ticket`` for those rules)."""
    from crm_core import privacy
    from crm_core.automation import churn

    today = now.date()
    op = cond.op
    if op in ("eq", "ne", "in", "not_in", "contains", "empty", "not_empty", "before", "after"):
        return _field_condition(cond, today)
    if op == "has_tag":
        return has_tag(str(cond.value))
    if op == "no_tag":
        return not_(has_tag(str(cond.value)))
    if op == "no_interaction_days":
        return activity_anchor() < now - timedelta(days=int(cond.value))
    if op == "birthday_in_days":
        return birthday_matches(session, today + timedelta(days=int(cond.value)))
    if op == "contract_ends_in_days":
        return and_(
            Contract.status == "active",
            Contract.end_date >= today,
            Contract.end_date <= today + timedelta(days=int(cond.value)),
        )
    if op == "ticket_overdue":
        return and_(Ticket.status.in_(OPEN_TICKET), Ticket.due_at.is_not(None), Ticket.due_at < now)
    if op == "inactive_months":
        cutoff = now - timedelta(days=round(int(cond.value) * 30.44))
        return and_(
            activity_anchor() < cutoff,
            not_(
                exists().where(
                    Interaction.customer_id == Customer.id, Interaction.occurred_at >= cutoff
                )
            ),
            not_(exists().where(Order.customer_id == Customer.id, Order.ordered_at >= cutoff)),
        )
    if op == "nothing_open":
        return nothing_open(today)
    if op == "churn_risk":
        return churn.churn_risk_condition(session, now=now)
    if op == "has_consent":
        return privacy.consent_condition(str(cond.value))
    if op == "retention_expired":
        return privacy.retention_expired_condition(session, now=now)
    if op in ("previously_erased", "field_changed"):
        return true()  # evaluated in Python over the changed records (see engine)
    return false()
