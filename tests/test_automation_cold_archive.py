"""Cold archive: archived customers exported to CSV/Parquet with a manifest, removed from the
live database, and restored exactly; damaged files are refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from crm_core import activities, cold_archive, customers
from crm_core.errors import ConflictError, InvalidInput, PermissionDenied
from crm_core.models import Customer, Interaction, Payment, TicketNote


def _archived_customer(db, staff, name: str) -> int:
    with db.transaction() as s:
        c = customers.create_customer(
            s,
            actor=staff.sales1,
            data={
                "name": name,
                "phones": ["13800138000"],
                "emails": [f"{name.lower()}@example.com"],
                "tags": ["old", "wechat"],
                "notes": "",
                "birthday": "1980-02-03",
            },
        )
        activities.log_interaction(
            s,
            actor=staff.sales1,
            customer_id=c.id,
            kind="call",
            subject="Last call",
            occurred_at=datetime.now(UTC) - timedelta(days=400),
        )
        order = activities.create_order(s, actor=staff.sales1, customer_id=c.id, total="99.90")
        activities.add_payment(s, actor=staff.sales1, order_id=order.id, amount="99.90")
        ticket = activities.create_ticket(
            s, actor=staff.sales1, customer_id=c.id, kind="feedback", subject="Thanks"
        )
        activities.add_ticket_note(s, actor=staff.support, ticket_id=ticket.id, body="noted")
        customers.archive_customer(s, actor=staff.manager, customer_id=c.id, reason="gone quiet")
        return c.id


def _snapshot(db, cid: int) -> dict:
    with db.transaction() as s:
        data = customers.customer_dict(s.get(Customer, cid))
        data["interactions"] = s.scalar(select(func.count()).where(Interaction.customer_id == cid))
        return data


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_purge_and_restore_round_trip(db, staff, tmp_path, fmt):
    a = _archived_customer(db, staff, "Alpha")
    b = _archived_customer(db, staff, "Beta")
    with db.transaction() as s:
        live = customers.create_customer(s, actor=staff.sales1, data={"name": "Live"}).id
    before = {cid: _snapshot(db, cid) for cid in (a, b)}
    folder = tmp_path / "cold"
    with db.transaction() as s:
        manifest = cold_archive.export_archived(
            s, actor=staff.admin, directory=folder, fmt=fmt, purge=True
        )
    assert manifest.customers == 2
    assert manifest.tables["customers"]["rows"] == 2
    assert manifest.tables["payments"]["rows"] == 2
    assert manifest.tables["customer_tags"]["rows"] == 4
    stored = json.loads((folder / "manifest.json").read_text())
    assert stored["tables"]["ticket_notes"]["sha256"] == manifest.tables["ticket_notes"]["sha256"]
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 1  # only the live one
        assert s.get(Customer, live) is not None
        assert s.scalar(select(func.count()).select_from(Payment)) == 0
    with db.transaction() as s:
        report = cold_archive.restore_archive(s, actor=staff.admin, directory=folder)
    assert report.customers == 2 and report.rows["ticket_notes"] == 2
    assert {cid: _snapshot(db, cid) for cid in (a, b)} == before
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(TicketNote)) == 2
        # restored ones are still archived; restoring twice is refused
        assert (
            customers.count_customers(
                s, actor=staff.admin, filters=customers.CustomerFilter(archived=True)
            )
            == 2
        )
        with pytest.raises(ConflictError):
            cold_archive.restore_archive(s, actor=staff.admin, directory=folder)
        # new records get new ids after a restore (PostgreSQL sequences)
        assert customers.create_customer(s, actor=staff.admin, data={"name": "New"}).id > b


def test_damaged_archive_is_refused(db, staff, tmp_path):
    _archived_customer(db, staff, "Gamma")
    folder = tmp_path / "cold"
    with db.transaction() as s:
        cold_archive.export_archived(s, actor=staff.admin, directory=folder, fmt="csv")
    path = folder / "customers.csv"
    path.write_text(path.read_text().replace("Gamma", "Gamme"))
    with pytest.raises(InvalidInput) as err:
        cold_archive.read_manifest(folder)
    assert "customers.csv" in str(err.value) and "SHA-256" in str(err.value)


def test_export_needs_archive_rights_and_takes_archived_only(db, staff, tmp_path):
    _archived_customer(db, staff, "Delta")
    with db.transaction() as s:
        customers.create_customer(s, actor=staff.sales1, data={"name": "Active"})
        with pytest.raises(PermissionDenied):
            cold_archive.export_archived(s, actor=staff.sales1, directory=tmp_path / "x")
        manifest = cold_archive.export_archived(s, actor=staff.manager, directory=tmp_path / "y")
    assert manifest.customers == 1 and manifest.purged is False
