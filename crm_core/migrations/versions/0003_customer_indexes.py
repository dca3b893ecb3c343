"""Customer indexes: partial indexes on sparse columns; drop redundant phone/email indexes.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain DROP INDEX: a batch operation would re-create the table and lose the FTS triggers
    for name in (
        "ix_customers_phone",
        "ix_customers_email",
        "ix_customers_archived_at",
        "ix_customers_merged_into_id",
    ):
        op.drop_index(name, table_name="customers")
    op.create_index(
        "ix_customers_archived",
        "customers",
        ["archived_at"],
        sqlite_where=sa.text("archived_at IS NOT NULL"),
        postgresql_where=sa.text("archived_at IS NOT NULL"),
    )
    op.create_index(
        "ix_customers_merged_into",
        "customers",
        ["merged_into_id"],
        sqlite_where=sa.text("merged_into_id IS NOT NULL"),
        postgresql_where=sa.text("merged_into_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_customers_merged_into", table_name="customers")
    op.drop_index("ix_customers_archived", table_name="customers")
    op.create_index("ix_customers_merged_into_id", "customers", ["merged_into_id"])
    op.create_index("ix_customers_archived_at", "customers", ["archived_at"])
    op.create_index("ix_customers_email", "customers", ["email"])
    op.create_index("ix_customers_phone", "customers", ["phone"])
