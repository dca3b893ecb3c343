"""The import wizard and export page through NiceGUI's ``User`` fixture."""

from __future__ import annotations

import asyncio
from pathlib import Path

from nicegui import ui
from nicegui.elements.upload_files import SmallFileUpload
from nicegui.testing import User
from panel_fixtures import *  # noqa: F403  (the panel and ui_user fixtures)
from panel_fixtures import Panel, login
from sqlalchemy import func, select

from crm_core.models import Customer
from crm_core.models.importing import ImportBatch

FIXTURES = Path(__file__).parent / "fixtures" / "import"


async def upload(user: User, name: str, data: bytes) -> None:
    element = next(iter(user.find(marker="import-upload").elements))
    await element.handle_uploads([SmallFileUpload(name, "text/csv", data)])
    for _ in range(20):
        await asyncio.sleep(0.02)


def customers(panel: Panel) -> int:
    with panel.db.transaction() as s:
        return int(s.scalar(select(func.count(Customer.id))) or 0)


async def test_wizard_preview_import_and_revert(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "steward")
    await ui_user.open("/import")
    await upload(ui_user, "../客户.csv", (FIXTURES / "gbk_excel.csv").read_bytes())
    await ui_user.should_see("姓名")  # the guessed mapping is shown per column
    ui_user.find(marker="import-preview").click()
    await ui_user.should_see(marker="import-summary", content="Preview: 4 rows: 4 new")
    assert customers(panel) == 0
    ui_user.find(marker="import-run").click()
    await ui_user.should_see(marker="import-summary", content="4 rows: 4 new")
    assert customers(panel) == 4
    # PostgreSQL sequences are not rolled back with the preview: read the batch's real id
    with panel.db.transaction() as s:
        batch_id = s.scalar(select(func.max(ImportBatch.id)))
    await ui_user.should_see(marker=f"revert-{batch_id}")
    ui_user.find(marker=f"revert-{batch_id}").click()
    await ui_user.should_see(f"Import {batch_id} reverted.")
    assert customers(panel) == 0


async def test_invalid_rows_are_listed_and_nothing_is_written(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "admin")
    await ui_user.open("/import")
    await upload(ui_user, "x.csv", b"name,email\nA,a@example.com\nB,not-an-email\n")
    ui_user.find(marker="import-run").click()
    await ui_user.should_see(marker="import-issues")
    await ui_user.should_see("not-an-email")
    assert customers(panel) == 0
    ui_user.find(marker="import-valid-only").click()
    ui_user.find(marker="import-run").click()
    await ui_user.should_see(marker="import-rejects")
    assert customers(panel) == 1


async def test_roles_without_import_rights_do_not_get_the_page(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "analyst")
    assert (await ui_user.http_client.get("/import")).status_code == 403
    assert (await ui_user.http_client.get("/export")).status_code == 200


async def test_export_page_offers_files(ui_user: User, panel: Panel) -> None:
    panel.customer(panel.staff.admin, name="Exported Ltd")
    await login(ui_user, "analyst")
    await ui_user.open("/export")
    await ui_user.should_see(marker="export-menu")
    ui_user.find(marker="export-customers-csv").click()
    await ui_user.should_not_see(ui.notification)
