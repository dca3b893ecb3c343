"""`crm dedupe …` through the real `crm` command: scan, review, merge, undo, not-duplicate."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from crm_core import customers as svc
from crm_core.cli import app
from crm_core.db import forget_databases
from crm_core.models import Customer
from tests.conftest import make_staff


@pytest.fixture
def cli_db(sqlite_db, monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", sqlite_db.url)
    forget_databases()
    yield sqlite_db
    forget_databases()


def _run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["dedupe", *map(str, args)])
    return result.exit_code, result.output


def test_scan_review_merge_undo_from_the_command_line(cli_db):
    staff = make_staff(cli_db)
    with cli_db.transaction() as s:
        a = svc.create_customer(
            s, actor=staff.admin, data={"name": "王伟", "phone": "13800138000", "city": "杭州"}
        ).id
        b = svc.create_customer(
            s, actor=staff.admin, data={"name": "王伟", "phone": "13800138000", "street": "文三路"}
        ).id
        c = svc.create_customer(s, actor=staff.admin, data={"name": "Li Na", "city": "Beijing"}).id
    code, out = _run("scan")
    assert code == 0, out
    assert "3 customers compared" in out and "1 likely duplicate pairs" in out
    code, out = _run("review")
    assert code == 0 and f"#{a} 王伟  ~  #{b} 王伟" in out and "street" in out
    code, out = _run("merge", a, b, "--survivor", a, "--keep", f"street={b}", "--as", "analyst")
    assert code == 1 and "may not dedupe merge" in out
    code, out = _run("merge", a, b, "--survivor", a, "--keep", f"street={b}", "--as", "steward")
    assert code == 0, out
    merge_id = int(out.split()[1].rstrip(":"))
    with cli_db.transaction() as s:
        assert s.get(Customer, b).merged_into_id == a
        assert s.get(Customer, a).street == "文三路"
    code, out = _run("history")
    assert f"merge {merge_id}" in out and "active" in out
    code, out = _run("undo", merge_id)
    assert code == 0 and "undone" in out
    code, out = _run("undo", merge_id)
    assert code == 1 and "undone already" in out
    with cli_db.transaction() as s:
        assert s.get(Customer, b).merged_into_id is None
    code, out = _run("not-duplicate", a, b)
    assert code == 0
    _run("scan")
    code, out = _run("review")
    assert "#" not in out  # nothing left to review
    assert c
