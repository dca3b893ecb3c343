"""The review queue of likely duplicates: a scan fills it, a data steward works through it.

``scan`` reads the customers in keyset chunks (only the fields the engine compares), runs
``find_duplicates`` with the steward's earlier decisions as labels, keeps the learned model for
single-record checks, and stores each pair at or above the review threshold with its cluster.
A pair decided "not a duplicate" is remembered and never proposed again; "defer" keeps it for
later; "merge" goes through ``crm_core.dedupe.merge``. ``accept_above`` merges, in bulk, the
open pairs at or above the auto-merge threshold (each in a savepoint: one refusal does not
stop the others).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import and_, delete, func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.util import ClauseAdapter

from crm_core import access, audit
from crm_core.access import Actor, require
from crm_core.customers import CustomerOut, customer_dict, to_out
from crm_core.dedupe import store
from crm_core.dedupe.api import find_duplicates, score_candidates
from crm_core.dedupe.merge import merge_customers
from crm_core.dedupe.normalize import normalize_record
from crm_core.dedupe.scoring import FIELD_LEVELS
from crm_core.dedupe.settings import DedupeSettings
from crm_core.errors import ConflictError, CrmError, InvalidInput, NotFound
from crm_core.models import (
    CandidateStatus,
    Customer,
    DedupeCandidate,
    DedupeDecision,
    DedupeMerge,
    utcnow,
)
from crm_core.settings import get_settings

NOT_DUPLICATE = "not_duplicate"
DUPLICATE = "duplicate"

#: Fields shown side by side: (label key, engine field compared, if any).
COMPARED_FIELDS: tuple[tuple[str, str | None], ...] = (
    ("name", "name"),
    ("kind", None),
    ("company_name", "company"),
    ("phones", "phone"),
    ("emails", "email"),
    ("country", None),
    ("province", None),
    ("city", "city"),
    ("district", None),
    ("street", "address"),
    ("postcode", None),
    ("birthday", None),
    ("position", None),
    ("industry", None),
    ("source", None),
    ("lifecycle_stage", None),
    ("value_tier", None),
    ("owner_id", None),
    ("tags", None),
    ("notes", None),
)


@dataclass(frozen=True)
class ScanReport:
    """What a scan did."""

    customers: int
    keyed: int
    pairs: int
    new: int
    updated: int
    removed: int
    auto_merge: int
    clusters: int
    seconds: float


@dataclass(frozen=True)
class FieldDiff:
    """One row of a side-by-side comparison. ``differs`` compares normalised values for the
    fields the engine reads (``杭州`` and ``杭州市`` do not differ); ``level`` names the
    engine's comparison level for those fields."""

    field: str
    left: Any
    right: Any
    differs: bool
    level: str | None = None


@dataclass(frozen=True)
class QueueItem:
    """One pair of the review queue, shaped for the actor."""

    id: int
    score: float
    status: str
    cluster_id: int | None
    left: CustomerOut
    right: CustomerOut
    fields: list[FieldDiff] = field(default_factory=list)


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


# ---------------------------------------------------------------- scan


def _live_visible(actor: Actor) -> Any:
    return and_(
        access.visible_customers(actor),
        Customer.archived_at.is_(None),
        Customer.anonymised_at.is_(None),
    )


def customers_frame(session: Session, *, actor: Actor, chunk_size: int = 50_000) -> pd.DataFrame:
    """The engine's fields of every live customer the actor sees, read in keyset chunks."""
    columns: dict[str, list[Any]] = {
        c: [] for c in ("id", "name", "company", "email", "phone", "city", "address")
    }
    last = 0
    while True:
        rows = session.execute(
            select(
                Customer.id,
                Customer.name,
                Customer.company_name,
                Customer.email,
                Customer.phone,
                Customer.city,
                Customer.street,
            )
            .where(_live_visible(actor), Customer.id > last)
            .order_by(Customer.id)
            .limit(chunk_size)
        ).all()
        if not rows:
            break
        for key, values in zip(columns, zip(*rows, strict=True), strict=True):
            columns[key].extend(values)
        last = rows[-1][0]
    frame = pd.DataFrame(columns)
    return frame.astype({c: object for c in frame.columns if c != "id"})


def decisions_frame(session: Session) -> pd.DataFrame:
    """The steward's decisions as labels: ``left_id, right_id, is_duplicate``."""
    rows = session.execute(
        select(DedupeDecision.left_id, DedupeDecision.right_id, DedupeDecision.decision)
    ).all()
    return pd.DataFrame(
        {
            "left_id": [r[0] for r in rows],
            "right_id": [r[1] for r in rows],
            "is_duplicate": [r[2] == DUPLICATE for r in rows],
        }
    )


def scan(
    session: Session,
    *,
    actor: Actor,
    settings: DedupeSettings | None = None,
    chunk_size: int = 50_000,
) -> ScanReport:
    """Compare every live customer the actor may see and refresh the review queue."""
    require(actor, "dedupe.review")
    started = time.perf_counter()
    settings = settings or DedupeSettings(region=get_settings().default_region)
    keyed = store.refresh_keys(session)
    frame = customers_frame(session, actor=actor, chunk_size=chunk_size)
    if len(frame) < 2:
        return ScanReport(len(frame), keyed, 0, 0, 0, 0, 0, 0, time.perf_counter() - started)
    labels = decisions_frame(session)
    result = find_duplicates(frame, id_column="id", settings=settings, labels=labels)
    store.save_model(session, result.model)
    rejected = {(int(a), int(b)) for a, b, d in labels.itertuples(index=False) if not d}
    cluster_of = dict(zip(result.clusters["id"], result.clusters["cluster_id"], strict=True))

    found: dict[tuple[int, int], tuple[float, int]] = {}
    for left, right, score in result.pairs[["left_id", "right_id", "score"]].itertuples(
        index=False
    ):
        key = _pair(int(left), int(right))
        if key not in rejected:
            found[key] = (float(score), int(cluster_of[int(left)]))

    existing = {
        (c.left_id, c.right_id): c
        for c in session.scalars(
            select(DedupeCandidate).where(
                DedupeCandidate.status.in_([CandidateStatus.OPEN, CandidateStatus.DEFERRED])
            )
        )
    }
    decided = set(
        session.execute(
            select(DedupeCandidate.left_id, DedupeCandidate.right_id).where(
                DedupeCandidate.status.in_([CandidateStatus.MERGED, CandidateStatus.NOT_DUPLICATE])
            )
        ).all()
    )
    new = updated = removed = 0
    for key, (score, cluster) in found.items():
        candidate = existing.pop(key, None)
        if candidate is not None:
            candidate.score, candidate.cluster_id = score, cluster
            updated += 1
        elif key not in decided:
            session.add(
                DedupeCandidate(left_id=key[0], right_id=key[1], score=score, cluster_id=cluster)
            )
            new += 1
    seen = set(frame["id"].tolist())
    stale = [
        c.id
        for key, c in existing.items()
        if c.status == CandidateStatus.OPEN and key[0] in seen and key[1] in seen
    ]
    if stale:
        session.execute(delete(DedupeCandidate).where(DedupeCandidate.id.in_(stale)))
        removed = len(stale)
    session.flush()
    auto = sum(1 for s, _ in found.values() if s >= settings.auto_merge_threshold)
    clusters = len({c for _, c in found.values()})
    report = ScanReport(
        customers=len(frame),
        keyed=keyed,
        pairs=len(found),
        new=new,
        updated=updated,
        removed=removed,
        auto_merge=auto,
        clusters=clusters,
        seconds=time.perf_counter() - started,
    )
    audit.record(
        session,
        actor=actor,
        action="dedupe.scan",
        entity_type="dedupe",
        entity_id=None,
        changes={k: v for k, v in vars(report).items() if k != "seconds"},
    )
    return report


# ---------------------------------------------------------------- comparison


def _value(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    if key == "custom":
        return dict(value or {})
    return value


def compare_customers(
    session: Session, *, actor: Actor, left_id: int, right_id: int
) -> list[FieldDiff]:
    """The two customers field by field (custom fields too), shaped for the actor."""
    require(actor, "dedupe.review")
    left = _load_visible(session, actor, left_id)
    right = _load_visible(session, actor, right_id)
    a, b = customer_dict(left), customer_dict(right)
    region = get_settings().default_region
    norm_a = normalize_record(store.dedupe_record(left), region=region)
    norm_b = normalize_record(store.dedupe_record(right), region=region)
    levels = score_candidates(
        store.dedupe_record(left),
        store.candidate_frame(session, [right.id]),
        store.current_model(session),
        region=region,
    ).iloc[0]
    shaped_a, shaped_b = access.shape_for(actor, a), access.shape_for(actor, b)
    out = []
    for key, engine_field in COMPARED_FIELDS:
        va, vb = _value(a, key), _value(b, key)
        if engine_field in ("phone", "email"):
            differs = set(va or []) != set(vb or [])
        elif engine_field is not None:
            differs = norm_a[engine_field] != norm_b[engine_field]
        else:
            differs = va != vb
        level = None
        if engine_field is not None:
            code = int(levels[engine_field])
            level = "missing" if code < 0 else FIELD_LEVELS[engine_field][code]
        out.append(FieldDiff(key, shaped_a.get(key), shaped_b.get(key), differs, level))
    for key in sorted(set(a["custom"]) | set(b["custom"])):
        va, vb = a["custom"].get(key), b["custom"].get(key)
        shown_a = (shaped_a.get("custom") or {}).get(key)
        shown_b = (shaped_b.get("custom") or {}).get(key)
        out.append(FieldDiff(f"custom.{key}", shown_a, shown_b, va != vb))
    return out


def _load_visible(session: Session, actor: Actor, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or not access.can_see(actor, customer):
        raise NotFound(f"customer {customer_id} does not exist")
    return customer


# ---------------------------------------------------------------- queue


def review_queue(
    session: Session,
    *,
    actor: Actor,
    status: str = CandidateStatus.OPEN,
    min_score: float | None = None,
    limit: int = 50,
    with_fields: bool = True,
) -> list[QueueItem]:
    """Pairs to review, highest score first: both records live and visible to the actor."""
    require(actor, "dedupe.review")
    left, right = aliased(Customer), aliased(Customer)

    def live(c: Any) -> Any:
        return and_(
            _adapt(access.visible_customers(actor), c),
            c.archived_at.is_(None),
            c.anonymised_at.is_(None),
        )

    stmt = (
        select(DedupeCandidate, left, right)
        .join(left, left.id == DedupeCandidate.left_id)
        .join(right, right.id == DedupeCandidate.right_id)
        .where(DedupeCandidate.status == status, live(left), live(right))
        .order_by(DedupeCandidate.score.desc(), DedupeCandidate.id)
        .limit(limit)
    )
    if min_score is not None:
        stmt = stmt.where(DedupeCandidate.score >= min_score)
    items = []
    for candidate, a, b in session.execute(stmt).all():
        fields = (
            compare_customers(session, actor=actor, left_id=a.id, right_id=b.id)
            if with_fields
            else []
        )
        items.append(
            QueueItem(
                id=candidate.id,
                score=candidate.score,
                status=candidate.status,
                cluster_id=candidate.cluster_id,
                left=to_out(actor, a),
                right=to_out(actor, b),
                fields=fields,
            )
        )
    return items


def _adapt(condition: Any, alias: Any) -> Any:
    """A condition on ``customers`` rewritten for an aliased customers table."""
    return ClauseAdapter(sa_inspect(alias).selectable).traverse(condition)


def queue_counts(session: Session, *, actor: Actor) -> dict[str, int]:
    """How many pairs are open, deferred, merged and rejected (whole queue)."""
    require(actor, "dedupe.review")
    rows = session.execute(
        select(DedupeCandidate.status, func.count()).group_by(DedupeCandidate.status)
    ).all()
    counts = {s: 0 for s in ("open", "deferred", "merged", "not_duplicate")}
    counts.update({str(s): int(n) for s, n in rows})
    return counts


def _candidate(session: Session, actor: Actor, candidate_id: int) -> DedupeCandidate:
    candidate = session.get(DedupeCandidate, candidate_id)
    if candidate is None:
        raise NotFound(f"review pair {candidate_id} does not exist")
    _load_visible(session, actor, candidate.left_id)
    _load_visible(session, actor, candidate.right_id)
    return candidate


def _remember(session: Session, actor: Actor, left_id: int, right_id: int, decision: str) -> None:
    left_id, right_id = _pair(left_id, right_id)
    row = session.scalars(
        select(DedupeDecision).where(
            DedupeDecision.left_id == left_id, DedupeDecision.right_id == right_id
        )
    ).first()
    if row is None:
        session.add(
            DedupeDecision(left_id=left_id, right_id=right_id, decision=decision, actor_id=actor.id)
        )
    else:
        row.decision, row.actor_id, row.at = decision, actor.id, utcnow()


def mark_not_duplicate(
    session: Session, *, actor: Actor, left_id: int, right_id: int
) -> DedupeDecision:
    """Remember that two customers are different people: never proposed again."""
    require(actor, "dedupe.review")
    if left_id == right_id:
        raise InvalidInput("choose two different customers", field="right_id")
    _load_visible(session, actor, left_id)
    _load_visible(session, actor, right_id)
    left_id, right_id = _pair(left_id, right_id)
    _remember(session, actor, left_id, right_id, NOT_DUPLICATE)
    now = utcnow()
    candidate = session.scalars(
        select(DedupeCandidate).where(
            DedupeCandidate.left_id == left_id, DedupeCandidate.right_id == right_id
        )
    ).first()
    if candidate is None:
        candidate = DedupeCandidate(left_id=left_id, right_id=right_id, score=0.0)
        session.add(candidate)
    candidate.status = CandidateStatus.NOT_DUPLICATE
    candidate.decided_by_id, candidate.decided_at = actor.id, now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="dedupe.not_duplicate",
        entity_type="customer",
        entity_id=left_id,
        changes={"not_duplicate_of": [None, right_id]},
    )
    decision = session.scalars(
        select(DedupeDecision).where(
            DedupeDecision.left_id == left_id, DedupeDecision.right_id == right_id
        )
    ).one()
    return decision


def decide(session: Session, *, actor: Actor, candidate_id: int, decision: str) -> DedupeCandidate:
    """``not_duplicate`` (remembered), ``defer`` (kept for later) or ``reopen`` a pair."""
    require(actor, "dedupe.review")
    candidate = _candidate(session, actor, candidate_id)
    if decision == NOT_DUPLICATE:
        mark_not_duplicate(
            session, actor=actor, left_id=candidate.left_id, right_id=candidate.right_id
        )
        return candidate
    if decision not in ("defer", "reopen"):
        raise InvalidInput(
            f"'{decision}' is not merge, not_duplicate, defer or reopen", field="decision"
        )
    if candidate.status in (CandidateStatus.MERGED, CandidateStatus.NOT_DUPLICATE):
        raise ConflictError(f"review pair {candidate_id} was decided already ({candidate.status})")
    candidate.status = CandidateStatus.DEFERRED if decision == "defer" else CandidateStatus.OPEN
    candidate.decided_by_id, candidate.decided_at = actor.id, utcnow()
    session.flush()
    return candidate


def merge_candidate(
    session: Session,
    *,
    actor: Actor,
    candidate_id: int,
    survivor_id: int | None = None,
    choices: Mapping[str, int] | None = None,
    expected_versions: Mapping[int, int] | None = None,
) -> DedupeMerge:
    """Merge the two customers of a review pair (see ``merge.merge_customers``)."""
    candidate = _candidate(session, actor, candidate_id)
    if candidate.status in (CandidateStatus.MERGED, CandidateStatus.NOT_DUPLICATE):
        raise ConflictError(f"review pair {candidate_id} was decided already ({candidate.status})")
    merge = merge_customers(
        session,
        actor=actor,
        customer_ids=[candidate.left_id, candidate.right_id],
        survivor_id=survivor_id,
        choices=choices,
        expected_versions=expected_versions,
        source=f"dedupe review pair {candidate_id}",
    )
    _remember(session, actor, candidate.left_id, candidate.right_id, DUPLICATE)
    session.flush()
    return merge


@dataclass
class BulkReport:
    """What ``accept_above`` did: merges made and pairs refused with the reason."""

    merged: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def accept_above(
    session: Session, *, actor: Actor, threshold: float | None = None, limit: int = 1000
) -> BulkReport:
    """Merge every open pair scoring at least ``threshold`` (default: the auto-merge
    threshold). A pair whose record was merged meanwhile merges into its survivor."""
    require(actor, "dedupe.merge")
    threshold = DedupeSettings().auto_merge_threshold if threshold is None else threshold
    report = BulkReport()
    pairs = session.execute(
        select(DedupeCandidate.id, DedupeCandidate.left_id, DedupeCandidate.right_id)
        .where(DedupeCandidate.status == CandidateStatus.OPEN, DedupeCandidate.score >= threshold)
        .order_by(DedupeCandidate.score.desc(), DedupeCandidate.id)
        .limit(limit)
    ).all()
    for candidate_id, left_id, right_id in pairs:
        a, b = _survivor_of(session, left_id), _survivor_of(session, right_id)
        if a == b:
            continue
        try:
            with session.begin_nested():
                merge = merge_customers(
                    session,
                    actor=actor,
                    customer_ids=[a, b],
                    source=f"dedupe bulk accept (pair {candidate_id})",
                )
                _remember(session, actor, left_id, right_id, DUPLICATE)
                candidate = session.get(DedupeCandidate, candidate_id)
                if candidate is not None and candidate.status == CandidateStatus.OPEN:
                    candidate.status, candidate.merge_id = CandidateStatus.MERGED, merge.id
                session.flush()
            report.merged.append(merge.id)
        except CrmError as exc:
            report.refused.append((candidate_id, exc.message))
    return report


def _survivor_of(session: Session, customer_id: int) -> int:
    seen = set()
    current = customer_id
    while current not in seen:
        seen.add(current)
        target = session.scalar(select(Customer.merged_into_id).where(Customer.id == current))
        if target is None:
            return current
        current = target
    return current


def decided_pairs(session: Session) -> set[tuple[int, int]]:
    """Pairs decided "not a duplicate"."""
    return set(
        session.execute(
            select(DedupeDecision.left_id, DedupeDecision.right_id).where(
                DedupeDecision.decision == NOT_DUPLICATE
            )
        ).all()
    )


__all__ = [
    "BulkReport",
    "FieldDiff",
    "QueueItem",
    "ScanReport",
    "accept_above",
    "compare_customers",
    "customers_frame",
    "decide",
    "decided_pairs",
    "decisions_frame",
    "mark_not_duplicate",
    "merge_candidate",
    "queue_counts",
    "review_queue",
    "scan",
]
