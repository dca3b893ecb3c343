"""Privacy: the consent ledger, retention policies and fingerprints of erased persons."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models.base import Base, Timestamped, UTCDateTime, Versioned, utcnow


class ConsentEvent(Base):
    """One line of the consent ledger: given or withdrawn, when, how, for which text.
    The current consent of a customer for a purpose is the newest line."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(40))
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[str] = mapped_column(String(40), default="")
    text_version: Mapped[str] = mapped_column(String(40), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_consent_customer_purpose_at", "customer_id", "purpose", "at"),)


class RetentionPolicy(Base, Timestamped, Versioned):
    """How long personal data kept for a purpose may live after its anchor (for example the
    last interaction); when it expires the person is anonymised."""

    __tablename__ = "retention_policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(40), unique=True)
    period_days: Mapped[int] = mapped_column(Integer)
    anchor: Mapped[str] = mapped_column(String(30), default="last_interaction")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(Text)


class ErasureFingerprint(Base):
    """A keyed hash (HMAC-SHA256) of a phone or e-mail of an anonymised person, so that the
    same person imported again is flagged without keeping the value itself."""

    __tablename__ = "erasure_fingerprints"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    digest: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
