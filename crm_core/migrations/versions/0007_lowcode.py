"""low-code: custom modules (records in JSON + typed value index), form layouts, saved reports

Revision ID: 0007
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import crm_core.models.base

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "custom_modules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("name_en", sa.String(length=120), nullable=False),
        sa.Column("name_zh", sa.String(length=120), nullable=True),
        sa.Column("display_field", sa.String(length=60), nullable=True),
        sa.Column(
            "permissions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", crm_core.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crm_core.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_modules")),
        sa.UniqueConstraint("key", name=op.f("uq_custom_modules_key")),
    )
    with op.batch_alter_table("custom_modules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_custom_modules_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "form_layouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entity", sa.String(length=80), nullable=False),
        sa.Column(
            "layout",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", crm_core.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crm_core.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_layouts")),
        sa.UniqueConstraint("entity", name=op.f("uq_form_layouts_entity")),
    )
    with op.batch_alter_table("form_layouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_form_layouts_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "module_fields",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("module_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("label_en", sa.String(length=120), nullable=False),
        sa.Column("label_zh", sa.String(length=120), nullable=True),
        sa.Column("field_type", sa.String(length=20), nullable=False),
        sa.Column(
            "choices",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("unique", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("help_text", sa.Text(), nullable=True),
        sa.Column("link_module", sa.String(length=60), nullable=True),
        sa.Column("created_at", crm_core.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crm_core.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["module_id"],
            ["custom_modules.id"],
            name=op.f("fk_module_fields_module_id_custom_modules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_module_fields")),
        sa.UniqueConstraint("module_id", "key", name="uq_module_field_key"),
    )
    with op.batch_alter_table("module_fields", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_module_fields_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_module_fields_module_id"), ["module_id"], unique=False)

    op.create_table(
        "saved_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column(
            "spec",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("dashboard", sa.String(length=10), nullable=True),
        sa.Column("created_at", crm_core.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crm_core.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_saved_reports_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_reports")),
    )
    with op.batch_alter_table("saved_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_saved_reports_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_saved_reports_owner_id"), ["owner_id"], unique=False)

    op.create_table(
        "module_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("module_id", sa.Integer(), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("display_name", sa.String(length=255), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("archived_at", crm_core.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("archived_by_id", sa.Integer(), nullable=True),
        sa.Column("archive_reason", sa.Text(), nullable=True),
        sa.Column("created_at", crm_core.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crm_core.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["archived_by_id"], ["users.id"], name=op.f("fk_module_records_archived_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_module_records_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_module_records_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["module_id"],
            ["custom_modules.id"],
            name=op.f("fk_module_records_module_id_custom_modules"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_module_records")),
    )
    with op.batch_alter_table("module_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_module_records_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_module_records_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index("ix_module_records_module_id", ["module_id", "id"], unique=False)

    op.create_table(
        "module_unique_values",
        sa.Column("module_id", sa.Integer(), nullable=False),
        sa.Column("field_key", sa.String(length=60), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["module_id"],
            ["custom_modules.id"],
            name=op.f("fk_module_unique_values_module_id_custom_modules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["module_records.id"],
            name=op.f("fk_module_unique_values_record_id_module_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "module_id", "field_key", "value", name=op.f("pk_module_unique_values")
        ),
    )
    with op.batch_alter_table("module_unique_values", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_module_unique_values_record_id"), ["record_id"], unique=False
        )

    op.create_table(
        "module_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("module_id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("field_key", sa.String(length=60), nullable=False),
        sa.Column("text_value", sa.String(length=255), nullable=True),
        sa.Column("num_value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["module_id"],
            ["custom_modules.id"],
            name=op.f("fk_module_values_module_id_custom_modules"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["module_records.id"],
            name=op.f("fk_module_values_record_id_module_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_module_values")),
    )
    with op.batch_alter_table("module_values", schema=None) as batch_op:
        batch_op.create_index(
            "ix_module_values_num",
            ["module_id", "field_key", "num_value", "record_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_module_values_record_id"), ["record_id"], unique=False)
        batch_op.create_index(
            "ix_module_values_text",
            ["module_id", "field_key", "text_value", "record_id"],
            unique=False,
        )

    if op.get_bind().dialect.name == "postgresql":
        # quick search over module records: ILIKE '%frag%' answered by a trigram index
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_module_records_search_trgm ON module_records "
            "USING gin (search_text gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_module_records_search_trgm")
    with op.batch_alter_table("module_values", schema=None) as batch_op:
        batch_op.drop_index("ix_module_values_text")
        batch_op.drop_index(batch_op.f("ix_module_values_record_id"))
        batch_op.drop_index("ix_module_values_num")

    op.drop_table("module_values")
    with op.batch_alter_table("module_unique_values", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_module_unique_values_record_id"))

    op.drop_table("module_unique_values")
    with op.batch_alter_table("module_records", schema=None) as batch_op:
        batch_op.drop_index("ix_module_records_module_id")
        batch_op.drop_index(batch_op.f("ix_module_records_customer_id"))
        batch_op.drop_index(batch_op.f("ix_module_records_created_at"))

    op.drop_table("module_records")
    with op.batch_alter_table("saved_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_reports_owner_id"))
        batch_op.drop_index(batch_op.f("ix_saved_reports_created_at"))

    op.drop_table("saved_reports")
    with op.batch_alter_table("module_fields", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_module_fields_module_id"))
        batch_op.drop_index(batch_op.f("ix_module_fields_created_at"))

    op.drop_table("module_fields")
    with op.batch_alter_table("form_layouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_form_layouts_created_at"))

    op.drop_table("form_layouts")
    with op.batch_alter_table("custom_modules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_custom_modules_created_at"))

    op.drop_table("custom_modules")
