"""What a rule is: trigger, conditions and actions as typed, validated values.

A rule is stored as plain JSON (``AutomationRule.trigger/conditions/actions``); this module
describes and checks that JSON, it does nothing. ``validate_rule`` turns editor input into a
``RuleSpec`` or raises ``InvalidInput`` naming the faulty part (``conditions[1].value``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from crm_core.errors import InvalidInput

#: When a rule runs: once a day, or on a customer record being created or updated (read from
#: the audit trail, so an event is never lost between runs).
TRIGGERS = ("daily", "customer.created", "customer.updated")
EVENT_TRIGGERS = frozenset({"customer.created", "customer.updated"})
#: What one event is about: a customer, one of its contracts or one of its tickets.
SUBJECTS = ("customer", "contract", "ticket")
#: How often a daily customer rule may act again on the same customer.
REPEATS = ("once", "daily", "monthly", "yearly")

#: Customer columns a condition may test (plus ``custom.<key>`` for custom fields).
CUSTOMER_FIELDS = frozenset(
    {
        "kind",
        "name",
        "company_name",
        "position",
        "industry",
        "size",
        "source",
        "phone",
        "email",
        "country",
        "province",
        "city",
        "district",
        "lifecycle_stage",
        "value_tier",
        "owner_id",
        "team_id",
        "birthday",
        "created_at",
        "last_contact_at",
        "external_id",
    }
)
DATE_FIELDS = frozenset({"birthday", "created_at", "last_contact_at"})

#: Operators on one field: ``{"field": "city", "op": "eq", "value": "杭州"}``.
FIELD_OPS = frozenset(
    {"eq", "ne", "in", "not_in", "contains", "empty", "not_empty", "before", "after"}
)
#: Operators that need no field. ``value`` is the number of days/months or a purpose.
SPECIAL_OPS: dict[str, str] = {
    "has_tag": "tag",
    "no_tag": "tag",
    "no_interaction_days": "int",
    "birthday_in_days": "int",
    "contract_ends_in_days": "int",
    "ticket_overdue": "none",
    "inactive_months": "int",
    "nothing_open": "none",
    "churn_risk": "none",
    "has_consent": "purpose",
    "retention_expired": "none",
    "previously_erased": "none",
    "field_changed": "field",
}
#: Operators evaluated in Python over a handful of changed records (event triggers only).
EVENT_ONLY_OPS = frozenset({"previously_erased", "field_changed"})

ACTION_TYPES = (
    "create_task",
    "add_tag",
    "remove_tag",
    "set_field",
    "notify",
    "send_email",
    "archive",
    "anonymise",
)
#: Who a task is for / who is notified: the customer's owner, the managers of its team, every
#: admin, the ticket's assignee, or one named user (``user:12``). E-mail may also go to the
#: customer itself (``customer``, which needs marketing consent).
#: Actions applied record by record through a customer service (not set-based; archiving
#: and anonymising go through bulk services and need no cap).
PER_RECORD_ACTIONS = frozenset({"set_field"})
PER_RECORD_LIMIT = 2000
RECIPIENTS = ("owner", "team_manager", "admins", "ticket_assignee")
_USER_RECIPIENT = re.compile(r"^user:(\d+)$")
_PURPOSE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_RELATIVE = re.compile(r"^(today|[+-]\d{1,5}d)$")


@dataclass(frozen=True)
class Condition:
    op: str
    field: str | None = None
    value: Any = None


@dataclass(frozen=True)
class Action:
    type: str
    title: str = ""
    body: str = ""
    to: str = "owner"
    due_in_days: float = 0
    tag: str = ""
    field: str = ""
    value: Any = None
    reason: str = ""
    level: str = "info"


@dataclass(frozen=True)
class RuleSpec:
    """A validated rule, ready to store or to run."""

    name: str
    trigger: str = "daily"
    subject: str = "customer"
    conditions: tuple[Condition, ...] = ()
    actions: tuple[Action, ...] = ()
    description: str = ""
    enabled: bool = True
    marketing: bool = False
    run_hour: int = 0
    repeat: str = "once"
    include_archived: bool = False
    max_per_run: int = 0
    weekdays: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def trigger_config(self) -> dict[str, Any]:
        config = {"repeat": self.repeat, "include_archived": self.include_archived}
        if self.max_per_run:
            config["max_per_run"] = self.max_per_run
        if self.weekdays:
            config["weekdays"] = list(self.weekdays)
        return {**config, **self.extra}

    @property
    def batch_limit(self) -> int | None:
        """How many events one run may take on: ``max_per_run``, or by default
        ``PER_RECORD_LIMIT`` for rules whose actions go through a service record by record
        (set a field). The rest stay matching and are taken on the next runs."""
        if self.max_per_run:
            return self.max_per_run
        if any(a.type in PER_RECORD_ACTIONS for a in self.actions):
            return PER_RECORD_LIMIT
        return None

    def conditions_json(self) -> list[dict[str, Any]]:
        out = []
        for c in self.conditions:
            item: dict[str, Any] = {"op": c.op}
            if c.field is not None:
                item["field"] = c.field
            if c.value is not None:
                item["value"] = c.value
            out.append(item)
        return out

    def actions_json(self) -> list[dict[str, Any]]:
        defaults = Action(type="")
        out = []
        for a in self.actions:
            item = {"type": a.type}
            for name in ("title", "body", "to", "due_in_days", "tag", "field", "value"):
                if getattr(a, name) != getattr(defaults, name):
                    item[name] = getattr(a, name)
            for name in ("reason", "level"):
                if getattr(a, name) != getattr(defaults, name):
                    item[name] = getattr(a, name)
            out.append(item)
        return out


def _fail(message: str, where: str) -> InvalidInput:
    return InvalidInput(message, field=where)


def _is_field(name: Any) -> bool:
    return isinstance(name, str) and (
        name in CUSTOMER_FIELDS or bool(re.match(r"^custom\.[a-z][a-z0-9_]{0,59}$", name))
    )


def check_recipient(to: str, where: str, *, email: bool = False) -> str:
    if to in RECIPIENTS or _USER_RECIPIENT.match(to or "") or (email and to == "customer"):
        return to
    allowed = ", ".join((*RECIPIENTS, "user:<id>", *(["customer"] if email else [])))
    raise _fail(f"'{to}' is not a recipient ({allowed})", where)


def recipient_user_id(to: str) -> int | None:
    match = _USER_RECIPIENT.match(to or "")
    return int(match.group(1)) if match else None


def parse_condition(raw: dict[str, Any], where: str, trigger: str) -> Condition:
    if not isinstance(raw, dict):
        raise _fail("must be an object with 'op'", where)
    op = raw.get("op")
    fld, value = raw.get("field"), raw.get("value")
    if op in FIELD_OPS:
        if not _is_field(fld):
            raise _fail(f"'{fld}' is not a customer field", f"{where}.field")
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise _fail("must be a non-empty list", f"{where}.value")
        elif op in ("before", "after"):
            if fld not in DATE_FIELDS and not str(fld).startswith("custom."):
                raise _fail(f"'{fld}' is not a date field", f"{where}.field")
            text = str(value or "")
            if not (_RELATIVE.match(text) or re.match(r"^\d{4}-\d{2}-\d{2}$", text)):
                raise _fail("must be YYYY-MM-DD, 'today', '-30d' or '+7d'", f"{where}.value")
        elif op in ("eq", "ne", "contains") and value in (None, ""):
            raise _fail("is required", f"{where}.value")
        return Condition(op=op, field=fld, value=value)
    if op not in SPECIAL_OPS:
        known = ", ".join(sorted(FIELD_OPS | set(SPECIAL_OPS)))
        raise _fail(f"'{op}' is not a condition ({known})", f"{where}.op")
    if op in EVENT_ONLY_OPS and trigger not in EVENT_TRIGGERS:
        raise _fail(f"'{op}' works only with a record trigger", f"{where}.op")
    kind = SPECIAL_OPS[op]
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 36500:
            raise _fail("must be a whole number of days or months", f"{where}.value")
    elif kind == "tag":
        if not isinstance(value, str) or not value.strip() or len(value) > 80:
            raise _fail("must be a tag name", f"{where}.value")
    elif kind == "purpose":
        if not isinstance(value, str) or not _PURPOSE.match(value):
            raise _fail("must be a purpose such as 'marketing'", f"{where}.value")
    elif kind == "field":
        if not _is_field(fld):
            raise _fail(f"'{fld}' is not a customer field", f"{where}.field")
        return Condition(op=op, field=fld, value=value)
    return Condition(op=op, value=value if kind != "none" else None)


def parse_action(raw: dict[str, Any], where: str, subject: str) -> Action:
    if not isinstance(raw, dict):
        raise _fail("must be an object with 'type'", where)
    kind = raw.get("type")
    if kind not in ACTION_TYPES:
        raise _fail(f"'{kind}' is not an action ({', '.join(ACTION_TYPES)})", f"{where}.type")
    unknown = set(raw) - {"type", *Action.__dataclass_fields__}
    if unknown:
        raise _fail(f"unknown setting(s): {', '.join(sorted(unknown))}", where)
    action = Action(**{k: v for k, v in raw.items()})
    title = (action.title or "").strip()
    if kind in ("create_task", "notify", "send_email") and not title:
        raise _fail("is required", f"{where}.title")
    if len(title) > 200:
        raise _fail("is longer than 200 characters", f"{where}.title")
    if kind in ("create_task", "notify", "send_email"):
        check_recipient(action.to, f"{where}.to", email=kind == "send_email")
        if action.to == "ticket_assignee" and subject != "ticket":
            raise _fail("only ticket rules can address the ticket's assignee", f"{where}.to")
    if kind == "create_task":
        due = action.due_in_days
        if isinstance(due, bool) or not isinstance(due, int | float) or not 0 <= due <= 3650:
            raise _fail("must be 0 to 3650 days", f"{where}.due_in_days")
    if kind in ("add_tag", "remove_tag") and not (action.tag or "").strip():
        raise _fail("is required", f"{where}.tag")
    if kind == "set_field" and not _is_field(action.field):
        raise _fail(f"'{action.field}' is not a customer field", f"{where}.field")
    if kind == "archive" and not (action.reason or "").strip():
        raise _fail("a reason is required to archive", f"{where}.reason")
    if kind in ("archive", "anonymise", "set_field", "add_tag", "remove_tag") and subject not in (
        "customer",
    ):
        raise _fail("this action works on customer rules only", f"{where}.type")
    if action.level not in ("info", "warning", "alert"):
        raise _fail("must be info, warning or alert", f"{where}.level")
    return Action(**{**raw, "title": title})


def validate_rule(data: dict[str, Any]) -> RuleSpec:
    """Check a rule's JSON (from the editor, the command line or a built-in definition)."""
    name = str(data.get("name") or "").strip()
    if not name or len(name) > 200:
        raise _fail("is required (at most 200 characters)", "name")
    trigger = data.get("trigger", "daily")
    if trigger not in TRIGGERS:
        raise _fail(f"'{trigger}' is not a trigger ({', '.join(TRIGGERS)})", "trigger")
    subject = data.get("subject", "customer")
    if subject not in SUBJECTS:
        raise _fail(f"'{subject}' is not a subject ({', '.join(SUBJECTS)})", "subject")
    if trigger in EVENT_TRIGGERS and subject != "customer":
        raise _fail("record triggers act on customers", "subject")
    config = dict(data.get("trigger_config") or {})
    repeat = config.pop("repeat", data.get("repeat", "once"))
    if repeat not in REPEATS:
        raise _fail(f"'{repeat}' is not one of {', '.join(REPEATS)}", "repeat")
    include_archived = bool(config.pop("include_archived", data.get("include_archived", False)))
    weekdays = config.pop("weekdays", [])
    if not isinstance(weekdays, list) or any(
        isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in weekdays
    ):
        raise _fail("must be a list of weekdays 0-6 (Monday is 0)", "weekdays")
    max_per_run = config.pop("max_per_run", 0)
    if isinstance(max_per_run, bool) or not isinstance(max_per_run, int) or max_per_run < 0:
        raise _fail("must be a whole number (0: no limit)", "max_per_run")
    run_hour = data.get("run_hour", 0)
    if not isinstance(run_hour, int) or not 0 <= run_hour <= 23:
        raise _fail("must be an hour 0-23 (UTC)", "run_hour")
    conditions = tuple(
        parse_condition(c, f"conditions[{i}]", trigger)
        for i, c in enumerate(data.get("conditions") or [])
    )
    actions = tuple(
        parse_action(a, f"actions[{i}]", subject) for i, a in enumerate(data.get("actions") or [])
    )
    if not actions:
        raise _fail("a rule needs at least one action", "actions")
    if subject == "contract" and not any(c.op == "contract_ends_in_days" for c in conditions):
        raise _fail("a contract rule needs a 'contract_ends_in_days' condition", "conditions")
    if subject == "ticket" and not any(c.op == "ticket_overdue" for c in conditions):
        raise _fail("a ticket rule needs a 'ticket_overdue' condition", "conditions")
    return RuleSpec(
        name=name,
        trigger=trigger,
        subject=subject,
        conditions=conditions,
        actions=actions,
        description=str(data.get("description") or ""),
        enabled=bool(data.get("enabled", True)),
        marketing=bool(data.get("marketing", False)),
        run_hour=run_hour,
        repeat=repeat,
        include_archived=include_archived,
        max_per_run=max_per_run,
        weekdays=tuple(sorted(set(weekdays))),
        extra=config,
    )
