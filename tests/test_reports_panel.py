"""The managers' dashboard page through NiceGUI's ``User`` fixture: figures for the user's
scope, filters that redraw them, exports of HTML, Excel and PNG."""

from __future__ import annotations

import asyncio
import io
import shutil

import pandas as pd
import pytest
from nicegui import ui
from nicegui.testing import User
from panel_fixtures import *  # noqa: F403  (the panel and ui_user fixtures)
from panel_fixtures import Panel, login
from reports_dataset import build


def figure_of(user: User, key: str):
    element = next(iter(user.find(marker=f"chart-{key}").elements))
    return element.figure


def revenue_total(user: User) -> float:
    return sum(sum(trace.y) for trace in figure_of(user, "revenue").data)


async def eventually(probe, expected, tries: int = 60) -> None:
    for _ in range(tries):
        if probe() == expected:
            return
        await asyncio.sleep(0.05)
    assert probe() == expected


def choose(user: User, marker: str, value: object) -> None:
    with user:
        for element in user.find(marker=marker).elements:
            element.value = value


async def test_manager_sees_team_figures_and_filters_redraw(ui_user: User, panel: Panel) -> None:
    build(panel.db, panel.staff)
    await login(ui_user, "manager")
    await ui_user.open("/dashboard")
    await ui_user.should_see(marker="chart-revenue", retries=60)
    await ui_user.should_see(marker="chart-funnel")
    assert revenue_total(ui_user) == 3300.0  # team A: c1 and c2
    assert figure_of(ui_user, "funnel").layout.title.text == "Sales funnel"
    choose(ui_user, "filter-city", "杭州")
    await eventually(lambda: revenue_total(ui_user), 900.0)
    choose(ui_user, "filter-city", "")
    await eventually(lambda: revenue_total(ui_user), 3300.0)


async def test_exports_html_and_excel(ui_user: User, panel: Panel) -> None:
    build(panel.db, panel.staff)
    await login(ui_user, "admin")
    await ui_user.open("/dashboard")
    await ui_user.should_see(marker="chart-revenue", retries=60)
    ui_user.find(marker="export-html").click()
    page = (await ui_user.download.next(timeout=30)).text
    assert page.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in page
    assert "Revenue by month" in page and "<script src=" not in page
    choose(ui_user, "export-choice", "revenue")
    ui_user.find(marker="export-xlsx").click()
    workbook = (await ui_user.download.next(timeout=30)).content
    sheets = pd.read_excel(io.BytesIO(workbook), sheet_name=None)
    assert list(sheets) == ["revenue"] and sheets["revenue"]["revenue"].sum() == 3720.0


@pytest.mark.skipif(shutil.which("chromium") is None, reason="PNG export needs chromium")
async def test_png_of_a_figure(ui_user: User, panel: Panel) -> None:
    build(panel.db, panel.staff)
    await login(ui_user, "manager")
    await ui_user.open("/dashboard")
    await ui_user.should_see(marker="chart-revenue", retries=60)
    choose(ui_user, "export-choice", "revenue")
    ui_user.find(marker="export-png").click()
    image = (await ui_user.download.next(timeout=90)).content
    assert image[:8] == b"\x89PNG\r\n\x1a\n"


async def test_support_may_not_open_the_dashboard(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "support")
    response = await ui_user.http_client.get("/dashboard")
    assert response.status_code == 403


async def test_chinese_labels_for_a_chinese_user(ui_user: User, panel: Panel) -> None:
    from sqlalchemy import update

    from crm_core.models import User as UserRow

    build(panel.db, panel.staff)
    with panel.db.transaction() as s:
        s.execute(update(UserRow).where(UserRow.username == "sales2").values(locale="zh"))
    await login(ui_user, "sales2")
    await ui_user.open("/dashboard")
    await ui_user.should_see(marker="chart-funnel", retries=60)
    assert figure_of(ui_user, "funnel").layout.title.text == "销售漏斗"
    assert sum(figure_of(ui_user, "funnel").data[0].x) > 0
    assert isinstance(next(iter(ui_user.find(marker="chart-funnel").elements)), ui.plotly)
