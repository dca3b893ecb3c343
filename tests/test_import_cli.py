"""`crm import …` and `crm export …` through the real `crm` command (Typer)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from crm_core.cli import app
from crm_core.db import forget_databases
from crm_core.models import Customer

FIXTURES = Path(__file__).parent / "fixtures" / "import"


@pytest.fixture
def cli_db(sqlite_db, monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", sqlite_db.url)
    forget_databases()
    yield sqlite_db
    forget_databases()


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def _customers(db) -> int:
    with db.transaction() as s:
        return int(s.scalar(select(func.count(Customer.id))) or 0)


def test_import_preview_commit_reimport_and_revert(cli_db):
    code, out = _run("import", FIXTURES / "gbk_excel.csv", "--dry-run")
    assert code == 0, out
    assert "姓名 -> name" in out and "4 would be created" in out
    assert _customers(cli_db) == 0
    code, out = _run("import", FIXTURES / "gbk_excel.csv", "--save-mapping", "excel")
    assert code == 0 and "batch 1 committed" in out and _customers(cli_db) == 4
    code, out = _run("import", FIXTURES / "gbk_excel.csv", "--mapping", "excel")
    assert code == 0 and "4 unchanged" in out and "imported before (batch 1)" in out
    code, out = _run("import", "batches")
    assert "gbk_excel.csv" in out
    code, out = _run("import", "revert", "1")
    assert code == 0 and "4 customers removed" in out and _customers(cli_db) == 0


def test_invalid_rows_fail_the_command_and_come_back_as_a_file(cli_db, tmp_path):
    source = tmp_path / "people.csv"
    source.write_text("name,email\nA,a@example.com\nB,bad\n", encoding="utf-8")
    rejects = tmp_path / "fix-me.csv"
    code, out = _run("import", source, "--rejects", rejects)
    assert code == 1 and "line 3: email" in out and "nothing was imported" in out
    assert _customers(cli_db) == 0
    assert rejects.read_text(encoding="utf-8-sig").splitlines()[1].startswith("B,bad,3,")
    code, out = _run("import", source, "--valid-only")
    assert code == 0 and _customers(cli_db) == 1


def test_bad_files_get_one_clear_line(cli_db):
    for name, words in (
        ("broken_quoting.csv", "quoting is broken"),
        ("zip_bomb.xlsx", "zip bomb"),
        ("legacy.xls", "old Excel"),
    ):
        result = CliRunner().invoke(app, ["import", str(FIXTURES / name)])
        assert result.exit_code == 1
        assert words in str(result.exception) or words in result.output


def test_json_mapping_file(cli_db, tmp_path):
    source = tmp_path / "odd.csv"
    source.write_text("who,reach\nAnn,ann@example.com\n", encoding="utf-8")
    mapping = tmp_path / "m.json"
    mapping.write_text(json.dumps({"who": "name", "reach": "email"}), encoding="utf-8")
    code, out = _run("import", source, "--mapping", mapping, "--mode", "create")
    assert code == 0 and "1 were created" in out


def test_exports(cli_db, tmp_path):
    _run("import", FIXTURES / "utf8_bom.csv")
    target = tmp_path / "c.xlsx"
    code, out = _run("export", "customers", "--format", "xlsx", "-o", target, "--city", "London")
    assert code == 0 and "1 customers written" in out and target.stat().st_size > 0
    code, out = _run("export", "list", "interactions", "-o", tmp_path / "i.csv")
    assert code == 0 and "0 interactions" in out
    with cli_db.transaction() as s:
        cid = s.scalar(select(Customer.id).where(Customer.name == "Mary Jones"))
    code, out = _run("export", "subject", cid, "-o", tmp_path / "s.json")
    assert code == 0
    data = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert data["customer"]["name"] == "Mary Jones"
    assert any(a["action"] == "customer.create" for a in data["audit"])
