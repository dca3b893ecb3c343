"""Interactions per month, user and kind summed per group of customers
(``report_group_activity``: owner, team, archived, unowned lead, as the group counts of
revision 0040), so the activity report reads thousands of rows instead of every interaction.
``user_id`` is 0 for interactions logged by nobody. Kept by triggers on ``interactions`` and on
the customers' group columns; merged customers count nowhere.

SQLite: row triggers add to the group rows in place. PostgreSQL: statement triggers append
signed delta rows (``delta = 1``) that readers fold, as in revision 0040.

Revision ID: 0043
Revises: 0042
"""

import sqlalchemy as sa
from alembic import op

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None

_G = "report_group_activity"
_KEY = ("owner_id", "team_id", "archived", "unowned_lead", "month", "user_id", "kind")
_GROUP_COLUMNS = ("owner_id", "team_id", "archived_at", "lifecycle_stage", "merged_into_id")
_TRIGGERS = {
    "report_group_activity_ai": "interactions",
    "report_group_activity_ad": "interactions",
    "report_group_activity_au": "interactions",
    "report_group_activity_customers_au": "customers",
}


def _month(sqlite: bool, column: str) -> str:
    if sqlite:
        return f"substr({column}, 1, 7)"
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"


def _group_key(c: str) -> list[str]:
    """The group columns of the customer row ``c`` (as revision 0040 groups)."""
    return [
        f"coalesce({c}.owner_id, 0)",
        f"coalesce({c}.team_id, 0)",
        f"CASE WHEN {c}.archived_at IS NULL THEN 0 ELSE 1 END",
        f"CASE WHEN {c}.owner_id IS NULL AND {c}.lifecycle_stage = 'lead' THEN 1 ELSE 0 END",
    ]


def _counts(sqlite: bool, source: str, i: str, where: str, sign: str, c: str = "c") -> str:
    """``sign`` times the interactions ``i`` of ``source`` counted per key, grouped by the
    customer row ``c``."""
    keys = [*_group_key(c), _month(sqlite, f"{i}.occurred_at"), f"coalesce({i}.user_id, 0)"]
    keys.append(f"{i}.kind")
    select = ", ".join(f"{e} AS {n}" for e, n in zip(keys, _KEY, strict=True))
    return (
        f"SELECT {select}, {sign} * count(*) AS n FROM {source} WHERE {where}"
        f" GROUP BY {', '.join(keys)}"
    )


def _summed(parts: list[str]) -> str:
    key = ", ".join(_KEY)
    return (
        f"SELECT {key}, sum(n) AS n FROM ({' UNION ALL '.join(parts)}) AS d GROUP BY {key}"
        " HAVING sum(n) <> 0"
    )


def _sqlite_apply(parts: list[str]) -> str:
    """Add each part's rows (distinct keys) to the group rows: missing keys inserted at zero,
    then the rows updated (as revision 0040 does)."""
    match = " AND ".join(f"{_G}.{k} = d.{k}" for k in _KEY)
    missing = " AND ".join(f"g.{k} = d.{k}" for k in _KEY)
    out = []
    for part in parts:
        out.append(
            f"INSERT INTO {_G} ({', '.join(_KEY)}, n) SELECT {', '.join(f'd.{k}' for k in _KEY)},"
            f" 0 FROM ({part}) AS d WHERE NOT EXISTS (SELECT 1 FROM {_G} g WHERE {missing});"
        )
        out.append(f"UPDATE {_G} SET n = {_G}.n + d.n FROM ({part}) AS d WHERE {match};")
    return " ".join(out)


def _sqlite_upgrade() -> None:
    def row(r: str, sign: str) -> str:
        # one interaction: its key, no grouping
        where = f"c.id = {r}.customer_id AND c.merged_into_id IS NULL"
        keys = [*_group_key("c"), _month(True, f"{r}.occurred_at"), f"coalesce({r}.user_id, 0)"]
        keys.append(f"{r}.kind")
        select = ", ".join(f"{e} AS {n}" for e, n in zip(keys, _KEY, strict=True))
        return f"SELECT {select}, {sign} AS n FROM customers c WHERE {where}"

    op.execute(
        "CREATE TRIGGER report_group_activity_ai AFTER INSERT ON interactions BEGIN "
        + _sqlite_apply([row("NEW", "1")])
        + " END"
    )
    op.execute(
        "CREATE TRIGGER report_group_activity_ad AFTER DELETE ON interactions BEGIN "
        + _sqlite_apply([row("OLD", "-1")])
        + " END"
    )
    columns = ("customer_id", "occurred_at", "user_id", "kind")
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
    op.execute(
        f"CREATE TRIGGER report_group_activity_au AFTER UPDATE OF {', '.join(columns)}"
        f" ON interactions WHEN {changed} BEGIN "
        + _sqlite_apply([row("OLD", "-1"), row("NEW", "1")])
        + " END"
    )
    moved = " OR ".join(
        f"({o}) IS NOT ({n})" for o, n in zip(_group_key("OLD"), _group_key("NEW"), strict=True)
    )
    moved += " OR (OLD.merged_into_id IS NULL) IS NOT (NEW.merged_into_id IS NULL)"

    def customer(c: str, sign: str) -> str:
        where = f"i.customer_id = {c}.id AND {c}.merged_into_id IS NULL"
        return _counts(True, "interactions i", "i", where, sign, c)

    op.execute(
        "CREATE TRIGGER report_group_activity_customers_au AFTER UPDATE OF"
        f" {', '.join(_GROUP_COLUMNS)} ON customers WHEN {moved} BEGIN "
        + _sqlite_apply([customer("OLD", "-1"), customer("NEW", "1")])
        + " END"
    )


def _lookup(table: str, alias: str, key: str, value: str) -> str:
    """A ``LATERAL`` index lookup per row (transition tables have no statistics, and a cached
    plan must suit one row and a million; revision 0040)."""
    return f"CROSS JOIN LATERAL (SELECT * FROM {table} x WHERE x.{key} = {value} OFFSET 0) {alias}"


def _pg_function(name: str, parts: list[str], guard: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS ({guard}) THEN
        RETURN NULL;
    END IF;
    INSERT INTO {_G} ({", ".join(_KEY)}, n, delta) SELECT *, 1 FROM ({_summed(parts)}) d;
    RETURN NULL;
END $$
"""


def _postgres_upgrade() -> None:
    def rows(table: str, sign: str) -> str:
        source = f"{table} i {_lookup('customers', 'c', 'id', 'i.customer_id')}"
        return _counts(False, source, "i", "c.merged_into_id IS NULL", sign)

    functions = {
        "ai": ([rows("new_rows", "1")], "INSERT", "NEW TABLE AS new_rows", "new_rows"),
        "ad": ([rows("old_rows", "-1")], "DELETE", "OLD TABLE AS old_rows", "old_rows"),
        "au": (
            [rows("old_rows", "-1"), rows("new_rows", "1")],
            "UPDATE",
            "OLD TABLE AS old_rows NEW TABLE AS new_rows",
            "old_rows",
        ),
    }
    for suffix, (parts, event, ref, guard) in functions.items():
        name = f"report_group_activity_{suffix}"
        op.execute(_pg_function(name, parts, f"SELECT 1 FROM {guard}"))
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON interactions REFERENCING {ref}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    old = ", ".join(_group_key("o"))
    new = ", ".join(_group_key("n"))

    def moved(rows: str) -> str:
        return (
            f"SELECT {rows}.* FROM old_customers o JOIN new_customers n ON n.id = o.id"
            f" WHERE ({old}, o.merged_into_id IS NULL) IS DISTINCT FROM"
            f" ({new}, n.merged_into_id IS NULL)"
        )

    def customers(rows: str, sign: str) -> str:
        source = f"({moved(rows)}) c {_lookup('interactions', 'i', 'customer_id', 'c.id')}"
        return _counts(False, source, "i", "c.merged_into_id IS NULL", sign)

    name = "report_group_activity_customers_au"
    op.execute(_pg_function(name, [customers("o", "-1"), customers("n", "1")], moved("n")))
    op.execute(
        f"CREATE TRIGGER {name} AFTER UPDATE ON customers"
        " REFERENCING OLD TABLE AS old_customers NEW TABLE AS new_customers"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
    )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        _G,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("archived", sa.SmallInteger(), nullable=False),
        sa.Column("unowned_lead", sa.SmallInteger(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("delta", sa.SmallInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{_G}")),
    )
    op.create_index("ix_report_group_activity_key", _G, list(_KEY), unique=False)
    op.create_index(
        "ix_report_group_activity_delta",
        _G,
        ["id"],
        unique=False,
        sqlite_where=sa.text("delta = 1"),
        postgresql_where=sa.text("delta = 1"),
    )
    source = "interactions i JOIN customers c ON c.id = i.customer_id"
    everything = _counts(sqlite, source, "i", "c.merged_into_id IS NULL", "1")
    op.execute(f"INSERT INTO {_G} ({', '.join(_KEY)}, n) {_summed([everything])}")
    if sqlite:
        _sqlite_upgrade()
    else:
        _postgres_upgrade()
    op.execute(f"ANALYZE {_G}")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for trigger, table in _TRIGGERS.items():
        if sqlite:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
    op.drop_index("ix_report_group_activity_delta", table_name=_G)
    op.drop_index("ix_report_group_activity_key", table_name=_G)
    op.drop_table(_G)
