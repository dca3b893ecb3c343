"""Admin pages: users, teams, custom field definitions and the audit log viewer."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

from nicegui import ui

from app.frame import PageContext, panel_page
from crm_core import audit, customfields, sessions, users
from crm_core.users import LOGIN_ROLES


def _role_labels(ctx: PageContext) -> dict[str, str]:
    _ = ctx._
    names = {
        "admin": _("Admin"), "manager": _("Manager"), "sales": _("Sales"),
        "support": _("Support"), "data_steward": _("Data steward"), "analyst": _("Analyst"),
    }  # fmt: skip
    return {r: names.get(r, r) for r in LOGIN_ROLES}


@panel_page("/admin", title="Admin", permission="users.manage", menu=False)
def admin_index(ctx: PageContext) -> None:
    ui.navigate.to("/admin/users")


@panel_page(
    "/admin/users", title="Users", icon="manage_accounts", permission="users.manage", group="Admin"
)
def users_page(ctx: PageContext) -> None:
    _ = ctx._
    roles = _role_labels(ctx)
    teams = ctx.run(lambda s, actor: {t.id: t.name for t in users.list_teams(s)}) or {}

    with ui.card().classes("w-full").mark("new-user"):
        ui.label(_("New user")).classes("text-lg")
        with ui.grid().classes("w-full grid-cols-1 sm:grid-cols-2 lg:grid-cols-5 gap-2"):
            username = ui.input(_("Username")).props("dense outlined").mark("new-username")
            display = ui.input(_("Display name")).props("dense outlined")
            role = ui.select(roles, value="sales", label=_("Role")).props("dense outlined")
            role.mark("new-role")
            team = ui.select({0: "", **teams}, value=0, label=_("Team")).props("dense outlined")
            password = ui.input(_("Password (empty: generate one)")).props("dense outlined")
            password.mark("new-password")
        ui.button(_("Create user"), on_click=lambda: create()).mark("create-user")
        shown = ui.label("").classes("font-mono text-positive").mark("generated-password")

    def create() -> None:
        secret = password.value or users.generate_password()
        created = ctx.run(
            lambda s, actor: users.create_user(
                s, actor=actor, username=username.value or "", role=role.value,
                password=secret, display_name=display.value or "",
                team_id=int(team.value) if team.value else None,
            ).id,
            ok=_("User created."),
        )  # fmt: skip
        if created is not None:
            shown.text = "" if password.value else _("Password (shown once): {pw}", pw=secret)
            username.value = display.value = password.value = ""
            user_list.refresh()

    def change(user_id: int, ok: str, **values: object) -> None:
        if ctx.run(
            lambda s, actor: users.update_user(s, actor=actor, user_id=user_id, **values), ok=ok
        ):
            user_list.refresh()

    def reset(user_id: int, label: ui.label) -> None:
        secret = users.generate_password()

        def do(s, actor):  # type: ignore[no-untyped-def]
            users.set_password(s, actor=actor, user_id=user_id, password=secret)
            sessions.end_user_sessions(s, actor=actor, user_id=user_id)
            return True

        if ctx.run(do, ok=_("Password reset.")):
            label.text = _("New password (shown once): {pw}", pw=secret)

    @ui.refreshable
    def user_list() -> None:
        rows = ctx.run(lambda s, actor: users.list_users(s, actor=actor)) or []
        for u in rows:
            with ui.card().classes("w-full gap-1").mark(f"user-{u.username}"):
                with ui.row().classes("w-full items-center gap-2"):
                    ui.label(u.username).classes("font-medium")
                    ui.label(u.display_name or "").classes("text-grey-7")
                    if not u.active:
                        ui.badge(_("Inactive"), color="grey")
                    ui.space()
                    ui.label(_("Last log-in: {when}", when=ctx.dt(u.last_login_at) or "—")).classes(
                        "text-xs text-grey-7"
                    )
                with ui.row().classes("w-full items-center gap-2"):
                    ui.select(
                        roles, value=u.role, label=_("Role"),
                        on_change=lambda e, u=u: change(u.id, _("Role changed."), role=e.value),
                    ).props("dense outlined").classes("min-w-[9rem]").mark(f"role-{u.username}")  # fmt: skip
                    ui.select(
                        {0: "", **teams}, value=u.team_id or 0, label=_("Team"),
                        on_change=lambda e, u=u: change(
                            u.id, _("Team changed."), team_id=int(e.value) if e.value else None
                        ),
                    ).props("dense outlined").classes("min-w-[9rem]")  # fmt: skip
                    ui.switch(
                        _("Active"), value=u.active,
                        on_change=lambda e, u=u: change(u.id, _("Saved."), active=bool(e.value)),
                    ).mark(f"active-{u.username}")  # fmt: skip
                    note = ui.label("").classes("font-mono text-positive")
                    ui.button(
                        _("Reset password"), on_click=lambda u=u, note=note: reset(u.id, note)
                    ).props("flat dense").mark(f"reset-{u.username}")

    user_list()


@panel_page("/admin/teams", title="Teams", icon="groups", permission="users.manage", group="Admin")
def teams_page(ctx: PageContext) -> None:
    _ = ctx._
    with ui.row().classes("w-full items-center gap-2"):
        name = ui.input(_("Team name")).props("dense outlined").mark("team-name")
        ui.button(_("Create team"), on_click=lambda: create()).mark("create-team")

    def create() -> None:
        if ctx.run(
            lambda s, actor: users.create_team(s, actor=actor, name=name.value or "").id,
            ok=_("Team created."),
        ):
            name.value = ""
            team_list.refresh()

    @ui.refreshable
    def team_list() -> None:
        def read(s, actor):  # type: ignore[no-untyped-def]
            members: dict[int, list[str]] = {}
            for u in users.list_users(s, actor=actor):
                if u.team_id:
                    members.setdefault(u.team_id, []).append(u.display_name or u.username)
            return [(t.id, t.name, members.get(t.id, [])) for t in users.list_teams(s)]

        for team_id, team_name, people in ctx.run(read) or []:
            with ui.card().classes("w-full gap-1").mark(f"team-{team_id}"):
                ui.label(team_name).classes("font-medium")
                ui.label(", ".join(people) or _("No members")).classes("text-sm text-grey-8")

    team_list()


@panel_page(
    "/admin/fields", title="Custom fields", icon="tune", permission="settings.manage", group="Admin"
)
def fields_page(ctx: PageContext) -> None:
    _ = ctx._
    types = {
        "text": _("Text"), "number": _("Number"), "date": _("Date"), "choice": _("Choice"),
        "yes_no": _("Yes/no"),
    }  # fmt: skip
    with ui.card().classes("w-full"):
        ui.label(_("New field")).classes("text-lg")
        with ui.grid().classes("w-full grid-cols-1 sm:grid-cols-2 lg:grid-cols-3 gap-2"):
            key = ui.input(_("Key (e.g. plan)")).props("dense outlined").mark("field-key")
            label_en = ui.input(_("Label (English)")).props("dense outlined").mark("field-label")
            label_zh = ui.input(_("Label (Chinese)")).props("dense outlined")
            kind = ui.select(types, value="text", label=_("Type")).props("dense outlined")
            kind.mark("field-type")
            choices = ui.input(_("Choices (comma-separated)")).props("dense outlined")
            choices.mark("field-choices")
            required = ui.switch(_("Required"))
        ui.button(_("Add field"), on_click=lambda: create()).mark("add-field")

    def create() -> None:
        options = [c.strip() for c in (choices.value or "").split(",") if c.strip()]
        if ctx.run(
            lambda s, actor: customfields.define_field(
                s, actor=actor, key=key.value or "", label_en=label_en.value or "",
                label_zh=label_zh.value or None, field_type=kind.value, choices=options,
                required=bool(required.value),
            ).id,
            ok=_("Field added."),
        ):  # fmt: skip
            key.value = label_en.value = label_zh.value = choices.value = ""
            field_list.refresh()

    def toggle(field_id: int, active: bool) -> None:
        if ctx.run(
            lambda s, actor: (
                customfields.update_field(s, actor=actor, field_id=field_id, active=active).id
            ),
            ok=_("Saved."),
        ):
            field_list.refresh()

    @ui.refreshable
    def field_list() -> None:
        rows = (
            ctx.run(lambda s, actor: customfields.list_definitions(s, include_inactive=True)) or []
        )
        for d in rows:
            with ui.card().classes("w-full gap-1").mark(f"def-{d.key}"):
                with ui.row().classes("w-full items-center gap-2"):
                    ui.label(d.key).classes("font-mono")
                    ui.label(d.label_zh if ctx.locale == "zh" and d.label_zh else d.label_en)
                    ui.badge(types.get(d.field_type, d.field_type)).props("outline")
                    if d.required:
                        ui.badge(_("Required"))
                    ui.space()
                    ui.switch(
                        _("Active"), value=d.active,
                        on_change=lambda e, d=d: toggle(d.id, bool(e.value)),
                    )  # fmt: skip
                if d.choices:
                    ui.label(", ".join(d.choices)).classes("text-sm text-grey-8")

    field_list()


def _day(value: str | None, *, end: bool = False) -> datetime | None:
    if not value:
        return None
    start = datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)
    return start + timedelta(days=1) if end else start


@panel_page(
    "/admin/audit", title="Audit log", icon="history", permission="audit.read", group="Admin"
)
def audit_page(ctx: PageContext) -> None:
    _ = ctx._
    people = (
        ctx.run(lambda s, actor: {u.id: u.username for u in users.list_users(s, actor=actor)}) or {}
    )
    with ui.grid().classes("w-full grid-cols-1 sm:grid-cols-3 lg:grid-cols-6 gap-2 items-center"):
        who = ui.select({0: _("Anyone"), **people}, value=0, label=_("User")).props(
            "dense outlined"
        )
        who.mark("audit-user")
        entity = ui.select(
            {"": _("Any record"), "customer": _("Customer"), "user": _("User"),
             "deal": _("Deal"), "ticket": _("Ticket"), "task": _("Task"),
             "interaction": _("Interaction"), "custom_field": _("Custom field")},
            value="", label=_("Record type"),
        ).props("dense outlined")  # fmt: skip
        record_id = ui.input(_("Record id")).props("dense outlined").mark("audit-record")
        action = ui.input(_("Action (e.g. customer.update)")).props("dense outlined")
        action.mark("audit-action")
        since = ui.input(_("From")).props("dense outlined type=date")
        until = ui.input(_("To")).props("dense outlined type=date")
    ui.button(_("Show"), on_click=lambda: entries.refresh()).mark("audit-show")

    @ui.refreshable
    def entries() -> None:
        rid = (record_id.value or "").strip()
        if rid and not rid.isdigit():
            ui.label(_("The record id must be a number.")).classes("text-negative")
            return
        rows = ctx.run(
            lambda s, actor: audit.list_entries(
                s, actor=actor, entity_type=entity.value or None,
                entity_id=int(rid) if rid else None,
                actor_id=int(who.value) if who.value else None,
                action=(action.value or "").strip() or None,
                since=_day(since.value), until=_day(until.value, end=True), limit=200,
            )
        )  # fmt: skip
        if not rows:
            ui.label(_("No entries.")).classes("text-grey-7")
            return
        for e in rows:
            with ui.card().classes("w-full gap-0 p-2").mark(f"audit-{e.id}"):
                with ui.row().classes("w-full gap-2 items-baseline"):
                    ui.label(ctx.dt(e.at)).classes("text-xs text-grey-7")
                    ui.label(e.actor_name or "—").classes("font-medium")
                    ui.label(e.action).classes("font-mono text-sm")
                    ui.label(f"{e.entity_type} {e.entity_id or ''}").classes("text-sm")
                for field_name, change in (e.changes or {}).items():
                    old, new = (
                        (change + [None, None])[:2] if isinstance(change, list) else (None, change)
                    )
                    ui.label(
                        f"{field_name}: {json.dumps(old, ensure_ascii=False)} → "
                        f"{json.dumps(new, ensure_ascii=False)}"
                    ).classes("text-sm font-mono break-all")
                if e.detail:
                    ui.label(e.detail).classes("text-xs text-grey-8 break-all")

    entries()


PAGES = (admin_index, users_page, teams_page, fields_page, audit_page)
