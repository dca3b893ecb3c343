"""Support's ticket queue: assign, change status, reply note, close with a satisfaction score."""

from __future__ import annotations

from nicegui import ui

from app.frame import PageContext, panel_page
from crm_core import activities, users
from crm_core.customers import customer_names

STATUSES = ("open", "pending", "resolved", "closed")


@panel_page("/tickets", title="Tickets", icon="support_agent", permission="ticket.manage")
def tickets_page(ctx: PageContext) -> None:
    _ = ctx._
    status_labels = {
        "open": _("Open"), "pending": _("Pending"), "resolved": _("Resolved"),
        "closed": _("Closed"),
    }  # fmt: skip
    kind_labels = {"feedback": _("Feedback"), "complaint": _("Complaint"), "request": _("Request")}
    staff = (
        ctx.run(
            lambda s, actor: {
                u.id: u.display_name or u.username for u in users.list_users(s, actor=actor)
            }
        )
        or {}
    )
    with ui.row().classes("w-full items-center gap-2"):
        status = ui.select(
            {"active": _("Open and pending"), **status_labels, "": _("All")},
            value="active",
            label=_("Status"),
        )
        status.props("dense outlined").classes("min-w-[10rem]").mark("ticket-status-filter")
        kind = ui.select({"": _("All"), **kind_labels}, value="", label=_("Kind"))
        kind.props("dense outlined").classes("min-w-[8rem]")
        mine = ui.switch(_("Assigned to me")).mark("ticket-mine")
    for element in (status, kind, mine):
        element.on_value_change(lambda: queue.refresh())

    def update(ticket_id: int, version: int, ok: str, **changes: object) -> None:
        done = ctx.run(
            lambda s, actor: activities.update_ticket(
                s, actor=actor, ticket_id=ticket_id, expected_version=version, **changes
            ),
            ok=ok,
        )
        if done is not None:
            queue.refresh()

    def note(ticket_id: int, text: str) -> None:
        done = ctx.run(
            lambda s, actor: activities.add_ticket_note(
                s, actor=actor, ticket_id=ticket_id, body=text
            ),
            ok=_("Reply noted."),
        )
        if done is not None:
            queue.refresh()

    @ui.refreshable
    def queue() -> None:
        wanted = ["open", "pending"] if status.value == "active" else (status.value or None)

        def read(s, actor):  # type: ignore[no-untyped-def]
            rows = activities.list_tickets(
                s, actor=actor, status=wanted, kind=kind.value or None,
                assignee_id=actor.id if mine.value else None, limit=200,
            )  # fmt: skip
            return rows, customer_names(s, actor=actor, customer_ids=[t.customer_id for t in rows])

        data = ctx.run(read)
        if data is None:
            return
        tickets, names = data
        if not tickets:
            ui.label(_("No tickets.")).classes("text-grey-7")
        for t in tickets:
            with ui.card().classes("w-full gap-1").mark(f"ticket-{t.id}"):
                with ui.row().classes("w-full items-center gap-2"):
                    ui.label(t.subject).classes("font-medium break-all")
                    ui.badge(kind_labels.get(t.kind, t.kind)).props("outline")
                    ui.badge(status_labels.get(t.status, t.status)).mark(f"ticket-status-{t.id}")
                    ui.space()
                    ui.label(ctx.dt(t.created_at)).classes("text-xs text-grey-7")
                ui.link(
                    names.get(t.customer_id, f"#{t.customer_id}"), f"/customers/{t.customer_id}"
                )
                if t.body:
                    ui.label(t.body).classes("text-sm text-grey-8 break-all")
                if t.satisfaction:
                    ui.label(_("Satisfaction: {score}/5", score=t.satisfaction)).classes("text-sm")
                if t.status == "closed":
                    continue
                with ui.row().classes("w-full items-center gap-2"):
                    ui.select(
                        {0: _("Unassigned"), **staff}, value=t.assignee_id or 0, label=_("Assignee"),
                        on_change=lambda e, t=t: update(
                            t.id, t.version, _("Ticket assigned."), assignee_id=e.value or None
                        ),
                    ).props("dense outlined").classes("min-w-[10rem]").mark(f"assign-{t.id}")  # fmt: skip
                    ui.select(
                        status_labels, value=t.status, label=_("Status"),
                        on_change=lambda e, t=t: update(
                            t.id, t.version, _("Status changed."), status=e.value
                        ),
                    ).props("dense outlined").classes("min-w-[8rem]").mark(f"status-{t.id}")  # fmt: skip
                with ui.row().classes("w-full items-center gap-2"):
                    reply = ui.input(_("Reply note")).props("dense outlined").classes("grow")
                    reply.mark(f"reply-{t.id}")
                    ui.button(
                        _("Add note"),
                        on_click=lambda t=t, reply=reply: note(t.id, reply.value or ""),
                    ).props("flat").mark(f"add-note-{t.id}")
                with ui.row().classes("w-full items-center gap-2"):
                    score = ui.select({i: "★" * i for i in range(1, 6)}, label=_("Satisfaction"))
                    score.props("dense outlined").classes("min-w-[8rem]").mark(f"score-{t.id}")
                    ui.button(
                        _("Close ticket"),
                        on_click=lambda t=t, score=score: update(
                            t.id, t.version, _("Ticket closed."), status="closed",
                            satisfaction=score.value,
                        ),
                    ).props("outline").mark(f"close-{t.id}")  # fmt: skip

    with ui.column().classes("w-full gap-2"):
        queue()
