"""PostgreSQL: the order roll-up functions plan their statements on every call (``EXECUTE``),
so a large ``COPY``, import or merge is not run with a plan cached for a few rows (a join of
two transition tables planned as a nested loop took 30 s for 50,000 orders); the months'
``prev_last_at`` is refreshed by the order functions themselves instead of triggers on the
roll-up. SQLite is unchanged.

Revision ID: 0033
Revises: 0032
"""

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

_LOCK = 60311
_T = "report_customer_months"
_MONTH = "to_char({t}.ordered_at AT TIME ZONE 'UTC', 'YYYY-MM')"


def _counted(alias: str) -> str:
    return f"{alias}.status NOT IN ('cancelled', 'canceled', 'refunded', 'void')"


def _refresh(customers: str) -> str:
    """Set ``prev_last_at`` of every month of ``customers`` (a subquery)."""
    return f"""
    UPDATE {_T} r SET prev_last_at = w.prev
    FROM (
        SELECT m.customer_id, m.month,
               lag(m.last_at) OVER (PARTITION BY m.customer_id ORDER BY m.month) AS prev
        FROM {_T} m WHERE m.customer_id IN ({customers})
    ) w
    WHERE r.customer_id = w.customer_id AND r.month = w.month
      AND r.prev_last_at IS DISTINCT FROM w.prev"""


def _quote(sql: str) -> str:
    return "$q$" + sql + "$q$"


def _inserted() -> str:
    customers = f"SELECT DISTINCT n.customer_id FROM new_orders n WHERE {_counted('n')}"
    totals = f"""
    INSERT INTO report_customer_orders AS r (customer_id, orders, revenue, first_at, last_at)
        SELECT n.customer_id, count(*), sum(n.total), min(n.ordered_at), max(n.ordered_at)
        FROM new_orders n WHERE {_counted("n")}
        GROUP BY 1 ORDER BY 1
    ON CONFLICT (customer_id) DO UPDATE SET
        orders = r.orders + excluded.orders, revenue = r.revenue + excluded.revenue,
        first_at = least(r.first_at, excluded.first_at),
        last_at = greatest(r.last_at, excluded.last_at)"""
    months = f"""
    INSERT INTO {_T} AS r (customer_id, month, orders, revenue, first_at, last_at)
        SELECT n.customer_id, {_MONTH.format(t="n")}, count(*), sum(n.total),
               min(n.ordered_at), max(n.ordered_at)
        FROM new_orders n WHERE {_counted("n")}
        GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (customer_id, month) DO UPDATE SET
        orders = r.orders + excluded.orders, revenue = r.revenue + excluded.revenue,
        first_at = least(r.first_at, excluded.first_at),
        last_at = greatest(r.last_at, excluded.last_at)"""
    return f"""
CREATE OR REPLACE FUNCTION report_rollup_orders_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({_LOCK});
    -- the customer's total row first: it serialises writers of one customer's orders
    EXECUTE {_quote(totals)};
    EXECUTE {_quote(months)};
    EXECUTE {_quote(_refresh(customers))};
    RETURN NULL;
END $$
"""


def _keys(op_name: str) -> str:
    if op_name == "DELETE":
        return (
            f"SELECT DISTINCT o.customer_id, {_MONTH.format(t='o')} AS month"
            f" FROM old_orders o WHERE {_counted('o')}"
        )
    changed = (
        "(o.customer_id, o.ordered_at, o.total, o.status)"
        " IS DISTINCT FROM (n.customer_id, n.ordered_at, n.total, n.status)"
    )
    return (
        f"SELECT o.customer_id, {_MONTH.format(t='o')} AS month"
        f" FROM old_orders o JOIN new_orders n ON n.id = o.id WHERE {changed} AND {_counted('o')}"
        f" UNION SELECT n.customer_id, {_MONTH.format(t='n')}"
        f" FROM old_orders o JOIN new_orders n ON n.id = o.id WHERE {changed} AND {_counted('n')}"
    )


def _changed(op_name: str) -> str:
    keys = _keys(op_name)
    start = "((k.month || '-01')::timestamp AT TIME ZONE 'UTC')"
    end = "(((k.month || '-01')::timestamp + interval '1 month') AT TIME ZONE 'UTC')"
    # the touched keys, kept for the statements of this call
    collect = "CREATE TEMP TABLE IF NOT EXISTS report_rollup_keys (customer_id int, month text)"
    fill = f"INSERT INTO report_rollup_keys {keys}"
    k = "SELECT k.customer_id, k.month FROM report_rollup_keys k"
    customers = "SELECT DISTINCT k.customer_id FROM report_rollup_keys k"
    statements = [
        f"DELETE FROM {_T} r USING ({k}) k WHERE r.customer_id = k.customer_id"
        " AND r.month = k.month",
        f"INSERT INTO {_T} (customer_id, month, orders, revenue, first_at, last_at)"
        " SELECT o.customer_id, k.month, count(*), sum(o.total), min(o.ordered_at),"
        " max(o.ordered_at)"
        f" FROM ({k}) k JOIN orders o ON o.customer_id = k.customer_id"
        f" AND o.ordered_at >= {start} AND o.ordered_at < {end}"
        f" WHERE {_counted('o')} GROUP BY o.customer_id, k.month",
        f"DELETE FROM report_customer_orders r WHERE r.customer_id IN ({customers})",
        "INSERT INTO report_customer_orders (customer_id, orders, revenue, first_at, last_at)"
        " SELECT m.customer_id, sum(m.orders), sum(m.revenue), min(m.first_at), max(m.last_at)"
        f" FROM {_T} m WHERE m.customer_id IN ({customers}) GROUP BY m.customer_id",
        _refresh(customers),
    ]
    body = "\n".join(f"    EXECUTE {_quote(s)};" for s in statements)
    return f"""
CREATE OR REPLACE FUNCTION report_rollup_orders_{op_name.lower()}d() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched bigint;
BEGIN
    EXECUTE {_quote(collect)};
    EXECUTE 'TRUNCATE report_rollup_keys';
    EXECUTE {_quote(fill)};
    GET DIAGNOSTICS touched = ROW_COUNT;
    IF touched = 0 THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock({_LOCK});
    EXECUTE 'ANALYZE report_rollup_keys';
{body}
    EXECUTE 'TRUNCATE report_rollup_keys';
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for trigger in ("report_months_prev_ai", "report_months_prev_au", "report_months_prev_ad"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {_T}")
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP FUNCTION IF EXISTS report_rollup_months_{name}()")
    op.execute(_inserted())
    op.execute(_changed("DELETE"))
    op.execute(_changed("UPDATE"))


def downgrade() -> None:
    """The functions of this revision keep the roll-ups exact on their own; nothing to undo."""
