"""Consent ledger, retention policies and anonymisation on SQLite and PostgreSQL.

The central check: after anonymisation no personal value of the person is left anywhere in the
database (every table and column, the search index and the audit trail included), while the
non-personal history stays for reports; the same person imported again is flagged.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, inspect, select, text, update

from crm_core import activities, customers, privacy
from crm_core import automation as auto
from crm_core.customfields import define_field
from crm_core.errors import PermissionDenied
from crm_core.models import (
    Customer,
    Deal,
    ErasureFingerprint,
    ImportBatch,
    ImportBatchRow,
    Interaction,
)

T0 = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)

PERSONAL = {
    "name": "欧阳小明",
    "phone": "13912345678",
    "email": "xiaoming.ouyang@example.org",
    "street": "西湖区文三路 478 号",
    "notes": "Prefers calls after 6pm, wife Lily",
    "custom": "Passport E12345678",
    "company": "Ouyang Family Trading",
    "birthday": "1987-04-23",
}


@pytest.fixture(autouse=True)
def privacy_key(monkeypatch):
    monkeypatch.setenv("CRM_PRIVACY_KEY", "test-key-not-secret")


def _enable_only(db, staff, *keys: str) -> None:
    with db.transaction() as s:
        for rule in auto.list_rules(s, actor=staff.admin):
            if rule.enabled != (rule.key in keys):
                auto.set_enabled(s, actor=staff.admin, rule_id=rule.id, enabled=rule.key in keys)


def _rich_person(db, staff) -> int:
    """A person with personal values spread over every table that can hold them."""
    with db.transaction() as s:
        define_field(s, actor=staff.admin, key="id_doc", label_en="ID document", field_type="text")
        c = customers.create_customer(
            s,
            actor=staff.sales1,
            data={
                "name": PERSONAL["name"],
                "phones": [PERSONAL["phone"]],
                "emails": [PERSONAL["email"]],
                "street": PERSONAL["street"],
                "city": "杭州",
                "notes": PERSONAL["notes"],
                "company_name": PERSONAL["company"],
                "birthday": PERSONAL["birthday"],
                "custom": {"id_doc": PERSONAL["custom"]},
                "lifecycle_stage": "customer",
            },
        )
        cid = c.id
        customers.update_customer(
            s,
            actor=staff.sales1,
            customer_id=cid,
            expected_version=c.version,
            changes={"street": PERSONAL["street"] + " 2F"},
        )
        activities.log_interaction(
            s,
            actor=staff.sales1,
            customer_id=cid,
            kind="call",
            subject=f"Call with {PERSONAL['name']}",
            body=f"Reached on {PERSONAL['phone']}",
            occurred_at=T0 - timedelta(days=2),
        )
        deal = activities.create_deal(
            s, actor=staff.sales1, customer_id=cid, title=f"{PERSONAL['name']} renewal", amount=900
        )
        activities.move_deal(s, actor=staff.sales1, deal_id=deal.id, stage="won")
        ticket = activities.create_ticket(
            s,
            actor=staff.sales1,
            customer_id=cid,
            kind="request",
            subject=f"{PERSONAL['name']} asks for invoice",
            body=f"Send to {PERSONAL['email']}",
        )
        activities.add_ticket_note(
            s, actor=staff.support, ticket_id=ticket.id, body=f"Called {PERSONAL['phone']}"
        )
        activities.close_ticket(s, actor=staff.support, ticket_id=ticket.id)
        privacy.record_consent(
            s,
            actor=staff.sales1,
            customer_id=cid,
            purpose="marketing",
            granted=True,
            channel="phone",
            text_version="2026-01",
            note=f"said yes on {PERSONAL['phone']}",
        )
        # an import that updated the person keeps its prior values (to revert it)
        batch = ImportBatch(actor_id=staff.admin.id, file_name="contacts.csv")
        s.add(batch)
        s.flush()
        s.add(
            ImportBatchRow(
                batch_id=batch.id,
                row_number=2,
                action="updated",
                customer_id=cid,
                prior={"emails": [[PERSONAL["email"], "work"]]},
            )
        )
    return cid


def _values_left(db, needles: list[str]) -> list[str]:
    """Every table and column (FTS shadow tables too on SQLite) searched for the values."""
    found = []
    with db.engine.connect() as conn:
        tables = inspect(conn).get_table_names()
        if db.dialect == "sqlite":
            tables = [
                r[0]
                for r in conn.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))
            ]
        for table in tables:
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "ignore")
                    if value is None:
                        continue
                    value = str(value)
                    for needle in needles:
                        if needle in value:
                            found.append(f"{table}: {needle!r} in {value[:80]!r}")
    return found


def test_anonymisation_leaves_no_personal_value_anywhere(db, staff):
    cid = _rich_person(db, staff)
    needles = [v for v in PERSONAL.values()] + ["3912345678", "xiaoming", "ouyang"]
    assert _values_left(db, needles)  # the scan does find them before
    with db.transaction() as s:
        person = privacy.anonymise_customer(
            s, actor=staff.admin, customer_id=cid, reason="erasure request by phone", now=T0
        )
        assert person.anonymised_at == T0 and person.name == f"Anonymised #{cid}"
    assert _values_left(db, needles) == []
    with db.transaction() as s:
        # non-personal history is kept for reports
        assert s.scalar(select(Deal.amount).where(Deal.customer_id == cid)) == Decimal("900.00")
        assert s.scalar(select(Deal.status).where(Deal.customer_id == cid)) == "won"
        kinds = s.scalars(select(Interaction.subject).where(Interaction.customer_id == cid))
        assert list(kinds) == ["call"]
        assert s.get(Customer, cid).city == "杭州"
        assert customers.search_customers(s, actor=staff.admin, query=PERSONAL["name"]) == []
        assert customers.search_customers(s, actor=staff.admin, query="ouyang") == []


def test_only_admins_erase(db, staff):
    cid = _rich_person(db, staff)
    with pytest.raises(PermissionDenied), db.transaction() as s:
        privacy.anonymise_customer(s, actor=staff.manager, customer_id=cid, reason="x")


def test_reimported_anonymised_person_is_flagged(db, staff):
    _enable_only(db, staff, "reimport_flag")
    cid = _rich_person(db, staff)
    with db.transaction() as s:
        privacy.anonymise_customer(s, actor=staff.admin, customer_id=cid, reason="request")
        assert s.scalar(select(func.count()).select_from(ErasureFingerprint)) == 2
    with db.transaction() as s:
        again = customers.create_customer(
            s,
            actor=staff.sales2,
            data={"name": "X. Ouyang", "phones": ["+86 139-1234-5678"]},
        )
        fresh = customers.create_customer(s, actor=staff.sales2, data={"name": "Someone Else"})
        matches = privacy.erased_matches(s, emails=[PERSONAL["email"].upper()])
        assert [(m.kind, m.anonymised_customer_id) for m in matches] == [("email", cid)]
        again_id, fresh_id = again.id, fresh.id
    auto.run_due(db, now=T0, deliver=False)
    with db.transaction() as s:
        assert "previously-anonymised" in [t.name for t in s.get(Customer, again_id).tags]
        assert s.get(Customer, fresh_id).tags == []
        bell = auto.list_notifications(s, actor=staff.admin)
        assert [n.customer_id for n in bell] == [again_id]


def test_consent_ledger_keeps_every_change(db, staff):
    with db.transaction() as s:
        cid = customers.create_customer(s, actor=staff.sales1, data={"name": "Consent"}).id
    for granted, days in ((True, 30), (False, 10), (True, 1)):
        with db.transaction() as s:
            privacy.record_consent(
                s,
                actor=staff.sales1,
                customer_id=cid,
                purpose="marketing",
                granted=granted,
                channel="web form",
                text_version=f"v{days}",
                at=T0 - timedelta(days=days),
            )
    with db.transaction() as s:
        history = privacy.consent_history(s, actor=staff.sales1, customer_id=cid)
        assert [(e.granted, e.text_version) for e in history] == [
            (True, "v1"),
            (False, "v10"),
            (True, "v30"),
        ]
        assert privacy.current_consent(s, actor=staff.sales1, customer_id=cid) == {
            "marketing": True
        }
        with pytest.raises(PermissionDenied):
            privacy.record_consent(
                s,
                actor=staff.analyst,
                customer_id=cid,
                purpose="marketing",
                granted=False,
                channel="x",
                text_version="v",
            )


def test_retention_policy_anonymises_when_it_expires(db, staff):
    _enable_only(db, staff, "retention")
    with db.transaction() as s:
        privacy.set_retention_policy(s, actor=staff.admin, purpose="marketing", period_days=3 * 365)
        old = customers.create_customer(s, actor=staff.sales1, data={"name": "Old Lead"})
        recent = customers.create_customer(s, actor=staff.sales1, data={"name": "Recent Lead"})
        no_consent = customers.create_customer(s, actor=staff.sales1, data={"name": "Kept"})
        busy = customers.create_customer(s, actor=staff.sales1, data={"name": "Open Ticket"})
        for c in (old, recent, busy):
            privacy.record_consent(
                s,
                actor=staff.sales1,
                customer_id=c.id,
                purpose="marketing",
                granted=True,
                channel="web",
                text_version="v1",
            )
        activities.create_ticket(
            s, actor=staff.sales1, customer_id=busy.id, kind="request", subject="Still open"
        )
        ids = {"old": old.id, "recent": recent.id, "no_consent": no_consent.id, "busy": busy.id}
        long_ago = T0 - timedelta(days=4 * 365)
        for key in ("old", "no_consent", "busy"):
            s.execute(
                update(Customer)
                .where(Customer.id == ids[key])
                .values(last_contact_at=long_ago, created_at=long_ago)
            )
        s.execute(
            update(Customer)
            .where(Customer.id == ids["recent"])
            .values(last_contact_at=T0 - timedelta(days=365))
        )
    previews = auto.dry_run(db, now=T0, rules=["retention"])
    assert previews[0].matched == 1
    auto.run_due(db, now=T0, deliver=False)
    auto.run_due(db, now=T0 + timedelta(days=1), deliver=False)
    with db.transaction() as s:
        state = {k: s.get(Customer, v).anonymised_at is not None for k, v in ids.items()}
        assert state == {"old": True, "recent": False, "no_consent": False, "busy": False}
        runs = auto.list_runs(s, actor=staff.admin)
        assert [(r.rule_key, r.summary) for r in runs if r.matched] == [
            ("retention", {"anonymise": 1})
        ]
