"""Live customers counted per group of customers (owner, team, archived, unowned lead, as the
group counts of revision 0040) and per value of the distributions of the dashboard
(``report_group_customers``: industry, province and city, lifecycle stage), so the customer
distribution reads thousands of rows instead of scanning every customer. Kept by triggers on
``customers``; merged customers count nowhere.

``dimension`` is ``'industry'`` (``value`` the industry), ``'city'`` (``value`` the province,
``city`` the city) or ``'lifecycle_stage'``; ``value`` and ``city`` keep ``NULL`` as it is.

SQLite: row triggers add to the group rows in place (matched with ``IS``, so ``NULL`` values
match). PostgreSQL: statement triggers append signed delta rows (``delta = 1``) that readers
fold, as in revision 0040. A bulk insert may set the SQLite insert trigger aside and add its
rows in one statement (``crm_core.reports.customer_groups.customer_counts_set_aside``).

Revision ID: 0044
Revises: 0043
"""

import sqlalchemy as sa
from alembic import op

revision = "0044"
down_revision = "0043"
branch_labels = None
depends_on = None

_G = "report_group_customers"
_KEY = ("owner_id", "team_id", "archived", "unowned_lead", "dimension", "value", "city")
#: The customer columns a count depends on.
_COLUMNS = (
    "owner_id",
    "team_id",
    "archived_at",
    "lifecycle_stage",
    "merged_into_id",
    "industry",
    "province",
    "city",
)
_TRIGGERS = {
    "report_customer_counts_ai": "customers",
    "report_customer_counts_ad": "customers",
    "report_customer_counts_au": "customers",
}


def _group_key(c: str) -> list[str]:
    """The group columns of the customer row ``c`` (as revision 0040 groups)."""
    return [
        f"coalesce({c}.owner_id, 0)",
        f"coalesce({c}.team_id, 0)",
        f"CASE WHEN {c}.archived_at IS NULL THEN 0 ELSE 1 END",
        f"CASE WHEN {c}.owner_id IS NULL AND {c}.lifecycle_stage = 'lead' THEN 1 ELSE 0 END",
    ]


def _values(c: str, sqlite: bool) -> list[tuple[str, str, str]]:
    """``(dimension, value, city)`` of the customer row ``c``, one per dimension."""
    none = "NULL" if sqlite else "NULL::varchar"
    return [
        ("'industry'", f"{c}.industry", none),
        ("'city'", f"{c}.province", f"{c}.city"),
        ("'lifecycle_stage'", f"{c}.lifecycle_stage", none),
    ]


def _counts(sqlite: bool, source: str, c: str, sign: str) -> str:
    """``sign`` times the live customers ``c`` of ``source`` counted per key (one grouped
    ``SELECT`` per dimension; their keys never meet)."""
    parts = []
    for d, v, t in _values(c, sqlite):
        keys = [*_group_key(c), d, v, t]
        select = ", ".join(f"{e} AS {n}" for e, n in zip(keys, _KEY, strict=True))
        group = ", ".join([*_group_key(c), v] + ([] if t.startswith("NULL") else [t]))
        parts.append(
            f"SELECT {select}, {sign} * count(*) AS n FROM {source}"
            f" WHERE {c}.merged_into_id IS NULL GROUP BY {group}"
        )
    return " UNION ALL ".join(parts)


def _summed(parts: list[str]) -> str:
    key = ", ".join(_KEY)
    return (
        f"SELECT {key}, sum(n) AS n FROM ({' UNION ALL '.join(parts)}) AS d GROUP BY {key}"
        " HAVING sum(n) <> 0"
    )


def _sqlite_apply(part: str) -> str:
    """Add the part's rows (distinct keys) to the group rows: missing keys inserted at zero,
    then the rows updated (as revision 0040 does; ``IS`` matches ``NULL`` values)."""
    match = " AND ".join(f"{_G}.{k} IS d.{k}" for k in _KEY)
    missing = " AND ".join(f"g.{k} IS d.{k}" for k in _KEY)
    return (
        f"INSERT INTO {_G} ({', '.join(_KEY)}, n) SELECT {', '.join(f'd.{k}' for k in _KEY)},"
        f" 0 FROM ({part}) AS d WHERE NOT EXISTS (SELECT 1 FROM {_G} g WHERE {missing});"
        f" UPDATE {_G} SET n = {_G}.n + d.n FROM ({part}) AS d WHERE {match};"
    )


def _sqlite_row(r: str, sign: str) -> str:
    """The three keys of the one customer row ``r`` (``NEW`` or ``OLD``), no grouping."""
    parts = []
    for d, v, t in _values(r, True):
        keys = [*_group_key(r), d, v, t]
        select = ", ".join(f"{e} AS {n}" for e, n in zip(keys, _KEY, strict=True))
        parts.append(f"SELECT {select}, {sign} AS n")
    return " UNION ALL ".join(parts)


def _sqlite_upgrade() -> None:
    op.execute(
        "CREATE TRIGGER report_customer_counts_ai AFTER INSERT ON customers"
        " WHEN NEW.merged_into_id IS NULL BEGIN " + _sqlite_apply(_sqlite_row("NEW", "1")) + " END"
    )
    op.execute(
        "CREATE TRIGGER report_customer_counts_ad AFTER DELETE ON customers"
        " WHEN OLD.merged_into_id IS NULL BEGIN " + _sqlite_apply(_sqlite_row("OLD", "-1")) + " END"
    )
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _COLUMNS)
    old_live = "OLD.merged_into_id IS NULL"
    new_live = "NEW.merged_into_id IS NULL"
    # each half only for a live row: a statement of the trigger body cannot have its own WHEN,
    # so the rows are kept by a WHERE on a one-row source
    old_part = f"SELECT * FROM ({_sqlite_row('OLD', '-1')}) WHERE {old_live}"
    new_part = f"SELECT * FROM ({_sqlite_row('NEW', '1')}) WHERE {new_live}"
    op.execute(
        f"CREATE TRIGGER report_customer_counts_au AFTER UPDATE OF {', '.join(_COLUMNS)}"
        f" ON customers WHEN {changed} BEGIN "
        + _sqlite_apply(old_part)
        + " "
        + _sqlite_apply(new_part)
        + " END"
    )


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
    columns = ", ".join(f"o.{c}" for c in _COLUMNS)
    new_columns = ", ".join(f"n.{c}" for c in _COLUMNS)

    def moved(rows: str) -> str:
        return (
            f"SELECT {rows}.* FROM old_customers o JOIN new_customers n ON n.id = o.id"
            f" WHERE ({columns}) IS DISTINCT FROM ({new_columns})"
        )

    functions = {
        "ai": ([_counts(False, "new_customers c", "c", "1")], "INSERT", "NEW", "new_customers"),
        "ad": ([_counts(False, "old_customers c", "c", "-1")], "DELETE", "OLD", "old_customers"),
    }
    for suffix, (parts, event, which, table) in functions.items():
        name = f"report_customer_counts_{suffix}"
        op.execute(_pg_function(name, parts, f"SELECT 1 FROM {table}"))
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON customers REFERENCING {which} TABLE AS"
            f" {table} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    name = "report_customer_counts_au"
    parts = [
        _counts(False, f"({moved('o')}) c", "c", "-1"),
        _counts(False, f"({moved('n')}) c", "c", "1"),
    ]
    op.execute(_pg_function(name, parts, moved("n")))
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
        sa.Column("dimension", sa.String(length=20), nullable=False),
        sa.Column("value", sa.String(length=80), nullable=True),
        sa.Column("city", sa.String(length=80), nullable=True),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("delta", sa.SmallInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{_G}")),
    )
    op.create_index("ix_report_group_customers_key", _G, list(_KEY), unique=False)
    op.create_index(
        "ix_report_group_customers_delta",
        _G,
        ["id"],
        unique=False,
        sqlite_where=sa.text("delta = 1"),
        postgresql_where=sa.text("delta = 1"),
    )
    everything = _counts(sqlite, "customers c", "c", "1")
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
    op.drop_index("ix_report_group_customers_delta", table_name=_G)
    op.drop_index("ix_report_group_customers_key", table_name=_G)
    op.drop_table(_G)
