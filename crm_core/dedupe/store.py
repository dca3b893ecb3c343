"""The database side of blocking: each customer's blocking keys in an indexed table, kept up
to date, and the single-record check that finds likely duplicates before a save.

``index_customer`` is called by the customer services on create and update; records written
in bulk (imports, demo data) are indexed lazily by ``refresh_keys`` (run by every scan), which
re-keys each live customer whose stored key version differs from its record version. When
the key builder itself changes, a migration empties ``dedupe_key_states`` (as revision 0041
does) so that the next scan re-keys everyone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
from sqlalchemy import delete, insert, or_, select
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor, require
from crm_core.dedupe.api import score_candidates
from crm_core.dedupe.blocking import blocking_keys, frame_key_strings
from crm_core.dedupe.frame import normalize_frame
from crm_core.dedupe.model import DEFAULT_M, DEFAULT_U, MatchModel
from crm_core.dedupe.settings import DEFAULT_REVIEW_THRESHOLD
from crm_core.models import (
    Customer,
    CustomerEmail,
    CustomerPhone,
    DedupeBlockKey,
    DedupeDecision,
    DedupeKeyState,
    DedupeModelState,
)
from crm_core.settings import get_settings

#: Default prior (share of candidate pairs that match) before any scan has learned one.
DEFAULT_PRIOR = 0.05
#: No more stored customers than this are scored for one checked record.
MAX_CANDIDATES = 200

_LIVE = (Customer.merged_into_id.is_(None), Customer.anonymised_at.is_(None))


def dedupe_record(customer: Customer) -> dict[str, Any]:
    """The fields the engine reads (``name, company, email, phone, city, address``)."""
    return {
        "name": customer.name,
        "company": customer.company_name,
        "email": customer.email,
        "phone": customer.phone,
        "city": customer.city,
        "address": customer.street,
    }


def record_from_input(data: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's fields from customer-service input (``phones``/``emails`` lists allowed)."""

    def first(single: str, many: str) -> Any:
        if data.get(single):
            return data[single]
        values = data.get(many)
        if isinstance(values, str):
            return values.split(",")[0].strip() or None
        return next(iter(values), None) if values else None

    return {
        "name": data.get("name"),
        "company": data.get("company_name") or data.get("company"),
        "email": first("email", "emails"),
        "phone": first("phone", "phones"),
        "city": data.get("city"),
        "address": data.get("street") or data.get("address"),
    }


def keys_for(
    record: Mapping[str, Any],
    *,
    phones: Iterable[str] = (),
    emails: Iterable[str] = (),
    region: str | None = None,
) -> list[str]:
    """The record's blocking keys plus a phone/email key for each further phone and email."""
    region = region or get_settings().default_region
    keys = set(blocking_keys(record, region=region))
    for phone in phones:
        keys.update(blocking_keys({"phone": phone}, region=region))
    for email in emails:
        keys.update(blocking_keys({"email": email}, region=region))
    return sorted(k for k in keys if len(k) <= 400)


def _customer_keys(customer: Customer) -> list[str]:
    return keys_for(
        dedupe_record(customer),
        phones=[p.e164 for p in customer.phones],
        emails=[e.email for e in customer.emails],
    )


def index_customer(session: Session, customer: Customer) -> None:
    """Store the current blocking keys of ``customer`` (none for a tombstone)."""
    session.flush()
    session.execute(delete(DedupeBlockKey).where(DedupeBlockKey.customer_id == customer.id))
    session.execute(delete(DedupeKeyState).where(DedupeKeyState.customer_id == customer.id))
    if customer.merged_into_id is not None or customer.anonymised_at is not None:
        return
    keys = _customer_keys(customer)
    if keys:
        session.execute(
            insert(DedupeBlockKey), [{"customer_id": customer.id, "key": k} for k in keys]
        )
    session.execute(
        insert(DedupeKeyState), [{"customer_id": customer.id, "version": customer.version}]
    )


def refresh_keys(session: Session, *, chunk_size: int = 10_000) -> int:
    """Re-key every live customer whose keys are missing or stale; returns how many.

    Vectorised per chunk (the engine's frame normaliser and key builder), so keying a
    million records written in bulk takes the time of one de-duplication pass, not hours."""
    region = get_settings().default_region
    done = 0
    last_id = 0
    while True:
        stmt = (
            select(
                Customer.id,
                Customer.version,
                Customer.name,
                Customer.company_name,
                Customer.email,
                Customer.phone,
                Customer.city,
                Customer.street,
            )
            .outerjoin(DedupeKeyState, DedupeKeyState.customer_id == Customer.id)
            .where(*_LIVE, Customer.id > last_id)
            .where(
                or_(DedupeKeyState.version.is_(None), DedupeKeyState.version != Customer.version)
            )
            .order_by(Customer.id)
            .limit(chunk_size)
        )
        rows = session.execute(stmt).all()
        if not rows:
            return done
        frame = pd.DataFrame(
            rows, columns=["id", "version", "name", "company", "email", "phone", "city", "address"]
        )
        ids = [int(i) for i in frame["id"]]
        keys: list[set[str]] = [set() for _ in ids]
        by_kind = frame_key_strings(normalize_frame(frame.astype(object), region=region))
        for kind_keys in by_kind.values():
            for i, key in enumerate(kind_keys):
                if key is not None:
                    keys[i].add(key)
        position = {cid: i for i, cid in enumerate(ids)}
        extras: tuple[tuple[str, Any, Any], ...] = (
            ("phone", CustomerPhone.customer_id, CustomerPhone.e164),
            ("email", CustomerEmail.customer_id, CustomerEmail.email),
        )
        for field, owner, value_column in extras:
            extra = session.execute(select(owner, value_column).where(owner.in_(ids))).all()
            for cid, value in extra:
                keys[position[cid]].update(blocking_keys({field: value}, region=region))
        session.execute(delete(DedupeBlockKey).where(DedupeBlockKey.customer_id.in_(ids)))
        session.execute(delete(DedupeKeyState).where(DedupeKeyState.customer_id.in_(ids)))
        key_rows = [
            {"customer_id": cid, "key": k}
            for cid, found in zip(ids, keys, strict=True)
            for k in sorted(found)
            if len(k) <= 400
        ]
        conn = session.connection()  # Core executemany: no ORM bulk bookkeeping
        key_table: Any = DedupeBlockKey.__table__
        state_table: Any = DedupeKeyState.__table__
        if key_rows:
            conn.execute(insert(key_table), key_rows)
        conn.execute(
            insert(state_table),
            [
                {"customer_id": cid, "version": int(v)}
                for cid, v in zip(ids, frame["version"], strict=True)
            ],
        )
        done += len(ids)
        last_id = ids[-1]


_model_cache: dict[tuple[int, Any], MatchModel] = {}


def current_model(session: Session) -> MatchModel:
    """The model learned by the last scan, or the built-in defaults before the first one
    (kept in memory until a scan stores a newer one)."""
    head = session.execute(
        select(DedupeModelState.id, DedupeModelState.updated_at)
        .order_by(DedupeModelState.id.desc())
        .limit(1)
    ).first()
    if head is None:
        return MatchModel(
            m={f: list(v) for f, v in DEFAULT_M.items()},
            u={f: list(v) for f, v in DEFAULT_U.items()},
            prior=DEFAULT_PRIOR,
        )
    key = (int(head[0]), head[1])
    if key not in _model_cache:
        data = session.scalar(select(DedupeModelState.model).where(DedupeModelState.id == key[0]))
        _model_cache.clear()
        _model_cache[key] = MatchModel.from_dict(dict(data or {}))
    return _model_cache[key]


def save_model(session: Session, model: MatchModel) -> None:
    """Keep ``model`` as the one single-record checks use."""
    session.execute(delete(DedupeModelState))
    session.add(DedupeModelState(model=model.to_dict(), n_records=model.n_records))


_FIELD_COLUMNS = (
    Customer.id,
    Customer.name,
    Customer.company_name,
    Customer.email,
    Customer.phone,
    Customer.city,
    Customer.street,
)
_FRAME_COLUMNS = ("id", "name", "company", "email", "phone", "city", "address")


def candidate_frame(session: Session, ids: Iterable[int]) -> pd.DataFrame:
    """The engine's fields of the given customers (``id`` plus ``FIELDS``)."""
    rows = session.execute(select(*_FIELD_COLUMNS).where(Customer.id.in_(list(ids)))).all()
    return pd.DataFrame(rows, columns=list(_FRAME_COLUMNS)).astype(object)


def check_customer(
    session: Session,
    *,
    actor: Actor,
    data: Mapping[str, Any],
    exclude_id: int | None = None,
    threshold: float = DEFAULT_REVIEW_THRESHOLD,
    limit: int = 5,
) -> list[dict[str, Any]]:
    """Likely duplicates of a new or edited customer (``data`` as for ``create_customer``),
    among the stored customers the actor may see: ``[{"id", "name", "score", "levels"}]``,
    highest score first, only those scoring at least ``threshold``. Nothing is written."""
    require(actor, "customer.read")
    record = record_from_input(data)
    phones = data.get("phones") or []
    emails = data.get("emails") or []
    keys = keys_for(
        record,
        phones=[phones] if isinstance(phones, str) else phones,
        emails=[emails] if isinstance(emails, str) else emails,
        region=data.get("country") or None,
    )
    if not keys:
        return []
    found = (
        select(DedupeBlockKey.customer_id)
        .where(DedupeBlockKey.key.in_(keys))
        .distinct()
        .limit(MAX_CANDIDATES)
        .scalar_subquery()
    )
    stmt = select(*_FIELD_COLUMNS).where(
        Customer.id.in_(found), access.visible_customers(actor), *_LIVE
    )
    if exclude_id is not None:
        stmt = stmt.where(Customer.id != exclude_id)
    rows = session.execute(stmt).all()
    if exclude_id is not None and rows:
        rejected = session.execute(
            select(DedupeDecision.left_id, DedupeDecision.right_id).where(
                DedupeDecision.decision == "not_duplicate",
                or_(DedupeDecision.left_id == exclude_id, DedupeDecision.right_id == exclude_id),
            )
        ).all()
        never = {a if b == exclude_id else b for a, b in rejected}
        rows = [r for r in rows if r[0] not in never]
    if not rows:
        return []
    frame = pd.DataFrame(rows, columns=list(_FRAME_COLUMNS)).astype(object)
    scored = score_candidates(
        record,
        frame,
        current_model(session),
        region=data.get("country") or get_settings().default_region,
    )
    scored = scored[scored["score"] >= threshold].head(limit)
    names = dict(zip(frame["id"], frame["name"], strict=True))
    level_cols = [c for c in scored.columns if c not in ("id", "score")]
    out = []
    for row in scored.itertuples(index=False):
        values = row._asdict()
        shaped = access.shape_for(actor, {"name": names[values["id"]]})
        out.append(
            {
                "id": int(values["id"]),
                "name": shaped["name"],
                "score": float(values["score"]),
                "levels": {c: int(values[c]) for c in level_cols},
            }
        )
    return out


__all__ = [
    "candidate_frame",
    "check_customer",
    "current_model",
    "dedupe_record",
    "index_customer",
    "keys_for",
    "record_from_input",
    "refresh_keys",
    "save_model",
]
