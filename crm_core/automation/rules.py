"""Rule management (admins), the run log and the notification bell."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from crm_core import access, audit
from crm_core.access import Actor, require
from crm_core.automation.builtins import ensure_builtin_rules
from crm_core.automation.engine import Preview, preview, rowcount, spec_of
from crm_core.automation.spec import EVENT_TRIGGERS, validate_rule
from crm_core.errors import ConflictError, NotFound
from crm_core.i18n import translator
from crm_core.models import (
    AuditEntry,
    AutomationRule,
    AutomationState,
    Customer,
    Notification,
    RuleRun,
    utcnow,
)

EDITABLE: tuple[str, ...] = ("name", "description", "trigger", "subject", "trigger_config")
EDITABLE += ("conditions", "actions", "enabled", "marketing", "run_hour")


def rule_dict(rule: AutomationRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "key": rule.key,
        "name": rule.name,
        "description": rule.description,
        "trigger": rule.trigger,
        "trigger_config": dict(rule.trigger_config or {}),
        "subject": rule.subject,
        "conditions": list(rule.conditions or []),
        "actions": list(rule.actions or []),
        "enabled": rule.enabled,
        "builtin": rule.builtin,
        "marketing": rule.marketing,
        "run_hour": rule.run_hour,
        "version": rule.version,
    }


def list_rules(session: Session, *, actor: Actor) -> list[AutomationRule]:
    """Every rule (built-ins first created when missing)."""
    require(actor, "automation.manage")
    ensure_builtin_rules(session)
    return list(session.scalars(select(AutomationRule).order_by(AutomationRule.id)))


def get_rule(session: Session, *, actor: Actor, rule: int | str) -> AutomationRule:
    """A rule by id or by built-in key."""
    require(actor, "automation.manage")
    ensure_builtin_rules(session)
    if isinstance(rule, int) or str(rule).isdigit():
        found = session.get(AutomationRule, int(rule))
    else:
        found = session.scalar(select(AutomationRule).where(AutomationRule.key == rule))
    if found is None:
        raise NotFound(f"rule {rule} does not exist")
    return found


def _values(data: Mapping[str, Any]) -> dict[str, Any]:
    spec = validate_rule(dict(data))
    return {
        "name": spec.name,
        "description": spec.description,
        "trigger": spec.trigger,
        "subject": spec.subject,
        "trigger_config": spec.trigger_config(),
        "conditions": spec.conditions_json(),
        "actions": spec.actions_json(),
        "enabled": spec.enabled,
        "marketing": spec.marketing,
        "run_hour": spec.run_hour,
    }


def create_rule(session: Session, *, actor: Actor, data: Mapping[str, Any]) -> AutomationRule:
    """Add a rule from editor input (validated; errors name the faulty part)."""
    require(actor, "automation.manage")
    values = _values(data)
    rule = AutomationRule(**values, builtin=False, created_by_id=actor.id)
    session.add(rule)
    session.flush()
    cursor = session.scalar(select(func.max(AuditEntry.id))) or 0
    session.add(AutomationState(rule_id=rule.id, cursor=cursor))
    audit.record(
        session,
        actor=actor,
        action="automation.rule_create",
        entity_type="automation_rule",
        entity_id=rule.id,
        changes=audit.diff({}, values),
    )
    session.flush()
    return rule


def update_rule(
    session: Session,
    *,
    actor: Actor,
    rule_id: int,
    expected_version: int,
    changes: Mapping[str, Any],
) -> AutomationRule:
    """Edit a rule (built-ins too); a stale version raises ``ConflictError``."""
    rule = get_rule(session, actor=actor, rule=rule_id)
    if rule.version != expected_version:
        raise ConflictError(
            f"rule {rule_id} was changed by someone else; reload it",
            current_version=rule.version,
        )
    before = rule_dict(rule)
    merged = {k: before[k] for k in EDITABLE} | {k: v for k, v in changes.items() if k in EDITABLE}
    values = _values(merged)
    was_event, now_event = rule.trigger in EVENT_TRIGGERS, values["trigger"] in EVENT_TRIGGERS
    for key, value in values.items():
        setattr(rule, key, value)
    if now_event and (not was_event or (values["enabled"] and not before["enabled"])):
        # a record trigger (re)starts from now, it does not replay history
        state = session.get(AutomationState, rule.id)
        cursor = session.scalar(select(func.max(AuditEntry.id))) or 0
        if state is None:
            session.add(AutomationState(rule_id=rule.id, cursor=cursor))
        else:
            state.cursor = cursor
    session.flush()
    changed = audit.diff({k: before[k] for k in values}, values)
    if changed:
        audit.record(
            session,
            actor=actor,
            action="automation.rule_update",
            entity_type="automation_rule",
            entity_id=rule.id,
            changes=changed,
        )
    return rule


def set_enabled(session: Session, *, actor: Actor, rule_id: int, enabled: bool) -> AutomationRule:
    """Switch a rule on or off."""
    rule = get_rule(session, actor=actor, rule=rule_id)
    return update_rule(
        session,
        actor=actor,
        rule_id=rule.id,
        expected_version=rule.version,
        changes={"enabled": enabled},
    )


def preview_rule(
    session: Session,
    *,
    actor: Actor,
    data: Mapping[str, Any] | None = None,
    rule_id: int | None = None,
    now: datetime | None = None,
    sample_size: int = 20,
) -> Preview:
    """What a stored rule, or a rule being edited (``data``), would act on now."""
    require(actor, "automation.manage")
    if data is not None:
        spec = validate_rule(dict(data))
    else:
        if rule_id is None:
            raise NotFound("no rule given")
        spec = spec_of(get_rule(session, actor=actor, rule=rule_id))
    return preview(
        session,
        actor=actor,
        spec=spec,
        rule_id=rule_id,
        now=now or utcnow(),
        sample_size=sample_size,
    )


def list_runs(
    session: Session, *, actor: Actor, rule_id: int | None = None, limit: int = 100
) -> list[RuleRun]:
    """The run log, newest first."""
    require(actor, "automation.manage")
    stmt = select(RuleRun)
    if rule_id is not None:
        stmt = stmt.where(RuleRun.rule_id == rule_id)
    return list(session.scalars(stmt.order_by(RuleRun.id.desc()).limit(limit)))


# ---------------------------------------------------------------- notifications


def _visible(actor: Actor) -> Any:
    """Notifications about customers the actor may still see (or about no customer)."""
    visible = select(Customer.id).where(access.visible_customers(actor))
    return or_(Notification.customer_id.is_(None), Notification.customer_id.in_(visible))


def list_notifications(
    session: Session, *, actor: Actor, unread_only: bool = False, limit: int = 50
) -> list[Notification]:
    """The actor's notifications, newest first."""
    stmt = select(Notification).where(Notification.user_id == actor.id, _visible(actor))
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return list(session.scalars(stmt.order_by(Notification.id.desc()).limit(limit)))


def notification_title(notification: Notification, locale: str | None) -> str:
    """The title in ``locale`` (``en`` or ``zh``): its message key translated with the
    ``automation`` catalogue and its parameters filled in. A title without a key (written
    before keys were kept, or anonymised) is shown as stored; a key without a translation
    (a rule an admin wrote) in the words the admin used."""
    if not notification.title_key:
        return notification.title
    text = translator(locale, "automation")(notification.title_key)
    for name, value in (notification.title_params or {}).items():
        text = text.replace("{" + str(name) + "}", "" if value is None else str(value))
    return text


def unread_count(session: Session, *, actor: Actor) -> int:
    stmt = select(func.count()).where(
        Notification.user_id == actor.id, Notification.read_at.is_(None), _visible(actor)
    )
    return int(session.scalar(stmt) or 0)


def mark_read(
    session: Session,
    *,
    actor: Actor,
    notification_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """Mark one notification (or all of the actor's) as read; returns how many changed."""
    stmt = update(Notification).where(
        Notification.user_id == actor.id, Notification.read_at.is_(None)
    )
    if notification_id is not None:
        stmt = stmt.where(Notification.id == notification_id)
    result = session.execute(stmt.values(read_at=now or utcnow()))
    return rowcount(result)
