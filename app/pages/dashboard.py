"""The managers' dashboard: the report figures with the common filters, and exports of the
reports as a self-contained HTML page or an Excel workbook, and of one figure as a PNG."""

from __future__ import annotations

from datetime import date
from typing import Any

from nicegui import run, ui

from app.frame import PageContext, panel_page
from crm_core import reports
from crm_core.i18n import translator
from crm_core.models import utcnow
from crm_core.reports.filters import filter_options

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@panel_page("/dashboard", title="Dashboard", icon="insights", permission="reports.read")
def dashboard_page(ctx: PageContext) -> None:
    _ = translator(ctx.locale, "reports")
    options = ctx.run(lambda s, actor: filter_options(s, actor=actor))
    if options is None:
        return
    any_ = _("Any")
    with ui.row().classes("w-full items-center gap-2"):
        owner = ui.select({0: any_, **{uid: n for n, uid in options.owners}}, value=0)
        owner.props(f'dense outlined label="{_("Owner")}"').classes("min-w-[10rem]")
        owner.mark("filter-owner")
        team = ui.select({0: any_, **{tid: n for n, tid in options.teams}}, value=0)
        team.props(f'dense outlined label="{_("Team")}"').classes("min-w-[8rem]")
        team.mark("filter-team")
        tag = ui.select({"": any_, **{t: t for t in options.tags}}, value="")
        tag.props(f'dense outlined label="{_("Tag")}"').classes("min-w-[8rem]").mark("filter-tag")
        province = ui.select({"": any_, **{p: p for p in options.provinces}}, value="")
        province.props(f'dense outlined label="{_("Province")}"').classes("min-w-[8rem]")
        province.mark("filter-province")
        city = ui.select({"": any_}, value="")
        city.props(f'dense outlined label="{_("City")}"').classes("min-w-[8rem]")
        city.mark("filter-city")
        date_from = ui.input(_("From")).props("dense outlined type=date").mark("filter-from")
        date_to = ui.input(_("To")).props("dense outlined type=date").mark("filter-to")

    def city_options() -> None:
        if province.value:
            cities = options.cities.get(province.value, [])
        else:
            cities = sorted({c for cs in options.cities.values() for c in cs})
        city.set_options({"": any_, **{c: c for c in cities}}, value="")

    city_options()

    def current() -> reports.ReportFilter:
        return reports.ReportFilter(
            owner_id=owner.value or None,
            team_id=team.value or None,
            tag=tag.value or None,
            province=province.value or None,
            city=city.value or None,
            date_from=_day(date_from.value),
            date_to=_day(date_to.value),
        )

    state: dict[str, Any] = {"results": {}}

    with ui.row().classes("w-full items-center gap-2"):
        chosen = ui.select(
            {"": _("All reports"), **{k: _(reports.REPORTS[k].title) for k in reports.DASHBOARD}},
            value="",
        )
        chosen.props(f'dense outlined label="{_("Export")}"').classes("min-w-[14rem]")
        chosen.mark("export-choice")
        ui.button("HTML", icon="download", on_click=lambda: export("html")).props("flat").mark(
            "export-html"
        )
        ui.button("Excel", icon="download", on_click=lambda: export("xlsx")).props("flat").mark(
            "export-xlsx"
        )
        ui.button("PNG", icon="image", on_click=lambda: png()).props("flat").mark("export-png")
        status = ui.label("").classes("text-sm text-grey-7").mark("dashboard-status")

    def export(fmt: str) -> None:
        keys = [chosen.value] if chosen.value else list(reports.DASHBOARD)
        data = ctx.run(
            lambda s, actor: reports.export_report(
                s, actor=actor, fmt=fmt, keys=keys, filters=current(), locale=ctx.locale
            )
        )
        if data is None:
            return
        stamp = f"{utcnow():%Y%m%d-%H%M}"
        name = f"crm-{chosen.value or 'dashboard'}-{stamp}.{fmt}"
        media = "text/html" if fmt == "html" else XLSX
        ui.download.content(data, name, media_type=media)

    async def png() -> None:
        key = chosen.value or reports.DASHBOARD[0]
        result = state["results"].get(key)
        if result is None:
            return
        try:
            image = await run.io_bound(reports.to_png, result.figure)
        except reports.ExportUnavailable as exc:
            ui.notify(str(exc), type="warning", multi_line=True)
            return
        ui.download.content(image, f"crm-{key}-{utcnow():%Y%m%d-%H%M}.png", media_type="image/png")

    @ui.refreshable
    def charts() -> None:
        results = ctx.run(
            lambda s, actor: reports.build_dashboard(
                s, actor=actor, filters=current(), locale=ctx.locale
            )
        )
        if results is None:
            return
        state["results"] = {r.key: r for r in results}
        seconds = sum(r.seconds for r in results)
        status.set_text(
            _("{count} reports in {seconds} s").format(count=len(results), seconds=f"{seconds:.2f}")
        )
        with ui.grid(columns="repeat(auto-fit, minmax(420px, 1fr))").classes("w-full gap-3"):
            for result in results:
                with ui.card().classes("w-full").mark(f"report-{result.key}"):
                    ui.plotly(result.figure).classes("w-full h-96").mark(f"chart-{result.key}")

    for element in (owner, team, tag, city):
        element.on_value_change(lambda: charts.refresh())
    for element in (date_from, date_to):
        element.on("change", lambda: charts.refresh())

    def province_changed() -> None:
        had_city = bool(city.value)
        city_options()  # clearing a chosen city refreshes through the city's own handler
        if not had_city:
            charts.refresh()

    province.on_value_change(province_changed)
    charts()
