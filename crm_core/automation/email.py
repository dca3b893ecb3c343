"""E-mail actions: a queue in the database and a dispatcher that sends it over SMTP.

Rules only queue mail (``outbound_emails``). ``deliver_pending`` sends what is due under a
lease; a send that fails (server down, refused) stays queued with a growing delay and is
retried on a later pass; after ``max_attempts`` it is marked failed, written to the run log
and reported to the admins' notification bell. The event is never lost and never blocks the
rules.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import Customer, Notification, OutboundEmail, Role, RuleRun, User
from crm_core.settings import get_settings

LEASE_NAME = "email-dispatch"
MAX_ATTEMPTS = 6
#: The admins' notification when an e-mail is given up (a message of the ``automation``
#: catalogue, shown in each admin's language).
FAILED_TITLE = "An automation e-mail could not be sent after {tries} tries"


@dataclass(frozen=True)
class SmtpConfig:
    """Where mail goes. ``host=''`` means no server is configured: mail waits in the queue."""

    host: str = ""
    port: int = 25
    sender: str = "crm@localhost"
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0

    @classmethod
    def from_settings(cls) -> SmtpConfig:
        settings = get_settings()
        return cls(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_sender)


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, 8 … minutes after each failure, at most 6 hours."""
    return timedelta(minutes=min(360, 2 ** max(0, attempts - 1)))


def render(template: str, customer_name: str | None) -> str:
    return template.replace("{name}", customer_name or "")


def _message(config: SmtpConfig, to: str, subject: str, body: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body or subject)
    return msg


def _connect(config: SmtpConfig) -> smtplib.SMTP:
    client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
    if config.starttls:
        client.starttls(context=ssl.create_default_context())
    if config.username:
        client.login(config.username, config.password or "")
    return client


def deliver_pending(
    db: Database,
    *,
    now: datetime,
    holder: str,
    smtp: SmtpConfig | None = None,
    limit: int = 200,
    max_attempts: int = MAX_ATTEMPTS,
) -> DeliveryReport:
    """Send the queued mail that is due; failures are rescheduled (see module doc)."""
    from crm_core.automation.scheduler import acquire_lease, release_lease

    config = smtp or SmtpConfig.from_settings()
    report = DeliveryReport()
    if not config.host:
        return report
    with db.transaction() as s:
        due = list(
            s.execute(
                select(OutboundEmail.id, OutboundEmail.to_addr, OutboundEmail.subject)
                .add_columns(OutboundEmail.body, Customer.name)
                .outerjoin(Customer, Customer.id == OutboundEmail.customer_id)
                .where(OutboundEmail.status == "pending", OutboundEmail.next_attempt_at <= now)
                .order_by(OutboundEmail.next_attempt_at, OutboundEmail.id)
                .limit(limit)
            )
        )
    if not due:
        return report
    if not acquire_lease(db, LEASE_NAME, holder=holder, now=now, ttl=timedelta(minutes=10)):
        return report
    try:
        client: smtplib.SMTP | None = None
        connect_error: str | None = None
        try:
            client = _connect(config)
        except (OSError, smtplib.SMTPException) as exc:
            connect_error = f"SMTP server {config.host}:{config.port} unreachable: {exc}"
        for email_id, to, subject, body, name in due:
            error = connect_error
            if client is not None:
                try:
                    client.send_message(
                        _message(config, to, render(subject, name), render(body, name))
                    )
                except (OSError, smtplib.SMTPException) as exc:
                    # no address in logs: they outlive the person's anonymisation
                    error = f"{type(exc).__name__}: {exc}".replace(to, "<recipient>")
            _record(db, email_id, error=error, now=now, max_attempts=max_attempts, report=report)
        if client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                client.quit()
        if report.retrying or report.failed:
            _log(db, report, now=now, holder=holder)
    finally:
        release_lease(db, LEASE_NAME, holder=holder)
    return report


def _record(
    db: Database,
    email_id: int,
    *,
    error: str | None,
    now: datetime,
    max_attempts: int,
    report: DeliveryReport,
) -> None:
    with db.transaction() as s:
        email = s.get(OutboundEmail, email_id)
        if email is None or email.status != "pending":
            return
        email.attempts += 1
        if error is None:
            email.status, email.sent_at, email.last_error = "sent", now, None
            report.sent += 1
            return
        email.last_error = error[:2000]
        if email.attempts >= max_attempts:
            email.status = "failed"
            report.failed += 1
            report.errors.append(f"e-mail {email.id} to rule {email.rule_id} failed: {error}")
            admins = s.scalars(
                select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))
            )
            for admin_id in admins:
                s.add(
                    Notification(
                        user_id=admin_id,
                        rule_id=email.rule_id,
                        title=FAILED_TITLE.format(tries=email.attempts),
                        title_key=FAILED_TITLE,
                        title_params={"tries": email.attempts},
                        body=error[:1000],
                        level="alert",
                        created_at=now,
                    )
                )
        else:
            email.next_attempt_at = now + retry_delay(email.attempts)
            report.retrying += 1
            report.errors.append(f"e-mail {email.id}: {error} (retry {email.attempts})")


def _log(db: Database, report: DeliveryReport, *, now: datetime, holder: str) -> None:
    with db.transaction() as s:
        s.add(
            RuleRun(
                rule_id=None,
                rule_key="email",
                rule_name="E-mail delivery",
                started_at=now,
                finished_at=now,
                holder=holder,
                status="partial" if report.sent else "error",
                matched=report.sent + report.retrying + report.failed,
                actions_taken=report.sent,
                summary={"sent": report.sent, "retrying": report.retrying, "failed": report.failed},
                errors=report.errors[:50],
            )
        )
