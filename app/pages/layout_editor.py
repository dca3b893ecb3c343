"""The form layout editor: an admin arranges a record page, built-in (``customer``) or custom
(``module:<key>``), into sections - each with its English and Chinese title, its number of
columns (1-4) and its place among the sections - and sets each field's section, order, help
text and the roles it is hidden from. Saving stores the layout through
``crm_core.lowcode.layouts.save_layout``; the record pages render it at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nicegui import ui

from app.frame import PageContext, panel_page
from crm_core.i18n import translator
from crm_core.lowcode import layouts
from crm_core.lowcode import permissions as perms
from crm_core.lowcode.fieldspec import FieldSpec

COLUMN_CHOICES = (1, 2, 3, 4)


@dataclass
class SectionRow:
    """The inputs of one section in the editor (``sid`` is its number on this page)."""

    sid: int
    title_en: ui.input
    title_zh: ui.input
    columns: ui.toggle
    position: ui.number
    row: ui.row


@dataclass
class FieldRow:
    """The inputs of one field in the editor."""

    section: ui.select
    position: ui.number
    help: ui.input
    hidden: ui.select


def _start(doc: dict[str, Any], specs: list[FieldSpec]) -> tuple[list[dict[str, Any]], dict[str, tuple[int, int]]]:  # fmt: skip
    """The sections to show (the stored ones, then one for fields they do not place, as the
    record page shows them) and each field's (section number, order)."""
    sections = [dict(s) for s in doc.get("sections", [])]
    where = {
        key: (n, i) for n, sec in enumerate(sections) for i, key in enumerate(sec.get("fields", []))
    }
    rest = [spec.key for spec in specs if spec.key not in where]
    if rest:
        title = ("More", "更多") if sections else ("Details", "详情")
        sections.append({"title_en": title[0], "title_zh": title[1], "columns": 2})
        where.update({key: (len(sections) - 1, i) for i, key in enumerate(rest)})
    return sections, where


@panel_page(
    "/layouts/{entity}", title="Form layout", icon="view_quilt", permission="settings.manage",
    menu=False,
)  # fmt: skip
def layout_page(ctx: PageContext, entity: str) -> None:
    """Arrange a record page: its sections (title, columns, order) and each field's section,
    order, help text and hidden roles."""
    _ = translator(ctx.locale, "lowcode")

    def read(s: Any, actor: Any) -> tuple[list[FieldSpec], dict[str, Any]]:
        return layouts.entity_specs(s, entity), layouts.stored_layout(s, entity)

    found = ctx.run(read)
    if found is None:
        return
    specs, doc = found
    start, where = _start(doc, specs)
    sections: list[SectionRow] = []
    fields: dict[str, FieldRow] = {}
    ui.label(_("Form layout: {entity}", entity=entity)).classes("text-h6")

    def options() -> dict[int, str]:
        ordered = sorted(sections, key=lambda r: (r.position.value or 0, r.sid))
        return {r.sid: (r.title_en.value or "").strip() or _("(untitled)") for r in ordered}

    def refresh_options() -> None:
        choices = options()
        for row in fields.values():
            row.section.set_options(choices, value=row.section.value)

    def add_section(raw: dict[str, Any] | None = None) -> SectionRow:
        raw = raw or {}
        sid = max((r.sid for r in sections), default=-1) + 1
        position = max((r.position.value or 0 for r in sections), default=-1) + 1
        with section_list, ui.row().classes("w-full items-center gap-2") as line:
            line.mark(f"section-row-{sid}")
            title_en = ui.input(_("Section title (English)"), value=raw.get("title_en") or "")
            title_en.props("dense outlined").mark(f"section-title-en-{sid}")
            title_zh = ui.input(_("Section title (Chinese)"), value=raw.get("title_zh") or "")
            title_zh.props("dense outlined").mark(f"section-title-zh-{sid}")
            ui.label(_("Columns")).classes("text-sm")
            columns = ui.toggle(list(COLUMN_CHOICES), value=int(raw.get("columns", 2)))
            columns.props("dense").mark(f"section-columns-{sid}")
            order = ui.number(_("Order"), value=position, format="%d").props("dense outlined")
            order.classes("w-24").mark(f"section-order-{sid}")
            ui.button(icon="delete", on_click=lambda: remove_section(sid)).props(
                "flat dense round"
            ).tooltip(_("Remove section")).mark(f"section-remove-{sid}")
        row = SectionRow(sid, title_en, title_zh, columns, order, line)
        sections.append(row)
        title_en.on_value_change(refresh_options)
        order.on_value_change(refresh_options)
        return row

    def new_section() -> None:
        add_section({"title_en": _("Section {n}", n=len(sections) + 1), "columns": 2})
        refresh_options()

    def remove_section(sid: int) -> None:
        if len(sections) == 1:
            ui.notify(_("A form needs at least one section."), type="warning")
            return
        gone = next(r for r in sections if r.sid == sid)
        sections.remove(gone)
        section_list.remove(gone.row)
        first = next(iter(options()))
        for row in fields.values():  # its fields move to the first section
            if row.section.value == sid:
                row.section.set_options(options(), value=first)
        refresh_options()

    with ui.card().classes("w-full").mark("layout-sections"):
        ui.label(_("Sections")).classes("text-subtitle1")
        ui.label(
            _(
                "Each section shows its fields in its number of columns; the order sets where it comes."
            )  # fmt: skip
        ).classes("text-sm text-grey-7")
        section_list = ui.column().classes("w-full gap-1")
        for raw in start:
            add_section(raw)
        ui.button(_("Add section"), icon="add", on_click=new_section).props("flat").mark(
            "add-section"
        )

    with ui.card().classes("w-full"), ui.column().classes("w-full gap-1").mark("layout-editor"):
        ui.label(_("Fields")).classes("text-subtitle1")
        choices = options()
        for i, spec in enumerate(specs):
            section, position = where.get(spec.key, (0, 100 + i))
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(spec.label(ctx.locale)).classes("w-40")
                fields[spec.key] = FieldRow(
                    section=ui.select(choices, label=_("Section"), value=section)
                    .props("dense outlined").classes("min-w-[10rem]")
                    .mark(f"layout-section-{spec.key}"),
                    position=ui.number(_("Order"), value=position, format="%d")
                    .props("dense outlined").classes("w-24").mark(f"layout-order-{spec.key}"),
                    help=ui.input(_("Help text"), value=doc.get("help", {}).get(spec.key, ""))
                    .props("dense outlined").mark(f"layout-help-{spec.key}"),
                    hidden=ui.select(list(perms.ROLES), multiple=True, label=_("Hidden from"),
                                     value=doc.get("hidden", {}).get(spec.key, []))
                    .props("dense outlined").classes("min-w-[12rem]")
                    .mark(f"layout-hidden-{spec.key}"),
                )  # fmt: skip

    def save() -> None:
        untitled = [r for r in sections if not (r.title_en.value or "").strip()]
        for row in sections:
            row.title_en.props(remove="error")
        if untitled:
            for row in untitled:
                row.title_en.props(f'error error-message="{_("Give the section a title.")}"')
            ui.notify(_("Give every section a title."), type="warning")
            return
        ordered = sorted(sections, key=lambda r: (r.position.value or 0, r.sid))
        placed = sorted(
            fields.items(), key=lambda kv: (kv[1].position.value or 0, specs_order[kv[0]])
        )
        payload = [
            {
                "title_en": row.title_en.value.strip(),
                "title_zh": (row.title_zh.value or "").strip() or None,
                "columns": int(row.columns.value or 2),
                "fields": [key for key, f in placed if f.section.value == row.sid],
            }
            for row in ordered
        ]
        ctx.run(
            lambda s, actor: layouts.save_layout(
                s, actor=actor, entity=entity, sections=payload,
                help={k: r.help.value for k, r in fields.items()},
                hidden={k: r.hidden.value for k, r in fields.items()},
            ),
            ok=_("Layout saved."),
        )  # fmt: skip

    specs_order = {spec.key: i for i, spec in enumerate(specs)}
    ui.button(_("Save layout"), icon="save", on_click=save).mark("save-layout")


PAGES = (layout_page,)
