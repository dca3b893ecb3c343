"""``CustomerExplorer``: filter widgets, a results table and one customer's profile and
timeline, all through the customer services (masking applies)."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w
import pandas as pd
from IPython.display import display

from crm_core import customers as customer_service
from crm_core.customers import CustomerFilter, CustomerOut
from crm_core.errors import CrmError
from crm_core.models import Lifecycle
from crm_core.reports.filters import filter_options
from crm_notebooks.context import NotebookContext
from crm_notebooks.frames import customers_frame, timeline_frame

TABLE_COLUMNS = [
    "id",
    "name",
    "company_name",
    "phone",
    "email",
    "province",
    "city",
    "industry",
    "lifecycle_stage",
    "value_tier",
    "owner_id",
    "tags",
]
PROFILE_FIELDS = [
    "id",
    "kind",
    "name",
    "company_name",
    "position",
    "phones",
    "emails",
    "industry",
    "source",
    "province",
    "city",
    "district",
    "street",
    "birthday",
    "lifecycle_stage",
    "value_tier",
    "owner_id",
    "tags",
    "last_contact_at",
    "archived_at",
    "field_mode",
]


def _pairs(values: list[str]) -> list[tuple[str, str]]:
    return [(v, v) for v in values]


class CustomerExplorer:
    """Filter customers, list them, and open one profile with its timeline.

    Attributes ``results`` (DataFrame of the last search), ``profile`` (``CustomerOut``) and
    ``timeline`` (DataFrame) hold what is shown, for use in the next cells.
    """

    def __init__(self, ctx: NotebookContext, *, page_size: int = 200) -> None:
        self.ctx = ctx
        self.page_size = page_size
        self.results = pd.DataFrame(columns=TABLE_COLUMNS)
        self.profile: CustomerOut | None = None
        self.timeline = pd.DataFrame()
        options = ctx.run(filter_options)
        self.query = w.Text(description="Search", placeholder="name, phone, e-mail, pinyin")
        self.lifecycle = w.Dropdown(
            description="Stage", options=[("any", "")] + [(s.value, s.value) for s in Lifecycle]
        )
        self.city = w.Dropdown(
            description="City",
            options=[("any", "")]
            + _pairs(sorted({c for cs in options.cities.values() for c in cs})),
        )
        self.tag = w.Dropdown(description="Tag", options=[("any", "")] + _pairs(options.tags))
        self.owner = w.Dropdown(description="Owner", options=[("any", 0)] + options.owners)
        self.archived = w.Checkbox(description="archived instead", value=False)
        self.search_button = w.Button(description="Search", button_style="primary")
        self.status = w.HTML()
        self.table = w.HTML()
        self.pick = w.Dropdown(description="Open", options=[])
        self.detail = w.HTML()
        self.search_button.on_click(lambda _b: self.search())
        self.query.continuous_update = False
        self.pick.observe(self._on_pick, names="value")
        self.widget = w.VBox(
            [
                w.HBox([self.query, self.search_button]),
                w.HBox([self.lifecycle, self.city, self.tag]),
                w.HBox([self.owner, self.archived]),
                self.status,
                self.table,
                self.pick,
                self.detail,
            ]
        )
        self.search()

    def filters(self) -> CustomerFilter:
        """The ``CustomerFilter`` the widgets describe."""
        return CustomerFilter(
            query=self.query.value.strip() or None,
            lifecycle_stage=self.lifecycle.value or None,
            city=self.city.value or None,
            tag=self.tag.value or None,
            owner_id=self.owner.value or None,
            archived=self.archived.value,
        )

    def search(self) -> pd.DataFrame:
        """Run the search the widgets describe and show the first page."""
        try:
            df = customers_frame(self.ctx, self.filters(), limit=self.page_size)
        except CrmError as exc:
            self.status.value = f"<b>{html.escape(str(exc))}</b>"
            return self.results
        self.results = df
        shown = df[[c for c in TABLE_COLUMNS if c in df.columns]]
        self.table.value = shown.to_html(index=False, na_rep="", escape=True, max_rows=50)
        more = " (first page)" if len(df) >= self.page_size else ""
        self.status.value = f"{len(df)} customers{more}"
        self.pick.options = [(f"{r.id} · {r.name}", int(r.id)) for r in df.itertuples()]
        return df

    def _on_pick(self, change: dict[str, Any]) -> None:
        if change.get("new"):
            self.show(int(change["new"]))

    def show(self, customer_id: int) -> CustomerOut | None:
        """Show one customer's profile and timeline."""
        try:
            self.profile = self.ctx.run(customer_service.get_customer, customer_id=customer_id)
            self.timeline = timeline_frame(self.ctx, customer_id)
        except CrmError as exc:
            self.profile, self.timeline = None, pd.DataFrame()
            self.detail.value = f"<b>{html.escape(str(exc))}</b>"
            return None
        data = self.profile.model_dump()
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
            f"<td>{html.escape('' if data.get(k) is None else str(data.get(k)))}</td></tr>"
            for k in PROFILE_FIELDS
        )
        custom = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in (data.get("custom") or {}).items()
        )
        history = self.timeline.to_html(index=False, escape=True, max_rows=100)
        self.detail.value = (
            f"<h3>{html.escape(str(data.get('name') or ''))}</h3>"
            f"<table>{rows}{custom}</table><h4>Timeline</h4>{history}"
        )
        return self.profile

    def _ipython_display_(self) -> None:
        display(self.widget)
