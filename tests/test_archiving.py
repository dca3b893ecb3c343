"""The shared bulk archive service: many customers in a few statements, an audit entry each,
versions bumped, reason and rule recorded, idempotent, and the actor's reach respected."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from crm_core import archiving, customers
from crm_core.errors import InvalidInput, PermissionDenied
from crm_core.models import AuditEntry, Customer

NOW = datetime(2031, 5, 4, 6, 0, tzinfo=UTC)


def _make(db, actor, n: int, prefix: str = "C") -> list[int]:
    with db.transaction() as s:
        return [
            customers.create_customer(s, actor=actor, data={"name": f"{prefix} {i}"}).id
            for i in range(n)
        ]


def _archive_entries(db, cid: int) -> list[AuditEntry]:
    with db.transaction() as s:
        return list(
            s.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "customer.archive", AuditEntry.entity_id == cid)
                .order_by(AuditEntry.id)
            )
        )


def test_archives_many_with_reason_audit_and_new_versions(db, staff):
    ids = _make(db, staff.sales1, 30)
    with db.transaction() as s:
        before = {c.id: c.version for c in s.scalars(select(Customer).where(Customer.id.in_(ids)))}
        done = archiving.archive_customers(
            s,
            actor=staff.admin,
            customer_ids=ids,
            reason="  gone quiet  ",
            source="automation:auto_archive",
            detail="Archive customers gone quiet",
            now=NOW,
        )
    assert done == sorted(ids)
    with db.transaction() as s:
        for c in s.scalars(select(Customer).where(Customer.id.in_(ids))):
            assert (c.archived_at, c.archived_by_id, c.archive_reason) == (
                NOW,
                staff.admin.id,
                "gone quiet",
            )
            assert c.version == before[c.id] + 1
    entries = _archive_entries(db, ids[0])
    assert len(entries) == 1
    entry = entries[0]
    assert entry.actor_id == staff.admin.id and entry.at == NOW
    assert (
        entry.source == "automation:auto_archive" and entry.detail == "Archive customers gone quiet"
    )
    assert entry.changes == {
        "archived_at": [None, NOW.isoformat()],
        "archive_reason": [None, "gone quiet"],
    }


def test_running_twice_archives_nothing_twice(db, staff):
    ids = _make(db, staff.sales1, 3)
    with db.transaction() as s:
        assert (
            len(archiving.archive_customers(s, actor=staff.admin, customer_ids=ids[:2], reason="x"))
            == 2
        )
    with db.transaction() as s:
        assert archiving.archive_customers(s, actor=staff.admin, customer_ids=ids, reason="x") == [
            ids[2]
        ]
        assert archiving.archive_customers(s, actor=staff.admin, customer_ids=ids, reason="x") == []
    with db.transaction() as s:
        count = s.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "customer.archive", AuditEntry.entity_id.in_(ids))
        )
    assert count == 3


def test_a_manager_archives_only_the_team_records(db, staff):
    mine = _make(db, staff.sales1, 2, "Team A")
    other = _make(db, staff.sales2, 2, "Team B")
    with db.transaction() as s:
        done = archiving.archive_customers(
            s, actor=staff.manager, customer_ids=mine + other, reason="closed"
        )
    assert done == sorted(mine)
    with db.transaction() as s:
        assert all(s.get(Customer, cid).archived_at is None for cid in other)


def test_bad_requests_are_refused(db, staff):
    ids = _make(db, staff.sales1, 1)
    with db.transaction() as s:
        with pytest.raises(InvalidInput) as err:
            archiving.archive_customers(s, actor=staff.admin, customer_ids=ids, reason="  ")
        assert err.value.field == "reason"
        with pytest.raises(PermissionDenied):
            archiving.archive_customers(s, actor=staff.sales1, customer_ids=ids, reason="x")


def test_a_record_loaded_before_can_still_be_changed_after_the_bulk_update(db, staff):
    (cid,) = _make(db, staff.sales1, 1)
    with db.transaction() as s:
        record = s.get(Customer, cid)
        old_version = record.version
        archiving.archive_customers(s, actor=staff.admin, customer_ids=[cid], reason="x")
        assert record.archived_at is not None and record.version == old_version + 1
        customers.restore_customer(s, actor=staff.admin, customer_id=cid)
    with db.transaction() as s:
        assert s.get(Customer, cid).archived_at is None
