"""The customer profile: persons and companies, their phones, emails, tags and custom fields."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.models.base import Base, Timestamped, UTCDateTime, Versioned

JSONType = JSON().with_variant(JSONB(), "postgresql")


class CustomerKind(enum.StrEnum):
    PERSON = "person"
    COMPANY = "company"


class Lifecycle(enum.StrEnum):
    LEAD = "lead"
    PROSPECT = "prospect"
    CUSTOMER = "customer"
    VIP = "vip"
    DORMANT = "dormant"
    CHURNED = "churned"


class ValueTier(enum.StrEnum):
    A = "A"
    B = "B"
    C = "C"


customer_tags = Table(
    "customer_tags",
    Base.metadata,
    Column("customer_id", ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    color: Mapped[str | None] = mapped_column(String(20))


class Customer(Base, Timestamped, Versioned):
    """A person or a company. Archived, merged and anonymised records stay as rows."""

    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default=CustomerKind.PERSON)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), default="", index=True)
    search_text: Mapped[str] = mapped_column(Text, default="")
    # a contact person belongs to a company record; ``company_name`` is free text
    company_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    company_name: Mapped[str | None] = mapped_column(String(200))
    position: Mapped[str | None] = mapped_column(String(120))
    industry: Mapped[str | None] = mapped_column(String(80), index=True)
    size: Mapped[str | None] = mapped_column(String(20))
    source: Mapped[str | None] = mapped_column(String(40), index=True)
    # primary phone and email, denormalised for lists; look-ups go through customer_phones/emails
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(320))
    country: Mapped[str | None] = mapped_column(String(2))
    province: Mapped[str | None] = mapped_column(String(80))
    city: Mapped[str | None] = mapped_column(String(80))
    district: Mapped[str | None] = mapped_column(String(80))
    street: Mapped[str | None] = mapped_column(String(255))
    postcode: Mapped[str | None] = mapped_column(String(20))
    birthday: Mapped[date | None] = mapped_column(Date)
    lifecycle_stage: Mapped[str] = mapped_column(String(20), default=Lifecycle.LEAD)
    value_tier: Mapped[str | None] = mapped_column(String(2))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(120), index=True)
    notes: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    last_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    archived_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    archive_reason: Mapped[str | None] = mapped_column(Text)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    anonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    phones: Mapped[list[CustomerPhone]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="CustomerPhone.id",
    )
    emails: Mapped[list[CustomerEmail]] = relationship(
        back_populates="customer",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="CustomerEmail.id",
    )
    tags: Mapped[list[Tag]] = relationship(
        secondary=customer_tags, lazy="selectin", order_by="Tag.name"
    )

    __table_args__ = (
        Index("ix_customers_updated_id", "updated_at", "id"),
        # list filters page by (updated_at, id) within the filtered value
        Index("ix_customers_owner_updated", "owner_id", "updated_at", "id"),
        Index("ix_customers_city_updated", "city", "updated_at", "id"),
        Index("ix_customers_stage_updated", "lifecycle_stage", "updated_at", "id"),
        Index("ix_customers_name", "name"),
        # sparse columns: partial indexes, so the planner never mistakes "IS NULL" for selective
        Index(
            "ix_customers_archived",
            "archived_at",
            sqlite_where=text("archived_at IS NOT NULL"),
            postgresql_where=text("archived_at IS NOT NULL"),
        ),
        Index(
            "ix_customers_merged_into",
            "merged_into_id",
            sqlite_where=text("merged_into_id IS NOT NULL"),
            postgresql_where=text("merged_into_id IS NOT NULL"),
        ),
    )

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    @property
    def is_live(self) -> bool:
        """Neither archived, merged into another record, nor anonymised."""
        return self.archived_at is None and self.merged_into_id is None

    def __repr__(self) -> str:
        return f"<Customer {self.id} {self.name!r}>"


class CustomerPhone(Base):
    __tablename__ = "customer_phones"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    e164: Mapped[str] = mapped_column(String(20), index=True)
    raw: Mapped[str] = mapped_column(String(60))
    label: Mapped[str] = mapped_column(String(20), default="mobile")
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    customer: Mapped[Customer] = relationship(back_populates="phones")


class CustomerEmail(Base):
    __tablename__ = "customer_emails"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320), index=True)
    label: Mapped[str] = mapped_column(String(20), default="work")
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    customer: Mapped[Customer] = relationship(back_populates="emails")


class FieldType(enum.StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    CHOICE = "choice"
    YES_NO = "yes_no"


class CustomFieldDefinition(Base, Timestamped, Versioned):
    """An admin-defined field; values live in ``Customer.custom`` and are validated on write."""

    __tablename__ = "custom_field_definitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(40), default="customer")
    key: Mapped[str] = mapped_column(String(60))
    label_en: Mapped[str] = mapped_column(String(120))
    label_zh: Mapped[str | None] = mapped_column(String(120))
    field_type: Mapped[str] = mapped_column(String(20))
    choices: Mapped[list[str]] = mapped_column(JSONType, default=list)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    help_text: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("entity", "key", name="uq_custom_field_entity_key"),)
