"""Two-character search keys in customers.search_text (Chinese name pairs, pinyin initials).

Existing customers with a Chinese name get ``short_search_keys`` appended to their search text,
in batches; the search index follows through its triggers (SQLite) or GIN index (PostgreSQL).
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0009"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    from crm_core.customers import SHORT_KEY_MARK, short_search_keys

    conn = op.get_bind()
    last = 0
    select = sa.text(
        "SELECT id, name, name_key, search_text FROM customers "
        "WHERE id > :last AND name_key IS NOT NULL AND name_key <> '' ORDER BY id LIMIT :n"
    )
    update = sa.text("UPDATE customers SET search_text = :text WHERE id = :id")
    while True:
        rows = conn.execute(select, {"last": last, "n": BATCH}).all()
        if not rows:
            break
        last = rows[-1].id
        changes = []
        for row in rows:
            keys = short_search_keys(row.name, row.name_key)
            current = row.search_text or ""
            if keys and SHORT_KEY_MARK not in current:
                changes.append({"id": row.id, "text": f"{current} {keys}".strip()})
        if changes:
            conn.execute(update, changes)


def downgrade() -> None:
    # the keys are harmless to keep: the quick search of the earlier revision ignores them
    pass
