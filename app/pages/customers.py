"""Customer list: quick search, filters, saved filters, keyset paging and bulk actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from nicegui import ui

from app.components.customer_grid import customer_grid, set_rows
from app.components.duplicate_warning import DuplicateWarning
from app.frame import PageContext, panel_page
from crm_core import bulk_actions, saved_filters, users
from crm_core.customers import CustomerFilter, Page, create_customer, list_customers
from crm_core.dedupe.store import check_customer
from crm_core.i18n import translator

PAGE_SIZE = 50
SORTS = ("updated_at", "created_at", "name")


@dataclass
class ListState:
    """The list's filters and paging position (one per open page)."""

    filters: CustomerFilter = field(default_factory=CustomerFilter)
    sort: str = "updated_at"
    descending: bool = True
    cursors: list[str | None] = field(default_factory=lambda: [None])
    next_cursor: str | None = None
    selected: list[int] = field(default_factory=list)


def stage_labels(ctx: PageContext) -> dict[str, str]:
    _ = ctx._
    return {
        "lead": _("Lead"),
        "prospect": _("Prospect"),
        "customer": _("Customer"),
        "vip": _("VIP"),
        "dormant": _("Dormant"),
        "churned": _("Churned"),
    }


def _day_start(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.combine(date.fromisoformat(value), time.min, tzinfo=UTC)


def _day_end(value: str | None) -> datetime | None:
    start = _day_start(value)
    return start.replace(hour=23, minute=59, second=59) if start else None


def rows_for(ctx: PageContext, page: Page, owners: dict[int, str]) -> list[dict[str, Any]]:
    stages = stage_labels(ctx)
    return [
        {
            "id": c.id,
            "name": c.name or "",
            "phone": c.phone or "",
            "email": c.email or "",
            "company_name": c.company_name or "",
            "city": c.city or "",
            "stage": stages.get(c.lifecycle_stage or "", c.lifecycle_stage or ""),
            "owner": owners.get(c.owner_id or 0, ""),
            "tags": ", ".join(c.tags or []),
            "updated": ctx.date(c.updated_at),
        }
        for c in page.items
    ]


@panel_page("/customers", title="Customers", icon="people", permission="customer.read")
def customers_page(ctx: PageContext) -> None:
    _ = ctx._
    state = ListState()
    owners: dict[int, str] = (
        ctx.run(
            lambda s, actor: {
                u.id: u.display_name or u.username for u in users.list_users(s, actor=actor)
            }
        )
        or {}
    )
    stages = stage_labels(ctx)

    # ------------------------------------------------------------ search and filters
    with ui.row().classes("w-full items-center gap-2 no-wrap"):
        search = (
            ui.input(placeholder=_("Search name, pinyin, phone, email, company"))
            .props("outlined dense clearable")
            .classes("grow")
            .mark("search")
        )
        ui.button(icon="search", on_click=lambda: apply()).props("unelevated").mark("search-button")
        if ctx.can("customer.create"):
            ui.button(_("New"), icon="add", on_click=lambda: new_dialog.open()).props(
                "unelevated color=positive"
            ).mark("new-customer")
    search.on("keydown.enter", lambda: apply())

    with ui.expansion(_("Filters"), icon="filter_list").classes("w-full").mark("filters"):
        with ui.grid().classes("w-full grid-cols-1 sm:grid-cols-2 lg:grid-cols-4 gap-2"):
            owner = (
                ui.select({0: "", **owners}, label=_("Owner"), value=0).props("dense outlined")
            ).mark("filter-owner")
            tag = ui.input(_("Tag")).props("dense outlined").mark("filter-tag")
            stage = ui.select(
                {"": "", **stages}, label=_("Lifecycle stage"), value=""
            ).props("dense outlined").mark("filter-stage")  # fmt: skip
            industry = ui.input(_("Industry")).props("dense outlined").mark("filter-industry")
            city = ui.input(_("City")).props("dense outlined").mark("filter-city")
            source = ui.input(_("Source")).props("dense outlined").mark("filter-source")
            created_from = ui.input(_("Created from")).props("dense outlined type=date")
            created_to = ui.input(_("Created to")).props("dense outlined type=date")
            contact_from = ui.input(_("Last contact from")).props("dense outlined type=date")
            contact_to = ui.input(_("Last contact to")).props("dense outlined type=date")
            archived = ui.switch(_("Archived")).mark("filter-archived")
            unowned = ui.switch(_("Unowned only"))
        with ui.row().classes("gap-2"):
            ui.button(_("Apply filters"), on_click=lambda: apply()).mark("apply-filters")
            ui.button(_("Clear"), on_click=lambda: clear()).props("flat")

    # ------------------------------------------------------------ saved filters and sort
    with ui.row().classes("w-full items-center gap-2"):
        saved = (
            ui.select({}, label=_("Saved filters"), on_change=lambda e: load_saved(e.value))
            .props("dense outlined clearable")
            .classes("min-w-[12rem]")
            .mark("saved-filters")
        )
        save_name = ui.input(_("Save filter as")).props("dense outlined").mark("save-name")
        ui.button(icon="save", on_click=lambda: save_current()).props("flat").mark(
            "save-filter"
        ).tooltip(_("Save"))
        ui.button(icon="delete", on_click=lambda: delete_saved()).props("flat").mark(
            "delete-filter"
        ).tooltip(_("Delete"))
        ui.space()
        sort = (
            ui.select(
                {"updated_at": _("Last updated"), "created_at": _("Created"), "name": _("Name")},
                value="updated_at",
                label=_("Sort by"),
                on_change=lambda: apply(),
            )
            .props("dense outlined")
            .mark("sort")
        )
        descending = ui.switch(_("Descending"), value=True, on_change=lambda: apply())

    # ------------------------------------------------------------ bulk actions
    bulk_choices = {
        a: label
        for a, label in (
            ("tag", _("Add tag")),
            ("assign_owner", _("Assign owner")),
            ("change_stage", _("Change stage")),
            ("archive", _("Archive")),
        )
        if ctx.can(bulk_actions.PERMISSION[bulk_actions.BulkAction(a)])
    }
    with ui.row().classes("w-full items-center gap-2").mark("bulk-bar") as bulk_bar:
        selected_label = ui.label("").mark("selected-count")
        bulk_action = ui.select(bulk_choices, label=_("Bulk action")).props("dense outlined")
        bulk_action.classes("min-w-[10rem]").mark("bulk-action")
        bulk_value = ui.input(_("Tag")).props("dense outlined").mark("bulk-value")
        bulk_owner = ui.select(owners, label=_("Owner")).props("dense outlined")
        bulk_owner.classes("min-w-[10rem]").mark("bulk-owner")
        bulk_stage = ui.select(stages, label=_("Lifecycle stage")).props("dense outlined")
        bulk_stage.classes("min-w-[10rem]").mark("bulk-stage")
        bulk_reason = ui.input(_("Reason")).props("dense outlined").mark("bulk-reason")
        ui.button(_("Apply"), on_click=lambda: run_bulk()).mark("bulk-apply")
    bulk_bar.set_visibility(bool(bulk_choices))

    def show_bulk_fields() -> None:
        kind = bulk_action.value
        bulk_value.set_visibility(kind == "tag")
        bulk_owner.set_visibility(kind == "assign_owner")
        bulk_stage.set_visibility(kind == "change_stage")
        bulk_reason.set_visibility(kind == "archive")

    bulk_action.on_value_change(show_bulk_fields)
    show_bulk_fields()

    # ------------------------------------------------------------ grid and pager
    def open_customer(customer_id: int) -> None:
        ui.navigate.to(f"/customers/{customer_id}")

    def on_select(ids: list[int]) -> None:
        state.selected = ids
        selected_label.text = _("{count} selected", count=len(ids)) if ids else ""

    labels = {
        "name": _("Name"),
        "phone": _("Phone"),
        "email": _("Email"),
        "company_name": _("Company"),
        "city": _("City"),
        "stage": _("Stage"),
        "owner": _("Owner"),
        "tags": _("Tags"),
        "updated": _("Updated"),
        "empty": _("No customers match."),
    }
    grid = customer_grid(
        labels, on_open=open_customer, on_select=on_select if bulk_choices else None
    )
    with ui.row().classes("w-full items-center justify-end gap-2"):
        page_label = ui.label("").mark("page-number")
        prev_button = ui.button(icon="chevron_left", on_click=lambda: go(-1)).props("flat")
        prev_button.mark("prev-page")
        next_button = ui.button(icon="chevron_right", on_click=lambda: go(1)).props("flat")
        next_button.mark("next-page")

    # ------------------------------------------------------------ behaviour
    def current_filter() -> CustomerFilter:
        return CustomerFilter(
            query=search.value or None,
            owner_id=int(owner.value) if owner.value else None,
            tag=tag.value or None,
            lifecycle_stage=stage.value or None,
            industry=industry.value or None,
            city=city.value or None,
            source=source.value or None,
            created_from=_day_start(created_from.value),
            created_to=_day_end(created_to.value),
            last_contact_from=_day_start(contact_from.value),
            last_contact_to=_day_end(contact_to.value),
            archived=bool(archived.value),
            unowned=bool(unowned.value),
        )

    def show_filter(flt: CustomerFilter) -> None:
        search.value = flt.query or ""
        owner.value = flt.owner_id or 0
        tag.value = flt.tag or ""
        stage.value = flt.lifecycle_stage or ""
        industry.value = flt.industry or ""
        city.value = flt.city or ""
        source.value = flt.source or ""
        created_from.value = flt.created_from.date().isoformat() if flt.created_from else ""
        created_to.value = flt.created_to.date().isoformat() if flt.created_to else ""
        contact_from.value = (
            flt.last_contact_from.date().isoformat() if flt.last_contact_from else ""
        )
        contact_to.value = flt.last_contact_to.date().isoformat() if flt.last_contact_to else ""
        archived.value = flt.archived
        unowned.value = flt.unowned

    def load() -> None:
        cursor = state.cursors[-1]
        page = ctx.run(
            lambda s, actor: list_customers(
                s,
                actor=actor,
                filters=state.filters,
                sort=state.sort,
                descending=state.descending,
                cursor=cursor,
                limit=PAGE_SIZE,
            )
        )
        if page is None:
            return
        state.next_cursor = page.next_cursor
        set_rows(grid, rows_for(ctx, page, owners))
        on_select([])
        page_label.text = _("Page {number}", number=len(state.cursors))
        prev_button.set_enabled(len(state.cursors) > 1)
        next_button.set_enabled(page.next_cursor is not None)

    def apply() -> None:
        state.filters = current_filter()
        state.sort = sort.value if sort.value in SORTS else "updated_at"
        state.descending = bool(descending.value)
        state.cursors = [None]
        load()

    def clear() -> None:
        show_filter(CustomerFilter())
        apply()

    def go(step: int) -> None:
        if step > 0 and state.next_cursor:
            state.cursors.append(state.next_cursor)
        elif step < 0 and len(state.cursors) > 1:
            state.cursors.pop()
        load()

    def refresh_saved(select_id: int | None = None) -> None:
        rows = ctx.run(
            lambda s, actor: [(f.id, f.name) for f in saved_filters.list_filters(s, actor=actor)]
        )
        saved.set_options(dict(rows or []), value=select_id)

    def load_saved(filter_id: int | None) -> None:
        if not filter_id:
            return
        flt = ctx.run(
            lambda s, actor: saved_filters.get_filter(s, actor=actor, filter_id=int(filter_id))
        )
        if flt is not None:
            show_filter(flt)
            apply()

    def save_current() -> None:
        name = save_name.value or ""
        flt = current_filter()
        row_id = ctx.run(
            lambda s, actor: saved_filters.save_filter(s, actor=actor, name=name, filters=flt).id,
            ok=_("Filter saved."),
        )
        if row_id is not None:
            save_name.value = ""
            refresh_saved(row_id)

    def delete_saved() -> None:
        filter_id = saved.value
        if not filter_id:
            return
        done = ctx.run(
            lambda s, actor: (
                saved_filters.delete_filter(s, actor=actor, filter_id=int(filter_id)) or True
            ),
            ok=_("Filter deleted."),
        )
        if done:
            refresh_saved()

    def run_bulk() -> None:
        kind = bulk_action.value
        ids = list(state.selected)
        if not kind:
            ui.notify(_("Choose a bulk action."), type="warning")
            return
        if not ids:
            ui.notify(_("Select customers first."), type="warning")
            return
        value: Any = {
            "tag": bulk_value.value,
            "assign_owner": bulk_owner.value,
            "change_stage": bulk_stage.value,
        }.get(kind)
        result = ctx.run(
            lambda s, actor: bulk_actions.apply_bulk(
                s,
                actor=actor,
                action=kind,
                customer_ids=ids,
                value=value,
                reason=bulk_reason.value,
            )
        )
        if result is not None:
            ui.notify(
                _("{changed} of {selected} customers changed.").format(
                    changed=result.changed, selected=result.selected
                ),
                type="positive",
            )
            load()

    # ------------------------------------------------------------ new customer
    with ui.dialog() as new_dialog, ui.card().classes("w-full max-w-md"):
        ui.label(_("New customer")).classes("text-lg")
        new_name = ui.input(_("Name")).classes("w-full").mark("new-name")
        new_phone = ui.input(_("Phone")).classes("w-full").mark("new-phone")
        new_email = ui.input(_("Email")).classes("w-full").mark("new-email")
        new_company = ui.input(_("Company")).classes("w-full").mark("new-company")
        new_error = ui.label("").classes("text-negative").mark("new-error")
        with ui.row():
            ui.button(_("Create"), on_click=lambda: create()).mark("create-customer")
            ui.button(_("Cancel"), on_click=new_dialog.close).props("flat")

    duplicates = DuplicateWarning(label=translator(ctx.locale, "dedupe"))

    def create(confirmed: bool = False) -> None:
        data = {
            "name": new_name.value,
            "phones": [new_phone.value] if new_phone.value else [],
            "emails": [new_email.value] if new_email.value else [],
            "company_name": new_company.value or None,
        }

        def show(exc: Any) -> None:
            new_error.text = "; ".join(f"{k}: {ctx._(v)}" for k, v in exc.errors.items())

        if not confirmed:  # likely duplicates are shown before anything is saved
            found = ctx.run(
                lambda s, actor: check_customer(s, actor=actor, data=data), notify_errors=False
            )
            if found:
                duplicates.ask(found, on_save=lambda: create(confirmed=True))
                return
        customer_id = ctx.run(
            lambda s, actor: create_customer(s, actor=actor, data=data, source="panel").id,
            on_invalid=show,
            notify_errors=False,
        )
        if customer_id is not None:
            new_dialog.close()
            ui.navigate.to(f"/customers/{customer_id}")

    refresh_saved()
    load()
