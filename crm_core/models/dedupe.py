"""De-duplication state: indexed blocking keys per customer, the review queue, the steward's
decisions, merges (with the snapshot their undo restores) and the last learned match model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models.base import Base, Timestamped, UTCDateTime, utcnow
from crm_core.models.customers import JSONType


class DedupeBlockKey(Base):
    """One blocking key of one customer (``phone:+86138…``); customers sharing a key are
    compared. Looked up by key when a new or edited customer is checked."""

    __tablename__ = "dedupe_block_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(400))

    __table_args__ = (Index("ix_dedupe_block_keys_key_customer", "key", "customer_id"),)


class DedupeKeyState(Base):
    """The customer version whose keys ``dedupe_block_keys`` holds (stale when it differs)."""

    __tablename__ = "dedupe_key_states"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer)


class CandidateStatus:
    OPEN = "open"
    DEFERRED = "deferred"
    MERGED = "merged"
    NOT_DUPLICATE = "not_duplicate"


class DedupeCandidate(Base, Timestamped):
    """A pair in the review queue (``left_id < right_id``) with its match probability."""

    __tablename__ = "dedupe_candidates"

    id: Mapped[int] = mapped_column(primary_key=True)
    left_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    right_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    score: Mapped[float] = mapped_column(Float)
    cluster_id: Mapped[int | None] = mapped_column(Integer, index=True)
    status: Mapped[str] = mapped_column(String(20), default=CandidateStatus.OPEN, index=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    merge_id: Mapped[int | None] = mapped_column(ForeignKey("dedupe_merges.id"))

    __table_args__ = (UniqueConstraint("left_id", "right_id", name="uq_dedupe_candidates_pair"),)


class DedupeDecision(Base):
    """A steward's verdict on a pair (``left_id < right_id``): ``not_duplicate`` pairs are
    never proposed again; ``duplicate`` ones refine the match model."""

    __tablename__ = "dedupe_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    left_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    right_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    decision: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("left_id", "right_id", name="uq_dedupe_decisions_pair"),)


class DedupeMerge(Base):
    """One merge of ``loser_ids`` into ``survivor_id``. ``snapshot`` holds the prior state of
    every record it changed, so ``undo`` can restore it exactly."""

    __tablename__ = "dedupe_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    loser_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    choices: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)


class DedupeModelState(Base, Timestamped):
    """The match model learned by the last scan, reused to check single records."""

    __tablename__ = "dedupe_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    n_records: Mapped[int] = mapped_column(Integer, default=0)
