"""Low-code tables: custom modules, their fields and records, form layouts and saved reports.

Storage choice (works unchanged on SQLite and PostgreSQL, no table is ever created at run time):

* ``module_records`` holds every record of every custom module; its field values live in one
  JSON ``data`` column (the source of truth, returned as is).
* ``module_values`` is a typed index of those values, one row per (record, field, value):
  ``text_value`` for text, choices, e-mails, phones, dates and times (ISO text sorts and groups
  like the date), ``num_value`` for numbers, money, yes/no (0/1) and links (the linked id).
  Filters, grouped reports and sorting on custom fields read these indexed rows, so a filter on
  a custom field is an index look-up rather than a JSON scan. Long text is not indexed.
* Quick search reads ``module_records.search_text`` through a trigram index: FTS5
  ``module_record_fts`` on SQLite (revision 0010, kept in step by triggers), pg_trgm on
  PostgreSQL (revision 0007); see ``crm_core.lowcode.records.search_condition``.
* ``module_unique_values`` enforces unique fields: its primary key (module, field, value) lets
  the database itself refuse a second record with the same value, also under concurrency.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models.base import Base, Timestamped, UTCDateTime, Versioned
from crm_core.models.customers import JSONType


class CustomModule(Base, Timestamped, Versioned):
    """An admin-defined record type (Projects, Contracts, Site visits …)."""

    __tablename__ = "custom_modules"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60), unique=True)
    name_en: Mapped[str] = mapped_column(String(120))
    name_zh: Mapped[str | None] = mapped_column(String(120))
    display_field: Mapped[str | None] = mapped_column(String(60))
    #: ``{"read": [roles], "create": [...], "edit": [...], "archive": [...]}``
    permissions: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class ModuleField(Base, Timestamped, Versioned):
    """One field of a custom module; a retired field (``active`` false) keeps its values."""

    __tablename__ = "module_fields"

    id: Mapped[int] = mapped_column(primary_key=True)
    module_id: Mapped[int] = mapped_column(
        ForeignKey("custom_modules.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(60))
    label_en: Mapped[str] = mapped_column(String(120))
    label_zh: Mapped[str | None] = mapped_column(String(120))
    field_type: Mapped[str] = mapped_column(String(20))
    choices: Mapped[list[str]] = mapped_column(JSONType, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    unique: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    help_text: Mapped[str | None] = mapped_column(Text)
    #: for links to another module: that module's key
    link_module: Mapped[str | None] = mapped_column(String(60))

    __table_args__ = (UniqueConstraint("module_id", "key", name="uq_module_field_key"),)


class ModuleRecord(Base, Timestamped, Versioned):
    """One record of a custom module; values in ``data`` (see the module docstring)."""

    __tablename__ = "module_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("custom_modules.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    search_text: Mapped[str] = mapped_column(Text, default="")
    #: the customer of the first customer-link field: drives record access and the timeline
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    archived_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    archive_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_module_records_module_id", "module_id", "id"),)


class ModuleValue(Base):
    """Typed index row of one value of one record (multi-choice: one row per choice)."""

    __tablename__ = "module_values"

    id: Mapped[int] = mapped_column(primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("custom_modules.id"))
    record_id: Mapped[int] = mapped_column(
        ForeignKey("module_records.id", ondelete="CASCADE"), index=True
    )
    field_key: Mapped[str] = mapped_column(String(60))
    text_value: Mapped[str | None] = mapped_column(String(255))
    num_value: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_module_values_text", "module_id", "field_key", "text_value", "record_id"),
        Index("ix_module_values_num", "module_id", "field_key", "num_value", "record_id"),
    )


class ModuleUniqueValue(Base):
    """A value of a unique field; the primary key makes the database refuse a duplicate."""

    __tablename__ = "module_unique_values"

    module_id: Mapped[int] = mapped_column(
        ForeignKey("custom_modules.id", ondelete="CASCADE"), primary_key=True
    )
    field_key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)
    record_id: Mapped[int] = mapped_column(
        ForeignKey("module_records.id", ondelete="CASCADE"), index=True
    )


class FormLayout(Base, Timestamped, Versioned):
    """The arranged form of a record page: ``customer`` or ``module:<key>``."""

    __tablename__ = "form_layouts"

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(80), unique=True)
    #: ``{"sections": [{"title_en", "title_zh", "columns", "fields": [...]}],
    #:   "help": {field: text}, "hidden": {field: [roles]}}``
    layout: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class SavedReport(Base, Timestamped, Versioned):
    """A report built in the report builder; ``dashboard`` pins it (personal or shared)."""

    __tablename__ = "saved_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: ``None`` (not pinned), ``personal`` or ``shared``
    dashboard: Mapped[str | None] = mapped_column(String(10))
