"""Automation faces: rule list and editor with a preview of matching records, the run log,
the notification list behind the bell, retention settings and a customer's consent ledger.

Pages only call ``crm_core.automation`` and ``crm_core.privacy``; text is in the
``automation`` catalogue.
"""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui

from app.frame import PageContext, panel_page
from crm_core import automation as auto
from crm_core import privacy
from crm_core.automation.spec import TRIGGERS
from crm_core.errors import InvalidInput
from crm_core.i18n import translator

DOMAIN = "automation"
#: Unread notifications listed in the bell's menu.
BELL_ITEMS = 5


def _t(ctx: PageContext) -> Any:
    return translator(ctx.locale, DOMAIN)


@panel_page(
    "/automation", title="Automation", icon="bolt", permission="automation.manage", group="Admin"
)
def rules_page(ctx: PageContext) -> None:
    _ = _t(ctx)
    rules = ctx.run(lambda s, actor: [auto.rule_dict(r) for r in auto.list_rules(s, actor=actor)])
    if rules is None:
        return
    editor_box = ui.column().classes("w-full")

    def switch(rule: dict[str, Any], enabled: bool) -> None:
        ctx.run(
            lambda s, actor: auto.set_enabled(s, actor=actor, rule_id=rule["id"], enabled=enabled),
            ok=_("Rule switched on.") if enabled else _("Rule switched off."),
        )

    with ui.card().classes("w-full").mark("rule-list"):
        ui.label(_("Rules")).classes("text-lg")
        for rule in rules:
            marker = rule["key"] or str(rule["id"])
            with ui.row().classes("w-full items-center gap-2").mark(f"rule-{marker}"):
                ui.switch(
                    value=rule["enabled"],
                    on_change=lambda e, rule=rule: switch(rule, bool(e.value)),
                ).mark(f"rule-{marker}-enabled")
                with ui.column().classes("gap-0 grow"):
                    ui.label(_(rule["name"])).classes("font-medium")
                    if rule["description"]:
                        ui.label(_(rule["description"])).classes("text-sm text-grey-7")
                ui.label(_(rule["trigger"])).classes("text-sm text-grey-8 crm-hide-phone")
                ui.button(
                    _("Edit"), icon="edit", on_click=lambda rule=rule: open_editor(rule)
                ).props("flat dense").mark(f"rule-{marker}-edit")
        ui.button(_("New rule"), icon="add", on_click=lambda: open_editor(None)).props(
            "outline"
        ).mark("rule-new")

    def open_editor(rule: dict[str, Any] | None) -> None:
        editor_box.clear()
        with editor_box:
            _editor(ctx, rule)

    with ui.row().classes("gap-4"):
        ui.link(_("Run log"), "/automation/runs").mark("link-runs")
        ui.link(_("Retention and consent"), "/automation/retention").mark("link-retention")


def _editor(ctx: PageContext, rule: dict[str, Any] | None) -> None:
    _ = _t(ctx)
    data = rule or {
        "name": "",
        "trigger": "daily",
        "subject": "customer",
        "conditions": [],
        "actions": [{"type": "create_task", "title": "", "to": "owner", "due_in_days": 1}],
        "trigger_config": {},
        "enabled": True,
    }
    with ui.card().classes("w-full").mark("rule-editor"):
        ui.label(_("Edit rule") if rule else _("New rule")).classes("text-lg")
        name = ui.input(_("Name"), value=data["name"]).props("outlined dense").mark("rule-name")
        trigger = (
            ui.select({t: _(t) for t in TRIGGERS}, value=data["trigger"], label=_("Trigger"))
            .props("outlined dense")
            .mark("rule-trigger")
        )
        subject = (
            ui.select(
                {s: _(s) for s in ("customer", "contract", "ticket")},
                value=data["subject"],
                label=_("About"),
            )
            .props("outlined dense")
            .mark("rule-subject")
        )
        conditions = (
            ui.textarea(
                _("Conditions (JSON)"),
                value=json.dumps(data["conditions"], indent=1, ensure_ascii=False),
            )
            .props("outlined")
            .classes("w-full font-mono")
            .mark("rule-conditions")
        )
        actions = (
            ui.textarea(
                _("Actions (JSON)"), value=json.dumps(data["actions"], indent=1, ensure_ascii=False)
            )
            .props("outlined")
            .classes("w-full font-mono")
            .mark("rule-actions")
        )
        error = ui.label("").classes("text-negative text-sm").mark("rule-error")
        result = ui.column().classes("w-full").mark("rule-preview")

        def collect() -> dict[str, Any] | None:
            try:
                conds = json.loads(conditions.value or "[]")
                acts = json.loads(actions.value or "[]")
            except json.JSONDecodeError as exc:
                error.set_text(_("Not valid JSON: {error}", error=str(exc)))
                return None
            error.set_text("")
            return {
                "name": name.value,
                "trigger": trigger.value,
                "subject": subject.value,
                "conditions": conds,
                "actions": acts,
                "trigger_config": data.get("trigger_config") or {},
                "enabled": data.get("enabled", True),
            }

        def show_error(exc: InvalidInput) -> None:
            error.set_text(
                f"{exc.field}: {exc.message.split(': ', 1)[-1]}" if exc.field else exc.message
            )

        def do_preview() -> None:
            values = collect()
            if values is None:
                return
            found = ctx.run(
                lambda s, actor: auto.preview_rule(s, actor=actor, data=values),
                on_invalid=show_error,
                notify_errors=False,
            )
            result.clear()
            if found is None:
                return
            with result:
                ui.label(_("{count} record(s) would match now.", count=found.matched)).mark(
                    "preview-count"
                )
                for line in found.actions:
                    ui.label(_("Would {action}", action=line)).classes("text-sm text-grey-8")
                for item in found.sample:
                    ui.link(f"#{item['id']} {item['name'] or ''}", f"/customers/{item['id']}")

        def save() -> None:
            values = collect()
            if values is None:
                return
            if rule is None:
                saved = ctx.run(
                    lambda s, actor: auto.create_rule(s, actor=actor, data=values).id,
                    ok=_("Rule saved."),
                    on_invalid=show_error,
                    notify_errors=False,
                )
            else:
                saved = ctx.run(
                    lambda s, actor: (
                        auto.update_rule(
                            s,
                            actor=actor,
                            rule_id=rule["id"],
                            expected_version=rule["version"],
                            changes=values,
                        ).id
                    ),
                    ok=_("Rule saved."),
                    on_invalid=show_error,
                )
            if saved is not None:
                ui.navigate.reload()

        with ui.row().classes("gap-2"):
            ui.button(_("Preview"), icon="visibility", on_click=do_preview).props("outline").mark(
                "rule-preview-button"
            )
            ui.button(_("Save"), icon="save", on_click=save).props("unelevated").mark("rule-save")


@panel_page(
    "/automation/runs",
    title="Run log",
    icon="history",
    permission="automation.manage",
    group="Admin",
    menu=False,
)
def runs_page(ctx: PageContext) -> None:
    _ = _t(ctx)
    runs = ctx.run(
        lambda s, actor: [
            {
                "id": r.id,
                "when": ctx.dt(r.started_at),
                "rule": _(r.rule_name),
                "status": _(r.status),
                "matched": r.matched,
                "actions": r.actions_taken,
                "summary": ", ".join(f"{k} {v}" for k, v in sorted((r.summary or {}).items())),
                "errors": "; ".join(r.errors or [])[:300],
            }
            for r in auto.list_runs(s, actor=actor, limit=200)
        ]
    )
    if runs is None:
        return
    if not runs:
        ui.label(_("No runs yet.")).classes("text-grey-7").mark("runs-empty")
        return
    columns = [
        {"name": k, "label": label, "field": k, "align": "left"}
        for k, label in (
            ("when", _("When")),
            ("rule", _("Rule")),
            ("status", _("Status")),
            ("matched", _("Matched")),
            ("actions", _("Actions")),
            ("summary", _("Done")),
            ("errors", _("Errors")),
        )
    ]
    ui.table(columns=columns, rows=runs, row_key="id").classes("w-full").mark("run-log")


@panel_page(
    "/notifications", title="Notifications", icon="notifications", permission=None, menu=False
)
def notifications_page(ctx: PageContext) -> None:
    _ = _t(ctx)
    items = ctx.run(
        lambda s, actor: [
            (
                n.id,
                auto.notification_title(n, ctx.locale),
                n.level,
                n.customer_id,
                n.read_at is None,
                ctx.dt(n.created_at),
            )
            for n in auto.list_notifications(s, actor=actor, limit=100)
        ]
    )
    if items is None:
        return

    def read_all() -> None:
        if ctx.run(lambda s, actor: auto.mark_read(s, actor=actor)) is not None:
            ui.navigate.reload()

    with ui.row().classes("w-full items-center"):
        ui.label(_("Notifications")).classes("text-lg")
        ui.space()
        ui.button(_("Mark all as read"), icon="done_all", on_click=read_all).props("flat").mark(
            "notifications-read-all"
        )
    if not items:
        ui.label(_("No notifications.")).classes("text-grey-7").mark("notifications-empty")
    for nid, title, level, customer_id, unread, when in items:
        icon = {"alert": "error", "warning": "warning"}.get(level, "info")
        with ui.row().classes("w-full items-center gap-2").mark(f"notification-{nid}"):
            ui.icon(icon).classes("text-primary" if unread else "text-grey-5")
            if customer_id:
                ui.link(title, f"/customers/{customer_id}").classes("font-medium" if unread else "")
            else:
                ui.label(title).classes("font-medium" if unread else "")
            ui.space()
            ui.label(when).classes("text-sm text-grey-7")


def bell(ctx: PageContext) -> None:
    """The notification bell of the page header: the unread count as a badge and a menu of
    the latest unread notifications (titles in the reader's language)."""
    _ = _t(ctx)

    def latest(s: Any, actor: Any) -> tuple[int, list[tuple[int, str, int | None]]]:
        count = auto.unread_count(s, actor=actor)
        if not count:
            return 0, []
        items = auto.list_notifications(s, actor=actor, unread_only=True, limit=BELL_ITEMS)
        return count, [(n.id, auto.notification_title(n, ctx.locale), n.customer_id) for n in items]

    count, items = ctx.run(latest, notify_errors=False) or (0, [])
    with (
        ui.button(icon="notifications")
        .props("flat round color=white")
        .tooltip(_("Notifications"))
        .mark("notification-bell")
    ):
        if count:
            ui.badge(str(count), color="red").props("floating").mark("notification-count")
        with ui.menu().mark("notification-menu"), ui.list().props("dense").classes("min-w-64"):
            if not items:
                ui.item(_("No unread notifications.")).mark("notification-menu-empty")
            for nid, title, customer_id in items:
                target = f"/customers/{customer_id}" if customer_id else "/notifications"
                ui.menu_item(title, on_click=lambda t=target: ui.navigate.to(t)).mark(
                    f"bell-item-{nid}"
                )
            ui.separator()
            ui.menu_item(
                _("All notifications"), on_click=lambda: ui.navigate.to("/notifications")
            ).mark("notifications-all")


@panel_page(
    "/automation/retention",
    title="Retention and consent",
    icon="policy",
    permission="settings.manage",
    group="Admin",
    menu=False,
)
def retention_page(ctx: PageContext) -> None:
    _ = _t(ctx)
    policies = ctx.run(
        lambda s, actor: [
            (p.purpose, p.period_days, p.anchor, p.enabled)
            for p in privacy.list_retention_policies(s)
        ]
    )
    if policies is None:
        return
    with ui.card().classes("w-full").mark("retention-policies"):
        ui.label(_("Retention policies")).classes("text-lg")
        ui.label(
            _(
                "When every policy that applies to a customer has expired and nothing is open, "
                "the daily retention rule anonymises the person."
            )
        ).classes("text-sm text-grey-7")
        if not policies:
            ui.label(_("No policies yet.")).classes("text-grey-7")
        for purpose, days, anchor, enabled in policies:
            ui.label(
                _(
                    "{purpose}: {days} days after {anchor}{off}",
                    purpose=purpose,
                    days=days,
                    anchor=_(anchor),
                    off="" if enabled else " (" + _("off") + ")",
                )
            ).mark(f"policy-{purpose}")
        with ui.row().classes("items-end gap-2"):
            purpose_in = ui.input(_("Purpose"), value="marketing").props("outlined dense")
            purpose_in.mark("policy-purpose")
            days_in = (
                ui.number(_("Days"), value=3 * 365, min=1, precision=0)
                .props("outlined dense")
                .mark("policy-days")
            )
            anchor_in = (
                ui.select(
                    {a: _(a) for a in privacy.ANCHORS}, value="last_interaction", label=_("After")
                )
                .props("outlined dense")
                .mark("policy-anchor")
            )

            def save() -> None:
                done = ctx.run(
                    lambda s, actor: privacy.set_retention_policy(
                        s,
                        actor=actor,
                        purpose=str(purpose_in.value or ""),
                        period_days=int(days_in.value or 0),
                        anchor=str(anchor_in.value),
                    ),
                    ok=_("Policy saved."),
                )
                if done is not None:
                    ui.navigate.reload()

            ui.button(_("Save policy"), icon="save", on_click=save).props("unelevated").mark(
                "policy-save"
            )


@panel_page(
    "/customers/{customer_id}/consent",
    title="Consent",
    icon="verified_user",
    permission="customer.read",
    menu=False,
)
def consent_page(ctx: PageContext, customer_id: int) -> None:
    _ = _t(ctx)
    history = ctx.run(
        lambda s, actor: [
            (e.purpose, e.granted, ctx.dt(e.at), e.channel, e.text_version)
            for e in privacy.consent_history(s, actor=actor, customer_id=customer_id)
        ]
    )
    if history is None:
        return
    ui.link(_("Back to the customer"), f"/customers/{customer_id}")
    with ui.card().classes("w-full").mark("consent-ledger"):
        ui.label(_("Consent ledger")).classes("text-lg")
        if not history:
            ui.label(_("No consent recorded.")).classes("text-grey-7")
        for purpose, granted, when, channel, version in history:
            ui.label(
                _(
                    "{when} · {purpose}: {state} ({channel}, text {version})",
                    when=when,
                    purpose=purpose,
                    state=_("given") if granted else _("withdrawn"),
                    channel=channel,
                    version=version,
                )
            )
    if not ctx.can("customer.update"):
        return
    with ui.row().classes("items-end gap-2").mark("consent-form"):
        purpose_in = ui.input(_("Purpose"), value="marketing").props("outlined dense")
        channel_in = ui.input(_("Channel")).props("outlined dense").mark("consent-channel")
        version_in = ui.input(_("Text version")).props("outlined dense").mark("consent-version")

        def record(granted: bool) -> None:
            done = ctx.run(
                lambda s, actor: privacy.record_consent(
                    s,
                    actor=actor,
                    customer_id=customer_id,
                    purpose=str(purpose_in.value or ""),
                    granted=granted,
                    channel=str(channel_in.value or ""),
                    text_version=str(version_in.value or ""),
                ),
                ok=_("Consent recorded."),
            )
            if done is not None:
                ui.navigate.reload()

        ui.button(_("Consent given"), on_click=lambda: record(True)).props("unelevated").mark(
            "consent-given"
        )
        ui.button(_("Consent withdrawn"), on_click=lambda: record(False)).props("outline").mark(
            "consent-withdrawn"
        )


PAGES = (rules_page, runs_page, retention_page, notifications_page, consent_page)


def install_scheduler() -> None:
    """Run the automation rules on time while the panel runs (see ``CRM_SCHEDULER``)."""
    from nicegui import app as nicegui_app

    from crm_core.automation.scheduler import Scheduler, from_environment
    from crm_core.db import get_database

    running: list[Scheduler] = []

    def start() -> None:
        scheduler = from_environment(get_database())
        if scheduler is not None:
            scheduler.start()
            running.append(scheduler)

    def stop() -> None:
        while running:
            running.pop().stop()

    nicegui_app.on_startup(start)
    nicegui_app.on_shutdown(stop)
