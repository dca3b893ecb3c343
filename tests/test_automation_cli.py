"""`crm automate …` and `crm archive …` through the real `crm` command (Typer)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from crm_core import customers
from crm_core.cli import app
from crm_core.db import forget_databases
from crm_core.models import Customer


@pytest.fixture
def cli_db(sqlite_db, monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", sqlite_db.url)
    forget_databases()
    yield sqlite_db
    forget_databases()


def _run(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_automate_list_dry_run_and_run(cli_db):
    from tests.conftest import make_staff

    staff = make_staff(cli_db)
    with cli_db.transaction() as s:
        c = customers.create_customer(
            s, actor=staff.sales1, data={"name": "Quiet Co", "lifecycle_stage": "customer"}
        )
        c.last_contact_at = datetime.now(UTC) - timedelta(days=45)
    code, out = _run("automate", "list")
    assert code == 0 and "followup_reminder" in out and "auto_archive" in out
    code, out = _run("automate", "dry-run", "--rule", "followup_reminder")
    assert code == 0 and "1 new match(es)" in out and "Quiet Co" in out
    code, out = _run("automate", "run", "--no-email", "--now", "2099-01-01T10:00")
    assert code == 0 and "followup_reminder" in out
    code, out = _run("automate", "run", "--no-email", "--now", "2099-01-01T11:00")
    assert code == 0 and "nothing due" in out
    code, out = _run("automate", "disable", "welcome_followup")
    assert code == 0 and "welcome_followup: off" in out


def test_archive_export_and_restore(cli_db, tmp_path):
    from tests.conftest import make_staff

    staff = make_staff(cli_db)
    with cli_db.transaction() as s:
        c = customers.create_customer(s, actor=staff.sales1, data={"name": "Old Co"})
        customers.archive_customer(s, actor=staff.admin, customer_id=c.id, reason="closed")
        cid = c.id
    folder = tmp_path / "cold"
    code, out = _run("archive", "export", str(folder), "--format", "csv", "--purge")
    assert code == 0 and "exported 1 customers" in out
    with cli_db.transaction() as s:
        assert s.get(Customer, cid) is None
    code, out = _run("archive", "restore", str(folder))
    assert code == 0 and "restored 1 customers" in out
    with cli_db.transaction() as s:
        assert s.get(Customer, cid).name == "Old Co"
