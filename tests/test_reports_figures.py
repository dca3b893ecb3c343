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


def test_the_browser_goodbye_that_kaleido_ignores_is_logged_as_a_warning(caplog):
    """Chromium's closing ``{bye}``, unparsable when it shares a read with a last reply, is
    logged by choreographer as an ERROR it then ignores; after a PNG export it is a warning
    (an ERROR failed the panel's tests in CI), and other errors stay errors."""
    import logging

    from crm_core.reports.export import quiet_browser_goodbye

    logger = logging.getLogger("choreographer.channels.pipe")
    quiet_browser_goodbye()
    quiet_browser_goodbye()
    with caplog.at_level(logging.DEBUG, logger="choreographer"):
        try:
            raise ValueError("Expecting property name enclosed in double quotes")
        except ValueError:
            logger.exception("JSONError decoding message. Ignoring")
            logger.exception("Error in trying to decode JSON off our read.")
    levels = [(r.getMessage(), r.levelname) for r in caplog.records]
    assert levels == [
        ("JSONError decoding message. Ignoring", "WARNING"),
        ("Error in trying to decode JSON off our read.", "ERROR"),
    ]
    assert sum(type(f).__name__ == "_BrowserGoodbyeFilter" for f in logger.filters) == 1


@pytest.mark.parametrize("who", ["admin", "manager", "sales1"])
def test_the_dashboard_computes_rfm_beside_the_other_reports_with_the_same_results(
    db, staff, data, monkeypatch, who
):
    """RFM runs in a thread on a session of its own (same engine, same database) while the
    others run in the caller's session: every frame equals the report run alone, for each
    role's access rules."""
    import dataclasses
    import threading

    from crm_core.reports import dashboard

    actor = getattr(staff, who)
    threads: dict[str, str] = {}
    for key in dashboard.DASHBOARD:
        spec = dashboard.REPORTS[key]

        def compute(session, _compute=spec.compute, _key=key, **kwargs):
            threads[_key] = threading.current_thread().name
            return _compute(session, **kwargs)

        monkeypatch.setitem(dashboard.REPORTS, key, dataclasses.replace(spec, compute=compute))
    with db.transaction() as s:
        results = reports.build_dashboard(s, actor=actor, now=NOW)
        ran_in = dict(threads)
        alone = {k: reports.run_report(s, actor=actor, key=k, now=NOW) for k in reports.DASHBOARD}
    assert [r.key for r in results] == list(reports.DASHBOARD)
    for result in results:
        pd.testing.assert_frame_equal(result.frame, alone[result.key].frame)
        assert result.figure.layout.title.text == alone[result.key].figure.layout.title.text
    assert len(results[reports.DASHBOARD.index("rfm")].frame) > 0
    main = threading.current_thread().name
    assert ran_in["rfm"].startswith("crm-dashboard")
    assert {k for k, name in ran_in.items() if name == main} == set(reports.DASHBOARD) - {"rfm"}


def test_the_dashboard_on_a_single_connection_computes_everything_in_the_caller(
    db, staff, data, monkeypatch
):
    """A session bound to one connection (its own uncommitted writes visible only there)
    cannot share its database with another session: everything runs in the caller."""
    import threading

    from sqlalchemy.orm import Session

    from crm_core.reports import dashboard

    seen: set[str] = set()
    real = dashboard._frame

    def frame(*args, **kwargs):
        seen.add(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(dashboard, "_frame", frame)
    with db.engine.connect() as conn, Session(bind=conn) as s:
        results = reports.build_dashboard(s, actor=staff.admin, now=NOW)
    assert [r.key for r in results] == list(reports.DASHBOARD)
    assert seen == {threading.current_thread().name}
