"""The rule engine: select the matching records of a rule with one query, record one event per
new match (unique per rule and key, so a second run does nothing twice), then apply each action
to all new events at once (``INSERT … SELECT``), as the system user, with the audit trail
naming the rule.

Archiving and anonymising go through their shared bulk services (``crm_core.archiving``,
``crm_core.privacy``) over all new events at once; setting a field needs the customer
service's full validation and calls it per record inside a savepoint, so one failing record
never undoes the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    null,
    select,
)
from sqlalchemy.orm import Session, aliased

from crm_core import access, audit
from crm_core.automation import conditions as cnd
from crm_core.automation.spec import (
    EVENT_TRIGGERS,
    Action,
    Condition,
    RuleSpec,
    recipient_user_id,
    validate_rule,
)
from crm_core.models import (
    AuditEntry,
    AutomationRule,
    Contract,
    Customer,
    Notification,
    OutboundEmail,
    Role,
    RuleEvent,
    RuleRun,
    Tag,
    Task,
    Ticket,
    User,
    UTCDateTime,
    customer_tags,
)
from crm_core.models.customers import JSONType

#: Events read from the audit trail per run of a record-triggered rule.
EVENT_BATCH = 5000
#: ``INSERT … SELECT`` row counts are not reported on PostgreSQL unless asked for.
COUNT = {"preserve_rowcount": True}


@dataclass
class Outcome:
    """What one execution of a rule did."""

    matched: int = 0
    actions_taken: int = 0
    summary: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    cursor: int | None = None

    def count(self, name: str, n: int) -> None:
        self.summary[name] = self.summary.get(name, 0) + n
        self.actions_taken += n


def rowcount(result: Any) -> int:
    """Rows changed by an ``INSERT``/``UPDATE``/``DELETE`` result."""
    return int(getattr(result, "rowcount", 0) or 0)


def spec_of(rule: AutomationRule) -> RuleSpec:
    """The validated spec of a stored rule."""
    return validate_rule(
        {
            "name": rule.name,
            "trigger": rule.trigger,
            "subject": rule.subject,
            "trigger_config": dict(rule.trigger_config or {}),
            "conditions": list(rule.conditions or []),
            "actions": list(rule.actions or []),
            "enabled": rule.enabled,
            "marketing": rule.marketing,
            "run_hour": rule.run_hour,
        }
    )


def rule_source(rule: AutomationRule) -> str:
    """How the audit trail names the rule (``automation:birthday_reminder``)."""
    return f"automation:{rule.key or rule.id}"


# ---------------------------------------------------------------- matching


def _subject_columns(spec: RuleSpec) -> tuple[Any, Any]:
    if spec.subject == "contract":
        return Contract.id, Contract
    if spec.subject == "ticket":
        return Ticket.id, Ticket
    return cast(null(), Integer), None


def _event_key(session: Session, spec: RuleSpec, now: datetime) -> ColumnElement[str]:
    """The idempotence key of an event, computed in SQL for each matching row."""
    ops = {c.op for c in spec.conditions}
    if spec.subject == "contract":
        return cnd.concat("contract:", Contract.id)
    if spec.subject == "ticket":
        return cnd.concat("ticket:", Ticket.id)
    if "birthday_in_days" in ops:
        days = next(int(c.value) for c in spec.conditions if c.op == "birthday_in_days")
        year = (now.date() + timedelta(days=days)).year
        return cnd.concat("birthday:", Customer.id, f":{year}")
    if "retention_expired" in ops:
        return cnd.concat("retention:", Customer.id)
    if ops & {"no_interaction_days", "inactive_months"}:
        # one event per quiet spell: a new contact starts a new spell
        return cnd.concat("quiet:", Customer.id, ":", cnd.epoch_day(session, cnd.activity_anchor()))
    period = {"daily": "%Y-%m-%d", "monthly": "%Y-%m", "yearly": "%Y"}.get(spec.repeat)
    if period:
        return cnd.concat("c:", Customer.id, f":{now:{period}}")
    return cnd.concat("c:", Customer.id)


def match_conditions(
    session: Session, spec: RuleSpec, *, now: datetime
) -> list[ColumnElement[bool]]:
    """Every SQL condition of the rule, the live-record guard included."""
    conds: list[ColumnElement[bool]] = [Customer.merged_into_id.is_(None)]
    if not spec.include_archived:
        conds.append(Customer.archived_at.is_(None))
    conds.append(Customer.anonymised_at.is_(None))
    ctx: dict[str, Any] = {}
    for c in spec.conditions:
        conds.append(cnd.compile_condition(session, c, now=now, ctx=ctx))
    if spec.marketing or any(a.type == "send_email" and a.to == "customer" for a in spec.actions):
        from crm_core.privacy import consent_condition

        conds.append(consent_condition("marketing"))
    return conds


def match_select(
    session: Session, rule_id: int | None, spec: RuleSpec, *, now: datetime, new_only: bool = True
) -> Select[Any]:
    """``SELECT customer_id, subject_id, event_key`` of the rule's matches (new ones only by
    default: those without an event yet)."""
    subject_id, subject_model = _subject_columns(spec)
    key = _event_key(session, spec, now).label("event_key")
    stmt = select(
        Customer.id.label("customer_id"), subject_id.label("subject_id"), key
    ).select_from(Customer)
    if subject_model is not None:
        stmt = select(Customer.id.label("customer_id"), subject_id.label("subject_id"), key)
        stmt = stmt.select_from(subject_model).join(
            Customer, Customer.id == subject_model.customer_id
        )
    stmt = stmt.where(*match_conditions(session, spec, now=now))
    if new_only and rule_id is not None:
        done = exists().where(RuleEvent.rule_id == rule_id, RuleEvent.event_key == key.element)
        stmt = stmt.where(~done)
    return stmt


# ---------------------------------------------------------------- record triggers


def _changed_fields(entry: AuditEntry) -> dict[str, Any]:
    return {k: v for k, v in (entry.changes or {}).items() if isinstance(v, list) and len(v) == 2}


def _event_filter(session: Session, spec: RuleSpec, entries: list[AuditEntry]) -> list[AuditEntry]:
    """Event-only conditions over a batch of audit entries (a field changed to a value, the
    person was anonymised before), the latter in one look-up for the whole batch."""
    for c in spec.conditions:
        if c.op == "field_changed":
            kept = []
            for entry in entries:
                pair = _changed_fields(entry).get(c.field or "")
                if pair is None or (c.value is not None and pair[1] != c.value):
                    continue
                kept.append(entry)
            entries = kept
    if entries and any(c.op == "previously_erased" for c in spec.conditions):
        from crm_core.privacy import erased_customer_ids

        erased = erased_customer_ids(session, [int(e.entity_id or 0) for e in entries])
        entries = [e for e in entries if e.entity_id in erased]
    return entries


def pending_record_events(
    session: Session, rule: AutomationRule, spec: RuleSpec, *, now: datetime, cursor: int
) -> tuple[list[tuple[str, int]], int]:
    """New ``(event_key, customer_id)`` of a record-triggered rule since ``cursor`` (an audit
    entry id), and the new cursor."""
    action = "customer.create" if spec.trigger == "customer.created" else "customer.update"
    entries = list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.id > cursor, AuditEntry.action == action)
            .where(AuditEntry.entity_type == "customer")
            .order_by(AuditEntry.id)
            .limit(EVENT_BATCH)
        )
    )
    if not entries:
        return [], cursor
    new_cursor = entries[-1].id
    if len(entries) < EVENT_BATCH:
        # everything up to now has been seen; jump over unrelated entries too
        new_cursor = max(new_cursor, session.scalar(select(func.max(AuditEntry.id))) or 0)
    entries = [e for e in entries if e.source is None or not e.source.startswith("automation:")]
    entries = _event_filter(session, spec, [e for e in entries if e.entity_id is not None])
    if not entries:
        return [], new_cursor
    ids = sorted({int(e.entity_id) for e in entries if e.entity_id is not None})
    matching: set[int] = set()
    conds = match_conditions(session, spec, now=now)
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        matching.update(session.scalars(select(Customer.id).where(Customer.id.in_(chunk), *conds)))
    events = [(f"audit:{e.id}", int(e.entity_id)) for e in entries if e.entity_id in matching]
    if rule.id is not None and events:
        keys = [k for k, _ in events]
        seen = set(
            session.scalars(
                select(RuleEvent.event_key).where(
                    RuleEvent.rule_id == rule.id, RuleEvent.event_key.in_(keys)
                )
            )
        )
        events = [(k, c) for k, c in events if k not in seen]
    return events, new_cursor


# ---------------------------------------------------------------- actions


def _events(run_id: int) -> Any:
    return (
        select(RuleEvent.id, RuleEvent.customer_id, RuleEvent.subject_id)
        .where(RuleEvent.run_id == run_id)
        .subquery("ev")
    )


def _template(text: str) -> ColumnElement[str]:
    """A title with ``{name}`` replaced by the customer's name, in SQL."""
    parts = text.split("{name}")
    pieces: list[Any] = []
    for i, part in enumerate(parts):
        if i:
            pieces.append(Customer.name)
        if part:
            pieces.append(part)
    out: Any = None
    for piece in pieces or [""]:
        expr = literal(piece, String) if isinstance(piece, str) else piece
        out = expr if out is None else out.concat(expr)
    return func.substr(out, 1, 255)


def _name_params(session: Session) -> ColumnElement[Any]:
    """``{"name": <the customer's name>}`` as a JSON value built in SQL: the parameters of a
    notification title, rendered in each reader's language when read."""
    if session.get_bind().dialect.name == "postgresql":
        return func.jsonb_build_object(cast(literal("name"), String), Customer.name)
    return func.json_object("name", Customer.name)


def _fallback_admin(session: Session) -> int | None:
    return session.scalar(
        select(User.id).where(User.role == Role.ADMIN, User.active.is_(True)).order_by(User.id)
    )


def _active_user(user_id: Any) -> Any:
    return select(User.id).where(User.id == user_id, User.active.is_(True)).scalar_subquery()


def _assignee(session: Session, action: Action, ev: Any) -> Any:
    """SQL for the user a task is for; falls back to the first admin."""
    if action.to == "owner":
        who: Any = _active_user(Customer.owner_id)
    elif action.to == "team_manager":
        who = (
            select(User.id)
            .where(User.team_id == Customer.team_id, User.role == Role.MANAGER)
            .where(User.active.is_(True))
            .order_by(User.id)
            .limit(1)
            .scalar_subquery()
        )
    elif action.to == "ticket_assignee":
        who = _active_user(
            select(Ticket.assignee_id).where(Ticket.id == ev.c.subject_id).scalar_subquery()
        )
    elif action.to == "admins":
        who = literal(None, Integer)
    else:
        who = _active_user(literal(recipient_user_id(action.to)))
    fallback = _fallback_admin(session)
    return func.coalesce(who, literal(fallback, Integer)) if fallback else who


def _recipient_join(action: Action, ev: Any, users: Any) -> ColumnElement[bool]:
    """Join condition picking the recipients of a notification or e-mail; every recipient
    must be active and allowed to see the customer (``access.visible_to_users``)."""
    if action.to == "owner":
        who: ColumnElement[bool] = users.id == Customer.owner_id
    elif action.to == "team_manager":
        who = and_(users.role == Role.MANAGER, users.team_id == Customer.team_id)
    elif action.to == "ticket_assignee":
        who = users.id == (
            select(Ticket.assignee_id).where(Ticket.id == ev.c.subject_id).scalar_subquery()
        )
    elif action.to == "admins":
        who = users.role == Role.ADMIN
    else:
        who = users.id == recipient_user_id(action.to)
    return and_(who, users.active.is_(True), access.visible_to_users(users, Customer))


def _audit_from(
    session: Session,
    rows: Any,
    *,
    rule: AutomationRule,
    system: User,
    action: str,
    entity_type: str,
    now: datetime,
    changes: dict[str, Any],
) -> None:
    """One audit entry per row of ``rows`` (a select of entity ids), in one statement."""
    select_list = select(
        literal(now, UTCDateTime()),
        literal(system.id, Integer),
        literal(system.username, String),
        literal(action, String),
        literal(entity_type, String),
        rows.c.entity_id,
        literal(audit.jsonable(changes), JSONType),
        literal(rule.name, String),
        literal(rule_source(rule), String),
    ).select_from(rows)
    session.execute(
        insert(AuditEntry).from_select(
            [
                "at",
                "actor_id",
                "actor_name",
                "action",
                "entity_type",
                "entity_id",
                "changes",
                "detail",
                "source",
            ],
            select_list,
        )
    )


def _create_tasks(
    session: Session, rule: AutomationRule, action: Action, index: int, run: RuleRun, **ctx: Any
) -> int:
    now, system = ctx["now"], ctx["system"]
    ev = _events(run.id)
    source_key = cnd.concat(cnd.AUTO_TASK, ev.c.id, f":{index}")
    due = now + timedelta(days=float(action.due_in_days))
    rows = select(
        ev.c.customer_id,
        _assignee(session, action, ev),
        literal(system.id, Integer),
        _template(action.title),
        literal(action.body or None, String),
        literal(due, UTCDateTime()),
        source_key,
        literal(now, UTCDateTime()),
        literal(now, UTCDateTime()),
        literal(1, Integer),
    ).select_from(ev.join(Customer, Customer.id == ev.c.customer_id))
    columns = [
        "customer_id",
        "assignee_id",
        "created_by_id",
        "title",
        "notes",
        "due_at",
        "source_key",
        "created_at",
        "updated_at",
        "version",
    ]
    result = session.execute(insert(Task).from_select(columns, rows), execution_options=COUNT)
    created = (
        select(Task.id.label("entity_id"))
        .select_from(ev.join(Task, Task.source_key == source_key))
        .subquery()
    )
    _audit_from(
        session,
        select(created.c.entity_id).subquery(),
        rule=rule,
        system=system,
        action="task.create",
        entity_type="task",
        now=now,
        changes={"automation_rule": [None, rule.key or rule.id]},
    )
    return rowcount(result)


def _tag(session: Session, name: str) -> Tag:
    tag = session.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        tag = Tag(name=name)
        session.add(tag)
        session.flush()
    return tag


def _change_tags(
    session: Session, rule: AutomationRule, action: Action, index: int, run: RuleRun, **ctx: Any
) -> int:
    now, system = ctx["now"], ctx["system"]
    ev = _events(run.id)
    tag = _tag(session, action.tag.strip())
    has = exists().where(
        customer_tags.c.customer_id == ev.c.customer_id, customer_tags.c.tag_id == tag.id
    )
    targets = select(ev.c.customer_id.label("entity_id")).where(
        ~has if action.type == "add_tag" else has
    )
    targets_sq = targets.subquery()
    count = int(session.scalar(select(func.count()).select_from(targets_sq)) or 0)
    if not count:
        return 0
    if action.type == "add_tag":
        change = {"tags": [None, f"+{tag.name}"]}
    else:
        change = {"tags": [f"-{tag.name}", None]}
    # the audit rows first: afterwards the targets no longer match
    _audit_from(
        session,
        targets_sq,
        rule=rule,
        system=system,
        action="customer.update",
        entity_type="customer",
        now=now,
        changes=change,
    )
    if action.type == "add_tag":
        session.execute(
            insert(customer_tags).from_select(
                ["customer_id", "tag_id"],
                select(targets_sq.c.entity_id, literal(tag.id, Integer)),
            )
        )
    else:
        session.execute(
            delete(customer_tags).where(
                customer_tags.c.tag_id == tag.id,
                customer_tags.c.customer_id.in_(select(ev.c.customer_id)),
            )
        )
    return count


def _notify(
    session: Session, rule: AutomationRule, action: Action, index: int, run: RuleRun, **ctx: Any
) -> int:
    now = ctx["now"]
    ev = _events(run.id)
    users = aliased(User)
    rows = (
        select(
            users.id,
            ev.c.customer_id,
            literal(rule.id, Integer),
            ev.c.id,
            _template(action.title),
            literal(action.title[:255], String),
            _name_params(session),
            literal(action.body or None, String),
            literal(action.level, String),
            literal(now, UTCDateTime()),
        )
        .select_from(ev.join(Customer, Customer.id == ev.c.customer_id))
        .join(users, _recipient_join(action, ev, users))
        .where(~exists().where(Notification.event_id == ev.c.id, Notification.user_id == users.id))
    )
    columns = [
        "user_id",
        "customer_id",
        "rule_id",
        "event_id",
        "title",
        "title_key",
        "title_params",
        "body",
        "level",
        "created_at",
    ]
    stmt = insert(Notification).from_select(columns, rows)
    return rowcount(session.execute(stmt, execution_options=COUNT))


def _send_email(
    session: Session, rule: AutomationRule, action: Action, index: int, run: RuleRun, **ctx: Any
) -> int:
    """Queue e-mails (sent by ``automation.email.deliver_pending``, retried when it fails)."""
    now = ctx["now"]
    ev = _events(run.id)
    base = ev.join(Customer, Customer.id == ev.c.customer_id)
    common = (
        literal(rule.id, Integer),
        ev.c.id,
        ev.c.customer_id,
    )
    tail = (
        literal(action.title, String),
        literal(action.body or "", String),
        literal("pending", String),
        literal(0, Integer),
        literal(now, UTCDateTime()),
        literal(now, UTCDateTime()),
    )
    if action.to == "customer":
        rows = select(*common, Customer.email, *tail).select_from(base)
        rows = rows.where(Customer.email.is_not(None))
        to_addr: Any = Customer.email
    else:
        users = aliased(User)
        rows = select(*common, users.email, *tail).select_from(base)
        rows = rows.join(users, _recipient_join(action, ev, users)).where(users.email.is_not(None))
        to_addr = users.email
    rows = rows.where(
        ~exists().where(OutboundEmail.event_id == ev.c.id, OutboundEmail.to_addr == to_addr)
    )
    columns = [
        "rule_id",
        "event_id",
        "customer_id",
        "to_addr",
        "subject",
        "body",
        "status",
        "attempts",
        "next_attempt_at",
        "created_at",
    ]
    stmt = insert(OutboundEmail).from_select(columns, rows)
    return rowcount(session.execute(stmt, execution_options=COUNT))


def _event_customer_ids(session: Session, run: RuleRun) -> list[int]:
    return [
        int(i)
        for i in session.scalars(
            select(RuleEvent.customer_id).where(RuleEvent.run_id == run.id).order_by(RuleEvent.id)
        )
        if i is not None
    ]


def _archive(
    session: Session, rule: AutomationRule, action: Action, index: int, run: RuleRun, **ctx: Any
) -> int:
    """Archive every matched customer through the shared bulk service (a few statements per
    chunk, one audit entry per record naming the rule)."""
    from crm_core.archiving import archive_customers

    done = archive_customers(
        session,
        actor=ctx["system"],
        customer_ids=_event_customer_ids(session, run),
        reason=action.reason or f"archived by the rule {rule.name}",
        source=rule_source(rule),
        detail=rule.name,
        now=ctx["now"],
    )
    return len(done)


def _set_field(
    session: Session, rule: AutomationRule, action: Action, index: int, run: RuleRun, **ctx: Any
) -> int:
    """Set a field through the customer service (its validation and side effects), one
    savepoint per record, so one failing record never undoes the others."""
    from crm_core import customers

    system, outcome = ctx["system"], ctx["outcome"]
    done = 0
    for cid in _event_customer_ids(session, run):
        try:
            with session.begin_nested():
                record = session.get(Customer, cid)
                if record is None:
                    continue
                field_name = action.field
                if field_name.startswith("custom."):
                    changes: dict[str, Any] = {
                        "custom": {field_name.removeprefix("custom."): action.value}
                    }
                else:
                    changes = {field_name: action.value}
                customers.update_customer(
                    session,
                    actor=system,
                    customer_id=cid,
                    expected_version=record.version,
                    changes=changes,
                    source=rule_source(rule),
                )
            done += 1
        except Exception as exc:  # noqa: BLE001 - one record's failure is reported, not fatal
            outcome.errors.append(f"customer {cid}: {action.type}: {exc}")
    return done


def _anonymise(
    session: Session, rule: AutomationRule, action: Action, index: int, run: RuleRun, **ctx: Any
) -> int:
    from crm_core.privacy import anonymise_customers

    ids = _event_customer_ids(session, run)
    done = 0
    for i in range(0, len(ids), 500):
        done += anonymise_customers(
            session,
            actor=ctx["system"],
            customer_ids=ids[i : i + 500],
            reason=action.reason or f"retention policy expired ({rule.name})",
            now=ctx["now"],
            source=rule_source(rule),
        )
    return done


ACTIONS = {
    "create_task": _create_tasks,
    "add_tag": _change_tags,
    "remove_tag": _change_tags,
    "notify": _notify,
    "send_email": _send_email,
    "archive": _archive,
    "set_field": _set_field,
    "anonymise": _anonymise,
}


# ---------------------------------------------------------------- execution


def record_events(
    session: Session,
    rule: AutomationRule,
    spec: RuleSpec,
    run: RuleRun,
    *,
    now: datetime,
    cursor: int,
    outcome: Outcome,
) -> None:
    """Insert this run's new events (set-based for daily rules)."""
    if spec.trigger in EVENT_TRIGGERS:
        events, outcome.cursor = pending_record_events(session, rule, spec, now=now, cursor=cursor)
        if events:
            session.execute(
                insert(RuleEvent),
                [
                    {
                        "rule_id": rule.id,
                        "event_key": key,
                        "customer_id": cid,
                        "run_id": run.id,
                        "created_at": now,
                    }
                    for key, cid in events
                ],
            )
        outcome.matched = len(events)
        return
    stmt = match_select(session, rule.id, spec, now=now)
    limit = spec.batch_limit
    if limit:
        stmt = stmt.order_by(Customer.id).limit(limit)
    matches = stmt.subquery("m")
    rows = select(
        literal(rule.id, Integer),
        matches.c.event_key,
        matches.c.customer_id,
        matches.c.subject_id,
        literal(run.id, Integer),
        literal(now, UTCDateTime()),
    )
    result = session.execute(
        insert(RuleEvent).from_select(
            ["rule_id", "event_key", "customer_id", "subject_id", "run_id", "created_at"], rows
        ),
        execution_options=COUNT,
    )
    outcome.matched = rowcount(result)
    if limit and outcome.matched >= limit:
        outcome.summary["limit_reached"] = limit  # more matches wait for the next run


def execute(
    session: Session,
    rule: AutomationRule,
    run: RuleRun,
    *,
    now: datetime,
    system: User,
    cursor: int = 0,
    checkpoint: Callable[[], None] | None = None,
) -> Outcome:
    """Run ``rule`` once inside the caller's transaction: events, then every action.
    ``checkpoint`` is called between the steps (the scheduler's lease check: it raises when
    the run must stop)."""
    spec = spec_of(rule)
    outcome = Outcome(cursor=cursor)
    record_events(session, rule, spec, run, now=now, cursor=cursor, outcome=outcome)
    if not outcome.matched:
        return outcome
    for index, action in enumerate(spec.actions):
        if checkpoint is not None:
            checkpoint()
        handler = ACTIONS[action.type]
        n = handler(session, rule, action, index, run, now=now, system=system, outcome=outcome)
        outcome.count(action.type, n)
    return outcome


@dataclass(frozen=True)
class Preview:
    """What a rule would do now, without doing it."""

    rule: str
    matched: int
    sample: list[dict[str, Any]]
    actions: list[str]


def describe_action(action: Action) -> str:
    if action.type == "create_task":
        return f"create task '{action.title}' for {action.to}, due in {action.due_in_days} day(s)"
    if action.type in ("add_tag", "remove_tag"):
        return f"{action.type.replace('_', ' ')} '{action.tag}'"
    if action.type == "notify":
        return f"notify {action.to}: '{action.title}'"
    if action.type == "send_email":
        return f"e-mail {action.to}: '{action.title}'"
    if action.type == "archive":
        return f"archive (reason: {action.reason})"
    if action.type == "set_field":
        return f"set {action.field} to {action.value!r}"
    return "anonymise personal data"


def preview(
    session: Session,
    *,
    actor: Any,
    spec: RuleSpec,
    rule_id: int | None = None,
    now: datetime,
    sample_size: int = 20,
) -> Preview:
    """Dry run / editor preview: how many records would match now (new events only) and a
    sample of them shaped for the actor. Nothing is written."""
    from crm_core.customers import to_out

    if spec.trigger in EVENT_TRIGGERS:
        conds = match_conditions(session, spec, now=now)
        stmt = select(Customer.id.label("customer_id")).where(*conds)
        stmt = stmt.where(access.visible_customers(actor))
        total = int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)
        ids = list(session.scalars(stmt.order_by(Customer.id.desc()).limit(sample_size)))
    else:
        matches = match_select(session, rule_id, spec, now=now)
        sub = matches.where(access.visible_customers(actor)).subquery()
        total = int(session.scalar(select(func.count()).select_from(sub)) or 0)
        ids = list(session.scalars(select(sub.c.customer_id).limit(sample_size)))
    customers = {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(ids)))}
    sample = [
        to_out(actor, customers[i]).model_dump(
            include={"id", "name", "owner_id", "lifecycle_stage"}
        )
        for i in ids
        if i in customers
    ]
    return Preview(
        rule=spec.name,
        matched=total,
        sample=sample,
        actions=[describe_action(a) for a in spec.actions],
    )


__all__ = [
    "Condition",
    "Outcome",
    "Preview",
    "execute",
    "match_select",
    "preview",
    "rule_source",
    "spec_of",
]
