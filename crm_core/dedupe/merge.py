"""Merging duplicate customers, and undoing a merge.

Survivorship (per field): a manual choice (``choices={"city": 12}`` takes record 12's city)
wins; otherwise the most recently updated record holding a non-empty value gives it. The
survivor is the most complete record (most non-empty fields, then the most recently updated,
then the oldest id) unless the caller names one.

Every child record of the others (interactions, deals, orders, contracts, tickets, tasks,
loyalty points, phones, emails, contact persons of a company) moves to the survivor, and so
does every record of another area that points at them: consent ledger lines, import batch
rows, the automation's events, notifications and queued e-mails, and custom-module records
linked to them (``crm_core.dedupe.references``). Tags are united, the survivor gets a new
version (a form opened before the merge must reload), and the others stay as tombstones
(``merged_into_id``), hidden from every list. All of it happens in the caller's transaction
and is audited.

Not moved, on purpose: the de-duplication's own rows (blocking keys are rebuilt, candidate
pairs, decisions and merge rows stay with the records they were about), tombstones of earlier
merges (they keep pointing at the record they were merged into, which undoing that merge
needs) and erasure fingerprints (an anonymised customer cannot be merged). The merge row keeps a snapshot of the
prior state; ``undo_merge`` restores it exactly, keeping edits made since that do not touch
what the merge changed, and refuses (changing nothing) when later edits collide with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, delete, insert, select, update
from sqlalchemy.orm import Session

from crm_core import audit
from crm_core.access import Actor, require
from crm_core.customers import TEXT_FIELDS, CleanCustomer, _apply, _snapshot, load_customer
from crm_core.dedupe import references, store
from crm_core.errors import ConflictError, InvalidInput, NotFound
from crm_core.models import (
    CandidateStatus,
    ConsentEvent,
    Contract,
    Customer,
    CustomerEmail,
    CustomerPhone,
    Deal,
    DedupeCandidate,
    DedupeMerge,
    ImportBatchRow,
    Interaction,
    LoyaltyEntry,
    Notification,
    Order,
    OutboundEmail,
    RuleEvent,
    Task,
    Ticket,
    UTCDateTime,
    customer_tags,
    utcnow,
)

#: Profile fields decided by survivorship (``custom.<key>`` for custom fields).
MERGE_FIELDS: tuple[str, ...] = (
    "name",
    "company_id",
    "country",
    "birthday",
    "lifecycle_stage",
    "value_tier",
    "owner_id",
    "last_contact_at",
    *TEXT_FIELDS,  # the profile's free-text fields, defined once in crm_core.customers
)
#: Columns the merge may change on the survivor (and undo may restore).
TRACKED: tuple[str, ...] = (*MERGE_FIELDS, "team_id", "phone", "email", "custom")
#: Child tables whose rows follow their customer into the survivor.
CHILDREN: dict[str, Any] = {
    "interactions": Interaction,
    "deals": Deal,
    "orders": Order,
    "contracts": Contract,
    "tickets": Ticket,
    "tasks": Task,
    "loyalty_entries": LoyaltyEntry,
    "consent_events": ConsentEvent,
    "import_batch_rows": ImportBatchRow,
    "automation_events": RuleEvent,
    "notifications": Notification,
    "outbound_emails": OutboundEmail,
}
#: Child tables holding history that may be pruned: a row deleted since the merge is simply
#: not moved back (the others refuse the undo).
HISTORY: frozenset[str] = frozenset(
    {"consent_events", "import_batch_rows", "automation_events", "notifications", "outbound_emails"}
)
#: Columns never restored from a snapshot (the ORM maintains them).
_NOT_RESTORED = frozenset({"id", "version"})


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == {}


def _to_json(value: Any) -> Any:
    return audit.jsonable(value)


def _from_json(column: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return datetime.fromisoformat(value)
    if isinstance(column.type, Date):
        return date.fromisoformat(value)
    return value


def _row(customer: Customer) -> dict[str, Any]:
    return {c.key: _to_json(getattr(customer, c.key)) for c in Customer.__table__.columns}


def _completeness(customer: Customer) -> int:
    filled = sum(not _empty(getattr(customer, f)) for f in MERGE_FIELDS)
    return filled + len(customer.phones) + len(customer.emails) + len(customer.custom or {})


def pick_survivor(records: Iterable[Customer]) -> Customer:
    """The most complete record; ties go to the most recently updated, then the oldest id."""
    return max(records, key=lambda c: (_completeness(c), c.updated_at, -c.id))


def survivorship(
    records: list[Customer], choices: Mapping[str, int] | None = None
) -> dict[str, tuple[Any, int]]:
    """``{field: (value, source record id)}`` for every field of ``MERGE_FIELDS`` and every
    custom field (``custom.<key>``): the chosen record's value if ``choices`` names one, else
    the most recently updated non-empty value."""
    by_id = {c.id: c for c in records}
    recent = sorted(records, key=lambda c: (c.updated_at, c.id), reverse=True)
    custom_keys = sorted({k for c in records for k in (c.custom or {})})
    fields = [*MERGE_FIELDS, *(f"custom.{k}" for k in custom_keys)]
    choices = dict(choices or {})
    unknown = set(choices) - set(fields)
    if unknown:
        raise InvalidInput(f"cannot choose field(s) {', '.join(sorted(unknown))}", field="choices")

    def value(c: Customer, f: str) -> Any:
        if f.startswith("custom."):
            return (c.custom or {}).get(f.removeprefix("custom."))
        return getattr(c, f)

    out: dict[str, tuple[Any, int]] = {}
    for f in fields:
        if f in choices:
            source = by_id.get(int(choices[f]))
            if source is None:
                raise InvalidInput(f"record {choices[f]} is not part of this merge", field=f)
            out[f] = (value(source, f), source.id)
            continue
        if f == "last_contact_at":
            dated = [(c.last_contact_at, c.id, c) for c in records if c.last_contact_at]
            best = max(dated, key=lambda t: (t[0], t[1]))[2] if dated else recent[0]
            out[f] = (best.last_contact_at, best.id)
            continue
        source = next((c for c in recent if not _empty(value(c, f))), recent[0])
        out[f] = (value(source, f), source.id)
    return out


def _load(session: Session, actor: Actor, ids: list[int]) -> list[Customer]:
    records = []
    for cid in sorted(ids):
        customer = session.get(Customer, cid, with_for_update=True, populate_existing=True)
        if customer is None:
            raise NotFound(f"customer {cid} does not exist")
        if customer.merged_into_id is not None:
            raise ConflictError(
                f"customer {cid} was already merged into customer {customer.merged_into_id}"
            )
        load_customer(session, actor=actor, customer_id=cid)
        if customer.anonymised_at is not None:
            raise ConflictError(f"customer {cid} was anonymised and cannot be merged")
        if customer.archived_at is not None:
            raise ConflictError(f"customer {cid} is archived; restore it before merging")
        records.append(customer)
    return records


def _phone_rows(c: Customer) -> list[dict[str, Any]]:
    return [
        {"id": p.id, "e164": p.e164, "raw": p.raw, "label": p.label, "is_primary": p.is_primary}
        for p in c.phones
    ]


def _email_rows(c: Customer) -> list[dict[str, Any]]:
    return [
        {"id": e.id, "email": e.email, "label": e.label, "is_primary": e.is_primary}
        for e in c.emails
    ]


def merge_customers(
    session: Session,
    *,
    actor: Actor,
    customer_ids: Iterable[int],
    survivor_id: int | None = None,
    choices: Mapping[str, int] | None = None,
    expected_versions: Mapping[int, int] | None = None,
    note: str | None = None,
    source: str | None = None,
) -> DedupeMerge:
    """Merge ``customer_ids`` into one survivor (see the module doc). Returns the merge row
    (its ``id`` undoes it). Refuses, changing nothing, when a record is missing, hidden from the
    actor, already merged, archived, anonymised, of another kind, or changed since the caller
    read it (``expected_versions``)."""
    require(actor, "dedupe.merge")
    ids = sorted({int(i) for i in customer_ids} | ({int(survivor_id)} if survivor_id else set()))
    if len(ids) < 2:
        raise InvalidInput("choose at least two different customers to merge", field="customer_ids")
    records = _load(session, actor, ids)
    for cid, version in (expected_versions or {}).items():
        current = next((c for c in records if c.id == int(cid)), None)
        if current is not None and current.version != int(version):
            raise ConflictError(
                f"customer {cid} changed since you compared it (version {current.version}, "
                f"you saw {version}); compare again",
                current_version=current.version,
            )
    if len({c.kind for c in records}) > 1:
        raise ConflictError("a person and a company cannot be merged")
    survivor = (
        next(c for c in records if c.id == int(survivor_id))
        if survivor_id
        else pick_survivor(records)
    )
    losers = [c for c in records if c.id != survivor.id]
    loser_ids = [c.id for c in losers]
    picked = survivorship(records, choices)
    if picked["company_id"][0] in loser_ids or picked["company_id"][0] == survivor.id:
        picked["company_id"] = (survivor.company_id, survivor.id)

    snapshot: dict[str, Any] = {
        "records": {str(c.id): _row(c) for c in records},
        "phones": {str(c.id): _phone_rows(c) for c in records},
        "emails": {str(c.id): _email_rows(c) for c in records},
        "tags": {str(c.id): sorted(t.id for t in c.tags) for c in records},
    }
    before = _snapshot(survivor)

    # -- fields
    for f, (value, _) in picked.items():
        if not f.startswith("custom."):
            setattr(survivor, f, value)
    owner_source = next(c for c in records if c.id == picked["owner_id"][1])
    survivor.team_id = owner_source.team_id
    survivor.custom = {
        f.removeprefix("custom."): v
        for f, (v, _) in picked.items()
        if f.startswith("custom.") and v is not None
    }

    # -- phones and emails: the survivor's first, then the others' not yet present
    moved_phones, dropped_phones, moved_emails, dropped_emails = [], [], [], []
    have_phones = {p.e164 for p in survivor.phones}
    have_emails = {e.email.lower() for e in survivor.emails}
    for loser in losers:
        for row in _phone_rows(loser):
            if row["e164"] in have_phones:
                dropped_phones.append({**row, "customer_id": loser.id})
            else:
                have_phones.add(row["e164"])
                moved_phones.append(row["id"])
        for row in _email_rows(loser):
            if row["email"].lower() in have_emails:
                dropped_emails.append({**row, "customer_id": loser.id})
            else:
                have_emails.add(row["email"].lower())
                moved_emails.append(row["id"])
    session.flush()
    if moved_phones:
        session.execute(
            update(CustomerPhone)
            .where(CustomerPhone.id.in_(moved_phones))
            .values(customer_id=survivor.id, is_primary=False)
        )
    if dropped_phones:
        session.execute(
            delete(CustomerPhone).where(CustomerPhone.id.in_([r["id"] for r in dropped_phones]))
        )
    if moved_emails:
        session.execute(
            update(CustomerEmail)
            .where(CustomerEmail.id.in_(moved_emails))
            .values(customer_id=survivor.id, is_primary=False)
        )
    if dropped_emails:
        session.execute(
            delete(CustomerEmail).where(CustomerEmail.id.in_([r["id"] for r in dropped_emails]))
        )

    # -- children
    moved: dict[str, dict[str, int]] = {}
    for name, model in CHILDREN.items():
        rows = session.execute(
            select(model.id, model.customer_id).where(model.customer_id.in_(loser_ids))
        ).all()
        moved[name] = {str(r.id): r.customer_id for r in rows}
        if rows:
            values: dict[str, Any] = {"customer_id": survivor.id}
            if hasattr(model, "version"):
                values["version"] = model.version + 1
            session.execute(
                update(model)
                .where(model.id.in_([r.id for r in rows]))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    module_links = references.move_module_links(
        session, loser_ids=loser_ids, survivor_id=survivor.id
    )
    contacts = list(session.scalars(select(Customer).where(Customer.company_id.in_(loser_ids))))
    moved["contacts"] = {str(c.id): int(c.company_id or 0) for c in contacts if c.id not in ids}
    for contact in contacts:
        if contact.id not in ids:
            contact.company_id = survivor.id

    # -- tags
    have_tags = {t.id for t in survivor.tags}
    added_tags: list[int] = []
    for loser in losers:
        for tag in loser.tags:
            if tag.id not in have_tags:
                have_tags.add(tag.id)
                added_tags.append(tag.id)
    if added_tags:
        session.execute(
            insert(customer_tags), [{"customer_id": survivor.id, "tag_id": t} for t in added_tags]
        )

    # -- tombstones
    now = utcnow()
    for loser in losers:
        loser.merged_into_id = survivor.id
    survivor.updated_at = now  # a new version: forms and imports that saw the old one must reload
    session.flush()
    session.expire_all()  # rows moved by UPDATE statements: reload what the session holds
    if not survivor.phone and survivor.phones:
        survivor.phone = survivor.phones[0].e164
    if not survivor.email and survivor.emails:
        survivor.email = survivor.emails[0].email
    _apply(session, survivor, CleanCustomer())
    session.flush()

    snapshot["after"] = {f: _to_json(getattr(survivor, f)) for f in TRACKED}
    snapshot["before"] = {f: snapshot["records"][str(survivor.id)][f] for f in TRACKED}
    snapshot["moved_phones"] = moved_phones
    snapshot["dropped_phones"] = dropped_phones
    snapshot["moved_emails"] = moved_emails
    snapshot["dropped_emails"] = dropped_emails
    snapshot["moved"] = moved
    snapshot["module_links"] = module_links
    snapshot["added_tags"] = added_tags
    merge = DedupeMerge(
        survivor_id=survivor.id,
        loser_ids=loser_ids,
        snapshot=snapshot,
        choices={k: int(v) for k, v in (choices or {}).items()},
        actor_id=actor.id,
        at=now,
        note=note,
    )
    session.add(merge)
    session.flush()

    session.execute(
        update(DedupeCandidate)
        .where(
            DedupeCandidate.left_id.in_(ids),
            DedupeCandidate.right_id.in_(ids),
            DedupeCandidate.status.in_([CandidateStatus.OPEN, CandidateStatus.DEFERRED]),
        )
        .values(
            status=CandidateStatus.MERGED, merge_id=merge.id, decided_by_id=actor.id, decided_at=now
        )
        .execution_options(synchronize_session=False)
    )
    for c in records:
        store.index_customer(session, c)

    children = {k: len(v) for k, v in moved.items() if v}
    if module_links:
        children["module_records"] = len(module_links)
    audit.record(
        session,
        actor=actor,
        action="customer.merge",
        entity_type="customer",
        entity_id=survivor.id,
        changes={**audit.diff(before, _snapshot(survivor)), "merged_ids": [None, loser_ids]},
        detail=f"merge {merge.id}: {', '.join(map(str, loser_ids))} into {survivor.id}; "
        f"moved {children or 'no child records'}",
        source=source,
    )
    for loser in losers:
        audit.record(
            session,
            actor=actor,
            action="customer.merged",
            entity_type="customer",
            entity_id=loser.id,
            changes={"merged_into_id": [None, survivor.id]},
            detail=f"merge {merge.id}",
            source=source,
        )
    return merge


def _conflicts(session: Session, merge: DedupeMerge) -> list[str]:
    """Why ``merge`` cannot be undone cleanly (empty when it can)."""
    snap = merge.snapshot
    problems: list[str] = []
    if merge.undone_at is not None:
        return [f"merge {merge.id} was undone already"]
    survivor = session.get(Customer, merge.survivor_id, populate_existing=True)
    if survivor is None:
        return [f"customer {merge.survivor_id} no longer exists"]
    if survivor.merged_into_id is not None:
        later = session.scalars(
            select(DedupeMerge.id)
            .where(DedupeMerge.undone_at.is_(None), DedupeMerge.id > merge.id)
            .order_by(DedupeMerge.id.desc())
        ).first()
        problems.append(
            f"customer {survivor.id} was merged into customer {survivor.merged_into_id} later; "
            f"undo that merge ({later}) first"
        )
    if survivor.anonymised_at is not None:
        problems.append(f"customer {survivor.id} was anonymised since the merge")
    now = {f: _to_json(getattr(survivor, f)) for f in TRACKED}
    for f in TRACKED:
        if snap["before"][f] != snap["after"][f] and now[f] != snap["after"][f]:
            problems.append(f"field {f} of customer {survivor.id} was edited since the merge")
    for lid in merge.loser_ids:
        loser = session.get(Customer, lid, populate_existing=True)
        if loser is None or loser.merged_into_id != survivor.id:
            problems.append(f"customer {lid} is no longer a tombstone of customer {survivor.id}")
    for label, model, ids in (
        ("phone", CustomerPhone, snap["moved_phones"]),
        ("e-mail", CustomerEmail, snap["moved_emails"]),
    ):
        if ids:
            owners = dict(
                session.execute(select(model.id, model.customer_id).where(model.id.in_(ids))).all()
            )
            if any(owners.get(i) != survivor.id for i in ids):
                problems.append(
                    f"the {label}s of customer {survivor.id} were edited since the merge"
                )
    dropped: list[tuple[str, Any, int]] = [
        ("phone", CustomerPhone, r["id"]) for r in snap["dropped_phones"]
    ]
    dropped += [("e-mail", CustomerEmail, r["id"]) for r in snap["dropped_emails"]]
    for label, model, rid in dropped:
        if session.get(model, rid) is not None:
            problems.append(f"{label} row {rid} exists again")
    for name, rows in snap["moved"].items():
        if not rows:
            continue
        table: Any = Customer if name == "contacts" else CHILDREN[name]
        column = table.company_id if name == "contacts" else table.customer_id
        ids = [int(i) for i in rows]
        owners = dict(session.execute(select(table.id, column).where(table.id.in_(ids))).all())
        gone = [i for i in ids if i not in owners]
        elsewhere = [i for i in ids if i in owners and owners[i] != survivor.id]
        kind = name.replace("_", " ")
        if gone and name not in HISTORY:
            problems.append(f"{kind} {', '.join(map(str, gone))} were deleted since the merge")
        if elsewhere:
            problems.append(
                f"{kind} {', '.join(map(str, elsewhere))} were moved to another customer since"
            )
    problems += references.module_link_problems(
        session, snap.get("module_links") or {}, survivor.id
    )
    return problems


def undo_merge(
    session: Session, *, actor: Actor, merge_id: int, source: str | None = None
) -> DedupeMerge:
    """Restore the state before merge ``merge_id``: the tombstones come back with their own
    field values, phones, emails, tags and child records, and the survivor gets back the values
    the merge changed. Edits made since to anything else are kept. When a later edit collides
    with the merge (a field the merge set was changed, a moved record was deleted or moved
    on), ``ConflictError`` lists why and nothing changes."""
    require(actor, "dedupe.merge")
    merge = session.get(DedupeMerge, merge_id, with_for_update=True)
    if merge is None:
        raise NotFound(f"merge {merge_id} does not exist")
    problems = _conflicts(session, merge)
    if problems:
        raise ConflictError(f"merge {merge_id} cannot be undone: " + "; ".join(problems))
    load_customer(session, actor=actor, customer_id=merge.survivor_id)
    snap = merge.snapshot
    survivor = session.get(Customer, merge.survivor_id)
    assert survivor is not None
    before = _snapshot(survivor)
    columns = Customer.__table__.columns

    # -- children back to their former customers
    for name, rows in snap["moved"].items():
        by_owner: dict[int, list[int]] = {}
        for rid, owner in rows.items():
            by_owner.setdefault(int(owner), []).append(int(rid))
        for owner, rids in by_owner.items():
            if name == "contacts":
                for contact in session.scalars(select(Customer).where(Customer.id.in_(rids))):
                    contact.company_id = owner
                continue
            model = CHILDREN[name]
            values: dict[str, Any] = {"customer_id": owner}
            if hasattr(model, "version"):
                values["version"] = model.version + 1
            session.execute(
                update(model)
                .where(model.id.in_(rids))
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    references.restore_module_links(session, snap.get("module_links") or {}, survivor.id)

    # -- phones, emails and tags
    session.flush()
    for kind, model, rows_key, moved_key in (
        ("phones", CustomerPhone, "dropped_phones", "moved_phones"),
        ("emails", CustomerEmail, "dropped_emails", "moved_emails"),
    ):
        moved_ids = set(snap[moved_key])
        for cid, rows in snap[kind].items():
            for row in rows:
                if row["id"] in moved_ids:
                    session.execute(
                        update(model)
                        .where(model.id == row["id"])
                        .values(customer_id=int(cid), is_primary=row["is_primary"])
                    )
        if snap[rows_key]:
            session.execute(insert(model), [dict(r) for r in snap[rows_key]])
    if snap["added_tags"]:
        session.execute(
            delete(customer_tags).where(
                customer_tags.c.customer_id == survivor.id,
                customer_tags.c.tag_id.in_(snap["added_tags"]),
            )
        )

    # -- survivor fields the merge changed, tombstones whole
    for f in TRACKED:
        if snap["before"][f] != snap["after"][f]:
            setattr(survivor, f, _from_json(columns[f], snap["before"][f]))
    for lid in merge.loser_ids:
        loser = session.get(Customer, lid)
        assert loser is not None
        for column in columns:
            if column.key not in _NOT_RESTORED:
                setattr(
                    loser, column.key, _from_json(column, snap["records"][str(lid)][column.key])
                )
    session.flush()
    session.expire_all()  # rows moved back by UPDATE statements
    records = [session.get(Customer, cid) for cid in (survivor.id, *merge.loser_ids)]
    for c in records:
        assert c is not None
        _apply(session, c, CleanCustomer())
    session.flush()
    for c in records:
        assert c is not None
        store.index_customer(session, c)

    merge.undone_at = utcnow()
    merge.undone_by_id = actor.id
    session.execute(
        update(DedupeCandidate)
        .where(DedupeCandidate.merge_id == merge.id)
        .values(status=CandidateStatus.OPEN, merge_id=None, decided_by_id=None, decided_at=None)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        session,
        actor=actor,
        action="customer.merge_undo",
        entity_type="customer",
        entity_id=survivor.id,
        changes={
            **audit.diff(before, _snapshot(survivor)),
            "restored_ids": [None, merge.loser_ids],
        },
        detail=f"undo of merge {merge.id}",
        source=source,
    )
    for lid in merge.loser_ids:
        audit.record(
            session,
            actor=actor,
            action="customer.unmerged",
            entity_type="customer",
            entity_id=lid,
            changes={"merged_into_id": [survivor.id, None]},
            detail=f"undo of merge {merge.id}",
            source=source,
        )
    session.flush()
    return merge


def list_merges(
    session: Session, *, actor: Actor, limit: int = 50, include_undone: bool = True
) -> list[DedupeMerge]:
    """The merge history, newest first."""
    require(actor, "dedupe.review")
    stmt = select(DedupeMerge).order_by(DedupeMerge.id.desc()).limit(limit)
    if not include_undone:
        stmt = stmt.where(DedupeMerge.undone_at.is_(None))
    return list(session.scalars(stmt))


def undo_problems(session: Session, *, actor: Actor, merge_id: int) -> list[str]:
    """Why merge ``merge_id`` cannot be undone now (empty when it can); changes nothing."""
    require(actor, "dedupe.review")
    merge = session.get(DedupeMerge, merge_id)
    if merge is None:
        raise NotFound(f"merge {merge_id} does not exist")
    return _conflicts(session, merge)


__all__ = [
    "MERGE_FIELDS",
    "list_merges",
    "merge_customers",
    "pick_survivor",
    "survivorship",
    "undo_merge",
    "undo_problems",
]
