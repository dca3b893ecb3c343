"""Order roll-ups for the reports: counted orders per customer and month, and per customer,
kept exact by triggers on ``orders`` (so every writer keeps them in step) and filled from the
orders already stored.

SQLite: row triggers (an insert adds to the totals; a delete or a change recomputes the touched
customer-month from its orders). PostgreSQL: statement triggers over transition tables (one
set-based statement per ``INSERT``/``COPY``); changes and deletes take an exclusive advisory
lock that inserts take shared, so a recomputation never misses an order being inserted.

Revision ID: 0031
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0002"
branch_labels = None
depends_on = None

#: Orders in these states bring no revenue (crm_core.reports._common.EXCLUDED_ORDER_STATUSES
#: when this revision was written).
_COUNTED = "status NOT IN ('cancelled', 'canceled', 'refunded', 'void')"
_LOCK = 60311  # advisory lock key of the order roll-ups (PostgreSQL)

_SQLITE_TRIGGERS = ("report_orders_ai", "report_orders_ad", "report_orders_au")


def _counted(alias: str) -> str:
    return _COUNTED.replace("status", f"{alias}.status")


def _create_tables() -> None:
    op.create_table(
        "report_customer_months",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "month", name=op.f("pk_report_customer_months")),
    )
    op.create_index(
        "ix_report_customer_months_month",
        "report_customer_months",
        ["month", "customer_id"],
        unique=False,
    )
    op.create_table(
        "report_customer_orders",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("revenue", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_report_customer_orders")),
    )


# --- SQLite ---------------------------------------------------------------------------------


def _sqlite_recompute(rows: tuple[str, ...]) -> str:
    """Statements recomputing the customer-months of the trigger rows ``rows`` (``OLD``,
    ``NEW``) from their orders, and those customers' totals from their months."""

    def months(column: str) -> str:
        return " OR ".join(
            f"(customer_id = {r}.customer_id AND {column} >= substr({r}.ordered_at, 1, 7) || '-01'"
            f" AND {column} < substr({r}.ordered_at, 1, 7) || '-32')"
            for r in rows
        )

    customers = ", ".join(f"{r}.customer_id" for r in rows)
    return (
        f"DELETE FROM report_customer_months WHERE {months('first_at')};"
        " INSERT INTO report_customer_months"
        " (customer_id, month, orders, revenue, first_at, last_at)"
        " SELECT customer_id, substr(ordered_at, 1, 7), count(*), sum(total),"
        " min(ordered_at), max(ordered_at)"
        f" FROM orders WHERE {_COUNTED} AND ({months('ordered_at')})"
        " GROUP BY customer_id, substr(ordered_at, 1, 7);"
        f" DELETE FROM report_customer_orders WHERE customer_id IN ({customers});"
        " INSERT INTO report_customer_orders (customer_id, orders, revenue, first_at, last_at)"
        " SELECT customer_id, sum(orders), sum(revenue), min(first_at), max(last_at)"
        f" FROM report_customer_months WHERE customer_id IN ({customers})"
        " GROUP BY customer_id;"
    )


def _sqlite_upgrade() -> None:
    op.execute(
        f"CREATE TRIGGER report_orders_ai AFTER INSERT ON orders WHEN {_counted('NEW')} BEGIN"
        " INSERT INTO report_customer_months"
        " (customer_id, month, orders, revenue, first_at, last_at)"
        " VALUES (NEW.customer_id, substr(NEW.ordered_at, 1, 7), 1, NEW.total,"
        " NEW.ordered_at, NEW.ordered_at)"
        " ON CONFLICT (customer_id, month) DO UPDATE SET orders = orders + 1,"
        " revenue = revenue + excluded.revenue, first_at = min(first_at, excluded.first_at),"
        " last_at = max(last_at, excluded.last_at);"
        " INSERT INTO report_customer_orders (customer_id, orders, revenue, first_at, last_at)"
        " VALUES (NEW.customer_id, 1, NEW.total, NEW.ordered_at, NEW.ordered_at)"
        " ON CONFLICT (customer_id) DO UPDATE SET orders = orders + 1,"
        " revenue = revenue + excluded.revenue, first_at = min(first_at, excluded.first_at),"
        " last_at = max(last_at, excluded.last_at);"
        " END"
    )
    op.execute(
        f"CREATE TRIGGER report_orders_ad AFTER DELETE ON orders WHEN {_counted('OLD')} BEGIN "
        + _sqlite_recompute(("OLD",))
        + " END"
    )
    changed = " OR ".join(
        f"OLD.{c} IS NOT NEW.{c}" for c in ("customer_id", "ordered_at", "total", "status")
    )
    op.execute(
        "CREATE TRIGGER report_orders_au AFTER UPDATE OF customer_id, ordered_at, total, status"
        f" ON orders WHEN ({changed}) AND ({_counted('OLD')} OR {_counted('NEW')}) BEGIN "
        + _sqlite_recompute(("OLD", "NEW"))
        + " END"
    )


# --- PostgreSQL -----------------------------------------------------------------------------

_PG_MONTH = "to_char({t}.ordered_at AT TIME ZONE 'UTC', 'YYYY-MM')"


def _pg_keys(op_name: str) -> str:
    """The customer-months touched by a ``DELETE`` or ``UPDATE`` statement (transition tables
    ``old_orders`` / ``new_orders``)."""
    if op_name == "DELETE":
        return (
            f"SELECT DISTINCT o.customer_id, {_PG_MONTH.format(t='o')} AS month"
            f" FROM old_orders o WHERE {_counted('o')}"
        )
    changed = (
        "(o.customer_id, o.ordered_at, o.total, o.status)"
        " IS DISTINCT FROM (n.customer_id, n.ordered_at, n.total, n.status)"
    )
    return (
        f"SELECT o.customer_id, {_PG_MONTH.format(t='o')} AS month"
        f" FROM old_orders o JOIN new_orders n ON n.id = o.id WHERE {changed} AND {_counted('o')}"
        f" UNION SELECT n.customer_id, {_PG_MONTH.format(t='n')}"
        f" FROM old_orders o JOIN new_orders n ON n.id = o.id WHERE {changed} AND {_counted('n')}"
    )


def _pg_changed_function(op_name: str) -> str:
    keys = _pg_keys(op_name)
    start = "((k.month || '-01')::timestamp AT TIME ZONE 'UTC')"
    end = "(((k.month || '-01')::timestamp + interval '1 month') AT TIME ZONE 'UTC')"
    return f"""
CREATE FUNCTION report_rollup_orders_{op_name.lower()}d() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS ({keys}) THEN
        RETURN NULL;
    END IF;
    PERFORM pg_advisory_xact_lock({_LOCK});
    DELETE FROM report_customer_months r USING ({keys}) k
        WHERE r.customer_id = k.customer_id AND r.month = k.month;
    INSERT INTO report_customer_months (customer_id, month, orders, revenue, first_at, last_at)
        SELECT o.customer_id, k.month, count(*), sum(o.total), min(o.ordered_at),
               max(o.ordered_at)
        FROM ({keys}) k
        JOIN orders o ON o.customer_id = k.customer_id
            AND o.ordered_at >= {start} AND o.ordered_at < {end}
        WHERE {_counted("o")}
        GROUP BY o.customer_id, k.month;
    DELETE FROM report_customer_orders r
        WHERE r.customer_id IN (SELECT k.customer_id FROM ({keys}) k);
    INSERT INTO report_customer_orders (customer_id, orders, revenue, first_at, last_at)
        SELECT m.customer_id, sum(m.orders), sum(m.revenue), min(m.first_at), max(m.last_at)
        FROM report_customer_months m
        WHERE m.customer_id IN (SELECT k.customer_id FROM ({keys}) k)
        GROUP BY m.customer_id;
    RETURN NULL;
END $$
"""


_PG_INSERTED = f"""
CREATE FUNCTION report_rollup_orders_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({_LOCK});
    INSERT INTO report_customer_months AS r
        (customer_id, month, orders, revenue, first_at, last_at)
        SELECT n.customer_id, {_PG_MONTH.format(t="n")}, count(*), sum(n.total),
               min(n.ordered_at), max(n.ordered_at)
        FROM new_orders n WHERE {_counted("n")}
        GROUP BY 1, 2
    ON CONFLICT (customer_id, month) DO UPDATE SET
        orders = r.orders + excluded.orders, revenue = r.revenue + excluded.revenue,
        first_at = least(r.first_at, excluded.first_at),
        last_at = greatest(r.last_at, excluded.last_at);
    INSERT INTO report_customer_orders AS r (customer_id, orders, revenue, first_at, last_at)
        SELECT n.customer_id, count(*), sum(n.total), min(n.ordered_at), max(n.ordered_at)
        FROM new_orders n WHERE {_counted("n")}
        GROUP BY 1
    ON CONFLICT (customer_id) DO UPDATE SET
        orders = r.orders + excluded.orders, revenue = r.revenue + excluded.revenue,
        first_at = least(r.first_at, excluded.first_at),
        last_at = greatest(r.last_at, excluded.last_at);
    RETURN NULL;
END $$
"""


def _postgres_upgrade() -> None:
    op.execute(_PG_INSERTED)
    op.execute(_pg_changed_function("DELETE"))
    op.execute(_pg_changed_function("UPDATE"))
    op.execute(
        "CREATE TRIGGER report_orders_ai AFTER INSERT ON orders"
        " REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT"
        " EXECUTE FUNCTION report_rollup_orders_inserted()"
    )
    op.execute(
        "CREATE TRIGGER report_orders_ad AFTER DELETE ON orders"
        " REFERENCING OLD TABLE AS old_orders FOR EACH STATEMENT"
        " EXECUTE FUNCTION report_rollup_orders_deleted()"
    )
    op.execute(
        "CREATE TRIGGER report_orders_au AFTER UPDATE ON orders"
        " REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders FOR EACH STATEMENT"
        " EXECUTE FUNCTION report_rollup_orders_updated()"
    )


def _backfill(dialect: str) -> None:
    month = "substr(ordered_at, 1, 7)" if dialect == "sqlite" else _PG_MONTH.format(t="orders")
    op.execute(
        "INSERT INTO report_customer_months"
        " (customer_id, month, orders, revenue, first_at, last_at)"
        f" SELECT customer_id, {month}, count(*), sum(total), min(ordered_at), max(ordered_at)"
        f" FROM orders WHERE {_COUNTED} GROUP BY customer_id, {month}"
    )
    op.execute(
        "INSERT INTO report_customer_orders (customer_id, orders, revenue, first_at, last_at)"
        " SELECT customer_id, sum(orders), sum(revenue), min(first_at), max(last_at)"
        " FROM report_customer_months GROUP BY customer_id"
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    _create_tables()
    _backfill(dialect)
    if dialect == "sqlite":
        _sqlite_upgrade()
    else:
        _postgres_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON orders")
        for name in ("inserted", "deleted", "updated"):
            op.execute(f"DROP FUNCTION IF EXISTS report_rollup_orders_{name}()")
    op.drop_table("report_customer_orders")
    op.drop_index("ix_report_customer_months_month", table_name="report_customer_months")
    op.drop_table("report_customer_months")
