"""Full-text search over customers.search_text: FTS5 trigram (SQLite) or pg_trgm (PostgreSQL).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE customer_fts USING fts5("
            "search_text, content='customers', content_rowid='id', tokenize='trigram')"
        )
        op.execute(
            "CREATE TRIGGER customer_fts_ai AFTER INSERT ON customers BEGIN "
            "INSERT INTO customer_fts(rowid, search_text) VALUES (new.id, new.search_text); END"
        )
        op.execute(
            "CREATE TRIGGER customer_fts_ad AFTER DELETE ON customers BEGIN "
            "INSERT INTO customer_fts(customer_fts, rowid, search_text) "
            "VALUES ('delete', old.id, old.search_text); END"
        )
        op.execute(
            "CREATE TRIGGER customer_fts_au AFTER UPDATE OF search_text ON customers BEGIN "
            "INSERT INTO customer_fts(customer_fts, rowid, search_text) "
            "VALUES ('delete', old.id, old.search_text); "
            "INSERT INTO customer_fts(rowid, search_text) VALUES (new.id, new.search_text); END"
        )
    elif dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_customers_search_trgm ON customers "
            "USING gin (search_text gin_trgm_ops)"
        )
        op.execute(
            "CREATE INDEX ix_customers_name_key_trgm ON customers USING gin (name_key gin_trgm_ops)"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("customer_fts_ai", "customer_fts_ad", "customer_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS customer_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_customers_search_trgm")
        op.execute("DROP INDEX IF EXISTS ix_customers_name_key_trgm")
