"""Import batches (with what each row did, so a batch can be reverted) and saved column mappings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models.base import Base, Timestamped, UTCDateTime, utcnow
from crm_core.models.customers import JSONType


class ImportBatch(Base):
    """One import of one file: its options, its outcome and whether it was reverted.

    ``file_name`` is the name the user gave, kept as a label only (never used as a path).
    """

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    file_name: Mapped[str] = mapped_column(String(200), default="")
    file_sha256: Mapped[str] = mapped_column(String(64), default="", index=True)
    file_size: Mapped[int] = mapped_column(Integer, default=0)
    file_format: Mapped[str] = mapped_column(String(10), default="csv")
    encoding: Mapped[str | None] = mapped_column(String(20))
    mode: Mapped[str] = mapped_column(String(10), default="upsert")
    match_key: Mapped[str | None] = mapped_column(String(20))
    all_or_nothing: Mapped[bool] = mapped_column(Boolean, default=True)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="committed")
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    invalid_count: Mapped[int] = mapped_column(Integer, default=0)
    reverted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reverted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revert_reason: Mapped[str | None] = mapped_column(Text)


class ImportBatchRow(Base):
    """What one file row did to one customer: ``created`` or ``updated`` (with the prior values
    of the fields it changed) and the record version the import left, to detect later edits."""

    __tablename__ = "import_batch_rows"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("import_batches.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))
    customer_id: Mapped[int] = mapped_column(Integer, index=True)
    version_after: Mapped[int] = mapped_column(Integer, default=1)
    prior: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # the hash of the row's content, or of its mapped values for a row without a key: a
    # re-import of the same content into an unchanged customer changes nothing
    row_digest: Mapped[str | None] = mapped_column(String(64))
    # the hash of the mapped values of a row without a key (e-mail, phone, id), by which a
    # re-import finds the customer it created; only such rows are indexed (revision 0050)
    row_key: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_import_batch_rows_batch", "batch_id", "row_number"),
        Index(
            "ix_import_batch_rows_row_key",
            "row_key",
            sqlite_where=text("row_key IS NOT NULL"),
            postgresql_where=text("row_key IS NOT NULL"),
        ),
    )


class ImportMapping(Base, Timestamped):
    """A saved, reusable column mapping (file header -> customer field) with its import options."""

    __tablename__ = "import_mappings"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    columns: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    mode: Mapped[str | None] = mapped_column(String(10))
    match_key: Mapped[str | None] = mapped_column(String(20))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
