"""The SQLite search index without per-row column sizes (FTS5 ``columnsize=0``).

The quick search never ranks by ``bm25`` (it orders by recency), so the ``customer_fts_docsize``
table that FTS5 keeps for ranking is dead weight: writing it is about a quarter of every
insert into the index. The index is created again with ``columnsize=0`` and rebuilt from
``customers.search_text``; its triggers refer to it by name and stay as they are.
PostgreSQL's pg_trgm index has no such table: nothing to do there.

Revision ID: 0048
Revises: 0020
"""

from alembic import op

revision = "0048"
down_revision = "0020"
branch_labels = None
depends_on = None

_CREATE = (
    "CREATE VIRTUAL TABLE customer_fts USING fts5("
    "search_text, content='customers', content_rowid='id', tokenize='trigram'{extra})"
)


def _recreate(extra: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TABLE customer_fts")
    op.execute(_CREATE.format(extra=extra))
    op.execute("INSERT INTO customer_fts(customer_fts) VALUES ('rebuild')")


def upgrade() -> None:
    _recreate(", columnsize=0")


def downgrade() -> None:
    _recreate("")
