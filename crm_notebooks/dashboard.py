"""``Dashboard``: the report figures with dropdowns for the common filters, redrawn in place
when a filter changes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import ipywidgets as w
from IPython.display import display

from crm_core.errors import CrmError
from crm_core.i18n import translator
from crm_core.reports import (
    DASHBOARD,
    ReportFilter,
    ReportResult,
    build_dashboard,
    sales_kpis,
    sales_performance,
)
from crm_core.reports.filters import filter_options
from crm_notebooks.context import NotebookContext


class Dashboard:
    """Report figures for the notebook's user, with the common filters.

    ``results`` holds the last computed reports (frame and figure each); ``refresh()`` recomputes
    them for the current filter values (it runs on every filter change).
    """

    def __init__(
        self,
        ctx: NotebookContext,
        *,
        keys: Sequence[str] = DASHBOARD,
        locale: str | None = None,
        now: datetime | None = None,
    ) -> None:
        self.ctx = ctx
        self.keys = tuple(keys)
        self.now = now
        self.locale = locale or ctx.locale
        self.results: dict[str, ReportResult] = {}
        _ = translator(self.locale, "reports")
        options = ctx.run(filter_options)
        self._cities = options.cities
        any_ = _("Any")
        self.owner = w.Dropdown(description=_("Owner"), options=[(any_, 0)] + options.owners)
        self.team = w.Dropdown(description=_("Team"), options=[(any_, 0)] + options.teams)
        self.tag = w.Dropdown(
            description=_("Tag"), options=[(any_, "")] + [(t, t) for t in options.tags]
        )
        self.province = w.Dropdown(
            description=_("Province"), options=[(any_, "")] + [(p, p) for p in options.provinces]
        )
        self.city = w.Dropdown(description=_("City"), options=self._city_options(""))
        self.date_from = w.DatePicker(description=_("From"))
        self.date_to = w.DatePicker(description=_("To"))
        self.status = w.HTML()
        self.kpis = w.HTML()
        self.outputs = {key: w.Output() for key in self.keys}
        self._muted = False
        for control in (self.owner, self.team, self.tag, self.city, self.date_from, self.date_to):
            control.observe(self._changed, names="value")
        self.province.observe(self._province_changed, names="value")
        self.widget = w.VBox(
            [
                w.HBox([self.owner, self.team, self.tag]),
                w.HBox([self.province, self.city]),
                w.HBox([self.date_from, self.date_to]),
                self.status,
                self.kpis,
                *self.outputs.values(),
            ]
        )
        self.refresh()

    def _city_options(self, province: str) -> list[Any]:
        any_ = translator(self.locale, "reports")("Any")
        if province:
            cities = self._cities.get(province, [])
        else:
            cities = sorted({c for cs in self._cities.values() for c in cs})
        return [(any_, "")] + [(c, c) for c in cities]

    def filters(self) -> ReportFilter:
        """The ``ReportFilter`` the widgets describe."""
        return ReportFilter(
            date_from=self.date_from.value,
            date_to=self.date_to.value,
            owner_id=self.owner.value or None,
            team_id=self.team.value or None,
            tag=self.tag.value or None,
            province=self.province.value or None,
            city=self.city.value or None,
        )

    def _province_changed(self, _change: dict[str, Any]) -> None:
        self._muted = True
        try:
            self.city.options = self._city_options(self.province.value)
            self.city.value = ""
        finally:
            self._muted = False
        self.refresh()

    def _changed(self, _change: dict[str, Any]) -> None:
        if not self._muted:
            self.refresh()

    def refresh(self) -> dict[str, ReportResult]:
        """Recompute every report for the current filters and redraw the figures."""
        _ = translator(self.locale, "reports")
        filters = self.filters()
        try:
            with self.ctx.session() as session:
                results = build_dashboard(
                    session,
                    actor=self.ctx.user,
                    filters=filters,
                    locale=self.locale,
                    now=self.now,
                    keys=self.keys,
                )
                if "performance" in self.keys:
                    performance = next(r.frame for r in results if r.key == "performance")
                else:
                    performance = sales_performance(session, actor=self.ctx.user, filters=filters)
        except CrmError as exc:
            self.status.value = f"<b>{exc}</b>"
            return self.results
        self.results = {r.key: r for r in results}
        k = sales_kpis(performance)
        rate = "–" if k["win_rate"] != k["win_rate"] else f"{k['win_rate']:.0%}"
        self.kpis.value = (
            f"<b>{_('Deals')}</b>: {k['deals']:.0f} · <b>{_('Win rate')}</b>: {rate} · "
            f"<b>{_('Won amount')}</b>: {k['won_amount']:,.2f}"
        )
        seconds = sum(r.seconds for r in results)
        self.status.value = _("{count} reports in {seconds} s").format(
            count=len(results), seconds=f"{seconds:.2f}"
        )
        for key, output in self.outputs.items():
            output.clear_output(wait=True)
            with output:
                display(self.results[key].figure)
        return self.results

    def _ipython_display_(self) -> None:
        display(self.widget)
