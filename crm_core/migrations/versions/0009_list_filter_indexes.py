"""Composite indexes for the filtered customer list: (owner | city | stage, updated_at, id).

Revision ID: 0009
Revises: 0003
"""

from alembic import op

revision = "0009"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = {"owner": "owner_id", "city": "city", "stage": "lifecycle_stage"}
_OLD = {
    "owner": "ix_customers_owner_id",
    "city": "ix_customers_city",
    "stage": "ix_customers_lifecycle_stage",
}


def upgrade() -> None:
    for key, column in _COLUMNS.items():
        op.drop_index(_OLD[key], table_name="customers")
        op.create_index(f"ix_customers_{key}_updated", "customers", [column, "updated_at", "id"])


def downgrade() -> None:
    for key, column in _COLUMNS.items():
        op.drop_index(f"ix_customers_{key}_updated", table_name="customers")
        op.create_index(_OLD[key], "customers", [column])
