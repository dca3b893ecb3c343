"""Archive view: archived customers with who, when and why; restore puts them back."""

from __future__ import annotations

from nicegui import ui

from app.frame import PageContext, panel_page
from crm_core import users
from crm_core.customers import CustomerFilter, list_customers, restore_customer

PAGE_SIZE = 50


@panel_page("/archive", title="Archive", icon="inventory_2", permission="customer.read")
def archive_page(ctx: PageContext) -> None:
    _ = ctx._
    names = (
        ctx.run(
            lambda s, actor: {
                u.id: u.display_name or u.username for u in users.list_users(s, actor=actor)
            }
        )
        or {}
    )
    state: dict[str, str | None] = {"cursor": None}
    with ui.row().classes("w-full items-center gap-2"):
        search = ui.input(placeholder=_("Search the archive")).props("outlined dense clearable")
        search.classes("grow").mark("archive-search")
        ui.button(icon="search", on_click=lambda: reload()).props("unelevated")
    search.on("keydown.enter", lambda: reload())
    listing = ui.column().classes("w-full gap-2").mark("archive-list")
    more = ui.button(_("Load more"), on_click=lambda: load()).props("flat").mark("load-more")

    def restore(customer_id: int, name: str) -> None:
        done = ctx.run(
            lambda s, actor: restore_customer(s, actor=actor, customer_id=customer_id),
            ok=_("{name} restored.", name=name),
        )
        if done is not None:
            reload()

    def load() -> None:
        cursor = state["cursor"]
        flt = CustomerFilter(query=search.value or None, archived=True)
        page = ctx.run(
            lambda s, actor: list_customers(
                s, actor=actor, filters=flt, cursor=cursor, limit=PAGE_SIZE
            )
        )
        if page is None:
            return
        state["cursor"] = page.next_cursor
        more.set_visibility(page.next_cursor is not None)
        with listing:
            if not page.items and cursor is None:
                ui.label(_("No archived customers.")).classes("text-grey-7")
            for c in page.items:
                with ui.card().classes("w-full").mark(f"archived-{c.id}"):
                    with ui.row().classes("w-full items-center gap-2"):
                        ui.link(c.name or "", f"/customers/{c.id}").classes("font-medium break-all")
                        ui.space()
                        if ctx.can("customer.restore"):
                            ui.button(
                                _("Restore"),
                                icon="unarchive",
                                on_click=lambda c=c: restore(c.id, c.name or ""),
                            ).props("outline dense").mark(f"restore-{c.id}")
                    who = names.get(c.archived_by_id or 0, "?")
                    ui.label(
                        _("Archived on {when} by {who}", when=ctx.dt(c.archived_at), who=who)
                    ).classes("text-sm text-grey-8")
                    ui.label(_("Reason: {reason}", reason=c.archive_reason or "")).classes(
                        "text-sm break-all"
                    )

    def reload() -> None:
        state["cursor"] = None
        listing.clear()
        load()

    load()
