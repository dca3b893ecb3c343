"""Figures (labelled in English and Chinese), the dashboard catalogue and the exports."""

from __future__ import annotations

import io
import shutil

import pandas as pd
import pytest
from reports_dataset import NOW, build
from sqlalchemy import select

from crm_core import reports
from crm_core.errors import PermissionDenied
from crm_core.models import AuditEntry
from crm_core.reports import figures


@pytest.fixture
def data(db, staff):
    return build(db, staff)


def test_every_dashboard_figure_has_title_and_axis_labels_in_both_languages(db, staff, data):
    with db.transaction() as s:
        en = reports.build_dashboard(s, actor=staff.admin, locale="en", now=NOW)
        zh = reports.build_dashboard(s, actor=staff.admin, locale="zh", now=NOW)
    assert [r.key for r in en] == list(reports.DASHBOARD)
    for e, z in zip(en, zh, strict=True):
        assert e.figure.layout.title.text and z.figure.layout.title.text
        assert e.figure.layout.title.text != z.figure.layout.title.text, e.key
        assert len(e.figure.data) >= 1, e.key
        assert all(trace.hovertemplate for trace in z.figure.data), e.key
        pd.testing.assert_frame_equal(e.frame, z.frame)
    by_key = {r.key: r for r in zh}
    assert by_key["funnel"].figure.layout.title.text == "销售漏斗"
    assert list(by_key["funnel"].figure.data[0].y) == ["新建", "已确认", "方案报价", "谈判", "赢单"]
    assert "阶段" in by_key["funnel"].figure.data[0].hovertemplate
    assert by_key["revenue"].figure.layout.xaxis.title.text == "月份"
    assert "收入" in by_key["revenue"].figure.data[0].hovertemplate
    industry = by_key["industry"].figure
    assert "未知" in list(industry.data[0].y)  # c5 has no industry


def test_figures_carry_the_frame_numbers(db, staff, data):
    with db.transaction() as s:
        revenue = reports.revenue_by_month(s, actor=staff.admin)
        cohorts = reports.cohort_retention(s, actor=staff.admin)
        funnel = reports.sales_funnel(s, actor=staff.admin)
    fig = figures.revenue_figure(revenue)
    assert list(fig.data[0].x) == list(revenue["month"])
    assert list(fig.data[0].y) == list(revenue["revenue"])
    heat = figures.cohort_figure(cohorts).data[0]
    assert list(heat.y) == ["2025-01", "2025-02", "2025-12"] and heat.z[0][0] == 1.0
    assert list(figures.funnel_figure(funnel).data[0].x) == [6.0, 5.0, 4.0, 3.0, 2.0]


def test_empty_frames_draw_a_message_not_an_error(db, staff):
    with db.transaction() as s:
        results = reports.build_dashboard(s, actor=staff.admin, locale="zh", now=NOW)
    for result in results:
        texts = [a.text for a in result.figure.layout.annotations]
        assert "当前筛选条件下没有数据" in texts, result.key


def test_html_export_is_self_contained_and_audited(db, staff, data):
    with db.transaction() as s:
        page = reports.export_report(
            s, actor=staff.manager, fmt="html", keys=["revenue", "funnel"], locale="zh"
        )
    text = page.decode()
    assert text.startswith("<!DOCTYPE html>") and "销售仪表盘" in text
    assert "<script src=" not in text and "Plotly.newPlot" in text  # plotly.js is embedded
    assert "月度收入" in text and "2026-05" in text
    assert "2026-06" not in text.split("月度收入", 1)[1].split("销售漏斗")[0]  # c3 is team B
    with db.transaction() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "report.export")).one()
    assert entry.actor_id == staff.manager.id
    assert entry.changes == {"reports": ["revenue", "funnel"], "format": "html"}


def test_xlsx_export_holds_one_sheet_per_report(db, staff, data):
    with db.transaction() as s:
        data_bytes = reports.export_report(
            s, actor=staff.admin, fmt="xlsx", keys=["revenue", "cohorts", "churn"], now=NOW
        )
    sheets = pd.read_excel(io.BytesIO(data_bytes), sheet_name=None)
    assert list(sheets) == ["revenue", "cohorts", "churn"]
    assert sheets["revenue"]["revenue"].sum() == pytest.approx(3720.0)
    assert list(sheets["cohorts"].columns) == list(reports.cohorts.COHORT_COLUMNS)


def test_export_needs_the_export_permission(db, staff, data):
    with pytest.raises(PermissionDenied), db.transaction() as s:
        reports.export_report(s, actor=staff.support, fmt="html")


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="PNG export needs Debian's chromium (make test)"
)
def test_png_export_through_kaleido(db, staff, data):
    with db.transaction() as s:
        result = reports.run_report(s, actor=staff.admin, key="revenue")
    png = reports.to_png(result.figure, width=600, height=400)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
