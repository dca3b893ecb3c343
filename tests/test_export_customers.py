"""Exports on SQLite and PostgreSQL: access rules, masking, formula neutralising, audit,
history exports and the data-subject export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from crm_core import customers as customer_service
from crm_core.activities import create_deal, create_order, create_ticket, log_interaction
from crm_core.customers import CustomerFilter
from crm_core.errors import InvalidInput, PermissionDenied
from crm_core.importing import ImportOptions, run_import
from crm_core.importing.export import (
    export,
    export_customers,
    neutralise,
    subject_export,
    subject_export_json,
)
from crm_core.models import AuditEntry, ConsentEvent

FIXTURES = Path(__file__).parent / "fixtures" / "import"


def _csv(db, actor, kind="customers", **kwargs) -> list[dict[str, str]]:
    buf = io.BytesIO()
    with db.transaction() as s:
        export(s, actor=actor, kind=kind, target=buf, **kwargs)
    raw = buf.getvalue()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel opens the UTF-8 text as such
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def _xlsx(db, actor, kind="customers", **kwargs) -> list[list[object]]:
    buf = io.BytesIO()
    with db.transaction() as s:
        export(s, actor=actor, kind=kind, target=buf, fmt="xlsx", **kwargs)
    sheet = load_workbook(io.BytesIO(buf.getvalue())).active
    return [[c.value for c in row] for row in sheet.iter_rows()]


@pytest.fixture
def people(db, staff):
    with db.transaction() as s:
        mine = customer_service.create_customer(
            s,
            actor=staff.sales1,
            data={"name": "王小明", "phones": ["13800138000"], "emails": ["xm@example.com"],
                  "city": "杭州", "notes": "私人备注", "birthday": "1990-05-03"},
        )  # fmt: skip
        other = customer_service.create_customer(
            s,
            actor=staff.sales2,
            data={"name": "John Smith", "phones": ["+14155550132"], "city": "SF"},
        )
        return mine.id, other.id


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("+8613800138000", "+8613800138000"),  # a plain number runs nothing
        ("-12.5", "-12.5"),
        ("王伟", "王伟"),
        (42, 42),
    ],
)
def test_neutralise(value, expected):
    assert neutralise(value) == expected


def test_formula_payloads_are_neutralised_in_csv_and_xlsx(db, staff):
    with db.transaction() as s:
        run_import(s, actor=staff.steward, source=FIXTURES / "formulas.csv")
    rows = {r["emails"]: r for r in _csv(db, staff.admin)}
    assert rows["f1@example.com"]["name"] == "'=cmd|' /C calc'!A0"
    assert rows["f1@example.com"]["company_name"] == "'+1+1"
    assert rows["f1@example.com"]["notes"] == "'@SUM(A1:A9)"
    assert rows["f2@example.com"]["company_name"] == "'-2+3"
    assert rows["f2@example.com"]["notes"].startswith("'=HYPERLINK(")
    sheet = _xlsx(db, staff.admin)
    header = sheet[0]
    cells = [v for row in sheet[1:] for v in row if isinstance(v, str)]
    risky = [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert risky == ["+8613800138008", "+8613800138009", "+8613800138010"]  # plain numbers
    name = header.index("name")
    assert sorted(str(r[name]) for r in sheet[1:])[0] == "'=cmd|' /C calc'!A0"
    # and the exported file imports back unchanged (the apostrophes are taken off again)
    buf = io.BytesIO()
    with db.transaction() as s:
        export_customers(s, actor=staff.admin, target=buf)
        report = run_import(s, actor=staff.steward, source=buf.getvalue())
    assert report.unchanged == 3 and report.created == report.updated == 0


def test_export_follows_the_access_rules(db, staff, people):
    mine, other = people
    assert [int(r["id"]) for r in _csv(db, staff.sales1)] == [mine]
    assert sorted(int(r["id"]) for r in _csv(db, staff.admin)) == [mine, other]
    analyst = {int(r["id"]): r for r in _csv(db, staff.analyst)}
    assert analyst[mine]["name"] == "王**"
    assert analyst[mine]["phones"] == "'+86*******8000"
    assert analyst[mine]["emails"] == "x***@example.com"
    assert analyst[mine]["notes"] == "" and analyst[mine]["birthday"] == ""
    assert analyst[mine]["city"] == "杭州"
    with pytest.raises(PermissionDenied):
        _csv(db, staff.support)
    filtered = _csv(db, staff.admin, filters=CustomerFilter(city="SF"))
    assert [int(r["id"]) for r in filtered] == [other]


def test_exports_are_audited(db, staff, people):
    _csv(db, staff.analyst, filters=CustomerFilter(city="杭州"))
    with db.transaction() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "export.customers"))
    assert entry.actor_name == "analyst"
    assert entry.changes["rows"] == [None, 1]
    assert entry.changes["filters"][1] == {"city": "杭州"}
    assert "masked fields" in entry.detail


def test_history_exports(db, staff, people):
    mine, other = people
    with db.transaction() as s:
        log_interaction(s, actor=staff.sales1, customer_id=mine, kind="call", subject="=1+1",
                        body="电话里聊了价格")  # fmt: skip
        log_interaction(s, actor=staff.sales2, customer_id=other, kind="email", subject="hi")
        create_deal(s, actor=staff.sales1, customer_id=mine, title="Deal A", amount="1200.50")
        create_order(
            s, actor=staff.sales1, customer_id=mine, number="SO-1", total="99.90",
            ordered_at=datetime(2026, 1, 5, tzinfo=UTC),
        )  # fmt: skip
        create_ticket(s, actor=staff.support, customer_id=other, kind="complaint", subject="slow")
    rows = _csv(db, staff.sales1, "interactions")
    assert [(r["customer"], r["subject"]) for r in rows] == [("王小明", "'=1+1")]
    analyst = _csv(db, staff.analyst, "interactions")
    assert {r["customer"] for r in analyst} == {"王**", "J*** S****"}
    assert "body" not in analyst[0]
    deals = _xlsx(db, staff.admin, "deals")
    assert deals[0][:4] == ["id", "customer_id", "customer", "title"]
    assert deals[1][3] == "Deal A" and deals[1][deals[0].index("amount")] == 1200.5
    orders = _csv(db, staff.manager, "orders")
    assert [r["number"] for r in orders] == ["SO-1"]
    with pytest.raises(PermissionDenied):
        _csv(db, staff.support, "tickets")  # support may not export at all
    tickets = _csv(db, staff.admin, "tickets")
    assert [r["subject"] for r in tickets] == ["slow"]
    with pytest.raises(InvalidInput):
        _csv(db, staff.admin, "passwords")


def test_data_subject_export_holds_everything_about_the_person(db, staff, people):
    mine, _ = people
    with db.transaction() as s:
        log_interaction(s, actor=staff.sales1, customer_id=mine, kind="visit", subject="拜访")
        create_order(
            s, actor=staff.sales1, customer_id=mine, number="SO-2", total=Decimal("10"),
            ordered_at=datetime(2026, 2, 1, tzinfo=UTC),
        )  # fmt: skip
        s.add(ConsentEvent(customer_id=mine, purpose="marketing", granted=True, channel="web"))
    with db.transaction() as s:
        document = subject_export(s, actor=staff.admin, customer_id=mine)
        with pytest.raises(PermissionDenied):
            subject_export(s, actor=staff.steward, customer_id=mine)
    assert document["customer"]["name"] == "王小明"
    assert document["customer"]["notes"] == "私人备注"
    assert [p["e164"] for p in document["phones"]] == ["+8613800138000"]
    assert document["interactions"][0]["subject"] == "拜访"
    assert document["orders"][0]["number"] == "SO-2"
    assert document["consent"][0]["purpose"] == "marketing"
    actions = {a["action"] for a in document["audit"]}
    assert {"customer.create", "interaction.create", "order.create"} <= actions
    with db.transaction() as s:
        raw = subject_export_json(s, actor=staff.admin, customer_id=mine)
        audited = s.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "customer.subject_export")
        )
        assert len(list(audited)) == 2
    assert "王小明" in raw.decode("utf-8") and json.loads(raw)["customer"]["id"] == mine


def test_import_options_round_trip_through_xlsx(db, staff, people):
    buf = io.BytesIO()
    with db.transaction() as s:
        export_customers(s, actor=staff.admin, target=buf, fmt="xlsx")
        report = run_import(
            s, actor=staff.steward, source=buf.getvalue(), options=ImportOptions(mode="update")
        )
    assert report.file_format == "xlsx" and report.unchanged == 2 and report.invalid == 0
