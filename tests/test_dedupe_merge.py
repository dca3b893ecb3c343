"""Merging duplicate customers and undoing merges, on SQLite and PostgreSQL: survivorship,
children, tags, tombstones, audit, exact undo, refusals and atomicity."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from crm_core import activities as act
from crm_core import customers as svc
from crm_core.dedupe import merge as mg
from crm_core.errors import ConflictError, NotFound, PermissionDenied
from crm_core.models import (
    AuditEntry,
    Contract,
    Customer,
    CustomerEmail,
    CustomerPhone,
    Deal,
    DedupeMerge,
    Interaction,
    LoyaltyEntry,
    Order,
    Task,
    Ticket,
    customer_tags,
)

CHILD_MODELS = (Interaction, Deal, Order, Contract, Ticket, Task, LoyaltyEntry)


def _create(db, actor, **data) -> int:
    with db.transaction() as s:
        return svc.create_customer(s, actor=actor, data=data).id


def _history(db, actor, cid: int, tag: str) -> None:
    with db.transaction() as s:
        act.log_interaction(s, actor=actor, customer_id=cid, kind="call", subject=f"call {tag}")
        act.create_deal(s, actor=actor, customer_id=cid, title=f"deal {tag}", amount=100)
        act.create_order(s, actor=actor, customer_id=cid, total=50)
        act.create_contract(
            s,
            actor=actor,
            customer_id=cid,
            title=f"contract {tag}",
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
        )
        act.create_ticket(s, actor=actor, customer_id=cid, kind="request", subject=f"t {tag}")
        act.create_task(s, actor=actor, customer_id=cid, title=f"task {tag}")
        act.add_points(s, actor=actor, customer_id=cid, points=10, reason=f"points {tag}")


def _state(db, ids) -> dict:
    """Everything a merge may touch, for the given customers (versions and times aside)."""
    with db.transaction() as s:
        out: dict = {}
        for cid in ids:
            c = s.get(Customer, cid)
            row = {
                col.key: getattr(c, col.key)
                for col in Customer.__table__.columns
                if col.key not in ("version", "updated_at")
            }
            row["phones"] = sorted(
                (p.id, p.e164, p.raw, p.is_primary)
                for p in s.scalars(select(CustomerPhone).where(CustomerPhone.customer_id == cid))
            )
            row["emails"] = sorted(
                (e.id, e.email, e.is_primary)
                for e in s.scalars(select(CustomerEmail).where(CustomerEmail.customer_id == cid))
            )
            row["tags"] = sorted(
                s.scalars(select(customer_tags.c.tag_id).where(customer_tags.c.customer_id == cid))
            )
            for model in CHILD_MODELS:
                row[model.__tablename__] = sorted(
                    s.scalars(select(model.id).where(model.customer_id == cid))
                )
            row["contacts"] = sorted(
                s.scalars(select(Customer.id).where(Customer.company_id == cid))
            )
            out[cid] = row
        return out


@pytest.fixture
def pair(db, staff):
    """Two records of one person, each with a full history, tags, phones and emails."""
    a = _create(
        db,
        staff.admin,
        name="王伟",
        phones=["13800138000"],
        emails=["wang.wei@example.com"],
        city="杭州",
        tags=["vip"],
        notes="old note",
    )
    b = _create(
        db,
        staff.admin,
        name="王伟",
        phones=["13800138000", "13912345678"],
        emails=["ww@example.org"],
        city="杭州市",
        street="文三路 100 号",
        position="经理",
        tags=["wechat", "vip"],
    )
    _history(db, staff.admin, a, "a")
    _history(db, staff.admin, b, "b")
    return a, b


def test_merge_moves_children_tags_phones_and_leaves_a_tombstone(db, staff, pair):
    a, b = pair
    with db.transaction() as s:
        merge = mg.merge_customers(s, actor=staff.steward, customer_ids=[a, b])
        survivor, loser = merge.survivor_id, merge.loser_ids[0]
    assert survivor == b  # more complete: street, position, two phones
    assert loser == a
    state = _state(db, [a, b])
    for model in CHILD_MODELS:
        assert len(state[b][model.__tablename__]) == 2, model.__tablename__
        assert state[a][model.__tablename__] == []
    assert [p[1] for p in state[b]["phones"]] == ["+8613800138000", "+8613912345678"]
    assert {e[1] for e in state[b]["emails"]} == {"ww@example.org", "wang.wei@example.com"}
    assert state[a]["phones"] == [] and state[a]["emails"] == []
    assert len(state[b]["tags"]) == 2
    assert state[a]["merged_into_id"] == b
    assert state[b]["notes"] == "old note"  # the only non-empty value survives
    with db.transaction() as s:
        # tombstones are hidden from every list and from direct reads
        listed = [c.id for c in svc.list_customers(s, actor=staff.admin).items]
        assert listed == [b]
        with pytest.raises(NotFound):
            svc.get_customer(s, actor=staff.admin, customer_id=a)
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action.like("customer.merge%")))
        merge_entry = next(iter(entries))
        assert merge_entry.entity_id == b and merge_entry.actor_id == staff.steward.id
        assert merge_entry.changes["merged_ids"] == [None, [a]]
        assert s.scalar(
            select(AuditEntry.id).where(
                AuditEntry.action == "customer.merged", AuditEntry.entity_id == a
            )
        )


def test_most_recent_non_empty_value_wins_and_manual_choice_overrides(db, staff):
    a = _create(db, staff.admin, name="Li Na", city="Beijing", industry="retail")
    b = _create(db, staff.admin, name="Li Na", city="Shanghai")
    with db.transaction() as s:
        # b is newer, so its city wins by default; industry only a has
        merge = mg.merge_customers(s, actor=staff.admin, customer_ids=[a, b], survivor_id=a)
        c = s.get(Customer, a)
        assert (c.city, c.industry) == ("Shanghai", "retail")
        mg.undo_merge(s, actor=staff.admin, merge_id=merge.id)
    with db.transaction() as s:
        mg.merge_customers(
            s, actor=staff.admin, customer_ids=[a, b], survivor_id=a, choices={"city": a}
        )
        assert s.get(Customer, a).city == "Beijing"


def test_undo_restores_the_exact_prior_state(db, staff, pair):
    a, b = pair
    before = _state(db, [a, b])
    with db.transaction() as s:
        merge_id = mg.merge_customers(s, actor=staff.admin, customer_ids=[a, b]).id
    with db.transaction() as s:
        mg.undo_merge(s, actor=staff.steward, merge_id=merge_id)
    assert _state(db, [a, b]) == before
    with db.transaction() as s:
        assert s.get(DedupeMerge, merge_id).undone_at is not None
        assert s.scalar(
            select(AuditEntry.id).where(
                AuditEntry.action == "customer.merge_undo", AuditEntry.entity_id == b
            )
        )
        # both records are editable again
        svc.update_customer(
            s,
            actor=staff.admin,
            customer_id=a,
            expected_version=s.get(Customer, a).version,
            changes={"notes": "back"},
        )


def test_undo_after_unrelated_edits_keeps_them(db, staff, pair):
    a, b = pair
    before = _state(db, [a, b])
    with db.transaction() as s:
        merge_id = mg.merge_customers(s, actor=staff.steward, customer_ids=[a, b]).id
    with db.transaction() as s:  # later, unrelated: a new interaction and a field the merge kept
        act.log_interaction(s, actor=staff.admin, customer_id=b, kind="note", subject="after")
        c = s.get(Customer, b)
        svc.update_customer(
            s,
            actor=staff.admin,
            customer_id=b,
            expected_version=c.version,
            changes={"industry": "software"},
        )
    with db.transaction() as s:
        mg.undo_merge(s, actor=staff.steward, merge_id=merge_id)
    after = _state(db, [a, b])
    assert after[a] == before[a]
    assert after[b]["industry"] == "software"
    assert len(after[b]["interactions"]) == len(before[b]["interactions"]) + 1
    for key in ("notes", "phones", "emails", "tags", "deals", "orders", "merged_into_id"):
        assert after[b][key] == before[b][key], key


def test_undo_refused_when_a_later_edit_collides(db, staff, pair):
    a, b = pair
    with db.transaction() as s:
        merge_id = mg.merge_customers(s, actor=staff.steward, customer_ids=[a, b]).id
    with db.transaction() as s:  # notes came from a by the merge; now edited on the survivor
        c = s.get(Customer, b)
        svc.update_customer(
            s,
            actor=staff.admin,
            customer_id=b,
            expected_version=c.version,
            changes={"notes": "edited later"},
        )
    snapshot = _state(db, [a, b])
    with pytest.raises(ConflictError) as err, db.transaction() as s:
        mg.undo_merge(s, actor=staff.steward, merge_id=merge_id)
    assert "notes" in str(err.value)
    assert _state(db, [a, b]) == snapshot
    with db.transaction() as s:
        assert s.get(DedupeMerge, merge_id).undone_at is None
        assert mg.undo_problems(s, actor=staff.steward, merge_id=merge_id)


def test_undo_twice_and_merge_of_a_tombstone_are_refused(db, staff, pair):
    a, b = pair
    c = _create(db, staff.admin, name="王伟", city="杭州")
    with db.transaction() as s:
        merge_id = mg.merge_customers(s, actor=staff.steward, customer_ids=[a, b]).id
    with pytest.raises(ConflictError, match="already merged"), db.transaction() as s:
        mg.merge_customers(s, actor=staff.steward, customer_ids=[a, c])
    with db.transaction() as s:
        mg.undo_merge(s, actor=staff.steward, merge_id=merge_id)
    with pytest.raises(ConflictError, match="undone already"), db.transaction() as s:
        mg.undo_merge(s, actor=staff.steward, merge_id=merge_id)


@pytest.mark.parametrize("role", ["sales1", "support", "analyst"])
def test_forbidden_roles_may_not_merge_or_undo(db, staff, pair, role):
    a, b = pair
    before = _state(db, [a, b])
    with pytest.raises(PermissionDenied), db.transaction() as s:
        mg.merge_customers(s, actor=getattr(staff, role), customer_ids=[a, b])
    assert _state(db, [a, b]) == before
    with db.transaction() as s:
        merge_id = mg.merge_customers(s, actor=staff.admin, customer_ids=[a, b]).id
    with pytest.raises(PermissionDenied), db.transaction() as s:
        mg.undo_merge(s, actor=getattr(staff, role), merge_id=merge_id)


def test_manager_merges_only_records_of_the_team(db, staff):
    own = _create(db, staff.sales1, name="Zhang San")
    other = _create(db, staff.sales2, name="Zhang San")
    with pytest.raises(NotFound), db.transaction() as s:
        mg.merge_customers(s, actor=staff.manager, customer_ids=[own, other])
    dup = _create(db, staff.sales1, name="Zhang San", city="Hangzhou")
    with db.transaction() as s:
        assert mg.merge_customers(s, actor=staff.manager, customer_ids=[own, dup]).survivor_id


def test_contacts_of_a_merged_company_move_and_come_back(db, staff):
    acme = _create(db, staff.admin, name="Acme Ltd", kind="company")
    acme2 = _create(db, staff.admin, name="ACME Limited", kind="company", city="Hangzhou")
    person = _create(db, staff.admin, name="Bob", company_id=acme)
    with db.transaction() as s:
        merge = mg.merge_customers(s, actor=staff.admin, customer_ids=[acme, acme2])
        assert merge.survivor_id == acme2
        assert s.get(Customer, person).company_id == acme2
    with db.transaction() as s:
        mg.undo_merge(s, actor=staff.admin, merge_id=merge.id)
        assert s.get(Customer, person).company_id == acme
    with pytest.raises(ConflictError, match="person and a company"), db.transaction() as s:
        mg.merge_customers(s, actor=staff.admin, customer_ids=[acme, person])


def test_merge_interrupted_by_an_error_leaves_the_database_as_it_was(db, staff, pair):
    """A database error at the very end (the audit insert) rolls the whole merge back."""
    a, b = pair
    before = _state(db, [a, b])
    with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER fail_merge BEFORE INSERT ON audit_entries "
                    "WHEN NEW.action = 'customer.merged' "
                    "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION fail_merge() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'disk on fire'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER fail_merge BEFORE INSERT ON audit_entries FOR EACH ROW "
                    "WHEN (NEW.action = 'customer.merged') EXECUTE FUNCTION fail_merge()"
                )
            )
    try:
        with pytest.raises(Exception, match="disk on fire"), db.transaction() as s:
            mg.merge_customers(s, actor=staff.steward, customer_ids=[a, b])
        assert _state(db, [a, b]) == before
        with db.transaction() as s:
            assert s.scalar(select(DedupeMerge.id)) is None
    finally:
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    "DROP TRIGGER fail_merge"
                    if db.dialect == "sqlite"
                    else "DROP TRIGGER fail_merge ON audit_entries; DROP FUNCTION fail_merge()"
                )
            )


def test_last_contact_is_the_latest_and_custom_fields_are_united(db, staff):
    a = _create(db, staff.admin, name="Chen Jie")
    b = _create(db, staff.admin, name="Chen Jie")
    earlier = datetime(2026, 1, 1, tzinfo=UTC)
    with db.transaction() as s:
        act.log_interaction(
            s, actor=staff.admin, customer_id=a, kind="call", subject="x", occurred_at=earlier
        )
        act.log_interaction(
            s,
            actor=staff.admin,
            customer_id=b,
            kind="call",
            subject="y",
            occurred_at=earlier - timedelta(days=30),
        )
    with db.transaction() as s:
        merge = mg.merge_customers(s, actor=staff.admin, customer_ids=[a, b], survivor_id=b)
        assert s.get(Customer, b).last_contact_at == earlier
        mg.undo_merge(s, actor=staff.admin, merge_id=merge.id)
        assert s.get(Customer, b).last_contact_at == earlier - timedelta(days=30)


# ---------------------------------------------------------------- records of other areas

LINKED_MODULE_FIELDS = [
    {"key": "title", "label_en": "Title", "field_type": "text", "required": True},
    {"key": "customer", "label_en": "Customer", "field_type": "customer"},
    {"key": "partner", "label_en": "Partner", "field_type": "customer"},
]


def _others_state(db, ids) -> dict:
    """What other areas hold about the given customers: consent lines, import batch rows,
    automation rows, and module records with their links, display names and value index."""
    from crm_core.models import (
        ConsentEvent,
        ImportBatchRow,
        ModuleRecord,
        ModuleValue,
        Notification,
        OutboundEmail,
        RuleEvent,
    )

    with db.transaction() as s:
        out: dict = {}
        for model in (ConsentEvent, ImportBatchRow, RuleEvent, Notification, OutboundEmail):
            out[model.__tablename__] = sorted(
                s.execute(
                    select(model.id, model.customer_id).where(model.customer_id.in_(ids))
                ).all()
            )
        out["module_records"] = sorted(
            (r.id, r.customer_id, r.display_name, tuple(sorted(r.data.items())))
            for r in s.scalars(select(ModuleRecord))
        )
        out["module_values"] = sorted(
            s.execute(
                select(ModuleValue.record_id, ModuleValue.field_key, ModuleValue.num_value).where(
                    ModuleValue.field_key.in_(["customer", "partner"])
                )
            ).all()
        )
        return out


@pytest.fixture
def linked(db, staff):
    """An imported customer (the loser) and a fuller one (the survivor), each pointed at by
    consent lines, automation rows and custom-module records; plus an unrelated customer."""
    from crm_core import privacy
    from crm_core.importing import ImportOptions, run_import
    from crm_core.lowcode import modules as lc_modules
    from crm_core.lowcode import records as lc_records
    from crm_core.models import AutomationRule, Notification, OutboundEmail, RuleEvent

    admin = staff.admin
    with db.transaction() as s:
        report = run_import(
            s, actor=admin, source="name,phone\n王伟,13800138000\n".encode(),
            file_name="people.csv", options=ImportOptions(),
        )  # fmt: skip
        batch_id = report.batch_id
        loser = s.scalar(select(Customer.id).where(Customer.name == "王伟"))
    survivor = _create(
        db, admin, name="王伟", phones=["13800138000"], city="杭州", street="文三路 100 号"
    )
    other = _create(db, admin, name="李娜", phones=["13900001111"])
    with db.transaction() as s:
        for cid, granted in ((loser, True), (survivor, False)):
            privacy.record_consent(
                s, actor=admin, customer_id=cid, purpose="marketing", granted=granted,
                channel="web", text_version="v1",
            )  # fmt: skip
        rule = AutomationRule(name="birthday greeting")
        s.add(rule)
        s.flush()
        event = RuleEvent(rule_id=rule.id, event_key=f"birthday:{loser}", customer_id=loser)
        s.add(event)
        s.flush()
        s.add(Notification(user_id=admin.id, customer_id=loser, event_id=event.id, title="生日"))
        s.add(OutboundEmail(customer_id=loser, to_addr="ww@example.com", subject="Happy birthday"))
        lc_modules.define_module(
            s, actor=admin, key="projects", name_en="Projects", fields=LINKED_MODULE_FIELDS,
            display_field="partner",
        )  # fmt: skip
        records = {
            name: lc_records.create_record(s, actor=admin, module_key="projects", data=data).id
            for name, data in {
                "both": {"title": "Rollout", "customer": loser, "partner": loser},
                "partner": {"title": "Pilot", "customer": survivor, "partner": loser},
                "unrelated": {"title": "Other", "customer": other, "partner": other},
            }.items()
        }
    return {
        "loser": loser,
        "survivor": survivor,
        "other": other,
        "batch": batch_id,
        "records": records,
    }


def test_merge_moves_records_of_other_areas_and_undo_restores_them(db, staff, linked):
    from crm_core import activities
    from crm_core.models import ModuleRecord

    loser, survivor, other = linked["loser"], linked["survivor"], linked["other"]
    ids = [loser, survivor, other]
    before = _others_state(db, ids)
    with db.transaction() as s:
        version = s.get(Customer, survivor).version
        merge = mg.merge_customers(
            s, actor=staff.steward, customer_ids=[loser, survivor], survivor_id=survivor
        )
        merge_id = merge.id
        detail = s.scalar(select(AuditEntry.detail).where(AuditEntry.action == "customer.merge"))
    after = _others_state(db, ids)
    for table in ("consent_events", "import_batch_rows", "automation_events", "notifications",
                  "outbound_emails"):  # fmt: skip
        assert after[table], table
        assert {cid for _, cid in after[table]} == {survivor}, table
    assert len(after["consent_events"]) == 2
    both, partner, unrelated = (linked["records"][k] for k in ("both", "partner", "unrelated"))
    with db.transaction() as s:
        assert s.get(Customer, survivor).version > version  # open forms must reload
        record = s.get(ModuleRecord, both)
        assert record.data["customer"] == record.data["partner"] == survivor
        assert (record.customer_id, record.display_name) == (survivor, str(survivor))
        record = s.get(ModuleRecord, partner)
        assert (record.data["customer"], record.data["partner"]) == (survivor, survivor)
        assert s.get(ModuleRecord, unrelated).data["customer"] == other
        titles = [
            i.title
            for i in activities.timeline(s, actor=staff.admin, customer_id=survivor)
            if i.kind == "module"
        ]
        assert sorted(titles) == [str(survivor), str(survivor)]  # the display field: partner
    assert {(rid, key) for rid, key, value in after["module_values"] if value == survivor} == {
        (both, "customer"), (both, "partner"), (partner, "customer"), (partner, "partner")
    }  # fmt: skip
    assert not [v for v in after["module_values"] if v[2] == loser]
    assert "module_records" in detail and "consent_events" in detail

    with db.transaction() as s:
        mg.undo_merge(s, actor=staff.steward, merge_id=merge_id)
    assert _others_state(db, ids) == before


def test_an_import_whose_customer_was_merged_is_not_reverted(db, staff, linked):
    from crm_core.importing.batches import revert_batch, revert_check

    loser, survivor = linked["loser"], linked["survivor"]
    with db.transaction() as s:
        mg.merge_customers(
            s, actor=staff.steward, customer_ids=[loser, survivor], survivor_id=survivor
        )
    with db.transaction() as s:
        assert revert_check(s, actor=staff.admin, batch_id=linked["batch"])
        with pytest.raises(ConflictError):
            revert_batch(s, actor=staff.admin, batch_id=linked["batch"])
    with db.transaction() as s:
        assert s.get(Customer, survivor).merged_into_id is None  # the survivor stays


def test_undo_refused_when_a_moved_module_link_was_changed(db, staff, linked):
    from crm_core.lowcode import records as lc_records
    from crm_core.models import Notification

    loser, survivor, other = linked["loser"], linked["survivor"], linked["other"]
    with db.transaction() as s:
        merge_id = mg.merge_customers(
            s, actor=staff.steward, customer_ids=[loser, survivor], survivor_id=survivor
        ).id
    with db.transaction() as s:  # history may be pruned: that alone does not block the undo
        s.execute(Notification.__table__.delete())
    with db.transaction() as s:
        lc_records.update_record(
            s, actor=staff.admin, module_key="projects", record_id=linked["records"]["both"],
            data={"partner": other},
        )  # fmt: skip
    state = _others_state(db, [loser, survivor, other])
    with db.transaction() as s, pytest.raises(ConflictError) as err:
        mg.undo_merge(s, actor=staff.steward, merge_id=merge_id)
    assert f"module records {linked['records']['both']} were changed" in str(err.value)
    assert "notifications" not in str(err.value)
    assert _others_state(db, [loser, survivor, other]) == state
    with db.transaction() as s:  # put the link back: the undo applies, without the notification
        lc_records.update_record(
            s, actor=staff.admin, module_key="projects", record_id=linked["records"]["both"],
            data={"partner": survivor},
        )  # fmt: skip
    with db.transaction() as s:
        mg.undo_merge(s, actor=staff.steward, merge_id=merge_id)
    state = _others_state(db, [loser, survivor, other])
    assert {cid for _, cid in state["consent_events"]} == {loser, survivor}
    assert state["notifications"] == []
