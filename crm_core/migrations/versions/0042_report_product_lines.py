"""Revenue by product line without reading the orders: counted orders per customer, month and
product line (``report_customer_lines``, kept by triggers on ``orders``), and the same summed
per group of customers (``report_group_lines``: owner, team, archived, unowned lead, as the
group counts of revision 0040), with ``n`` the distinct buyers, kept by triggers on the
customer-line roll-up and on the customers' group columns; merged customers count nowhere.

``line`` holds the product line as ``'=' || product_line`` and ``''`` for none, so a missing
product line and an empty one stay apart in a key that cannot be ``NULL``.

SQLite: row triggers (an insert adds; a delete or a change recomputes the touched
customer-month-lines from their orders; the group rows are added to in place). PostgreSQL:
statement triggers over transition tables; order changes and deletes take the exclusive
advisory lock of the order roll-ups (inserts take it shared), and the group rows are appended
as signed deltas (``delta = 1``) that readers fold.

Revision ID: 0042
Revises: 0040
"""

import sqlalchemy as sa
from alembic import op

revision = "0042"
down_revision = "0040"
branch_labels = None
depends_on = None

_L = "report_customer_lines"
_G = "report_group_lines"
_LOCK = 60311  # the advisory lock of the order roll-ups (revision 0031)
_KEY = ("owner_id", "team_id", "archived", "unowned_lead", "month", "line")
_COLS = (*_KEY, "orders", "revenue_cents", "n")
_ORDER_COLUMNS = ("customer_id", "ordered_at", "total", "status", "product_line")
_GROUP_COLUMNS = ("owner_id", "team_id", "archived_at", "lifecycle_stage", "merged_into_id")
_TRIGGERS = {
    "report_lines_orders_ai": "orders",
    "report_lines_orders_ad": "orders",
    "report_lines_orders_au": "orders",
    "report_group_lines_ai": _L,
    "report_group_lines_ad": _L,
    "report_group_lines_au": _L,
    "report_group_lines_customers_au": "customers",
    "report_group_lines_au_sums": _L,  # SQLite only
}


def _counted(alias: str) -> str:
    return f"{alias}.status NOT IN ('cancelled', 'canceled', 'refunded', 'void')"


def _line(alias: str) -> str:
    return f"coalesce('=' || {alias}.product_line, '')"


class _Dialect:
    def __init__(self, name: str) -> None:
        self.sqlite = name == "sqlite"

    def month(self, column: str) -> str:
        if self.sqlite:
            return f"substr({column}, 1, 7)"
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM')"

    def cents(self, column: str) -> str:
        if self.sqlite:
            return f"CAST(round({column} * 100) AS INTEGER)"
        return f"CAST(round({column} * 100) AS BIGINT)"

    def lookup(self, table: str, alias: str, key: str, value: str) -> str:
        """``JOIN`` of the ``table`` rows whose ``key`` equals ``value``; on PostgreSQL a
        ``LATERAL`` index lookup per row (as in revision 0040: transition tables have no
        statistics, and a cached plan must suit one row and a million)."""
        if self.sqlite:
            return f"JOIN {table} {alias} ON {alias}.{key} = {value}"
        return (
            f"CROSS JOIN LATERAL (SELECT * FROM {table} x WHERE x.{key} = {value} OFFSET 0) {alias}"
        )


def _group_key(c: str) -> list[str]:
    """The group columns of the customer row ``c`` (as revision 0040 groups)."""
    return [
        f"coalesce({c}.owner_id, 0)",
        f"coalesce({c}.team_id, 0)",
        f"CASE WHEN {c}.archived_at IS NULL THEN 0 ELSE 1 END",
        f"CASE WHEN {c}.owner_id IS NULL AND {c}.lifecycle_stage = 'lead' THEN 1 ELSE 0 END",
    ]


def _contribution(d: _Dialect, source: str, r: str, where: str, sign: str, c: str = "c") -> str:
    """The group rows' changes for the customer-line rows ``r`` of ``source`` grouped by the
    customer row ``c``: ``sign`` times their orders, cents and one buyer each."""
    names = ("owner_id", "team_id", "archived", "unowned_lead")
    group = ", ".join(f"{e} AS {n}" for e, n in zip(_group_key(c), names, strict=True))
    return (
        f"SELECT {group}, {r}.month AS month, {r}.line AS line, {sign} * {r}.orders AS orders,"
        f" {sign} * {d.cents(f'{r}.revenue')} AS revenue_cents, {sign} AS n"
        f" FROM {source} WHERE {where}"
    )


def _summed(parts: list[str]) -> str:
    key = ", ".join(_KEY)
    return (
        f"SELECT {key}, sum(orders) AS orders, sum(revenue_cents) AS revenue_cents, sum(n) AS n"
        f" FROM ({' UNION ALL '.join(parts)}) AS d GROUP BY {key}"
        " HAVING sum(n) <> 0 OR sum(orders) <> 0 OR sum(revenue_cents) <> 0"
    )


# --- SQLite ---------------------------------------------------------------------------------


def _sqlite_recompute(rows: tuple[str, ...]) -> str:
    """Recompute the customer-month-lines of the trigger rows ``rows`` from their orders."""

    def keys(time: str, line: str) -> str:
        return " OR ".join(
            f"(customer_id = {r}.customer_id AND {time} >= substr({r}.ordered_at, 1, 7) || '-01'"
            f" AND {time} < substr({r}.ordered_at, 1, 7) || '-32' AND {line})"
            for r in rows
        )

    stored = " OR ".join(
        f"(customer_id = {r}.customer_id AND month = substr({r}.ordered_at, 1, 7)"
        f" AND line = {_line(r)})"
        for r in rows
    )
    touched = " OR ".join(
        f"(customer_id = {r}.customer_id AND ordered_at >= substr({r}.ordered_at, 1, 7) || '-01'"
        f" AND ordered_at < substr({r}.ordered_at, 1, 7) || '-32'"
        f" AND product_line IS {r}.product_line)"
        for r in rows
    )
    return (
        f"DELETE FROM {_L} WHERE {stored};"
        f" INSERT INTO {_L} (customer_id, month, line, orders, revenue)"
        f" SELECT customer_id, substr(ordered_at, 1, 7), {_line('orders')}, count(*), sum(total)"
        f" FROM orders WHERE {_counted('orders')} AND ({touched})"
        " GROUP BY 1, 2, 3;"
    )


def _sqlite_apply(d: _Dialect, parts: list[str]) -> str:
    """Add each part's rows (distinct keys) to the group rows: missing keys inserted at zero,
    then the rows updated (as revision 0040 does)."""
    match = " AND ".join(f"{_G}.{k} = d.{k}" for k in _KEY)
    missing = " AND ".join(f"g.{k} = d.{k}" for k in _KEY)
    out = []
    for part in parts:
        out.append(
            f"INSERT INTO {_G} ({', '.join(_COLS)}) SELECT {', '.join(f'd.{k}' for k in _KEY)},"
            f" 0, 0, 0 FROM ({part}) AS d WHERE NOT EXISTS (SELECT 1 FROM {_G} g WHERE {missing});"
        )
        out.append(
            f"UPDATE {_G} SET orders = {_G}.orders + d.orders,"
            f" revenue_cents = {_G}.revenue_cents + d.revenue_cents, n = {_G}.n + d.n"
            f" FROM ({part}) AS d WHERE {match};"
        )
    return " ".join(out)


def _sqlite_upgrade(d: _Dialect) -> None:
    op.execute(
        f"CREATE TRIGGER report_lines_orders_ai AFTER INSERT ON orders WHEN {_counted('NEW')}"
        f" BEGIN INSERT INTO {_L} (customer_id, month, line, orders, revenue)"
        f" VALUES (NEW.customer_id, substr(NEW.ordered_at, 1, 7), {_line('NEW')}, 1, NEW.total)"
        " ON CONFLICT (customer_id, month, line) DO UPDATE SET orders = orders + 1,"
        " revenue = revenue + excluded.revenue; END"
    )
    op.execute(
        f"CREATE TRIGGER report_lines_orders_ad AFTER DELETE ON orders WHEN {_counted('OLD')}"
        f" BEGIN {_sqlite_recompute(('OLD',))} END"
    )
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in _ORDER_COLUMNS)
    op.execute(
        f"CREATE TRIGGER report_lines_orders_au AFTER UPDATE OF {', '.join(_ORDER_COLUMNS)}"
        f" ON orders WHEN ({changed}) AND ({_counted('OLD')} OR {_counted('NEW')})"
        f" BEGIN {_sqlite_recompute(('OLD', 'NEW'))} END"
    )

    def row(r: str, sign: str) -> str:
        where = f"c.id = {r}.customer_id AND c.merged_into_id IS NULL"
        return _contribution(d, "customers c", r, where, sign)

    op.execute(
        f"CREATE TRIGGER report_group_lines_ai AFTER INSERT ON {_L} BEGIN "
        + _sqlite_apply(d, [row("NEW", "1")])
        + " END"
    )
    op.execute(
        f"CREATE TRIGGER report_group_lines_ad AFTER DELETE ON {_L} BEGIN "
        + _sqlite_apply(d, [row("OLD", "-1")])
        + " END"
    )
    # an upsert adds to the row: only its sums change; a row whose key changed (none of the
    # triggers above does that) is taken out and put back whole
    group = ", ".join(_group_key("c"))
    key = ("customer_id", "month", "line")
    same = " AND ".join(f"OLD.{k} IS NEW.{k}" for k in key)
    op.execute(
        f"CREATE TRIGGER report_group_lines_au AFTER UPDATE ON {_L} WHEN NOT ({same}) BEGIN "
        + _sqlite_apply(d, [row("OLD", "-1"), row("NEW", "1")])
        + " END"
    )
    op.execute(
        f"CREATE TRIGGER report_group_lines_au_sums AFTER UPDATE OF orders, revenue ON {_L}"
        f" WHEN {same} AND (OLD.orders IS NOT NEW.orders OR OLD.revenue IS NOT NEW.revenue)"
        f" BEGIN UPDATE {_G} SET orders = {_G}.orders + NEW.orders - OLD.orders,"
        f" revenue_cents = {_G}.revenue_cents + {d.cents('NEW.revenue')}"
        f" - {d.cents('OLD.revenue')}"
        " WHERE month = NEW.month AND line = NEW.line"
        f" AND (owner_id, team_id, archived, unowned_lead) = (SELECT {group}"
        " FROM customers c WHERE c.id = NEW.customer_id AND c.merged_into_id IS NULL); END"
    )
    moved = " OR ".join(
        f"({o}) IS NOT ({n})" for o, n in zip(_group_key("OLD"), _group_key("NEW"), strict=True)
    )
    moved += " OR (OLD.merged_into_id IS NULL) IS NOT (NEW.merged_into_id IS NULL)"

    def customer(c: str, sign: str) -> str:
        where = f"l.customer_id = {c}.id AND {c}.merged_into_id IS NULL"
        return _contribution(d, f"{_L} l", "l", where, sign, c)

    op.execute(
        "CREATE TRIGGER report_group_lines_customers_au AFTER UPDATE OF"
        f" {', '.join(_GROUP_COLUMNS)} ON customers WHEN {moved} BEGIN "
        + _sqlite_apply(d, [customer("OLD", "-1"), customer("NEW", "1")])
        + " END"
    )


# --- PostgreSQL -----------------------------------------------------------------------------


def _quote(sql: str) -> str:
    return "$q$" + sql + "$q$"


def _pg_keys(d: _Dialect, op_name: str) -> str:
    """The customer-month-lines touched by a ``DELETE`` or ``UPDATE`` of orders."""
    if op_name == "DELETE":
        return (
            f"SELECT DISTINCT o.customer_id, {d.month('o.ordered_at')} AS month,"
            f" {_line('o')} AS line FROM old_orders o WHERE {_counted('o')}"
        )
    old = ", ".join(f"o.{c}" for c in _ORDER_COLUMNS)
    new = ", ".join(f"n.{c}" for c in _ORDER_COLUMNS)
    changed = f"({old}) IS DISTINCT FROM ({new})"
    return (
        f"SELECT o.customer_id, {d.month('o.ordered_at')} AS month, {_line('o')} AS line"
        f" FROM old_orders o JOIN new_orders n ON n.id = o.id WHERE {changed} AND {_counted('o')}"
        f" UNION SELECT n.customer_id, {d.month('n.ordered_at')}, {_line('n')}"
        f" FROM old_orders o JOIN new_orders n ON n.id = o.id WHERE {changed} AND {_counted('n')}"
    )


def _pg_orders_inserted(d: _Dialect) -> str:
    return f"""
CREATE FUNCTION report_lines_orders_ai() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_orders n WHERE {_counted("n")}) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock_shared({_LOCK});
    INSERT INTO {_L} AS r (customer_id, month, line, orders, revenue)
        SELECT n.customer_id, {d.month("n.ordered_at")}, {_line("n")}, count(*), sum(n.total)
        FROM new_orders n WHERE {_counted("n")}
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (customer_id, month, line) DO UPDATE SET
        orders = r.orders + excluded.orders, revenue = r.revenue + excluded.revenue;
    RETURN NULL;
END $$
"""


def _pg_orders_changed(d: _Dialect, op_name: str) -> str:
    """Recompute the touched customer-month-lines from their orders. Planned on every call
    (``EXECUTE``): the keys of an update join two transition tables, and a plan cached for a
    few rows is a nested loop for many (revision 0033)."""
    keys = _pg_keys(d, op_name)
    start = "((k.month || '-01')::timestamp AT TIME ZONE 'UTC')"
    end = "(((k.month || '-01')::timestamp + interval '1 month') AT TIME ZONE 'UTC')"
    recount = (
        "SELECT count(*) AS orders, sum(o.total) AS revenue FROM orders o"
        f" WHERE o.customer_id = k.customer_id AND o.ordered_at >= {start}"
        f" AND o.ordered_at < {end} AND {_line('o')} = k.line AND {_counted('o')}"
    )
    delete = (
        f"DELETE FROM {_L} r USING ({keys}) k WHERE r.customer_id = k.customer_id"
        " AND r.month = k.month AND r.line = k.line"
    )
    insert = (
        f"INSERT INTO {_L} (customer_id, month, line, orders, revenue)"
        " SELECT k.customer_id, k.month, k.line, s.orders, s.revenue"
        f" FROM ({keys}) k CROSS JOIN LATERAL ({recount}) s WHERE s.orders > 0"
        " ORDER BY 1, 2, 3"
    )
    return f"""
CREATE FUNCTION report_lines_orders_a{op_name[0].lower()}() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched boolean;
BEGIN
    EXECUTE {_quote(f"SELECT EXISTS ({keys})")} INTO touched;
    IF NOT touched THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock({_LOCK});
    EXECUTE {_quote(delete)};
    EXECUTE {_quote(insert)};
    RETURN NULL;
END $$
"""


def _pg_group_function(name: str, parts: list[str], guard: str) -> str:
    """Append the summed contributions as delta rows (static SQL, as revision 0040)."""
    return f"""
CREATE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS ({guard}) THEN
        RETURN NULL;
    END IF;
    INSERT INTO {_G} ({", ".join(_COLS)}, delta) SELECT *, 1 FROM ({_summed(parts)}) d;
    RETURN NULL;
END $$
"""


def _postgres_upgrade(d: _Dialect) -> None:
    op.execute(_pg_orders_inserted(d))
    op.execute(_pg_orders_changed(d, "DELETE"))
    op.execute(_pg_orders_changed(d, "UPDATE"))
    refs = {
        "INSERT": "NEW TABLE AS new_orders",
        "DELETE": "OLD TABLE AS old_orders",
        "UPDATE": "OLD TABLE AS old_orders NEW TABLE AS new_orders",
    }
    for event, ref in refs.items():
        name = f"report_lines_orders_a{event[0].lower()}"
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON orders REFERENCING {ref}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )

    def rows(table: str, sign: str) -> str:
        source = f"{table} r {d.lookup('customers', 'c', 'id', 'r.customer_id')}"
        return _contribution(d, source, "r", "c.merged_into_id IS NULL", sign)

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
        name = f"report_group_lines_{suffix}"
        op.execute(_pg_group_function(name, parts, f"SELECT 1 FROM {guard}"))
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {_L} REFERENCING {ref}"
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
        source = f"({moved(rows)}) c {d.lookup(_L, 'l', 'customer_id', 'c.id')}"
        return _contribution(d, source, "l", "c.merged_into_id IS NULL", sign)

    name = "report_group_lines_customers_au"
    op.execute(_pg_group_function(name, [customers("o", "-1"), customers("n", "1")], moved("n")))
    op.execute(
        f"CREATE TRIGGER {name} AFTER UPDATE ON customers"
        " REFERENCING OLD TABLE AS old_customers NEW TABLE AS new_customers"
        f" FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
    )


def upgrade() -> None:
    d = _Dialect(op.get_bind().dialect.name)
    op.create_table(
        _L,
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("line", sa.String(length=81), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "month", "line", name=op.f(f"pk_{_L}")),
    )
    op.create_table(
        _G,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("archived", sa.SmallInteger(), nullable=False),
        sa.Column("unowned_lead", sa.SmallInteger(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("line", sa.String(length=81), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
        sa.Column("revenue_cents", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.Column("delta", sa.SmallInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{_G}")),
    )
    op.create_index("ix_report_group_lines_key", _G, list(_KEY), unique=False)
    op.create_index(
        "ix_report_group_lines_delta",
        _G,
        ["id"],
        unique=False,
        sqlite_where=sa.text("delta = 1"),
        postgresql_where=sa.text("delta = 1"),
    )
    month = d.month("ordered_at")
    op.execute(
        f"INSERT INTO {_L} (customer_id, month, line, orders, revenue)"
        f" SELECT customer_id, {month}, {_line('orders')}, count(*), sum(total) FROM orders"
        f" WHERE {_counted('orders')} GROUP BY 1, 2, 3"
    )
    live = "c.merged_into_id IS NULL"
    everything = _contribution(
        d, f"{_L} l JOIN customers c ON c.id = l.customer_id", "l", live, "1"
    )
    op.execute(f"INSERT INTO {_G} ({', '.join(_COLS)}) {_summed([everything])}")
    if d.sqlite:
        _sqlite_upgrade(d)
    else:
        _postgres_upgrade(d)
    op.execute(f"ANALYZE {_L}")
    op.execute(f"ANALYZE {_G}")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for trigger, table in _TRIGGERS.items():
        if sqlite:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {trigger}()")
    op.drop_index("ix_report_group_lines_delta", table_name=_G)
    op.drop_index("ix_report_group_lines_key", table_name=_G)
    op.drop_table(_G)
    op.drop_table(_L)
