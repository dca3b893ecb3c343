"""The panel's security layer and language plumbing: headers, the socket Origin check,
no storage files for strangers, the storage secret, the catalogue and locale formatting."""

from __future__ import annotations

import ast
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file
from nicegui.storage import Storage
from nicegui.testing import User
from panel_fixtures import *  # noqa: F403  (the panel and ui_user fixtures)
from panel_fixtures import Panel, login

from app import fmt, security
from crm_core.i18n import translator
from crm_core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SOCKET = "/_nicegui_ws/socket.io/?EIO=4&transport=polling"


async def test_security_headers_on_pages_and_redirects(ui_user: User, panel: Panel) -> None:
    for path in ("/login", "/customers"):
        response = await ui_user.http_client.get(path)
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-frame-options"] == "DENY"


async def test_socket_refuses_foreign_origins(
    ui_user: User, panel: Panel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="engineio.server")  # the refusal is logged
    evil = await ui_user.http_client.get(SOCKET, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 400
    good = await ui_user.http_client.get(SOCKET, headers={"Origin": "http://127.0.0.1:8080"})
    assert good.status_code == 200
    also_good = await ui_user.http_client.get(SOCKET, headers={"Origin": "http://localhost:8080"})
    assert also_good.status_code == 200


def test_allowed_origins_follow_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "http://crm.example.com:443" not in security.allowed_origins("127.0.0.1", 8080)
    monkeypatch.setenv("CRM_ALLOWED_ORIGINS", "https://crm.example.com")
    origins = security.allowed_origins("10.1.2.3", 9000)
    assert "http://10.1.2.3:9000" in origins and "https://crm.example.com" in origins
    assert "http://127.0.0.1:9000" not in origins


async def test_strangers_create_no_storage_files(ui_user: User, panel: Panel) -> None:
    before = set(Storage.path.glob("storage-user-*.json"))
    for path in ("/login", "/customers", "/admin/users", "/", "/login?next=/pipeline"):
        for _ in range(3):
            await ui_user.http_client.get(path)
    await ui_user.open("/login")
    assert set(Storage.path.glob("storage-user-*.json")) == before


async def test_logged_in_session_token_is_not_in_the_cookie(ui_user: User, panel: Panel) -> None:
    await login(ui_user, "sales1")
    token_values = [v for v in ui_user.http_client.cookies.values()]
    from nicegui import app

    with ui_user:
        stored = [d.get(security.TOKEN_KEY) for d in app.storage._users.values()]
    token = next(t for t in stored if t)
    assert all(token not in v for v in token_values)


def test_safe_next_blocks_open_redirects() -> None:
    assert security.safe_next("/customers/5?x=1") == "/customers/5?x=1"
    for bad in ("//evil.example", "https://evil.example", "/\\evil", "", None):
        assert security.safe_next(bad) == "/customers"


def test_storage_secret_is_generated_once_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRM_STORAGE_SECRET", raising=False)
    settings = Settings(data_dir=tmp_path)
    first = settings.storage_secret()
    assert first == settings.storage_secret() and len(first) >= 40
    assert (tmp_path / "storage_secret").stat().st_mode & 0o777 == 0o600
    source = (ROOT / "app" / "main.py").read_text()
    assert "storage_secret=get_settings().storage_secret()" in source


#: The panel's own modules (other areas' pages keep their own catalogue domains).
PANEL_MODULES = [
    "app/frame.py", "app/security.py", "app/components/customer_grid.py",
    "app/components/timeline.py", *(f"app/pages/{name}.py" for name in (
        "login", "customers", "customer", "archive", "pipeline", "tickets", "tasks", "admin",
    )),
]  # fmt: skip


def _app_messages() -> set[str]:
    messages: set[str] = set()
    for path in (ROOT / p for p in PANEL_MODULES):
        for _line, message, _c, _x in extract_from_file("python", str(path), keywords={"_": None}):
            messages.add(message if isinstance(message, str) else message[0])
    return messages


def _page_titles() -> set[str]:
    titles = set()
    for path in (ROOT / p for p in PANEL_MODULES):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "panel_page":
                for kw in node.keywords:
                    if kw.arg == "title" and isinstance(kw.value, ast.Constant):
                        titles.add(kw.value.value)
    return titles


def test_every_panel_message_has_a_chinese_translation() -> None:
    _ = translator("zh", "panel")
    messages = _app_messages() | _page_titles()
    assert len(messages) > 150
    missing = sorted(m for m in messages if _(m) == m and m not in {"VIP"})
    assert missing == []


def test_placeholders_survive_translation() -> None:
    _ = translator("zh", "panel")
    assert _("Page {number}", number=3) == "第 3 页"
    assert _("{count} selected", count=2) == "已选 2 个"


def test_dates_numbers_and_money_in_the_users_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_TIMEZONE", "Asia/Shanghai")
    moment = datetime(2025, 3, 5, 6, 30, tzinfo=UTC)
    assert fmt.fmt_datetime(moment, "en") == "Mar 5, 2025, 2:30:00\u202fPM"
    assert fmt.fmt_datetime(moment, "zh") == "2025年3月5日 14:30:00"
    assert fmt.fmt_date(moment, "zh") == "2025年3月5日"
    assert fmt.fmt_number(1234567.5, "en") == "1,234,567.5"
    assert fmt.fmt_money(Decimal("1234.5"), "CNY", "en") == "CN¥1,234.50"
    assert fmt.fmt_money(Decimal("1234.5"), "CNY", "zh") == "¥1,234.50"
    assert fmt.fmt_money(Decimal("99"), "USD", "zh") == "US$99.00"


def test_pages_hold_no_queries() -> None:
    """Pages call services; they never build SQL of their own."""
    for path in (ROOT / "app").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
                assert [a.name for a in node.names] == ["Session"], (path, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("sqlalchemy") for a in node.names), path
