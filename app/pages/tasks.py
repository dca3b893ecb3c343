"""Each user's open tasks and reminders, overdue first: mark done, reschedule, add."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from nicegui import ui

from app.frame import PageContext, panel_page
from crm_core import activities
from crm_core.customers import customer_names
from crm_core.models import utcnow


def _at_nine(value: str | None) -> datetime | None:
    return datetime.combine(date.fromisoformat(value), time(9), tzinfo=UTC) if value else None


@panel_page("/tasks", title="Tasks", icon="task_alt", permission="task.write")
def tasks_page(ctx: PageContext) -> None:
    _ = ctx._
    with ui.card().classes("w-full"), ui.row().classes("w-full items-center gap-2"):
        title = ui.input(_("New task")).props("dense outlined").classes("grow")
        title.mark("new-task-title")
        due = ui.input(_("Due date")).props("dense outlined type=date").mark("new-task-due")
        ui.button(_("Add task"), on_click=lambda: add()).mark("new-task-add")

    def add() -> None:
        done = ctx.run(
            lambda s, actor: activities.create_task(
                s, actor=actor, title=title.value or "", due_at=_at_nine(due.value)
            ),
            ok=_("Task added."),
        )
        if done is not None:
            title.value = ""
            due.value = ""
            task_list.refresh()

    def complete(task_id: int, version: int) -> None:
        done = ctx.run(
            lambda s, actor: activities.complete_task(
                s, actor=actor, task_id=task_id, expected_version=version
            ),
            ok=_("Task done."),
        )
        if done is not None:
            task_list.refresh()

    def reschedule(task_id: int, version: int, value: str | None) -> None:
        when = _at_nine(value)
        if when is None:
            ui.notify(_("Choose a date first."), type="warning")
            return
        done = ctx.run(
            lambda s, actor: activities.reschedule_task(
                s, actor=actor, task_id=task_id, due_at=when, expected_version=version
            ),
            ok=_("Task rescheduled."),
        )
        if done is not None:
            task_list.refresh()

    @ui.refreshable
    def task_list() -> None:
        def read(s, actor):  # type: ignore[no-untyped-def]
            rows = activities.list_tasks(s, actor=actor)
            ids = [t.customer_id for t in rows if t.customer_id]
            return rows, customer_names(s, actor=actor, customer_ids=ids)

        data = ctx.run(read)
        if data is None:
            return
        tasks, names = data
        now = utcnow()
        if not tasks:
            ui.label(_("No open tasks.")).classes("text-grey-7")
        for t in tasks:
            overdue = t.due_at is not None and t.due_at < now
            with (
                ui.card()
                .classes("w-full gap-1" + (" bg-red-1" if overdue else ""))
                .mark(f"task-{t.id}")
            ):
                with ui.row().classes("w-full items-center gap-2"):
                    ui.label(t.title).classes("font-medium break-all")
                    if overdue:
                        ui.badge(_("Overdue"), color="negative").mark(f"overdue-{t.id}")
                    ui.space()
                    ui.button(
                        _("Done"), icon="check", on_click=lambda t=t: complete(t.id, t.version)
                    ).props("outline dense").mark(f"done-{t.id}")
                if t.customer_id:
                    ui.link(
                        names.get(t.customer_id, f"#{t.customer_id}"), f"/customers/{t.customer_id}"
                    ).classes("text-sm")
                with ui.row().classes("items-center gap-2 text-sm"):
                    ui.label(
                        _("Due: {when}", when=ctx.dt(t.due_at)) if t.due_at else _("No due date")
                    )
                    new_due = ui.input(_("New date")).props("dense outlined type=date")
                    new_due.mark(f"reschedule-date-{t.id}")
                    ui.button(
                        _("Reschedule"),
                        on_click=lambda t=t, d=new_due: reschedule(t.id, t.version, d.value),
                    ).props("flat dense").mark(f"reschedule-{t.id}")

    with ui.column().classes("w-full gap-2"):
        task_list()
