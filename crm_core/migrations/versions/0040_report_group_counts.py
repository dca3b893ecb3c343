"""Coarse report counts per group of customers (``report_group_counts``): what the dashboard's
order reports need, summed over all the customers that share an owner, a team, an archived
flag and an "unowned lead" flag (the customer columns the access policy and the owner, team
and archive filters read). Thousands of rows instead of the millions of the customer roll-ups.

Kinds (``k1``/``k2`` are ``'YYYY-MM'`` months, ``''`` when unused):
1 revenue month: ``k1`` month, ``orders``, ``revenue_cents``, ``n`` buyers;
2 start of an active spell (90 days of inactivity): ``k1`` month of the start, ``k2`` month
  the previous spell ended (the last order before plus 90 days, ``''`` for a first order);
3 end of a customer's last spell: ``k1`` month of their last order plus 90 days;
4 cohort activity: ``k1`` month of the first order, ``k2`` a month with orders.

Kept exact by triggers on both customer roll-ups (whatever changes them) and on the customers'
grouping columns; merged customers count nowhere. SQLite: row triggers add the change to the
group's row (one writer at a time). PostgreSQL: statement triggers *append* signed delta rows
(no row of the table is ever locked by a writer, so concurrent writers neither wait for nor
deadlock on each other), marked ``delta = 1``; readers sum the rows of a key and
``crm_core.reports.groups.compact_group_counts`` folds them.

Revision ID: 0040
Revises: 0033
"""

import sqlalchemy as sa
from alembic import op

revision = "0040"
down_revision = "0033"
branch_labels = None
depends_on = None

_G = "report_group_counts"
_M = "report_customer_months"
_T = "report_customer_orders"
_KEY = ("kind", "owner_id", "team_id", "archived", "unowned_lead", "k1", "k2")
_COLS = (*_KEY, "orders", "revenue_cents", "n")
_INACTIVE_DAYS = 90
_PG_TRIGGERS = {
    "report_group_months_ai": _M,
    "report_group_months_au": _M,
    "report_group_months_ad": _M,
    "report_group_totals_ai": _T,
    "report_group_totals_au": _T,
    "report_group_totals_ad": _T,
    "report_group_customers_au": "customers",
}
_SQLITE_TRIGGERS = (
    *_PG_TRIGGERS,
    "report_group_months_au_sums",
    "report_group_months_au_spell",
    "report_group_totals_au_lapse",
    "report_group_totals_au_cohort",
)
_GROUP_COLUMNS = ("owner_id", "team_id", "archived_at", "lifecycle_stage", "merged_into_id")


class _Dialect:
    def __init__(self, name: str) -> None:
        self.sqlite = name == "sqlite"

    def month(self, column: str) -> str:
        if self.sqlite:
            return f"substr({column}, 1, 7)"
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"

    def month_after(self, column: str) -> str:
        if self.sqlite:
            return f"substr(datetime({column}, '+{_INACTIVE_DAYS} days'), 1, 7)"
        return (
            f"to_char(({column} AT TIME ZONE 'UTC') + interval '{_INACTIVE_DAYS} days', 'YYYY-MM')"
        )

    def gap(self, prev: str, first: str) -> str:
        """More than 90 days between two times (as ``reports._sql.days_between`` counts)."""
        if self.sqlite:
            return f"CAST(julianday({first}) - julianday({prev}) AS REAL) > {_INACTIVE_DAYS}"
        return f"CAST(extract(epoch FROM {first} - {prev}) / 86400.0 AS FLOAT) > {_INACTIVE_DAYS}"

    def lookup(self, table: str, alias: str, key: str, value: str) -> str:
        """``JOIN`` of the ``table`` rows whose ``key`` equals ``value``. PostgreSQL: a
        ``LATERAL`` index lookup per row (transition tables and freshly loaded tables have no
        statistics; a plain join was planned as a nested loop over a table scan). ``OFFSET 0``
        keeps the planner from turning it back into a join."""
        if self.sqlite:
            return f"JOIN {table} {alias} ON {alias}.{key} = {value}"
        lookup = f"SELECT * FROM {table} x WHERE x.{key} = {value} OFFSET 0"
        return f"CROSS JOIN LATERAL ({lookup}) {alias}"

    def cents(self, column: str) -> str:
        if self.sqlite:
            return f"CAST(round({column} * 100) AS INTEGER)"
        return f"CAST(round({column} * 100) AS BIGINT)"


def _group_key(c: str) -> list[str]:
    """The group columns of the customer row ``c``."""
    return [
        f"coalesce({c}.owner_id, 0)",
        f"coalesce({c}.team_id, 0)",
        f"CASE WHEN {c}.archived_at IS NULL THEN 0 ELSE 1 END",
        f"CASE WHEN {c}.owner_id IS NULL AND {c}.lifecycle_stage = 'lead' THEN 1 ELSE 0 END",
    ]


def _group(c: str) -> str:
    names = ("owner_id", "team_id", "archived", "unowned_lead")
    return ", ".join(f"{e} AS {n}" for e, n in zip(_group_key(c), names, strict=True))


def _head(kind: int, c: str) -> str:
    return f"{kind} AS kind, {_group(c)}"


def _tail(sign: str) -> str:
    return f"0 AS orders, 0 AS revenue_cents, {sign} AS n"


def _months(d: _Dialect, source: str, m: str, where: str, sign: str, c: str = "c") -> list[str]:
    """Contributions (kinds 1, 2, 4) of the customer-month rows ``m`` of ``source`` (a
    ``FROM`` clause), grouped by the customer row ``c``, where ``where`` holds."""
    ended = f"coalesce({d.month_after(f'{m}.prev_last_at')}, '')"
    started = f"{m}.prev_last_at IS NULL OR {d.gap(f'{m}.prev_last_at', f'{m}.first_at')}"
    return [
        f"SELECT {_head(1, c)}, {m}.month AS k1, '' AS k2, {sign} * {m}.orders AS orders,"
        f" {sign} * {d.cents(f'{m}.revenue')} AS revenue_cents, {sign} AS n"
        f" FROM {source} WHERE {where}",
        f"SELECT {_head(2, c)}, {m}.month AS k1, {ended} AS k2, {_tail(sign)}"
        f" FROM {source} WHERE {where} AND ({started})",
        f"SELECT {_head(4, c)}, {d.month('tt.first_at')} AS k1, {m}.month AS k2, {_tail(sign)}"
        f" FROM {source} {d.lookup(_T, 'tt', 'customer_id', f'{m}.customer_id')}"
        f" WHERE {where}",
    ]


def _totals(
    d: _Dialect, source: str, t: str, where: str, sign: str, cohorts: bool, c: str = "c"
) -> list[str]:
    """Contributions of customer-total rows ``t`` (kind 3, and kind 4 when the cohort moves)."""
    parts = [
        f"SELECT {_head(3, c)}, {d.month_after(f'{t}.last_at')} AS k1, '' AS k2, {_tail(sign)}"
        f" FROM {source} WHERE {where}"
    ]
    if cohorts:
        parts.append(
            f"SELECT {_head(4, c)}, {d.month(f'{t}.first_at')} AS k1, mm.month AS k2,"
            f" {_tail(sign)}"
            f" FROM {source} {d.lookup(_M, 'mm', 'customer_id', f'{t}.customer_id')}"
            f" WHERE {where}"
        )
    return parts


def _summed(parts: list[str]) -> str:
    key = ", ".join(_KEY)
    body = " UNION ALL ".join(parts)
    return (
        f"SELECT {key}, sum(orders) AS orders, sum(revenue_cents) AS revenue_cents, sum(n) AS n"
        f" FROM ({body}) AS d GROUP BY {key}"
        " HAVING sum(n) <> 0 OR sum(orders) <> 0 OR sum(revenue_cents) <> 0"
    )


def _everything(d: _Dialect) -> str:
    """Contributions of every customer (the backfill)."""
    live = "c.merged_into_id IS NULL"
    return _summed(
        _months(d, f"{_M} m JOIN customers c ON c.id = m.customer_id", "m", live, "1")
        + _totals(d, f"{_T} t JOIN customers c ON c.id = t.customer_id", "t", live, "1", False)
    )


# --- SQLite ---------------------------------------------------------------------------------


def _sqlite_apply(parts: list[str]) -> str:
    """Add each part's contributions (rows of distinct keys) to the group rows: the missing
    keys are inserted at zero, then the rows updated (no grouping: a row trigger adds a few
    rows, and each statement stays a couple of index lookups)."""
    match = " AND ".join(f"{_G}.{k} = d.{k}" for k in _KEY)
    missing = " AND ".join(f"g.{k} = d.{k}" for k in _KEY)
    statements = []
    for part in parts:
        statements.append(
            f"INSERT INTO {_G} ({', '.join(_COLS)}) SELECT {', '.join(f'd.{k}' for k in _KEY)},"
            f" 0, 0, 0 FROM ({part}) AS d WHERE NOT EXISTS (SELECT 1 FROM {_G} g WHERE {missing});"
        )
        statements.append(
            f"UPDATE {_G} SET orders = {_G}.orders + d.orders,"
            f" revenue_cents = {_G}.revenue_cents + d.revenue_cents, n = {_G}.n + d.n"
            f" FROM ({part}) AS d WHERE {match};"
        )
    return " ".join(statements)


def _sqlite_row(d: _Dialect, table: str, row: str, sign: str) -> list[str]:
    """Contributions of the roll-up row ``row`` (``OLD``/``NEW``) of ``table``."""
    where = f"c.id = {row}.customer_id AND c.merged_into_id IS NULL"
    if table == _M:
        return _months(d, "customers c", row, where, sign)
    return _totals(d, "customers c", row, where, sign, True)


def _sqlite_customer(d: _Dialect, c: str, sign: str) -> list[str]:
    """Contributions of every roll-up row of the customer row ``c`` (``OLD``/``NEW``)."""
    live = f"{c}.merged_into_id IS NULL"
    return _months(d, f"{_M} m", "m", f"m.customer_id = {c}.id AND {live}", sign, c) + _totals(
        d, f"{_T} t", "t", f"t.customer_id = {c}.id AND {live}", sign, False, c
    )


def _sqlite_upgrade(d: _Dialect) -> None:
    for event, rows in (("INSERT", (("NEW", "1"),)), ("DELETE", (("OLD", "-1"),))):
        suffix = event[0].lower()
        for table, name in ((_M, "months"), (_T, "totals")):
            parts = [p for row, sign in rows for p in _sqlite_row(d, table, row, sign)]
            op.execute(
                f"CREATE TRIGGER report_group_{name}_a{suffix} AFTER {event} ON {table} BEGIN "
                + _sqlite_apply(parts)
                + " END"
            )
    # updates: a row moved to another key is taken out and put back whole; otherwise only
    # what changed is applied (an order added to a month changes its sums, seldom the rest)
    for table, name, key in ((_M, "months", ("customer_id", "month")), (_T, "totals", None)):
        key = key or ("customer_id",)
        moved = " OR ".join(f"OLD.{k} IS NOT NEW.{k}" for k in key)
        same = " AND ".join(f"OLD.{k} IS NEW.{k}" for k in key)
        parts = _sqlite_row(d, table, "OLD", "-1") + _sqlite_row(d, table, "NEW", "1")
        op.execute(
            f"CREATE TRIGGER report_group_{name}_au AFTER UPDATE ON {table} WHEN {moved} BEGIN "
            + _sqlite_apply(parts)
            + " END"
        )
        if table == _M:
            group = ", ".join(_group_key("c"))
            op.execute(
                f"CREATE TRIGGER report_group_months_au_sums AFTER UPDATE OF orders, revenue"
                f" ON {_M} WHEN {same} AND (OLD.orders IS NOT NEW.orders"
                " OR OLD.revenue IS NOT NEW.revenue) BEGIN"
                f" UPDATE {_G} SET orders = {_G}.orders + NEW.orders - OLD.orders,"
                f" revenue_cents = {_G}.revenue_cents + {d.cents('NEW.revenue')}"
                f" - {d.cents('OLD.revenue')}"
                " WHERE kind = 1 AND k1 = NEW.month AND k2 = ''"
                f" AND (owner_id, team_id, archived, unowned_lead) = (SELECT {group}"
                " FROM customers c WHERE c.id = NEW.customer_id AND c.merged_into_id IS NULL);"
                " END"
            )
            spell = [_sqlite_row(d, _M, "OLD", "-1")[1], _sqlite_row(d, _M, "NEW", "1")[1]]
            op.execute(
                f"CREATE TRIGGER report_group_months_au_spell AFTER UPDATE OF prev_last_at,"
                f" first_at ON {_M} WHEN {same} AND (OLD.prev_last_at IS NOT NEW.prev_last_at"
                " OR OLD.first_at IS NOT NEW.first_at) BEGIN " + _sqlite_apply(spell) + " END"
            )
        else:
            old_rows, new_rows = _sqlite_row(d, _T, "OLD", "-1"), _sqlite_row(d, _T, "NEW", "1")
            op.execute(
                f"CREATE TRIGGER report_group_totals_au_lapse AFTER UPDATE OF last_at ON {_T}"
                f" WHEN {same} AND OLD.last_at IS NOT NEW.last_at BEGIN "
                + _sqlite_apply([old_rows[0], new_rows[0]])
                + " END"
            )
            op.execute(
                f"CREATE TRIGGER report_group_totals_au_cohort AFTER UPDATE OF first_at ON {_T}"
                f" WHEN {same} AND {d.month('OLD.first_at')} IS NOT {d.month('NEW.first_at')}"
                " BEGIN " + _sqlite_apply([old_rows[1], new_rows[1]]) + " END"
            )
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _GROUP_COLUMNS)
    parts = _sqlite_customer(d, "OLD", "-1") + _sqlite_customer(d, "NEW", "1")
    op.execute(
        f"CREATE TRIGGER report_group_customers_au AFTER UPDATE OF {', '.join(_GROUP_COLUMNS)}"
        f" ON customers WHEN {changed} BEGIN " + _sqlite_apply(parts) + " END"
    )


# --- PostgreSQL -----------------------------------------------------------------------------


def _pg_function(name: str, parts: list[str], guard: str | None = None) -> str:
    """A trigger function appending the summed contributions. Static SQL: PL/pgSQL keeps its
    plan for the session (a single-row statement fires several of these functions, and
    planning them on every call tripled the cost of writing one order); the ``LATERAL``
    lookups keep that plan right for one row and for a million."""
    statement = (
        f"INSERT INTO {_G} ({', '.join(_COLS)}, delta) SELECT *, 1 FROM ({_summed(parts)}) d"
    )
    check = ""
    if guard is not None:  # nothing to do unless a row of ``guard`` exists
        check = f"""
    IF NOT EXISTS ({guard}) THEN
        RETURN NULL;
    END IF;"""
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN{check}
    {statement};
    RETURN NULL;
END $$
"""


def _pg_rows(d: _Dialect, table: str, rows: str, sign: str) -> list[str]:
    live = "c.merged_into_id IS NULL"
    if table == _M:
        source = f"{rows} m {d.lookup('customers', 'c', 'id', 'm.customer_id')}"
        return _months(d, source, "m", live, sign)
    source = f"{rows} t {d.lookup('customers', 'c', 'id', 't.customer_id')}"
    return _totals(d, source, "t", live, sign, True)


def _pg_moved(rows: str) -> str:
    """The ``rows`` (``o`` old, ``n`` new) of customers whose group or merged state changed."""
    old = ", ".join(_group_key("o"))
    new = ", ".join(_group_key("n"))
    return (
        f"SELECT {rows}.* FROM old_customers o JOIN new_customers n ON n.id = o.id"
        f" WHERE ({old}, o.merged_into_id IS NULL) IS DISTINCT FROM"
        f" ({new}, n.merged_into_id IS NULL)"
    )


def _pg_customers(d: _Dialect, rows: str, sign: str) -> list[str]:
    moved = _pg_moved(rows)
    live = "c.merged_into_id IS NULL"
    months = f"({moved}) c {d.lookup(_M, 'm', 'customer_id', 'c.id')}"
    totals = f"({moved}) c {d.lookup(_T, 't', 'customer_id', 'c.id')}"
    return _months(d, months, "m", live, sign) + _totals(d, totals, "t", live, sign, False)


def _postgres_upgrade(d: _Dialect) -> None:
    for table, name in ((_M, "months"), (_T, "totals")):
        functions = {
            "ai": (_pg_rows(d, table, "new_rows", "1"), "INSERT", "NEW TABLE AS new_rows"),
            "ad": (_pg_rows(d, table, "old_rows", "-1"), "DELETE", "OLD TABLE AS old_rows"),
            "au": (
                _pg_rows(d, table, "old_rows", "-1") + _pg_rows(d, table, "new_rows", "1"),
                "UPDATE",
                "OLD TABLE AS old_rows NEW TABLE AS new_rows",
            ),
        }
        for suffix, (parts, event, refs) in functions.items():
            function = f"report_group_{name}_{suffix}"
            rows = "new_rows" if suffix == "ai" else "old_rows"
            # an INSERT ... ON CONFLICT fires both the insert and the update triggers, one
            # of them usually with no rows: skip planning the statement then
            op.execute(_pg_function(function, parts, guard=f"SELECT 1 FROM {rows}"))
            op.execute(
                f"CREATE TRIGGER {function} AFTER {event} ON {table} REFERENCING {refs}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    parts = _pg_customers(d, "o", "-1") + _pg_customers(d, "n", "1")
    op.execute(_pg_function("report_group_customers_au", parts, guard=_pg_moved("n")))
    op.execute(
        "CREATE TRIGGER report_group_customers_au AFTER UPDATE ON customers"
        " REFERENCING OLD TABLE AS old_customers NEW TABLE AS new_customers"
        " FOR EACH STATEMENT EXECUTE FUNCTION report_group_customers_au()"
    )


def upgrade() -> None:
    d = _Dialect(op.get_bind().dialect.name)
    op.create_table(
        _G,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("archived", sa.SmallInteger(), nullable=False),
        sa.Column("unowned_lead", sa.SmallInteger(), nullable=False),
        sa.Column("k1", sa.String(length=7), nullable=False),
        sa.Column("k2", sa.String(length=7), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("delta", sa.SmallInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_group_counts")),
    )
    op.create_index("ix_report_group_counts_key", _G, list(_KEY), unique=False)
    op.create_index(
        "ix_report_group_counts_delta",
        _G,
        ["id"],
        unique=False,
        sqlite_where=sa.text("delta = 1"),
        postgresql_where=sa.text("delta = 1"),
    )
    op.create_index("ix_report_customer_orders_last_at", _T, ["last_at"], unique=False)
    op.execute(f"INSERT INTO {_G} ({', '.join(_COLS)}) {_everything(d)}")
    if d.sqlite:
        _sqlite_upgrade(d)
    else:
        _postgres_upgrade(d)
    op.execute(f"ANALYZE {_G}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    else:
        for trigger, table in _PG_TRIGGERS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
    op.drop_index("ix_report_customer_orders_last_at", table_name=_T)
    op.drop_index("ix_report_group_counts_delta", table_name=_G)
    op.drop_index("ix_report_group_counts_key", table_name=_G)
    op.drop_table(_G)
