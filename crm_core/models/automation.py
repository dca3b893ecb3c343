"""Automation: rules, their schedule state and lease, run log, events, notifications, emails."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models.base import Base, Timestamped, UTCDateTime, Versioned, utcnow
from crm_core.models.customers import JSONType


class AutomationRule(Base, Timestamped, Versioned):
    """A rule: a trigger, conditions on fields and actions (all plain JSON, see
    ``crm_core.automation.spec``). Built-in rules carry a ``key`` and can be edited."""

    __tablename__ = "automation_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str | None] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    trigger: Mapped[str] = mapped_column(String(40), default="daily")
    trigger_config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    subject: Mapped[str] = mapped_column(String(20), default="customer")
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    actions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)
    marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    run_hour: Mapped[int] = mapped_column(Integer, default=0)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class AutomationState(Base):
    """Per rule: the lease that keeps two schedulers from running it at once, when it last
    ran, and how far it has read the audit trail (event triggers)."""

    __tablename__ = "automation_state"

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("automation_rules.id", ondelete="CASCADE"), primary_key=True
    )
    lease_holder: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_day: Mapped[date | None] = mapped_column(Date)
    cursor: Mapped[int] = mapped_column(Integer, default=0)


class AutomationLease(Base):
    """A named lease for work that is not one rule (the e-mail dispatcher, retention)."""

    __tablename__ = "automation_leases"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(120))
    until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RuleRun(Base):
    """One run of one rule: what matched, what was done, what failed."""

    __tablename__ = "automation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_rules.id", ondelete="SET NULL"), index=True
    )
    rule_key: Mapped[str] = mapped_column(String(60), default="")
    rule_name: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="running")
    holder: Mapped[str | None] = mapped_column(String(120))
    matched: Mapped[int] = mapped_column(Integer, default=0)
    actions_taken: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    errors: Mapped[list[str]] = mapped_column(JSONType, default=list)


class RuleEvent(Base):
    """One thing a rule acted on (a customer's birthday this year, a contract's 30-day mark…).
    Unique per rule and key: running the schedule twice never acts twice on one event."""

    __tablename__ = "automation_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # indexed by the unique (rule_id, event_key) constraint
    rule_id: Mapped[int] = mapped_column(ForeignKey("automation_rules.id", ondelete="CASCADE"))
    event_key: Mapped[str] = mapped_column(String(200))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    subject_id: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_runs.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("rule_id", "event_key", name="uq_automation_event_key"),)


class Notification(Base):
    """A message in a user's notification bell."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_rules.id", ondelete="SET NULL")
    )
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_events.id", ondelete="CASCADE")
    )
    #: the title in English (as written; what a reader without a translation sees)
    title: Mapped[str] = mapped_column(String(255))
    #: the message key of the title (an ``automation`` catalogue message such as
    #: ``Birthday of {name} in 7 days``) and its parameters: each reader sees it in their
    #: own language (``automation.notification_title``)
    title_key: Mapped[str | None] = mapped_column(String(255))
    title_params: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    body: Mapped[str | None] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(10), default="info")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_notifications_user_unread", "user_id", "read_at", "id"),
        UniqueConstraint("event_id", "user_id", name="uq_notification_event_user"),
    )


class OutboundEmail(Base):
    """An e-mail waiting for (or done with) the SMTP server; failed sends are retried later."""

    __tablename__ = "outbound_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_rules.id", ondelete="SET NULL")
    )
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("automation_events.id", ondelete="CASCADE")
    )
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    to_addr: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_outbound_emails_due", "status", "next_attempt_at"),
        UniqueConstraint("event_id", "to_addr", name="uq_outbound_email_event_to"),
    )
