"""Scheduling: leases, concurrent schedulers running each rule once, the in-process
scheduler, and e-mail through a real local SMTP server that is down first and then up."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from crm_core import automation as auto
from crm_core import customers, privacy
from crm_core.automation.scheduler import (
    LeaseHeartbeat,
    LeaseLost,
    acquire_rule_lease,
    release_rule_lease,
)
from crm_core.models import OutboundEmail, RuleRun, Task, User

T0 = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping what it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 Message accepted"


def _enable_only(db, staff, *keys: str) -> None:
    with db.transaction() as s:
        for rule in auto.list_rules(s, actor=staff.admin):
            if rule.enabled != (rule.key in keys):
                auto.set_enabled(s, actor=staff.admin, rule_id=rule.id, enabled=rule.key in keys)


def test_lease_is_exclusive_until_released_or_expired(db, staff):
    with db.transaction() as s:
        rule_id = auto.get_rule(s, actor=staff.admin, rule="birthday_reminder").id
    assert acquire_rule_lease(db, rule_id, holder="a", now=T0, ttl=timedelta(minutes=5))
    assert not acquire_rule_lease(db, rule_id, holder="b", now=T0 + timedelta(minutes=1))
    assert acquire_rule_lease(db, rule_id, holder="a", now=T0 + timedelta(minutes=1))  # renew
    release_rule_lease(db, rule_id, holder="a")
    assert acquire_rule_lease(db, rule_id, holder="b", now=T0 + timedelta(minutes=2))
    # a crashed holder's lease expires
    assert acquire_rule_lease(db, rule_id, holder="c", now=T0 + timedelta(hours=2))


def test_a_renewed_lease_is_not_taken_over_and_an_expired_one_is(db, staff):
    with db.transaction() as s:
        rule_id = auto.get_rule(s, actor=staff.admin, rule="followup_reminder").id
    ttl = timedelta(minutes=30)
    clock = {"now": T0}
    assert acquire_rule_lease(db, rule_id, holder="long-run", now=T0, ttl=ttl)
    heartbeat = LeaseHeartbeat(db, rule_id, holder="long-run", clock=lambda: clock["now"], ttl=ttl)
    # a run of 80 minutes renews its lease every 20: another scheduler never gets it
    for minutes in (20, 40, 60, 80):
        clock["now"] = T0 + timedelta(minutes=minutes)
        assert heartbeat.beat()
        later = clock["now"] + timedelta(minutes=25)
        assert not acquire_rule_lease(db, rule_id, holder="other", now=later, ttl=ttl)
    heartbeat.check()  # still ours: the run goes on
    assert heartbeat.renewals == 4
    # the run's process dies (no more renewals): the lease renewed at 80 min ends at 110
    assert not acquire_rule_lease(db, rule_id, holder="other", now=T0 + timedelta(minutes=109))
    assert acquire_rule_lease(db, rule_id, holder="other", now=T0 + timedelta(minutes=111))
    # a late heartbeat of the old holder finds the lease taken and its run must stop
    clock["now"] = T0 + timedelta(minutes=112)
    assert not heartbeat.beat() and heartbeat.lost
    with pytest.raises(LeaseLost, match="took over the lease"):
        heartbeat.check()


def test_a_lease_not_renewed_is_taken_over_after_its_time(db, staff):
    with db.transaction() as s:
        rule_id = auto.get_rule(s, actor=staff.admin, rule="birthday_reminder").id
    ttl = timedelta(minutes=30)
    assert acquire_rule_lease(db, rule_id, holder="stuck", now=T0, ttl=ttl)
    assert not acquire_rule_lease(db, rule_id, holder="other", now=T0 + timedelta(minutes=29))
    assert acquire_rule_lease(db, rule_id, holder="other", now=T0 + timedelta(minutes=31))
    stuck = LeaseHeartbeat(
        db, rule_id, holder="stuck", clock=lambda: T0 + timedelta(minutes=32), ttl=ttl
    )
    assert not stuck.beat() and stuck.renewals == 0


def test_concurrent_schedulers_run_each_rule_once(db, staff):
    _enable_only(db, staff, "followup_reminder", "birthday_reminder", "contract_expiry_30")
    with db.transaction() as s:
        for i in range(30):
            c = customers.create_customer(
                s, actor=staff.sales1, data={"name": f"C{i}", "lifecycle_stage": "customer"}
            )
            c.last_contact_at = T0 - timedelta(days=90)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def scheduler(i: int) -> None:
        try:
            barrier.wait()
            for _ in range(3):
                auto.run_due(db, now=T0, holder=f"process-{i}", deliver=False)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=scheduler, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    with db.transaction() as s:
        runs = s.execute(select(RuleRun.rule_key, func.count()).group_by(RuleRun.rule_key)).all()
        assert dict(runs) == {
            "followup_reminder": 1,
            "birthday_reminder": 1,
            "contract_expiry_30": 1,
        }
        assert s.scalar(select(func.count()).select_from(Task)) == 30
        assert len({h for (h,) in s.execute(select(RuleRun.holder))}) >= 1


def test_in_process_scheduler_runs_on_its_clock(db, staff):
    _enable_only(db, staff, "followup_reminder")
    with db.transaction() as s:
        c = customers.create_customer(
            s, actor=staff.sales1, data={"name": "Quiet", "lifecycle_stage": "customer"}
        )
        c.last_contact_at = T0 - timedelta(days=45)
    clock = {"now": T0.replace(hour=0)}
    scheduler = auto.Scheduler(db, clock=lambda: clock["now"], interval=3600)
    with db.transaction() as s:
        rule = auto.get_rule(s, actor=staff.admin, rule="followup_reminder")
        auto.update_rule(
            s,
            actor=staff.admin,
            rule_id=rule.id,
            expected_version=rule.version,
            changes={"run_hour": 6},
        )
    assert [r.rule_key for r in scheduler.tick()] == []  # before 06:00 UTC: not due
    clock["now"] = T0.replace(hour=7)
    assert [(r.rule_key, r.matched) for r in scheduler.tick()] == [("followup_reminder", 1)]
    assert scheduler.tick() == []  # ran today already


@pytest.fixture
def smtp_port() -> int:
    return _free_port()


def test_email_waits_while_smtp_is_down_and_is_sent_on_retry(db, staff, smtp_port):
    _enable_only(db, staff)
    config = auto.SmtpConfig(host="127.0.0.1", port=smtp_port, sender="crm@example.com", timeout=2)
    with db.transaction() as s:
        auto.create_rule(
            s,
            actor=staff.admin,
            data={
                "name": "Welcome e-mail",
                "trigger": "customer.created",
                "actions": [
                    {
                        "type": "send_email",
                        "to": "customer",
                        "title": "Welcome, {name}",
                        "body": "Dear {name}, thank you.",
                    }
                ],
            },
        )
        yes = customers.create_customer(
            s, actor=staff.sales1, data={"name": "Consenting", "emails": ["yes@example.com"]}
        )
        customers.create_customer(
            s, actor=staff.sales1, data={"name": "Silent", "emails": ["no@example.com"]}
        )
        privacy.record_consent(
            s,
            actor=staff.sales1,
            customer_id=yes.id,
            purpose="marketing",
            granted=True,
            channel="web form",
            text_version="v1",
        )
    # server down: the e-mail is queued, the failure reported, nothing lost
    auto.run_due(db, now=T0, smtp=config)
    with db.transaction() as s:
        mail = s.scalars(select(OutboundEmail)).all()
        assert [(m.to_addr, m.status, m.attempts) for m in mail] == [
            ("yes@example.com", "pending", 1)
        ]
        assert "unreachable" in mail[0].last_error
        log = s.scalars(select(RuleRun).where(RuleRun.rule_key == "email")).all()
        assert log[0].summary == {"sent": 0, "retrying": 1, "failed": 0}
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        auto.run_due(db, now=T0 + timedelta(seconds=30), smtp=config)
        assert inbox.messages == []  # not yet due for its retry
        auto.run_due(db, now=T0 + timedelta(minutes=2), smtp=config)
        auto.run_due(db, now=T0 + timedelta(minutes=10), smtp=config)
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    recipients, content = inbox.messages[0]
    assert recipients == ["yes@example.com"]
    assert "Subject: Welcome, Consenting" in content and "Dear Consenting, thank you." in content
    with db.transaction() as s:
        mail = s.scalars(select(OutboundEmail)).one()
        assert (mail.status, mail.attempts) == ("sent", 2)


def test_email_gives_up_after_max_attempts_and_tells_the_admins(db, staff, smtp_port):
    _enable_only(db, staff)
    config = auto.SmtpConfig(host="127.0.0.1", port=smtp_port, timeout=1)
    with db.transaction() as s:
        s.get(User, staff.sales1.id).email = "sales1@example.com"
        auto.create_rule(
            s,
            actor=staff.admin,
            data={
                "name": "Tell the owner",
                "trigger": "customer.created",
                "actions": [{"type": "send_email", "to": "owner", "title": "New: {name}"}],
            },
        )
        customers.create_customer(s, actor=staff.sales1, data={"name": "Someone"})
    now = T0
    for _ in range(auto.email.MAX_ATTEMPTS):
        auto.run_due(db, now=now, smtp=config)
        now += timedelta(hours=7)
    with db.transaction() as s:
        mail = s.scalars(select(OutboundEmail)).one()
        assert (mail.to_addr, mail.status) == ("sales1@example.com", "failed")
        bell = auto.list_notifications(s, actor=staff.admin)
        assert bell and "could not be sent" in bell[0].title


def test_background_scheduler_thread_runs_and_stops(db, staff):
    _enable_only(db, staff, "followup_reminder")
    with db.transaction() as s:
        c = customers.create_customer(
            s, actor=staff.sales1, data={"name": "Quiet", "lifecycle_stage": "customer"}
        )
        c.last_contact_at = T0 - timedelta(days=45)
    scheduler = auto.Scheduler(db, clock=lambda: T0, interval=0.05)
    scheduler.start()
    try:
        for _ in range(400):  # wait for the first pass (not a timing assertion)
            with db.transaction() as s:
                if s.scalar(select(func.count()).select_from(Task)):
                    break
            threading.Event().wait(0.05)
    finally:
        scheduler.stop()
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 1
        assert [r.rule_key for r in s.scalars(select(RuleRun))] == ["followup_reminder"]
