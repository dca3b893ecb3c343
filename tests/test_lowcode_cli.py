"""`crm modules …` through the real `crm` command (Typer's CliRunner) on SQLite and PostgreSQL:
list, show, export and import acting as ``--user``, with one-line errors and a non-zero exit."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from crm_core import customers as customer_svc
from crm_core.cli import app
from crm_core.db import forget_databases
from crm_core.lowcode import modules as mod
from crm_core.lowcode import records as rec
from crm_core.models import AuditEntry


@pytest.fixture
def cli_db(db, staff, monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", db.url)
    forget_databases()
    with db.transaction() as s:
        mod.define_module(
            s, actor=staff.admin, key="projects", name_en="Projects", name_zh="项目",
            fields=[
                {"key": "title", "label_en": "Title", "field_type": "text", "required": True},
                {"key": "code", "label_en": "Code", "field_type": "text", "unique": True},
                {"key": "stage", "label_en": "Stage", "field_type": "choice",
                 "choices": ["Plan", "Build"]},
                {"key": "budget", "label_en": "Budget", "field_type": "money"},
                {"key": "customer", "label_en": "Customer", "field_type": "customer"},
                {"key": "old", "label_en": "Old", "field_type": "text"},
            ],
            permissions={"read": ["manager", "sales"]},
        )  # fmt: skip
        mod.retire_field(s, actor=staff.admin, module_key="projects", field_key="old")
    yield db
    forget_databases()


def _run(*args: object) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["modules", *map(str, args)])
    return result.exit_code, result.output


def _titles(db, actor) -> list[str]:
    with db.transaction() as s:
        page = rec.list_records(s, actor=actor, module_key="projects", limit=500)
        return sorted(r.display_name for r in page.items)


def test_list_and_show(cli_db, staff):
    code, out = _run("list")
    assert code == 0, out
    assert out.split()[:3] == ["projects", "Projects", "项目"] and "5 fields" in out
    code, out = _run("list", "--user", "support")  # support may not read this module
    assert code == 0 and out.strip() == "no module"
    code, out = _run("show", "projects", "--user", "sales1")
    assert code == 0, out
    lines = out.splitlines()
    assert "name: Projects / 项目" in out and "display field: title" in out
    assert any(line.split() == ["read:", "admin,", "manager,", "sales"] for line in lines)
    assert any("title" in line and "(required)" in line for line in lines)
    assert any("code" in line and "(unique)" in line for line in lines)
    assert any("stage" in line and "[Plan, Build]" in line for line in lines)
    assert any("old" in line and "(retired)" in line for line in lines)


def test_export_and_import_round_trip_as_a_user(cli_db, staff, tmp_path):
    with cli_db.transaction() as s:
        mine = customer_svc.create_customer(s, actor=staff.sales1, data={"name": "Mine"}).id
        theirs = customer_svc.create_customer(s, actor=staff.sales2, data={"name": "Theirs"}).id
        for title, code, cid in [("Tower", "T1", mine), ("Bridge", "B1", theirs)]:
            rec.create_record(s, actor=staff.admin, module_key="projects",
                              data={"title": title, "code": code, "stage": "Plan",
                                    "budget": "12.5",
                                    "customer": cid})  # fmt: skip
    # sales1 exports only the records of their own customers
    target = tmp_path / "mine.csv"
    code, out = _run("export", "projects", target, "--user", "sales1")
    assert code == 0, out
    assert "1 records of 'projects' written" in out
    frame = pd.read_csv(target, dtype=str, encoding="utf-8-sig")
    assert list(frame["title"]) == ["Tower"] and list(frame.columns[:3]) == ["id", "display_name",
                                                                              "title"]  # fmt: skip
    # the operator exports everything as .xlsx
    code, out = _run("export", "projects", tmp_path / "all.xlsx")
    assert code == 0, out
    sheet = pd.read_excel(tmp_path / "all.xlsx", dtype=str)
    assert sorted(sheet["title"]) == ["Bridge", "Tower"]
    # the export reads back in (new codes: the field is unique)
    frame["code"] = ["T2"]
    frame["title"] = ["Tower two"]
    frame.to_csv(tmp_path / "back.csv", index=False)
    code, out = _run("import", "projects", tmp_path / "back.csv", "--user", "sales1")
    assert code == 0, out
    assert "1 records imported into 'projects'" in out
    assert _titles(cli_db, staff.sales1) == ["Tower", "Tower two"]
    with cli_db.transaction() as s:
        entry = s.query(AuditEntry).filter_by(action="module_record.create", source="cli").one()
        assert entry.actor_id == staff.sales1.id
    # GBK CSV as Chinese Excel writes it, columns by Chinese-free labels
    (tmp_path / "gbk.csv").write_bytes("Title,Code,Stage\n塔吊,Z1,build\n".encode("gbk"))
    code, out = _run("import", "projects", tmp_path / "gbk.csv")
    assert code == 0, out
    assert "塔吊" in _titles(cli_db, staff.admin)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "nope"), "error: module 'nope' does not exist"),
        (("list", "--user", "ghost"), "error: user 'ghost' does not exist or is inactive"),
        (("show", "projects", "--user", "support"), "may not read records of module 'projects'"),
        (("export", "projects", "out.txt"), "'out.txt' must end in .csv or .xlsx"),
        (("import", "projects", "missing.csv"), "file missing.csv does not exist"),
        (("export", "projects", "x.csv", "--user", "support"), "may not export"),
    ],
)
def test_errors_print_one_line_and_exit_non_zero(cli_db, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = _run(*args)
    assert code == 1
    assert message in out and len(out.strip().splitlines()) == 1


def test_invalid_rows_import_nothing(cli_db, staff, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_text("Title,Code,Budget\nOne,C1,10\n,C2,lots\nThree,C1,5\n", encoding="utf-8")
    code, out = _run("import", "projects", source)
    assert code == 1
    assert out.startswith("error: 2 rows are invalid; nothing was imported")
    assert "row 3: title is required" in out and "row 3: budget" in out and "row 4: code" in out
    assert len(out.strip().splitlines()) == 1
    assert _titles(cli_db, staff.admin) == []
    source.write_text("Title,Colour\nOne,red\n", encoding="utf-8")
    code, out = _run("import", "projects", source)
    assert code == 1 and "column 'Colour' matches no field of this module" in out
    code, out = _run("import", "projects", source, "--user", "support")
    assert code == 1 and "may not" in out
