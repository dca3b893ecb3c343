"""Automation: rules (trigger, conditions, actions), built-in reminders, the scheduler with its
database lease, e-mail with retries, notifications and the run log.

    from crm_core.automation import run_due
    run_due(db, now=utcnow())          # what `crm automate run` does
"""

from crm_core.automation.builtins import BUILTIN_RULES, ensure_builtin_rules
from crm_core.automation.email import DeliveryReport, SmtpConfig, deliver_pending
from crm_core.automation.engine import Preview, preview, spec_of
from crm_core.automation.rules import (
    create_rule,
    get_rule,
    list_notifications,
    list_rules,
    list_runs,
    mark_read,
    notification_title,
    preview_rule,
    rule_dict,
    set_enabled,
    unread_count,
    update_rule,
)
from crm_core.automation.scheduler import RunResult, Scheduler, dry_run, run_due, run_rule
from crm_core.automation.spec import RuleSpec, validate_rule

__all__ = [
    "BUILTIN_RULES",
    "DeliveryReport",
    "Preview",
    "RuleSpec",
    "RunResult",
    "Scheduler",
    "SmtpConfig",
    "create_rule",
    "deliver_pending",
    "dry_run",
    "ensure_builtin_rules",
    "get_rule",
    "list_notifications",
    "list_rules",
    "list_runs",
    "mark_read",
    "notification_title",
    "preview",
    "preview_rule",
    "rule_dict",
    "run_due",
    "run_rule",
    "set_enabled",
    "spec_of",
    "unread_count",
    "update_rule",
    "validate_rule",
]
