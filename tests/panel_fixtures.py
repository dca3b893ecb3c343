"""Fixtures of the panel's UI tests: a real database behind NiceGUI's ``User`` fixture.

``panel`` points the app at the test database (``CRM_DATABASE_URL``) and a test storage
secret, and gives the staff of ``conftest.staff``; ``ui_user`` is NiceGUI's ``User`` opened on
that database; ``login`` logs a ``User`` in through the real log-in page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from conftest import PASSWORD, Staff
from nicegui import ui
from nicegui.testing import User

from crm_core import customers as svc
from crm_core.db import Database, forget_databases


@dataclass
class Panel:
    db: Database
    staff: Staff

    def customer(self, actor, **data) -> int:
        with self.db.transaction() as s:
            return svc.create_customer(s, actor=actor, data=data).id


@pytest.fixture
def panel(db: Database, staff: Staff, monkeypatch: pytest.MonkeyPatch) -> Iterator[Panel]:
    monkeypatch.setenv("CRM_DATABASE_URL", db.url)
    monkeypatch.setenv("CRM_STORAGE_SECRET", "test-storage-secret-not-for-production")
    monkeypatch.setenv("CRM_HOST", "127.0.0.1")
    monkeypatch.setenv("CRM_PORT", "8080")
    yield Panel(db, staff)
    forget_databases()


@pytest.fixture
async def ui_user(panel: Panel, user: User) -> AsyncIterator[User]:
    yield user


async def login(user: User, username: str, password: str = PASSWORD) -> None:
    """Log in through the log-in page and wait for the customer list."""
    await user.open("/login")
    user.find(marker="username").type(username)
    user.find(marker="password").type(password)
    user.find(marker="login-button").click()
    await user.should_see(marker="customer-grid", retries=30)


def grid_rows(user: User) -> list[dict]:
    grid = next(iter(user.find(ui.aggrid).elements))
    return list(grid.options["rowData"])


def grid_names(user: User) -> list[str]:
    return [row["name"] for row in grid_rows(user)]
