"""The report builder page: pick a source, filters, one or two groupings, a measure and a chart;
preview it, save it, pin it to the personal or shared dashboard, export it as HTML or Excel.
Every computation is ``crm_core.lowcode.report_builder`` under the user's access rights."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from app.frame import PageContext, panel_page
from crm_core.i18n import translator
from crm_core.lowcode import report_builder as rb
from crm_core.lowcode.records import Condition
from crm_core.lowcode.report_builder import Grouping, ReportDefinition
from crm_core.models import utcnow

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@panel_page(
    "/reports/builder", title="Report builder", icon="query_stats", permission="reports.read"
)
def report_builder_page(ctx: PageContext) -> None:
    _ = translator(ctx.locale, "lowcode")
    found = ctx.run(lambda s, actor: rb.sources(s, actor=actor)) or {}
    state: dict[str, Any] = {"fields": {}}
    grains = {g: _(g.capitalize()) for g in rb.GRAINS}
    with ui.card().classes("w-full").mark("builder"):
        with ui.row().classes("w-full items-center gap-2"):
            source = ui.select(found, label=_("Source"), value=next(iter(found), None))
            source.props("dense outlined").classes("min-w-[12rem]").mark("rb-source")
            group1 = ui.select({}, label=_("Group by")).props("dense outlined")
            group1.classes("min-w-[10rem]").mark("rb-group1")
            grain1 = ui.select(grains, value="month", label=_("Period")).props("dense outlined")
            grain1.mark("rb-grain1")
            group2 = ui.select({}, label=_("Then by")).props("dense outlined clearable")
            group2.classes("min-w-[10rem]").mark("rb-group2")
            grain2 = ui.select(grains, value="month", label=_("Period")).props("dense outlined")
            grain2.mark("rb-grain2")
        with ui.row().classes("w-full items-center gap-2"):
            measure = ui.select({m: _(m) for m in rb.MEASURES}, value="count", label=_("Measure"))
            measure.props("dense outlined").mark("rb-measure")
            measure_field = ui.select({}, label=_("Of field")).props("dense outlined clearable")
            measure_field.classes("min-w-[10rem]").mark("rb-measure-field")
            chart = ui.select({c: _(c) for c in rb.CHARTS}, value="bar", label=_("Chart"))
            chart.props("dense outlined").mark("rb-chart")
            f_field = ui.select({}, label=_("Filter field")).props("dense outlined clearable")
            f_field.classes("min-w-[10rem]").mark("rb-filter-field")
            f_op = ui.select(["eq", "ne", "lt", "lte", "gt", "gte", "contains"], value="eq")
            f_op.props("dense outlined").mark("rb-filter-op")
            f_value = ui.input(_("Value")).props("dense outlined").mark("rb-filter-value")
        with ui.row().classes("w-full items-center gap-2"):
            ui.button(_("Preview"), icon="visibility", on_click=lambda: preview()).mark(
                "rb-preview"
            )
            name = ui.input(_("Report name")).props("dense outlined").mark("rb-name")
            ui.button(_("Save"), icon="save", on_click=lambda: save()).props("flat").mark("rb-save")
    result = ui.column().classes("w-full").mark("rb-result")

    def fields_changed() -> None:
        def read(s: Any, actor: Any) -> list[Any]:
            return rb.source_fields(s, source.value)

        fields = ctx.run(read) if source.value else []
        state["fields"] = {f.key: f for f in fields or []}
        label = {f.key: (f.label_zh if ctx.locale == "zh" and f.label_zh else f.label_en)
                 for f in fields or []}  # fmt: skip
        groupable = {k: v for k, v in label.items() if state["fields"][k].kind != "number"}
        numeric = {k: v for k, v in label.items() if state["fields"][k].kind == "number"}
        group1.set_options(groupable, value=next(iter(groupable), None))
        group2.set_options(groupable, value=None)
        measure_field.set_options(numeric, value=None)
        f_field.set_options(label, value=None)

    source.on_value_change(fields_changed)
    fields_changed()

    def definition() -> ReportDefinition:
        groups = []
        for field, grain in ((group1.value, grain1.value), (group2.value, grain2.value)):
            if field:
                kind = state["fields"][field].kind
                groups.append(Grouping(field, grain if kind == "date" else None))
        filters = []
        if f_field.value and (f_value.value or "").strip():
            filters.append(Condition(f_field.value, f_op.value, f_value.value.strip()))
        return ReportDefinition(
            source=source.value or "", group_by=tuple(groups), measure=measure.value,
            measure_field=measure_field.value, filters=tuple(filters), chart=chart.value,
        )  # fmt: skip

    def show(built: rb.BuiltReport) -> None:
        result.clear()
        with result:
            ui.plotly(built.figure).classes("w-full h-96").mark("rb-chart-view")
            rows = built.frame.to_dict(orient="records")
            cols = [
                {"name": c, "label": c, "field": c, "align": "left"} for c in built.frame.columns
            ]
            ui.table(columns=cols, rows=rows).classes("w-full").mark("rb-table")

    def preview() -> None:
        built = ctx.run(
            lambda s, actor: rb.build(
                s, actor=actor, definition=definition(), name=name.value or _("Preview"),
                locale=ctx.locale,
            )
        )  # fmt: skip
        if built is not None:
            state["last"] = built
            show(built)

    def save() -> None:
        done = ctx.run(
            lambda s, actor: (
                rb.save_report(s, actor=actor, name=name.value or "", definition=definition()).id
            ),
            ok=_("Report saved."),
        )
        if done is not None:
            draw_saved()

    def pin(report_id: int, where: str | None) -> None:
        done = ctx.run(
            lambda s, actor: rb.pin_report(s, actor=actor, report_id=report_id, dashboard=where),
            ok=_("Dashboard updated."),
        )
        if done is not None:
            draw_saved()

    def export(report_id: int, fmt: str) -> None:
        data = ctx.run(
            lambda s, actor: rb.export_saved(
                s, actor=actor, report_id=report_id, fmt=fmt, locale=ctx.locale
            )
        )
        if data is not None:
            ui.download.content(
                data,
                f"report-{report_id}-{utcnow():%Y%m%d-%H%M}.{fmt}",
                media_type="text/html" if fmt == "html" else XLSX,
            )

    def open_saved(report_id: int) -> None:
        built = ctx.run(
            lambda s, actor: rb.run_saved(s, actor=actor, report_id=report_id, locale=ctx.locale)
        )
        if built is not None:
            show(built)

    ui.label(_("Saved reports")).classes("text-h6")

    saved_box = ui.column().classes("w-full gap-1").mark("rb-saved")

    def draw_saved() -> None:
        reports = ctx.run(
            lambda s, actor: [
                (r.id, r.name, r.dashboard, r.owner_id == actor.id)
                for r in rb.list_reports(s, actor=actor)
            ]
        )
        places = {"": _("Not pinned"), "personal": _("My dashboard")}
        if ctx.user.role in rb.SHARE_ROLES:
            places["shared"] = _("Shared dashboard")
        saved_box.clear()
        with saved_box:
            for rid, title, where, own in reports or []:
                with ui.row().classes("items-center gap-2").mark(f"saved-{rid}"):
                    ui.button(title, on_click=lambda _e, rid=rid: open_saved(rid)).props(
                        "flat dense no-caps"
                    ).mark(f"open-{rid}")
                    if own:
                        options = {
                            **places,
                            **({where: where} if where and where not in places else {}),
                        }
                        ui.select(
                            options,
                            value=where or "",
                            on_change=lambda e, rid=rid: pin(rid, e.value or None),
                        ).props("dense outlined").mark(f"pin-{rid}")
                    elif where:
                        ui.badge(_("Shared")).props("outline")
                    ui.button("HTML", on_click=lambda _e, rid=rid: export(rid, "html")).props(
                        "flat dense"
                    ).mark(f"html-{rid}")
                    ui.button("Excel", on_click=lambda _e, rid=rid: export(rid, "xlsx")).props(
                        "flat dense"
                    ).mark(f"xlsx-{rid}")

    draw_saved()


@panel_page("/reports/pinned", title="My reports", icon="dashboard", permission="reports.read")
def pinned_reports_page(ctx: PageContext) -> None:
    """The user's dashboard of pinned reports: personal pins first, then the shared ones."""
    _ = translator(ctx.locale, "lowcode")

    def read(s: Any, actor: Any) -> list[rb.BuiltReport]:
        return [
            rb.run_saved(s, actor=actor, report_id=r.id, locale=ctx.locale)
            for r in rb.dashboard_reports(s, actor=actor)
        ]

    built = ctx.run(read) or []
    if not built:
        ui.label(_("Nothing pinned yet: pin reports in the report builder.")).classes("text-grey-7")
    with ui.grid(columns="repeat(auto-fit, minmax(420px, 1fr))").classes("w-full gap-3"):
        for report in built:
            with ui.card().classes("w-full").mark(f"pinned-{report.id}"):
                ui.plotly(report.figure).classes("w-full h-96")


PAGES = (report_builder_page, pinned_reports_page)
