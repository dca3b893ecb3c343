"""Indexed quick search over module_records.search_text on SQLite: an FTS5 trigram index kept in
step by triggers (PostgreSQL has the pg_trgm index of revision 0007).

Revision ID: 0010
Revises: 0007
"""

from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None

_TRIGGERS = ("module_record_fts_ai", "module_record_fts_ad", "module_record_fts_au")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE VIRTUAL TABLE module_record_fts USING fts5("
        "search_text, content='module_records', content_rowid='id', tokenize='trigram')"
    )
    op.execute(
        "CREATE TRIGGER module_record_fts_ai AFTER INSERT ON module_records BEGIN "
        "INSERT INTO module_record_fts(rowid, search_text) VALUES (new.id, new.search_text); END"
    )
    op.execute(
        "CREATE TRIGGER module_record_fts_ad AFTER DELETE ON module_records BEGIN "
        "INSERT INTO module_record_fts(module_record_fts, rowid, search_text) "
        "VALUES ('delete', old.id, old.search_text); END"
    )
    op.execute(
        "CREATE TRIGGER module_record_fts_au AFTER UPDATE OF search_text ON module_records BEGIN "
        "INSERT INTO module_record_fts(module_record_fts, rowid, search_text) "
        "VALUES ('delete', old.id, old.search_text); "
        "INSERT INTO module_record_fts(rowid, search_text) VALUES (new.id, new.search_text); END"
    )
    # records written before this revision
    op.execute("INSERT INTO module_record_fts(module_record_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for trigger in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS module_record_fts")
