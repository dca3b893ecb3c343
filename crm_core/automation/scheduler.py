"""Running rules on time, never twice at once.

Each rule has a lease row (``automation_state``): a process takes it with one conditional
``UPDATE`` (free, expired, or already its own), runs the rule in its own transaction and gives
it back. While the rule runs, a heartbeat (``LeaseHeartbeat``) renews the lease from its own
connection, so a run longer than the lease time is not taken over; a process that dies stops
renewing and its lease expires. Two schedulers — ``crm automate run`` from cron and the panel's in-process
``Scheduler``, or several panel processes on one PostgreSQL database — therefore never run one
rule at the same time, and a daily rule runs once a day (its state says the day it last ran).

Time is injected: every function takes ``now`` (the tests move it; production passes
``utcnow()``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from crm_core.automation import engine
from crm_core.automation.builtins import ensure_builtin_rules
from crm_core.automation.spec import EVENT_TRIGGERS
from crm_core.db import Database
from crm_core.models import AutomationLease, AutomationRule, AutomationState, RuleRun, utcnow
from crm_core.users import get_system_user

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DEFAULT_LEASE = timedelta(minutes=30)


def new_holder() -> str:
    """A name for this scheduler, unique across processes and hosts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class RunResult:
    """What happened to one rule in one scheduler pass."""

    rule_id: int
    rule_key: str
    status: str  # ok, partial, error, busy, not_due, idle
    run_id: int | None = None
    matched: int = 0
    actions_taken: int = 0
    summary: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- leases


def acquire_rule_lease(
    db: Database, rule_id: int, *, holder: str, now: datetime, ttl: timedelta = DEFAULT_LEASE
) -> bool:
    """Take the rule's lease if it is free or expired (or ours); True when taken."""
    with db.transaction() as s:
        if s.get(AutomationState, rule_id) is None:
            try:
                with s.begin_nested():
                    s.add(AutomationState(rule_id=rule_id, cursor=0))
            except IntegrityError:
                pass  # another process created it at the same moment
        result = s.execute(
            update(AutomationState)
            .where(AutomationState.rule_id == rule_id)
            .where(
                or_(
                    AutomationState.lease_until.is_(None),
                    AutomationState.lease_until < now,
                    AutomationState.lease_holder == holder,
                )
            )
            .values(lease_holder=holder, lease_until=now + ttl)
            .execution_options(synchronize_session=False)
        )
        return engine.rowcount(result) > 0


def renew_rule_lease(
    db: Database, rule_id: int, *, holder: str, now: datetime, ttl: timedelta = DEFAULT_LEASE
) -> bool:
    """Extend our own lease on a rule to ``now + ttl`` (the heartbeat of a long run); False
    when the lease is no longer ours (it expired and another scheduler took it)."""
    with db.transaction() as s:
        result = s.execute(
            update(AutomationState)
            .where(AutomationState.rule_id == rule_id, AutomationState.lease_holder == holder)
            .values(lease_until=now + ttl)
            .execution_options(synchronize_session=False)
        )
        return engine.rowcount(result) > 0


class LeaseLost(RuntimeError):
    """Another scheduler took over the lease of a running rule (the run is rolled back)."""


class LeaseHeartbeat:
    """Keeps a running rule's lease alive: ``beat()`` renews it to ``clock() + ttl``; used as a
    context manager, a background thread beats every ``every`` seconds (a third of the lease
    time by default) until the run ends.

    ``clock`` is the injected time (tests move it). A renewal that finds the lease taken over
    sets ``lost``; ``check()`` then raises ``LeaseLost`` so the run rolls back instead of doing
    its work a second time. A renewal that fails for another reason (the database busy) is
    logged and tried again at the next beat.

    On SQLite no thread is started: SQLite has one writer at a time, so while the rule's
    transaction is open no other scheduler can write, hence none can take the lease (and a
    renewal from another connection would only wait for that same transaction).
    """

    def __init__(
        self,
        db: Database,
        rule_id: int,
        *,
        holder: str,
        clock: Clock,
        ttl: timedelta = DEFAULT_LEASE,
        every: float | None = None,
    ) -> None:
        self.db, self.rule_id, self.holder, self.clock, self.ttl = db, rule_id, holder, clock, ttl
        self.every = every if every is not None else max(1.0, ttl.total_seconds() / 3)
        self.lost = False
        self.renewals = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> bool:
        """Renew the lease now; False once it has been taken over."""
        if self.lost:
            return False
        try:
            ok = renew_rule_lease(
                self.db, self.rule_id, holder=self.holder, now=self.clock(), ttl=self.ttl
            )
        except SQLAlchemyError:
            log.warning("could not renew the lease of rule %s; retrying", self.rule_id)
            return True
        if ok:
            self.renewals += 1
        else:
            self.lost = True
            log.error("the lease of rule %s was taken over by another scheduler", self.rule_id)
        return ok

    def check(self) -> None:
        """Raise ``LeaseLost`` when another scheduler has taken the lease over."""
        if self.lost:
            raise LeaseLost(
                f"rule {self.rule_id}: another scheduler took over the lease during the run; "
                "this run's work was rolled back"
            )

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            if not self.beat():
                return

    def __enter__(self) -> LeaseHeartbeat:
        if self.db.dialect != "sqlite":
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name=f"crm-lease-{self.rule_id}", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def release_rule_lease(db: Database, rule_id: int, *, holder: str) -> None:
    with db.transaction() as s:
        s.execute(
            update(AutomationState)
            .where(AutomationState.rule_id == rule_id, AutomationState.lease_holder == holder)
            .values(lease_holder=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )


def acquire_lease(
    db: Database, name: str, *, holder: str, now: datetime, ttl: timedelta = DEFAULT_LEASE
) -> bool:
    """A named lease for work that is not a rule (the e-mail dispatcher)."""
    with db.transaction() as s:
        if s.get(AutomationLease, name) is None:
            try:
                with s.begin_nested():
                    s.add(AutomationLease(name=name))
            except IntegrityError:
                pass
        result = s.execute(
            update(AutomationLease)
            .where(AutomationLease.name == name)
            .where(
                or_(
                    AutomationLease.until.is_(None),
                    AutomationLease.until < now,
                    AutomationLease.holder == holder,
                )
            )
            .values(holder=holder, until=now + ttl)
            .execution_options(synchronize_session=False)
        )
        return engine.rowcount(result) > 0


def release_lease(db: Database, name: str, *, holder: str) -> None:
    with db.transaction() as s:
        s.execute(
            update(AutomationLease)
            .where(AutomationLease.name == name, AutomationLease.holder == holder)
            .values(holder=None, until=None)
            .execution_options(synchronize_session=False)
        )


# ---------------------------------------------------------------- running


def is_due(rule: AutomationRule, state: AutomationState | None, now: datetime) -> bool:
    """Record-triggered rules are always due (they read new audit entries); a daily rule is
    due once per UTC day, from its ``run_hour`` on (on its ``weekdays`` only, when set)."""
    if not rule.enabled:
        return False
    if rule.trigger in EVENT_TRIGGERS:
        return True
    if now.hour < rule.run_hour:
        return False
    weekdays = (rule.trigger_config or {}).get("weekdays") or []
    if weekdays and now.weekday() not in weekdays:
        return False
    return state is None or state.last_run_day is None or state.last_run_day < now.date()


def _finish(run: RuleRun, outcome: engine.Outcome, now: datetime) -> None:
    run.finished_at = now
    run.matched = outcome.matched
    run.actions_taken = outcome.actions_taken
    run.summary = dict(outcome.summary)
    run.errors = list(outcome.errors)
    run.status = "partial" if outcome.errors else "ok"


def run_rule(
    db: Database,
    rule_id: int,
    *,
    now: datetime,
    holder: str | None = None,
    force: bool = False,
    ttl: timedelta = DEFAULT_LEASE,
    clock: Clock | None = None,
) -> RunResult:
    """Run one rule under its lease: once if due (or ``force``), in its own transaction.
    An error rolls the rule's work back (its events stay pending for the next run) and is
    written to the run log; it never reaches the other rules.

    The lease is renewed while the rule runs (``LeaseHeartbeat``, on ``clock``: by default
    ``now`` plus the time the run has taken), so a long run keeps it."""
    holder = holder or new_holder()
    if clock is None:
        started = utcnow()

        def clock() -> datetime:
            return now + (utcnow() - started)

    with db.transaction() as s:
        rule = s.get(AutomationRule, rule_id)
        if rule is None:
            return RunResult(rule_id, "", "error", errors=[f"rule {rule_id} does not exist"])
        key = rule.key or str(rule.id)
    try:
        taken = acquire_rule_lease(db, rule_id, holder=holder, now=now, ttl=ttl)
    except OperationalError as exc:
        if db.dialect == "sqlite" and "locked" in str(exc):
            return RunResult(rule_id, key, "busy")  # another process is writing (its run)
        raise
    if not taken:
        return RunResult(rule_id, key, "busy")
    heartbeat = LeaseHeartbeat(db, rule_id, holder=holder, clock=clock, ttl=ttl)
    try:
        try:
            with heartbeat, db.transaction() as s:
                rule = s.get(AutomationRule, rule_id)
                state = s.get(AutomationState, rule_id)
                assert rule is not None and state is not None
                if not force and not is_due(rule, state, now):
                    return RunResult(rule_id, key, "not_due")
                run = RuleRun(
                    rule_id=rule.id,
                    rule_key=key,
                    rule_name=rule.name,
                    started_at=now,
                    holder=holder,
                    status="running",
                )
                s.add(run)
                s.flush()
                outcome = engine.execute(
                    s,
                    rule,
                    run,
                    now=now,
                    system=get_system_user(s),
                    cursor=state.cursor,
                    checkpoint=heartbeat.check,
                )
                heartbeat.check()
                _finish(run, outcome, now)
                state.last_run_at = now
                if rule.trigger in EVENT_TRIGGERS:
                    state.cursor = outcome.cursor or state.cursor
                else:
                    state.last_run_day = now.date()
                idle = rule.trigger in EVENT_TRIGGERS and not outcome.matched
                if idle and not outcome.errors:
                    s.delete(run)  # nothing new happened: keep the run log readable
                    return RunResult(rule_id, key, "idle")
                s.flush()
                return RunResult(
                    rule_id,
                    key,
                    run.status,
                    run_id=run.id,
                    matched=outcome.matched,
                    actions_taken=outcome.actions_taken,
                    summary=dict(outcome.summary),
                    errors=list(outcome.errors),
                )
        except Exception as exc:  # noqa: BLE001 - a failing rule is logged, others go on
            log.exception("automation rule %s failed", key)
            message = f"{type(exc).__name__}: {exc}"[:2000]
            with db.transaction() as s:
                rule = s.get(AutomationRule, rule_id)
                run = RuleRun(
                    rule_id=rule_id,
                    rule_key=key,
                    rule_name=rule.name if rule else "",
                    started_at=now,
                    finished_at=now,
                    holder=holder,
                    status="error",
                    errors=[message],
                )
                s.add(run)
                s.flush()
                return RunResult(rule_id, key, "error", run_id=run.id, errors=[message])
    finally:
        release_rule_lease(db, rule_id, holder=holder)


def prepare(db: Database, attempts: int = 3) -> None:
    """Create the built-in rules and the system user once, even when several schedulers
    start together (the loser of a race simply finds them made)."""
    for attempt in range(attempts):
        try:
            with db.transaction() as s:
                ensure_builtin_rules(s)
                get_system_user(s)
            return
        except IntegrityError:
            if attempt == attempts - 1:
                raise


def run_due(
    db: Database,
    *,
    now: datetime,
    holder: str | None = None,
    rules: list[str] | None = None,
    force: bool = False,
    deliver: bool = True,
    smtp: Any = None,
) -> list[RunResult]:
    """One scheduler pass: every enabled rule that is due (or the named ``rules``), then the
    e-mail queue. What ``crm automate run`` and the in-process scheduler call."""
    holder = holder or new_holder()
    prepare(db)
    with db.transaction() as s:
        stmt = select(AutomationRule).order_by(AutomationRule.id)
        candidates = []
        for rule in s.scalars(stmt):
            if rules and rule.key not in rules and str(rule.id) not in rules:
                continue
            if not rules and not rule.enabled:
                continue
            state = s.get(AutomationState, rule.id)
            if force or is_due(rule, state, now):
                candidates.append(rule.id)
    results = [run_rule(db, rid, now=now, holder=holder, force=force) for rid in candidates]
    if deliver:
        from crm_core.automation.email import deliver_pending

        deliver_pending(db, now=now, holder=holder, smtp=smtp)
    return results


class Scheduler:
    """Runs due rules every ``interval`` seconds in a background thread (the panel starts one
    per process; leases keep several processes from running a rule twice).

    ``CRM_SCHEDULER=off`` keeps the panel from starting one (when cron runs
    ``crm automate run`` instead); ``CRM_SCHEDULER_INTERVAL`` sets the seconds between passes.
    """

    def __init__(
        self, db: Database, *, clock: Clock = utcnow, interval: float = 60.0, smtp: Any = None
    ) -> None:
        self.db, self.clock, self.interval, self.smtp = db, clock, interval, smtp
        self.holder = new_holder()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_results: list[RunResult] = []

    def tick(self) -> list[RunResult]:
        """One pass now."""
        self.last_results = run_due(self.db, now=self.clock(), holder=self.holder, smtp=self.smtp)
        return self.last_results

    def _loop(self) -> None:
        # the first pass waits one interval: a process that starts and stops at once
        # (tests, a crash loop) never runs rules
        self._stop.wait(self.interval)
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the scheduler must survive a bad pass
                log.exception("automation scheduler pass failed")
            self._stop.wait(self.interval)

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="crm-automation", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def from_environment(db: Database) -> Scheduler | None:
    """The panel's scheduler as configured by ``CRM_SCHEDULER``/``CRM_SCHEDULER_INTERVAL``."""
    if os.environ.get("CRM_SCHEDULER", "on").lower() in ("off", "0", "false", "no"):
        return None
    interval = float(os.environ.get("CRM_SCHEDULER_INTERVAL") or 60)
    from crm_core.automation.email import SmtpConfig

    return Scheduler(db, interval=max(5.0, interval), smtp=SmtpConfig.from_settings())


def dry_run(
    db: Database, *, now: datetime, rules: list[str] | None = None, sample_size: int = 10
) -> list[engine.Preview]:
    """What the due rules would do now, as the system user; nothing is written."""
    out = []
    with db.session() as s:
        ensure_builtin_rules(s)
        system = get_system_user(s)
        for rule in s.scalars(select(AutomationRule).order_by(AutomationRule.id)):
            if rules and rule.key not in rules and str(rule.id) not in rules:
                continue
            if not rules and not rule.enabled:
                continue
            out.append(
                engine.preview(
                    s,
                    actor=system,
                    spec=engine.spec_of(rule),
                    rule_id=rule.id,
                    now=now,
                    sample_size=sample_size,
                )
            )
        s.rollback()
    return out
