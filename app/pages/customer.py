"""Customer page: the whole profile with inline validation, custom fields, contacts, the
timeline, quick actions (interaction, task, ticket), archive and restore, and stale-edit
conflicts shown with both values."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from typing import Any

from nicegui import ui

from app.components.duplicate_warning import IDENTITY_FIELDS, DuplicateWarning
from app.components.record_form import render_form
from app.components.timeline import timeline_view
from app.frame import PageContext, panel_page
from app.pages.customers import stage_labels
from crm_core import access, activities, users
from crm_core.customers import (
    CustomerOut,
    archive_customer,
    contacts_of,
    get_customer,
    load_customer,
    restore_customer,
    update_customer,
)
from crm_core.customfields import list_definitions
from crm_core.dedupe.store import check_customer
from crm_core.errors import ConflictError, InvalidInput
from crm_core.i18n import translator
from crm_core.lowcode.layouts import CUSTOMER_FIELDS, ResolvedLayout, resolve_layout

LIST_FIELDS = ("phones", "emails", "tags")
#: Timeline events shown at first; "Show more" adds as many again.
TIMELINE_PAGE = 30
CONTACT_ONLY = access.CONTACT_FIELDS


@dataclass
class CustomerView:
    """What the page shows, read in one transaction."""

    customer: CustomerOut
    editable: bool
    can_archive: bool
    can_restore: bool
    definitions: list[dict[str, Any]]
    owners: dict[int, str]
    contacts: list[CustomerOut] = field(default_factory=list)
    timeline: list[Any] = field(default_factory=list)
    company: str | None = None


def _read(s: Any, actor: Any, customer_id: int) -> CustomerView:
    out = get_customer(s, actor=actor, customer_id=customer_id)
    record = load_customer(s, actor=actor, customer_id=customer_id)
    editable = (
        access.can(actor, "customer.update")
        and access.can_change(actor, record)
        and record.archived_at is None
        and record.anonymised_at is None
    )
    change = access.can_change(actor, record)
    definitions = [
        {
            "key": d.key,
            "label_en": d.label_en,
            "label_zh": d.label_zh,
            "type": d.field_type,
            "choices": list(d.choices or []),
            "required": d.required,
        }
        for d in list_definitions(s)
    ]
    owners = {u.id: u.display_name or u.username for u in users.list_users(s, actor=actor)}
    contacts = contacts_of(s, actor=actor, company_id=customer_id) if out.kind == "company" else []
    return CustomerView(
        customer=out,
        editable=editable,
        can_archive=access.can(actor, "customer.archive") and change,
        can_restore=access.can(actor, "customer.restore") and change,
        definitions=definitions,
        owners=owners,
        contacts=contacts,
        timeline=activities.timeline(s, actor=actor, customer_id=customer_id, limit=TIMELINE_PAGE),
    )


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _split(value: str | list[str] | None) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [v.strip() for v in (value or "").replace(";", ",").split(",") if v.strip()]


def _shown(layout: ResolvedLayout, field_mode: str | None) -> ResolvedLayout:
    """The layout without the fields the viewer's access gives no value for: support sees
    contact fields only, custom fields need the full profile."""

    def keep(key: str) -> bool:
        if field_mode == "contact":
            return key in CONTACT_ONLY
        return field_mode == "full" or not key.startswith("custom.")

    sections = [
        replace(sec, fields=[f for f in sec.fields if keep(f.key)]) for sec in layout.sections
    ]
    return ResolvedLayout(layout.entity, [sec for sec in sections if sec.fields])


def _form_values(c: CustomerOut) -> dict[str, Any]:
    """The profile as the record form shows it (lists of phones and e-mails as text)."""
    values: dict[str, Any] = {
        key: getattr(c, key, None) for key in (f.key for f in CUSTOMER_FIELDS)
    }
    values.update(
        kind=c.kind or "person",
        lifecycle_stage=c.lifecycle_stage or "lead",
        value_tier=c.value_tier or "",
        owner_id=c.owner_id or "",
        phones=_as_text(c.phones),
        emails=_as_text(c.emails),
        tags=list(c.tags or []),
        birthday=_as_text(c.birthday),
    )
    values.update({f"custom.{k}": v for k, v in (c.custom or {}).items()})
    return values


def _current(widget: Any) -> Any:
    return widget.value if widget.value is not None else ""


def _field_key(error_field: str) -> str:
    """Service error field -> form field (``phones[1]`` -> ``phones``, ``phone`` -> ``phones``)."""
    base = error_field.split("[")[0]
    return {"phone": "phones", "email": "emails"}.get(base, base)


@panel_page("/customers/{customer_id}", title="Customer", permission="customer.read", menu=False)
def customer_page(ctx: PageContext, customer_id: int) -> None:
    _ = ctx._
    view = ctx.run(lambda s, actor: _read(s, actor, customer_id))
    if view is None:
        ui.label(_("This customer does not exist or you may not see it.")).mark("not-found")
        ui.link(_("Back to customers"), "/customers")
        return
    c = view.customer
    stages = stage_labels(ctx)
    version = {"value": c.version or 1}

    # ------------------------------------------------------------ header
    with ui.row().classes("w-full items-center gap-2"):
        ui.button(icon="arrow_back", on_click=lambda: ui.navigate.to("/customers")).props(
            "flat round"
        )
        ui.label(c.name or "").classes("text-xl font-bold break-all").mark("customer-name")
        ui.badge(stages.get(c.lifecycle_stage or "", c.lifecycle_stage or "")).mark("stage")
        if c.kind == "company":
            ui.badge(_("Company")).props("outline")
        ui.space()
        ui.button(
            _("Consent"),
            icon="verified_user",
            on_click=lambda: ui.navigate.to(f"/customers/{customer_id}/consent"),
        ).props("flat").mark("consent-link")
        if c.archived_at is None and view.can_archive:
            ui.button(_("Archive"), icon="archive", on_click=lambda: archive_dialog.open()).props(
                "outline color=negative"
            ).mark("archive-button")
        if c.archived_at is not None and view.can_restore:
            ui.button(_("Restore"), icon="unarchive", on_click=lambda: restore()).props(
                "outline color=positive"
            ).mark("restore-button")
    if c.archived_at is not None:
        with ui.card().classes("w-full bg-orange-1").mark("archived-banner"):
            who = view.owners.get(c.archived_by_id or 0, "")
            ui.label(
                _("Archived on {when} by {who}", when=ctx.dt(c.archived_at), who=who or "?")
            ).classes("font-medium")
            ui.label(_("Reason: {reason}", reason=c.archive_reason or "")).classes("break-all")
    if c.field_mode == "masked":
        ui.label(_("Personal fields are masked for your role.")).classes("text-grey-7")

    with ui.dialog() as archive_dialog, ui.card().classes("w-full max-w-md"):
        ui.label(_("Archive {name}?", name=c.name or "")).classes("text-lg break-all")
        reason = ui.input(_("Reason")).classes("w-full").mark("archive-reason")
        reason_error = ui.label("").classes("text-negative text-xs").mark("archive-error")
        with ui.row():
            ui.button(_("Archive"), on_click=lambda: archive()).props("color=negative").mark(
                "confirm-archive"
            )
            ui.button(_("Cancel"), on_click=archive_dialog.close).props("flat")

    def archive() -> None:
        done = ctx.run(
            lambda s, actor: archive_customer(
                s, actor=actor, customer_id=customer_id, reason=reason.value or "", source="panel"
            ),
            ok=_("Customer archived."),
            on_invalid=lambda e: reason_error.set_text(_(e.errors.get("reason", e.message))),
        )
        if done is not None:
            archive_dialog.close()
            ui.navigate.reload()

    def restore() -> None:
        done = ctx.run(
            lambda s, actor: restore_customer(s, actor=actor, customer_id=customer_id),
            ok=_("Customer restored."),
        )
        if done is not None:
            ui.navigate.reload()

    # ------------------------------------------------------------ profile form
    # sections, columns, field order, help text and per-role hidden fields come from the form
    # layout service, rendered by the record form the module pages use
    layout = ctx.run(lambda s, actor: resolve_layout(s, actor=actor, entity="customer"))
    if layout is None:
        return
    layout = _shown(layout, c.field_mode)
    labels = {f.key: f.label(ctx.locale) for sec in layout.sections for f in sec.fields}
    owners: dict[Any, str] = {"": "", **view.owners}
    if c.owner_id and c.owner_id not in owners:
        owners[c.owner_id] = f"#{c.owner_id}"
    options: dict[str, dict[Any, str]] = {
        "kind": {"person": _("Person"), "company": _("Company")},
        "lifecycle_stage": stages,
        "value_tier": {"": "", "A": "A", "B": "B", "C": "C"},
        "owner_id": owners,
    }

    with ui.element("div").classes("w-full grid grid-cols-1 lg:grid-cols-5 gap-4"):
        with ui.card().classes("lg:col-span-3 w-full").mark("profile"):
            ui.label(_("Profile")).classes("text-lg")
            widgets, errors = render_form(
                layout, _form_values(c), locale=ctx.locale, readonly=not view.editable,
                options=options, wide=("notes",),
            )  # fmt: skip
            original = {key: _current(w) for key, w in widgets.items()}
            if view.editable:
                with ui.row().classes("gap-2"):
                    ui.button(_("Save"), icon="save", on_click=lambda: save()).mark("save")
            conflict_box = ui.column().classes("w-full").mark("conflict")

        with ui.column().classes("lg:col-span-2 w-full gap-3"):
            if view.contacts:
                with ui.card().classes("w-full").mark("contacts"):
                    ui.label(_("Contact persons")).classes("text-lg")
                    for person in view.contacts:
                        with ui.row().classes("gap-2 items-center"):
                            ui.link(person.name or "", f"/customers/{person.id}")
                            ui.label(person.position or "").classes("text-grey-7 text-sm")
            quick_actions(ctx, customer_id, view, refresh_timeline=lambda: refresh_timeline())
            with ui.card().classes("w-full"):
                ui.label(_("Timeline")).classes("text-lg")
                timeline_items = {"items": view.timeline, "limit": TIMELINE_PAGE}

                @ui.refreshable
                def show_timeline() -> None:
                    timeline_view(timeline_items["items"], label=_, when=ctx.dt)
                    if len(timeline_items["items"]) >= timeline_items["limit"]:
                        ui.button(_("Show more"), on_click=lambda: show_more()).props("flat").mark(
                            "timeline-more"
                        )

                show_timeline()

    def reload_timeline() -> None:
        limit = timeline_items["limit"]
        items = ctx.run(
            lambda s, actor: activities.timeline(
                s, actor=actor, customer_id=customer_id, limit=limit
            )
        )
        if items is not None:
            timeline_items["items"] = items

    def show_more() -> None:
        timeline_items["limit"] += TIMELINE_PAGE
        refresh_timeline()

    def refresh_timeline() -> None:
        reload_timeline()
        show_timeline.refresh()

    # ------------------------------------------------------------ saving
    def collect() -> dict[str, Any]:
        changes: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for key, widget in widgets.items():
            value = _current(widget)
            if value == original[key]:
                continue
            if key.startswith("custom."):
                custom[key.removeprefix("custom.")] = value or None
            elif key in LIST_FIELDS:
                changes[key] = _split(value)
            elif key == "owner_id":
                changes[key] = int(value) if value else None
            else:
                changes[key] = value or None
        if custom:
            changes["custom"] = custom
        return changes

    def show_errors(exc: InvalidInput) -> None:
        for label in errors.values():
            label.text = ""
        for name, message in (exc.errors or {exc.field or "name": exc.message}).items():
            target = errors.get(_field_key(name)) or errors.get(name)
            if target is not None:
                target.text = _(message)

    def saved_ok() -> None:
        for key, widget in widgets.items():
            original[key] = _current(widget)
        for label in errors.values():
            label.text = ""
        conflict_box.clear()

    duplicates = DuplicateWarning(label=translator(ctx.locale, "dedupe"))

    def as_edited() -> dict[str, Any]:
        """The identity fields as they would be saved (the form's value, else the record's)."""
        record: dict[str, Any] = {}
        for key in IDENTITY_FIELDS:
            if key in widgets:
                value = widgets[key].value
                record[key] = _split(value) if key in LIST_FIELDS else (value or None)
            else:
                record[key] = getattr(c, key, None)
        return record

    def save(expected: int | None = None, confirmed: bool = False) -> None:
        changes = collect()
        if not changes:
            ui.notify(_("Nothing to save."))
            return
        if not confirmed and not set(IDENTITY_FIELDS).isdisjoint(changes):
            record = as_edited()  # likely duplicates are shown before anything is saved
            found = ctx.run(
                lambda s, actor: check_customer(
                    s, actor=actor, data=record, exclude_id=customer_id
                ),
                notify_errors=False,
            )
            if found:
                duplicates.ask(found, on_save=lambda: save(expected=expected, confirmed=True))
                return
        result = ctx.run(
            lambda s, actor: (
                update_customer(
                    s,
                    actor=actor,
                    customer_id=customer_id,
                    expected_version=expected or version["value"],
                    changes=changes,
                    source="panel",
                ).version
            ),
            ok=_("Saved."),
            on_invalid=show_errors,
            on_conflict=show_conflict,
        )
        if result is not None:
            version["value"] = result
            saved_ok()
            refresh_timeline()

    def show_conflict(exc: ConflictError) -> None:
        conflict_box.clear()
        if exc.current_version is None:
            ui.notify(ctx.error_text(exc), type="negative")
            return
        with conflict_box, ui.card().classes("w-full bg-red-1"):
            ui.label(_("Someone else changed this customer while you were editing.")).classes(
                "font-bold"
            )
            with ui.grid(columns=3).classes("w-full gap-1 text-sm"):
                ui.label(_("Field")).classes("font-bold")
                ui.label(_("Saved by them")).classes("font-bold")
                ui.label(_("Yours")).classes("font-bold")
                for key in exc.attempted:
                    ui.label(labels.get(key, key))
                    ui.label(_as_text(exc.current.get(key))).classes("break-all").mark(
                        f"theirs-{key}"
                    )
                    ui.label(_as_text(exc.attempted.get(key))).classes("break-all").mark(
                        f"yours-{key}"
                    )
            with ui.row().classes("gap-2"):
                ui.button(
                    _("Keep mine"),
                    on_click=lambda: save(expected=exc.current_version, confirmed=True),
                ).mark("keep-mine")
                ui.button(_("Discard mine and reload"), on_click=ui.navigate.reload).props(
                    "flat"
                ).mark("take-theirs")


def quick_actions(
    ctx: PageContext, customer_id: int, view: CustomerView, *, refresh_timeline: Any
) -> None:
    """Log an interaction, add a task or a ticket (each shown only when the role may)."""
    _ = ctx._
    can_log = ctx.can("interaction.write") and view.customer.archived_at is None
    can_task = ctx.can("task.write") and view.customer.archived_at is None
    can_ticket = ctx.can("ticket.create") and view.customer.archived_at is None
    if not (can_log or can_task or can_ticket):
        return
    with ui.card().classes("w-full").mark("quick-actions"):
        with ui.tabs().classes("w-full") as tabs:
            log_tab = ui.tab(_("Log interaction")) if can_log else None
            task_tab = ui.tab(_("Add task")) if can_task else None
            ticket_tab = ui.tab(_("Add ticket")) if can_ticket else None
        first = log_tab or task_tab or ticket_tab
        with ui.tab_panels(tabs, value=first).classes("w-full"):
            if log_tab is not None:
                with ui.tab_panel(log_tab).classes("gap-1 p-0"):
                    kinds = {
                        "call": _("Call"), "email": _("Email"), "meeting": _("Meeting"),
                        "visit": _("Visit"), "chat": _("Chat"), "note": _("Note"),
                    }  # fmt: skip
                    kind = ui.select(kinds, value="call", label=_("Kind")).classes("w-full")
                    subject = ui.input(_("Subject")).classes("w-full").mark("interaction-subject")
                    body = ui.textarea(_("Details")).classes("w-full")

                    def log() -> None:
                        done = ctx.run(
                            lambda s, actor: activities.log_interaction(
                                s, actor=actor, customer_id=customer_id, kind=kind.value,
                                subject=subject.value or "", body=body.value or None,
                            ),
                            ok=_("Interaction logged."),
                        )  # fmt: skip
                        if done is not None:
                            subject.value = body.value = ""
                            refresh_timeline()

                    ui.button(_("Log"), on_click=log).mark("log-interaction")
            if task_tab is not None:
                with ui.tab_panel(task_tab).classes("gap-1 p-0"):
                    title = ui.input(_("Task")).classes("w-full").mark("task-title")
                    due = ui.input(_("Due date")).props("type=date").classes("w-full")
                    due.mark("task-due")

                    def add_task() -> None:
                        when = (
                            datetime.combine(date.fromisoformat(due.value), time(9), tzinfo=UTC)
                            if due.value
                            else None
                        )
                        done = ctx.run(
                            lambda s, actor: activities.create_task(
                                s, actor=actor, title=title.value or "",
                                customer_id=customer_id, due_at=when,
                            ),
                            ok=_("Task added."),
                        )  # fmt: skip
                        if done is not None:
                            title.value = ""
                            refresh_timeline()

                    ui.button(_("Add task"), on_click=add_task).mark("add-task")
            if ticket_tab is not None:
                with ui.tab_panel(ticket_tab).classes("gap-1 p-0"):
                    tkinds = {
                        "feedback": _("Feedback"), "complaint": _("Complaint"),
                        "request": _("Request"),
                    }  # fmt: skip
                    tkind = ui.select(tkinds, value="request", label=_("Kind")).classes("w-full")
                    tsubject = ui.input(_("Subject")).classes("w-full").mark("ticket-subject")
                    priorities = {
                        "low": _("Low"), "normal": _("Normal"), "high": _("High"),
                        "urgent": _("Urgent"),
                    }  # fmt: skip
                    priority = ui.select(priorities, value="normal", label=_("Priority"))
                    priority.classes("w-full")

                    def add_ticket() -> None:
                        done = ctx.run(
                            lambda s, actor: activities.create_ticket(
                                s, actor=actor, customer_id=customer_id, kind=tkind.value,
                                subject=tsubject.value or "", priority=priority.value,
                            ),
                            ok=_("Ticket added."),
                        )  # fmt: skip
                        if done is not None:
                            tsubject.value = ""
                            refresh_timeline()

                    ui.button(_("Add ticket"), on_click=add_ticket).mark("add-ticket")
