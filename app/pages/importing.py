"""Import wizard (upload, encoding, mapping, preview with errors and duplicates, mode, confirm,
report, revert) and exports of lists. Every step calls ``crm_core.importing``; nothing here
reads the file itself or decides anything about a row."""

from __future__ import annotations

import io
from typing import Any

from nicegui import ui

from app.frame import PageContext, panel_page
from crm_core.customers import CustomerFilter
from crm_core.i18n import translator
from crm_core.importing import (
    TARGETS,
    ImportOptions,
    ImportRejected,
    ImportReport,
    guess_mapping,
    list_batches,
    list_mappings,
    preview_import,
    read_frame,
    revert_batch,
    run_import,
    save_mapping,
)
from crm_core.importing.export import KINDS, export
from crm_core.importing.reading import display_name
from crm_core.settings import get_settings

ENCODINGS = {"": "auto", "utf-8": "UTF-8", "utf-8-sig": "UTF-8 BOM", "gb18030": "GBK / GB18030"}
MODES = ("upsert", "create", "update")
KEYS = ("auto", "id", "external_id", "email", "phone")


def _t(ctx: PageContext):  # type: ignore[no-untyped-def]
    return translator(ctx.locale, "importing")


@panel_page("/import", title="Import", icon="upload_file", permission="import.run")
def import_page(ctx: PageContext) -> None:
    _ = _t(ctx)
    state: dict[str, Any] = {"data": None, "name": "", "mapping": {}}

    ui.label(_("Import customers")).classes("text-h6")
    ui.label(
        _(
            "CSV (UTF-8 or GBK) or Excel .xlsx, up to {mb} MB.",
            mb=get_settings().import_max_bytes // 1_000_000,
        )  # fmt: skip
    ).classes("text-sm text-grey-8")
    upload = ui.upload(auto_upload=True, max_files=1).props("accept=.csv,.xlsx,.txt flat bordered")
    upload.mark("import-upload")
    with ui.row().classes("items-center gap-4"):
        encoding = ui.select(ENCODINGS, value="", label=_("Encoding")).mark("import-encoding")
        mode = ui.select({m: _(m) for m in MODES}, value="upsert", label=_("Mode"))
        mode.mark("import-mode")
        key = ui.select({k: _(k) for k in KEYS}, value="auto", label=_("Match by"))
        key.mark("import-key")
        valid_only = ui.checkbox(_("Import the valid rows, return the others as a file"))
        valid_only.mark("import-valid-only")
    mapping_box = ui.column().classes("w-full gap-1").mark("import-mapping")
    with ui.row().classes("items-center gap-2"):
        saved = ui.select({}, label=_("Saved mapping"), clearable=True).mark("import-saved")
        save_name = ui.input(_("Save mapping as")).props("dense").mark("import-save-name")
        ui.button(_("Save"), on_click=lambda: save()).props("flat").mark("import-save")
    with ui.row().classes("gap-2"):
        ui.button(_("Preview"), icon="visibility", on_click=lambda: go(True)).mark("import-preview")
        ui.button(_("Import"), icon="file_upload", on_click=lambda: go(False)).props(
            "color=primary"
        ).mark("import-run")
    result = ui.column().classes("w-full gap-1").mark("import-result")
    ui.separator()
    ui.label(_("Recent imports")).classes("text-subtitle1")
    batches_box = ui.column().classes("w-full gap-1").mark("import-batches")

    def load_saved() -> None:
        rows = ctx.run(
            lambda s, actor: [(m.name, dict(m.columns)) for m in list_mappings(s, actor=actor)]
        )
        state["saved"] = dict(rows or [])
        saved.set_options({n: n for n in state["saved"]})

    def apply_saved(e: Any) -> None:
        columns = state.get("saved", {}).get(e.value or "")
        if columns and state["data"] is not None:
            for header in state["mapping"]:
                state["mapping"][header] = columns.get(header)
            draw_mapping()

    saved.on_value_change(apply_saved)

    async def on_upload(e: Any) -> None:
        state["data"] = await e.file.read()
        state["name"] = display_name(e.file.name)
        read_headers()

    upload.on_upload(on_upload)

    def read_headers() -> None:
        def headers(s: Any, actor: Any) -> dict[str, str | None]:
            frame = read_frame(state["data"], encoding=encoding.value or None, max_rows=5)
            return guess_mapping(list(frame.columns), s)

        guessed = ctx.run(headers)
        if guessed is not None:
            state["mapping"] = guessed
            draw_mapping()

    encoding.on_value_change(lambda: state["data"] is not None and read_headers())

    def draw_mapping() -> None:
        mapping_box.clear()
        options = {"": _("(ignore)"), **{t: _(t) for t in TARGETS}}
        options.update({t: t for t in state["mapping"].values() if t and t not in options})
        with mapping_box:
            ui.label(_("File {name}: columns and the fields they fill", name=state["name"]))
            for i, (header, target) in enumerate(state["mapping"].items()):
                with ui.row().classes("items-center gap-2"):
                    ui.label(header).classes("w-48 break-all")

                    def change(e: Any, header: str = header) -> None:
                        state["mapping"][header] = e.value or None

                    ui.select(options, value=target or "", on_change=change).props("dense").classes(
                        "w-56"
                    ).mark(f"map-{i}")

    def options() -> ImportOptions:
        return ImportOptions(
            mode=mode.value,
            match_key=key.value,
            mapping=dict(state["mapping"]),
            encoding=encoding.value or None,
            all_or_nothing=not valid_only.value,
        )

    def save() -> None:
        name = save_name.value
        ctx.run(
            lambda s, actor: save_mapping(
                s, actor=actor, name=name, columns=state["mapping"],
                mode=mode.value, match_key=key.value,
            ),
            ok=_("Mapping saved."),
        )  # fmt: skip
        load_saved()

    def go(dry_run: bool) -> None:
        if state["data"] is None:
            ui.notify(_("Choose a file first."), type="warning")
            return
        opts = options()
        rejected: list[ImportReport] = []

        def call(s: Any, actor: Any) -> ImportReport:
            fn = preview_import if dry_run else run_import
            try:
                return fn(
                    s, actor=actor, source=state["data"], file_name=state["name"], options=opts
                )
            except ImportRejected as exc:
                rejected.append(exc.report)
                raise

        report = ctx.run(call)
        show(report or (rejected[0] if rejected else None))
        if report is not None and not dry_run:
            ui.notify(_("Import finished."), type="positive")
            load_batches()

    def show(report: ImportReport | None) -> None:
        result.clear()
        if report is None:
            return
        with result:
            ui.label(_summary(_, report)).classes("font-medium").mark("import-summary")
            if report.already_imported:
                ui.label(_("This file was imported before.")).classes("text-warning")
            if report.issues:
                ui.label(_("Invalid rows")).classes("text-subtitle2")
                ui.table(
                    columns=[
                        {"name": "line", "label": _("Line"), "field": "line"},
                        {"name": "field", "label": _("Field"), "field": "field"},
                        {"name": "message", "label": _("Problem"), "field": "message"},
                    ],
                    rows=[vars(i) for i in report.issues[:200]],
                ).props("dense flat").mark("import-issues")
            if report.duplicates:
                ui.label(_("Possible duplicates")).classes("text-subtitle2")
                ui.table(
                    columns=[
                        {"name": "line", "label": _("Line"), "field": "line"},
                        {"name": "other", "label": _("Looks like"), "field": "other"},
                        {"name": "reason", "label": _("Why"), "field": "reason"},
                        {"name": "score", "label": _("Score"), "field": "score"},
                    ],
                    rows=[
                        {
                            "line": d.line,
                            "other": _("line {n}", n=d.other_line)
                            if d.other_line
                            else _("customer {n}", n=d.customer_id),
                            "reason": _(d.reason),
                            "score": f"{d.score:.2f}",
                        }
                        for d in report.duplicates[:200]
                    ],
                ).props("dense flat").mark("import-duplicates")
            for flag in report.erased[:50]:
                ui.label(_("Line {n}: the {field} belonged to an erased person.",
                           n=flag.line, field=_(flag.field))).classes("text-negative")  # fmt: skip
            rejects = report.rejects_csv()
            if rejects:
                ui.button(
                    _("Download the invalid rows"),
                    icon="download",
                    on_click=lambda: ui.download(rejects, "rejects.csv", "text/csv"),
                ).props("flat").mark("import-rejects")

    def load_batches() -> None:
        rows = ctx.run(lambda s, actor: list_batches(s, actor=actor, limit=10))
        batches_box.clear()
        with batches_box:
            for b in rows or []:
                with ui.row().classes("items-center gap-2").mark(f"batch-{b.id}"):
                    ui.label(
                        _("#{id} {when} {name}: {created} new, {updated} updated ({status})",
                          id=b.id, when=ctx.dt(b.created_at), name=b.file_name,
                          created=b.created_count, updated=b.updated_count, status=_(b.status))
                    ).classes("text-sm")  # fmt: skip
                    if b.status == "committed":
                        ui.button(_("Revert"), on_click=lambda b=b: revert(b.id)).props(
                            "flat dense"
                        ).mark(f"revert-{b.id}")

    def revert(batch_id: int) -> None:
        done = ctx.run(
            lambda s, actor: revert_batch(s, actor=actor, batch_id=batch_id),
            ok=_("Import {id} reverted.", id=batch_id),
        )
        if done is not None:
            load_batches()

    load_saved()
    load_batches()


def _summary(_: Any, report: ImportReport) -> str:
    if report.rejected:
        return _(
            "{invalid} of {total} rows are invalid: nothing was imported.",
            invalid=report.invalid,
            total=report.total,
        )
    text = _(
        "{total} rows: {created} new, {updated} updated, {unchanged} unchanged, "
        "{skipped} skipped, {invalid} invalid",
        **report.counts(),
    )
    return (_("Preview: ") + text) if report.dry_run else text


def export_buttons(ctx: PageContext, filters: CustomerFilter | None = None) -> None:
    """Export buttons for a list page: ``export_buttons(ctx, current_filter)``. The file holds
    what the user may see, shaped for their role; every export is audited."""
    _ = _t(ctx)
    if not ctx.can("export.run"):
        return

    def download(kind: str, fmt: str) -> None:
        def call(s: Any, actor: Any) -> bytes:
            buf = io.BytesIO()
            export(s, actor=actor, kind=kind, target=buf, fmt=fmt, filters=filters)
            return buf.getvalue()

        data = ctx.run(call)
        if data is not None:
            ui.download(data, f"{kind}.{fmt}")

    with ui.button(_("Export"), icon="download").props("flat").mark("export-menu"), ui.menu():
        for kind in KINDS:
            for fmt in ("csv", "xlsx"):
                ui.menu_item(
                    f"{_(kind)} ({fmt})", on_click=lambda k=kind, f=fmt: download(k, f)
                ).mark(f"export-{kind}-{fmt}")


@panel_page("/export", title="Export", icon="download", permission="export.run")
def export_page(ctx: PageContext) -> None:
    _ = _t(ctx)
    ui.label(_("Export lists")).classes("text-h6")
    ui.label(_("Files hold only what your role may see; masked fields stay masked.")).classes(
        "text-sm text-grey-8"
    )
    export_buttons(ctx)


PAGES = (import_page, export_page)
