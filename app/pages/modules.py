"""Custom modules in the panel: admins define record types and their fields; everyone with
the module's read permission lists, searches, filters, pages, creates, edits, archives and
restores its records, runs bulk actions, imports and exports. Forms render from the layout
service (``crm_core.lowcode.layouts``) through the shared record form
(``app.components.record_form``), the one the customer page uses, as arranged in the layout
editor (``app.pages.layout_editor``); link fields get a picker
that searches the linked customers, users or module records (``crm_core.lowcode.links``)."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from nicegui import ui

from app.components.record_form import SearchFn, as_text, form_values, render_form, show_errors
from app.frame import PageContext, panel_page
from app.pages.layout_editor import layout_page
from crm_core.i18n import translator
from crm_core.lowcode import layouts, links, modules, records
from crm_core.lowcode import permissions as perms
from crm_core.lowcode.fieldspec import FieldSpec, ModuleFieldType
from crm_core.lowcode.records import Condition, RecordFilter

TYPE_LABELS = {
    "text": "Text", "long_text": "Long text", "number": "Number", "money": "Money",
    "date": "Date", "datetime": "Date and time", "choice": "Choice",
    "multi_choice": "Multiple choice", "yes_no": "Yes/no", "email": "E-mail", "phone": "Phone",
    "customer": "Link to a customer", "user": "Link to a user", "module": "Link to a module",
}  # fmt: skip
PAGE_SIZE = 50


def _t(ctx: PageContext) -> Any:
    return translator(ctx.locale, "lowcode")


def _name(ctx: PageContext, en: str, zh: str | None) -> str:
    return zh if ctx.locale == "zh" and zh else en


# ---------------------------------------------------------------- module list and definition


@panel_page("/modules", title="Modules", icon="widgets", permission="customer.read")
def modules_page(ctx: PageContext) -> None:
    _ = _t(ctx)
    found = ctx.run(lambda s, actor: [(m.key, m.name_en, m.name_zh) for m in modules.list_modules(s, actor=actor)])  # fmt: skip
    admin = ctx.can("settings.manage")
    with ui.column().classes("w-full gap-1").mark("module-list"):
        if not found:
            ui.label(_("No modules yet.")).classes("text-grey-7")
        for key, en, zh in found or []:
            with ui.row().classes("items-center gap-3"):
                ui.link(_name(ctx, en, zh), f"/modules/{key}").mark(f"module-{key}")
                if admin:
                    ui.link(_("Arrange form"), f"/layouts/module:{key}").classes("text-sm")
        if admin:
            ui.link(_("Arrange the customer form"), "/layouts/customer").mark("layout-customer")
    if ctx.can("settings.manage"):
        define_form(ctx)


def define_form(ctx: PageContext) -> None:
    """Admins: define a module (name, first fields) or add a field to one."""
    _ = _t(ctx)
    pending: list[dict[str, Any]] = []
    types = {t.value: _(TYPE_LABELS[t.value]) for t in ModuleFieldType}
    with ui.card().classes("w-full").mark("define-module"):
        ui.label(_("Define a module")).classes("text-lg")
        with ui.row().classes("w-full gap-2"):
            key = ui.input(_("Key (e.g. projects)")).props("dense outlined").mark("module-key")
            name_en = ui.input(_("Name (English)")).props("dense outlined").mark("module-name-en")
            name_zh = ui.input(_("Name (Chinese)")).props("dense outlined").mark("module-name-zh")
        ui.label(_("Fields")).classes("text-subtitle1")
        with ui.row().classes("w-full gap-2 items-center"):
            f_key = ui.input(_("Field key")).props("dense outlined").mark("new-field-key")
            f_label = ui.input(_("Label")).props("dense outlined").mark("new-field-label")
            f_type = ui.select(types, value="text", label=_("Type")).props("dense outlined")
            f_type.classes("min-w-[10rem]").mark("new-field-type")
            f_choices = ui.input(_("Choices (comma-separated)")).props("dense outlined")
            f_choices.mark("new-field-choices")
            f_link = ui.input(_("Linked module key")).props("dense outlined").mark("new-field-link")
            f_required = ui.checkbox(_("Required")).mark("new-field-required")
            f_unique = ui.checkbox(_("Unique")).mark("new-field-unique")
            ui.button(_("Add field"), icon="add", on_click=lambda: add()).props("flat").mark(
                "add-field"
            )
        listing = ui.column().classes("gap-0").mark("pending-fields")
        ui.button(_("Create module"), icon="save", on_click=lambda: create()).mark("create-module")

    def add() -> None:
        if not (f_key.value or "").strip():
            ui.notify(_("Give the field a key."), type="warning")
            return
        pending.append(
            {
                "key": f_key.value.strip(),
                "label_en": (f_label.value or f_key.value).strip(),
                "field_type": f_type.value,
                "choices": [c.strip() for c in (f_choices.value or "").split(",") if c.strip()],
                "required": bool(f_required.value),
                "unique": bool(f_unique.value),
                "link_module": (f_link.value or "").strip() or None,
            }
        )
        with listing:
            ui.label(f"{pending[-1]['key']} · {types[f_type.value]}").mark(
                f"pending-{pending[-1]['key']}"
            )
        for widget in (f_key, f_label, f_choices, f_link):
            widget.value = ""
        f_required.value = f_unique.value = False

    def create() -> None:
        done = ctx.run(
            lambda s, actor: modules.define_module(
                s, actor=actor, key=(key.value or "").strip(), name_en=name_en.value or "",
                name_zh=name_zh.value or None, fields=list(pending),
            ).key,
            ok=_("Module created."),
        )  # fmt: skip
        if done:
            ui.navigate.to(f"/modules/{done}")


# ---------------------------------------------------------------- records of one module


@panel_page(
    "/modules/{module_key}", title="Module", icon="widgets", permission="customer.read", menu=False
)
def module_records_page(ctx: PageContext, module_key: str) -> None:
    _ = _t(ctx)

    def info(s: Any, actor: Any) -> dict[str, Any]:
        module = modules.get_module(s, module_key)
        perms.require(actor, module, "read")
        return {
            "name": _name(ctx, module.name_en, module.name_zh),
            "specs": modules.field_specs(s, module),
            "layout": layouts.resolve_layout(s, actor=actor, entity=f"module:{module_key}"),
            "can": {a: perms.can(actor, module, a) for a in perms.ACTIONS},
        }

    meta = ctx.run(info)
    if meta is None:
        ui.label(_("This module does not exist.")).mark("module-missing")
        return
    specs: list[FieldSpec] = meta["specs"]
    shown = [s for s in specs if s.key in meta["layout"].keys][:6]
    state: dict[str, Any] = {"cursor": None, "cursors": []}

    ui.label(meta["name"]).classes("text-h6").mark("module-title")
    with ui.row().classes("w-full items-center gap-2"):
        search = ui.input(_("Search")).props("dense outlined clearable").mark("record-search")
        filter_field = ui.select(
            {"": _("Filter by field"), **{s.key: s.label(ctx.locale) for s in specs
                                          if s.field_type != "long_text"}},
            value="",
        ).props("dense outlined").classes("min-w-[10rem]").mark("record-filter-field")  # fmt: skip
        filter_value = ui.input(_("equals")).props("dense outlined").mark("record-filter-value")
        archived = ui.switch(_("Archived")).mark("record-archived")
        ui.button(_("Apply"), on_click=lambda: reload()).props("flat").mark("record-apply")
    with ui.row().classes("w-full items-center gap-2"):
        if meta["can"]["create"]:
            ui.button(_("New record"), icon="add", on_click=lambda: open_form(None)).mark(
                "new-record"
            )
        if meta["can"]["archive"]:
            ui.button(_("Archive selected"), on_click=lambda: bulk("archive")).props("flat").mark(
                "bulk-archive"
            )
            ui.button(_("Restore selected"), on_click=lambda: bulk("restore")).props("flat").mark(
                "bulk-restore"
            )
        ui.button(_("Export CSV"), icon="download", on_click=lambda: export()).props("flat").mark(
            "export-records"
        )
        if meta["can"]["create"]:
            upload = ui.upload(
                label=_("Import CSV"), auto_upload=True, max_files=1,
                on_upload=lambda e: import_csv(e),
            ).props("accept=.csv flat bordered dense").mark("import-records")  # fmt: skip
            del upload
    columns = [{"name": "display_name", "label": _("Name"), "field": "display_name",
                "align": "left"}]  # fmt: skip
    columns += [
        {"name": s.key, "label": s.label(ctx.locale), "field": s.key, "align": "left"}
        for s in shown
        if s.key != "display_name"
    ]
    table = ui.table(columns=columns, rows=[], row_key="id", selection="multiple")
    table.classes("w-full").mark("record-table")
    table.on("rowClick", lambda e: open_form(e.args[1]["id"]))
    with ui.row().classes("gap-2"):
        more = ui.button(_("Next page"), on_click=lambda: load(next_page=True)).props("flat")
        more.mark("record-next")
    status = ui.label("").classes("text-sm text-grey-7").mark("record-status")

    def current() -> RecordFilter:
        conditions = []
        if filter_field.value and (filter_value.value or "").strip():
            conditions.append(Condition(filter_field.value, "eq", filter_value.value.strip()))
        return RecordFilter(
            query=search.value or None, conditions=conditions, archived=bool(archived.value)
        )

    shown_keys = [s.key for s in shown]

    def read_page(s: Any, actor: Any, cursor: str | None) -> Any:
        """A page of records and, in one batch, the names its link columns show."""
        page = records.list_records(
            s, actor=actor, module_key=module_key, filters=current(), cursor=cursor,
            limit=PAGE_SIZE,
        )  # fmt: skip
        names = links.link_label_map(
            s, actor=actor, module_key=module_key, rows=[r.data for r in page.items],
            fields=shown_keys,
        )  # fmt: skip
        return page, names

    def cell(names: dict[str, dict[int, str]], key: str, value: Any) -> str:
        label = names.get(key, {}).get(value) if isinstance(value, int) else None
        return label or as_text(value)

    def load(next_page: bool = False) -> None:
        cursor = state["cursor"] if next_page else None
        found = ctx.run(lambda s, actor: read_page(s, actor, cursor))
        if found is None:
            return
        page, names = found
        state["cursor"] = page.next_cursor
        more.set_visibility(page.next_cursor is not None)
        table.rows = [
            {"id": r.id, "display_name": r.display_name,
             **{k: cell(names, k, r.data.get(k)) for k in shown_keys}}
            for r in page.items
        ]  # fmt: skip
        table.selected = []
        table.update()
        status.set_text(_("{count} records shown", count=len(page.items)))

    def reload() -> None:
        load()

    search.on("keydown.enter", reload)
    archived.on_value_change(reload)

    def bulk(action: str) -> None:
        ids = [row["id"] for row in table.selected]
        if not ids:
            ui.notify(_("Select records first."), type="warning")
            return
        done = ctx.run(
            lambda s, actor: records.bulk_action(
                s, actor=actor, module_key=module_key, record_ids=ids, action=action
            ),
            ok=_("Done."),
        )
        if done is not None:
            reload()

    def export() -> None:
        frame = ctx.run(
            lambda s, actor: records.export_records(
                s, actor=actor, module_key=module_key, filters=current()
            )
        )
        if frame is not None:
            data = frame.to_csv(index=False).encode("utf-8-sig")
            ui.download.content(data, f"{module_key}.csv", media_type="text/csv")

    async def import_csv(e: Any) -> None:
        raw = await e.file.read()
        try:
            frame = pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError) as exc:
            ui.notify(str(exc), type="negative")
            return
        done = ctx.run(
            lambda s, actor: records.import_records(
                s, actor=actor, module_key=module_key, frame=frame
            ),
        )
        if done is not None:
            ui.notify(_("{count} records imported.", count=len(done)), type="positive")
            reload()

    dialog = ui.dialog().props("maximized=false")
    link_keys = [f.key for f in specs if f.field_type in ("customer", "user", "module")]

    def picker(field_key: str) -> SearchFn:
        """Search of a link field's picker: the service, under the user's access rights."""

        def search(text: str) -> dict[Any, str] | None:
            found = ctx.run(
                lambda s, actor: links.search_links(
                    s, actor=actor, module_key=module_key, field_key=field_key, query=text
                )
            )
            return None if found is None else {c.id: c.label for c in found}

        return search

    def open_form(record_id: int | None) -> None:
        out = None
        labels: dict[str, str] = {}
        if record_id is not None:

            def read(s: Any, actor: Any) -> tuple[Any, dict[str, str]]:
                got = records.get_record(s, actor=actor, module_key=module_key, record_id=record_id)
                names = links.link_labels(s, actor=actor, module_key=module_key, data=got.data)
                return got, names

            found = ctx.run(read)
            if found is None:
                return
            out, labels = found
        dialog.clear()
        editable = meta["can"]["edit" if out else "create"] and (
            out is None or out.archived_at is None
        )
        with (
            dialog,
            ui.card().classes("w-full").style("min-width: min(720px, 95vw)").mark("record-form"),
        ):
            ui.label(out.display_name if out else _("New record")).classes("text-lg")
            widgets, errors = render_form(
                meta["layout"], dict(out.data) if out else {}, locale=ctx.locale,
                readonly=not editable, pickers={k: picker(k) for k in link_keys},
                labels=labels, wide=[f.key for f in specs if f.field_type == "long_text"],
            )  # fmt: skip
            with ui.row().classes("gap-2"):
                if editable:
                    ui.button(_("Save"), icon="save", on_click=lambda: save()).mark("save-record")
                if out is not None and meta["can"]["archive"]:
                    if out.archived_at is None:
                        ui.button(_("Archive"), on_click=lambda: archive(True)).props("flat").mark(
                            "archive-record"
                        )
                    else:
                        ui.button(_("Restore"), on_click=lambda: archive(False)).props("flat").mark(
                            "restore-record"
                        )
                ui.button(_("Close"), on_click=dialog.close).props("flat")

        def save() -> None:
            values = form_values(widgets)
            if out is None:
                fn = lambda s, actor: records.create_record(  # noqa: E731
                    s, actor=actor, module_key=module_key, data=values
                )
            else:
                fn = lambda s, actor: records.update_record(  # noqa: E731
                    s, actor=actor, module_key=module_key, record_id=out.id, data=values,
                    expected_version=out.version,
                )  # fmt: skip
            done = ctx.run(fn, ok=_("Saved."), on_invalid=lambda e: show_errors(errors, e))
            if done is not None:
                dialog.close()
                reload()

        def archive(flag: bool) -> None:
            assert out is not None
            fn = records.archive_record if flag else records.restore_record
            done = ctx.run(
                lambda s, actor: fn(s, actor=actor, module_key=module_key, record_id=out.id),
                ok=_("Done."),
            )
            if done is not None:
                dialog.close()
                reload()

        dialog.open()

    load()


PAGES = (modules_page, module_records_page, layout_page)
