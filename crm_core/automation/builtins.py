"""The built-in rules: switchable and editable like any other, created on first use."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.automation.spec import validate_rule
from crm_core.models import AuditEntry, AutomationRule, AutomationState

BUILTIN_RULES: dict[str, dict[str, Any]] = {
    "welcome_followup": {
        "name": "Welcome follow-up for a new customer",
        "description": "A task for the owner to get in touch the day after a customer is added.",
        "trigger": "customer.created",
        "conditions": [],
        "actions": [
            {
                "type": "create_task",
                "title": "Welcome call: {name}",
                "to": "owner",
                "due_in_days": 1,
            }
        ],
    },
    "followup_reminder": {
        "name": "Follow-up when nobody has been in touch",
        "description": "A task for the owner when a customer has had no interaction for 30 days.",
        "conditions": [
            {"op": "no_interaction_days", "value": 30},
            {"op": "in", "field": "lifecycle_stage", "value": ["prospect", "customer", "vip"]},
            {"op": "not_empty", "field": "owner_id"},
        ],
        "actions": [
            {
                "type": "create_task",
                "title": "Follow up: no contact with {name} for 30 days",
                "to": "owner",
                "due_in_days": 2,
            }
        ],
    },
    "birthday_reminder": {
        "name": "Birthday reminder",
        "description": "Remind the owner 7 days before a customer's birthday.",
        "conditions": [{"op": "birthday_in_days", "value": 7}],
        "actions": [
            {"type": "create_task", "title": "Birthday of {name} in 7 days", "to": "owner"},
            {"type": "notify", "title": "Birthday of {name} in 7 days", "to": "owner"},
        ],
    },
    "contract_expiry_30": {
        "name": "Contract ends within 30 days",
        "description": "Start the renewal a month before a contract ends.",
        "subject": "contract",
        "conditions": [{"op": "contract_ends_in_days", "value": 30}],
        "actions": [
            {
                "type": "create_task",
                "title": "Renewal: a contract of {name} ends within 30 days",
                "to": "owner",
                "due_in_days": 7,
            },
            {"type": "notify", "title": "A contract of {name} ends within 30 days", "to": "owner"},
        ],
    },
    "contract_expiry_7": {
        "name": "Contract ends within 7 days",
        "description": "A second, urgent reminder a week before a contract ends.",
        "subject": "contract",
        "conditions": [{"op": "contract_ends_in_days", "value": 7}],
        "actions": [
            {
                "type": "create_task",
                "title": "Urgent renewal: a contract of {name} ends within 7 days",
                "to": "owner",
                "due_in_days": 1,
            },
            {
                "type": "notify",
                "title": "A contract of {name} ends within 7 days",
                "to": "owner",
                "level": "warning",
            },
        ],
    },
    "ticket_escalation": {
        "name": "Escalate tickets open past their due time",
        "description": "The team manager gets a task; manager and assignee are notified.",
        "subject": "ticket",
        "conditions": [{"op": "ticket_overdue"}],
        "actions": [
            {
                "type": "create_task",
                "title": "Escalation: overdue ticket of {name}",
                "to": "team_manager",
            },
            {
                "type": "notify",
                "title": "Overdue ticket of {name}",
                "to": "team_manager",
                "level": "alert",
            },
            {
                "type": "notify",
                "title": "Overdue ticket of {name}",
                "to": "ticket_assignee",
                "level": "alert",
            },
        ],
    },
    "churn_risk_alert": {
        "name": "Churn-risk alert",
        "description": "Tell the owner once a month about customers the churn report lists "
        "with two or more risk reasons (checked on Mondays).",
        "trigger_config": {"repeat": "monthly", "weekdays": [0]},
        "conditions": [{"op": "churn_risk"}],
        "actions": [
            {
                "type": "notify",
                "title": "Churn risk: {name}",
                "to": "owner",
                "level": "warning",
            }
        ],
    },
    "auto_archive": {
        "name": "Archive customers gone quiet",
        "description": "Archive customers with no activity for 18 months and nothing open.",
        "enabled": False,
        "conditions": [{"op": "inactive_months", "value": 18}, {"op": "nothing_open"}],
        "actions": [
            {"type": "archive", "reason": "No activity for 18 months and nothing open (auto)"}
        ],
    },
    "retention": {
        "name": "Anonymise when retention ends",
        "description": "Anonymise the personal data of customers whose retention policies "
        "have all expired (see the retention settings).",
        "trigger_config": {"include_archived": True},
        "conditions": [{"op": "retention_expired"}, {"op": "nothing_open"}],
        "actions": [{"type": "anonymise", "reason": "Retention period ended"}],
    },
    "reimport_flag": {
        "name": "Flag a re-imported anonymised person",
        "description": "Tag and report a new customer whose phone or e-mail belonged to a "
        "person anonymised earlier.",
        "trigger": "customer.created",
        "conditions": [{"op": "previously_erased"}],
        "actions": [
            {"type": "add_tag", "tag": "previously-anonymised"},
            {
                "type": "notify",
                "title": "A previously anonymised person was added again: {name}",
                "to": "admins",
                "level": "warning",
            },
        ],
    },
}


def ensure_builtin_rules(session: Session) -> list[AutomationRule]:
    """Create the built-in rules that are missing (existing ones keep their edits)."""
    existing = {
        r.key: r
        for r in session.scalars(
            select(AutomationRule).where(AutomationRule.key.in_(list(BUILTIN_RULES)))
        )
    }
    cursor = session.scalar(select(func.max(AuditEntry.id))) or 0
    for key, data in BUILTIN_RULES.items():
        if key in existing:
            continue
        spec = validate_rule(data)
        rule = AutomationRule(
            key=key,
            name=spec.name,
            description=spec.description,
            trigger=spec.trigger,
            trigger_config=spec.trigger_config(),
            subject=spec.subject,
            conditions=spec.conditions_json(),
            actions=spec.actions_json(),
            enabled=spec.enabled,
            builtin=True,
            marketing=spec.marketing,
            run_hour=spec.run_hour,
        )
        session.add(rule)
        session.flush()
        # record triggers start from now: history before the rule existed is not replayed
        session.add(AutomationState(rule_id=rule.id, cursor=cursor))
        existing[key] = rule
    session.flush()
    return [existing[k] for k in BUILTIN_RULES]
