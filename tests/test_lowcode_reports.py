"""Report builder and form layouts on SQLite and PostgreSQL: results against hand-computed
expectations, periods, access rights of the viewer, saved reports, dashboards and exports."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import select

from crm_core import activities
from crm_core import customers as customer_svc
from crm_core.errors import InvalidInput, NotFound, PermissionDenied
from crm_core.lowcode import layouts
from crm_core.lowcode import modules as mod
from crm_core.lowcode import records as rec
from crm_core.lowcode import report_builder as rb
from crm_core.lowcode.records import Condition
from crm_core.lowcode.report_builder import Grouping, ReportDefinition
from crm_core.models import AuditEntry, Deal


def _customer(s, actor, name):
    return customer_svc.create_customer(s, actor=actor, data={"name": name}).id


@pytest.fixture
def data(db, staff):
    """Two sales users' customers with deals and a Contracts module with dated values."""
    with db.transaction() as s:
        c1 = _customer(s, staff.sales1, "One")
        c2 = _customer(s, staff.sales2, "Two")
        deals = [  # (customer, actor, amount, stage, created)
            (c1, staff.sales1, 100, "new", datetime(2026, 1, 5, tzinfo=UTC)),
            (c1, staff.sales1, 250, "proposal", datetime(2026, 1, 20, tzinfo=UTC)),
            (c1, staff.sales1, 50, "new", datetime(2026, 2, 2, tzinfo=UTC)),
            (c2, staff.sales2, 1000, "new", datetime(2026, 4, 1, tzinfo=UTC)),
        ]
        for cid, actor, amount, stage, created in deals:
            deal = activities.create_deal(s, actor=actor, customer_id=cid, title="d", amount=amount,
                                          stage=stage)  # fmt: skip
            deal.created_at = created
        mod.define_module(s, actor=staff.admin, key="contracts", name_en="Contracts",
                          name_zh="合同", fields=[
            {"key": "title", "label_en": "Title", "field_type": "text", "required": True},
            {"key": "region", "label_en": "Region", "field_type": "choice",
             "choices": ["North", "South"]},
            {"key": "signed", "label_en": "Signed", "field_type": "date"},
            {"key": "value", "label_en": "Value", "field_type": "money"},
            {"key": "customer", "label_en": "Customer", "field_type": "customer"},
        ])  # fmt: skip
        rows = [  # (actor, customer, region, signed, value)
            (staff.sales1, c1, "North", "2026-01-31", "10.50"),
            (staff.sales1, c1, "North", "2026-03-01", "20"),
            (staff.sales1, c1, "South", "2026-03-15", "5"),
            (staff.sales2, c2, "North", "2026-02-01", "100"),
            (staff.sales2, c2, "South", "2026-05-04", None),
        ]
        for n, (actor, cid, region, signed, value) in enumerate(rows):
            rec.create_record(s, actor=actor, module_key="contracts", data={
                "title": f"K{n}", "region": region, "signed": signed, "value": value,
                "customer": cid})  # fmt: skip
    return {"c1": c1, "c2": c2}


def run(db, actor, **kwargs):
    with db.transaction() as s:
        return rb.run_definition(s, actor=actor, definition=ReportDefinition(**kwargs))


def as_rows(df):
    return [tuple(r) for r in df.itertuples(index=False)]


def test_builtin_source_sum_by_stage_and_month_matches_hand_computed(db, staff, data):
    df = run(db, staff.admin, source="deals", measure="sum", measure_field="amount",
             group_by=[Grouping("created_at", "month"), Grouping("stage")])  # fmt: skip
    assert list(df.columns) == ["Created (month)", "Stage", "value"]
    assert as_rows(df) == [
        ("2026-01", "new", 100.0), ("2026-01", "proposal", 250.0), ("2026-02", "new", 50.0),
        ("2026-04", "new", 1000.0),
    ]  # fmt: skip
    # the viewer's rights: sales1 sees only the deals of their own customer
    mine = run(db, staff.sales1, source="deals", measure="count",
               group_by=[Grouping("created_at", "quarter")])  # fmt: skip
    assert as_rows(mine) == [("2026-Q1", 3.0)]
    everyone = run(db, staff.admin, source="deals", measure="avg", measure_field="amount",
                   group_by=[Grouping("created_at", "quarter")])  # fmt: skip
    assert as_rows(everyone) == [("2026-Q1", pytest.approx(400 / 3)), ("2026-Q2", 1000.0)]
    weeks = run(db, staff.admin, source="deals", measure="max", measure_field="amount",
                group_by=[Grouping("created_at", "week")],
                filters=[Condition("stage", "eq", "new")])  # fmt: skip
    # 2026-01-05 is a Monday; 2026-02-02 a Monday; 2026-04-01 a Wednesday (week of 03-30)
    assert as_rows(weeks) == [("2026-01-05", 100.0), ("2026-02-02", 50.0), ("2026-03-30", 1000.0)]
    customers = run(
        db, staff.manager, source="customers", group_by=[Grouping("created_at", "year")]
    )
    assert as_rows(customers) == [(str(datetime.now(UTC).year), 1.0)]  # team A: One only


def test_module_source_grouped_by_choice_and_date(db, staff, data):
    by_region = run(db, staff.admin, source="module:contracts", measure="sum",
                    measure_field="value", group_by=[Grouping("region")])  # fmt: skip
    assert as_rows(by_region) == [("North", 130.5), ("South", 5.0)]
    counts = run(db, staff.admin, source="module:contracts",
                 group_by=[Grouping("signed", "month"), Grouping("region")])  # fmt: skip
    assert as_rows(counts) == [
        ("2026-01", "North", 1.0), ("2026-02", "North", 1.0), ("2026-03", "North", 1.0),
        ("2026-03", "South", 1.0), ("2026-05", "South", 1.0),
    ]  # fmt: skip
    filtered = run(db, staff.admin, source="module:contracts", measure="min", measure_field="value",
                   group_by=[Grouping("signed", "quarter")],
                   filters=[Condition("signed", "gte", "2026-02-01")])  # fmt: skip
    assert as_rows(filtered) == [("2026-Q1", 5.0)]
    mine = run(db, staff.sales1, source="module:contracts", measure="sum", measure_field="value",
               group_by=[Grouping("region")])  # fmt: skip
    assert as_rows(mine) == [("North", 30.5), ("South", 5.0)]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"source": "nothing", "group_by": [Grouping("x")]}, "source"),
        ({"source": "deals", "group_by": []}, "group_by"),
        ({"source": "deals", "group_by": [Grouping("created_at")]}, "grain"),
        ({"source": "deals", "group_by": [Grouping("stage")], "measure": "sum"}, "measure_field"),
        ({"source": "deals", "group_by": [Grouping("stage")], "chart": "radar"}, "chart"),
        ({"source": "deals", "group_by": [Grouping("amount")]}, "group_by"),
    ],
)
def test_invalid_definitions_name_the_problem(db, staff, kwargs, field):
    with pytest.raises(InvalidInput) as err, db.transaction() as s:
        rb.run_definition(s, actor=staff.admin, definition=ReportDefinition(**kwargs))
    assert err.value.field == field


def test_saved_reports_dashboards_figures_and_exports(db, staff, data):
    definition = ReportDefinition(source="deals", measure="sum", measure_field="amount",
                                  group_by=[Grouping("stage")], chart="pie")  # fmt: skip
    with db.transaction() as s:
        report = rb.save_report(
            s, actor=staff.manager, name="Pipeline by stage", definition=definition
        )
        rid = report.id
        rb.pin_report(s, actor=staff.manager, report_id=rid, dashboard="shared")
    with pytest.raises(PermissionDenied), db.transaction() as s:
        mine = rb.save_report(s, actor=staff.sales1, name="Mine", definition=definition)
        rb.pin_report(s, actor=staff.sales1, report_id=mine.id, dashboard="shared")
    with db.transaction() as s:
        mine = rb.save_report(s, actor=staff.sales1, name="Mine", definition=definition)
        rb.pin_report(s, actor=staff.sales1, report_id=mine.id, dashboard="personal")
        assert [r.name for r in rb.dashboard_reports(s, actor=staff.sales1)] == [
            "Mine",
            "Pipeline by stage",
        ]
        assert [r.name for r in rb.dashboard_reports(s, actor=staff.sales2)] == [
            "Pipeline by stage"
        ]
        # the shared report runs under each viewer's own rights
        seen_by_manager = rb.run_saved(s, actor=staff.manager, report_id=rid)
        seen_by_sales2 = rb.run_saved(s, actor=staff.sales2, report_id=rid)
        assert as_rows(seen_by_manager.frame) == [("new", 150.0), ("proposal", 250.0)]
        assert as_rows(seen_by_sales2.frame) == [("new", 1000.0)]
        pie = seen_by_manager.figure.data[0]
        assert pie.type == "pie" and list(pie.values) == [150.0, 250.0]
        assert seen_by_manager.figure.layout.title.text == "Pipeline by stage"
    with pytest.raises(NotFound), db.transaction() as s:  # personal reports stay private
        rb.run_saved(s, actor=staff.sales2, report_id=mine.id)
    with pytest.raises(PermissionDenied), db.transaction() as s:
        rb.save_report(s, actor=staff.sales2, name="x", definition=definition, report_id=rid)
    with db.transaction() as s:
        html = rb.export_saved(s, actor=staff.manager, report_id=rid, fmt="html").decode()
        xlsx = rb.export_saved(s, actor=staff.manager, report_id=rid, fmt="xlsx")
        assert s.scalar(select(AuditEntry.id).where(AuditEntry.action == "saved_report.export"))
    assert "Plotly.newPlot" in html and "Pipeline by stage" in html
    sheet = pd.read_excel(io.BytesIO(xlsx))
    assert sheet["value"].sum() == 400.0
    for chart, trace in [
        ("bar", "bar"),
        ("line", "scatter"),
        ("funnel", "funnel"),
        ("table", "table"),
    ]:
        with db.transaction() as s:
            built = rb.build(s, actor=staff.admin, definition=ReportDefinition(
                source="deals", group_by=[Grouping("stage")], chart=chart))  # fmt: skip
        assert built.figure.data[0].type == trace


def test_report_sources_need_report_rights(db, staff, data):
    with pytest.raises(PermissionDenied), db.transaction() as s:
        rb.run_definition(s, actor=staff.support, definition=ReportDefinition(
            source="deals", group_by=[Grouping("stage")]))  # fmt: skip
    with db.transaction() as s:
        assert "module:contracts" in rb.sources(s, actor=staff.analyst)
        assert s.scalar(select(Deal.id)) is not None


def test_layouts_arrange_help_and_hide_fields_per_role(db, staff, data):
    with db.transaction() as s:
        plain = layouts.resolve_layout(s, actor=staff.sales1, entity="module:contracts")
        assert [sec.title_en for sec in plain.sections] == ["Details"]
        assert plain.keys == ["title", "region", "signed", "value", "customer"]
        layouts.save_layout(
            s, actor=staff.admin, entity="module:contracts",
            sections=[{"title_en": "Deal", "title_zh": "交易", "columns": 1,
                       "fields": ["value", "title"]}],
            help={"value": "Net of tax"}, hidden={"value": ["sales"]},
        )  # fmt: skip
        admin_view = layouts.resolve_layout(s, actor=staff.admin, entity="module:contracts")
        assert [(x.title("zh"), [f.key for f in x.fields]) for x in admin_view.sections] == [
            ("交易", ["value", "title"]), ("更多", ["region", "signed", "customer"]),
        ]  # fmt: skip
        assert admin_view.sections[0].fields[0].help_text == "Net of tax"
        sales_view = layouts.resolve_layout(s, actor=staff.sales1, entity="module:contracts")
        assert sales_view.keys == ["title", "region", "signed", "customer"]
        # the customer page uses the same mechanism, custom fields included
        from crm_core.customfields import define_field

        define_field(s, actor=staff.admin, key="plan", label_en="Plan", field_type="text")
        layouts.save_layout(s, actor=staff.admin, entity="customer",
                            sections=[{"title_en": "Basics", "fields": ["name", "custom.plan"]}],
                            hidden={"notes": ["support", "analyst"]})  # fmt: skip
        view = layouts.resolve_layout(s, actor=staff.support, entity="customer")
        assert view.keys[:2] == ["name", "custom.plan"] and "notes" not in view.keys
        assert "notes" in layouts.resolve_layout(s, actor=staff.admin, entity="customer").keys
    for bad in (
        {"sections": [{"title_en": "A", "fields": ["nope"]}]},
        {"sections": [{"title_en": "A", "fields": ["title", "title"]}]},
        {"sections": [{"title_en": "", "fields": []}]},
        {"sections": [{"title_en": "A", "columns": 9}]},
        {"sections": [], "hidden": {"title": ["king"]}},
    ):
        with pytest.raises(InvalidInput), db.transaction() as s:
            layouts.save_layout(s, actor=staff.admin, entity="module:contracts", **bad)
    with pytest.raises(PermissionDenied), db.transaction() as s:
        layouts.save_layout(s, actor=staff.manager, entity="customer", sections=[])


def test_notebook_frames_apply_the_same_rules(db, staff, data):
    import crm_notebooks as crm
    from crm_notebooks.context import NotebookContext

    sales = NotebookContext(db=db, user=staff.sales1)
    frame = crm.module_frame(sales, "contracts")
    assert sorted(frame["title"]) == ["K0", "K1", "K2"]  # own customer's records only
    assert list(crm.module_frame(sales, "contracts", region="South")["title"]) == ["K2"]
    labelled = crm.module_frame(NotebookContext(db=db, user=staff.admin, locale="en"),
                                "contracts", labels=True)  # fmt: skip
    assert {"Title", "Region", "Value"} <= set(labelled.columns) and len(labelled) == 5
    assert list(crm.modules_frame(sales)["key"]) == ["contracts"]
    with db.transaction() as s:
        rid = rb.save_report(s, actor=staff.sales1, name="By region", definition=ReportDefinition(
            source="module:contracts", group_by=[Grouping("region")])).id  # fmt: skip
    df, fig = crm.saved_report(sales, rid)
    assert as_rows(df) == [("North", 2.0), ("South", 1.0)] and fig.data[0].type == "bar"


def test_chinese_catalogue_covers_the_low_code_pages():
    import re
    from pathlib import Path

    from crm_core.i18n import _catalog

    root = Path(__file__).resolve().parent.parent / "app" / "pages"
    source = (root / "modules.py").read_text() + (root / "reports_builder.py").read_text()
    source += (root / "layout_editor.py").read_text()
    source += (root.parent / "components" / "record_form.py").read_text()
    used = set(re.findall(r'_\(\s*"([^"]+)"', source))
    missing = sorted(m for m in used if m not in _catalog("zh", "lowcode"))
    assert not missing, missing
