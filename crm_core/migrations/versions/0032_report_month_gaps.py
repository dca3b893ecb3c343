"""The customer-month roll-up keeps the time of the customer's last order before the month
(``prev_last_at``), so churn reads gaps between orders without window functions. Kept by
triggers on the roll-up itself, whichever way its rows change.

PostgreSQL: the order-insert function now locks a customer's total row before touching the
customer's months, so two transactions writing orders of one customer take turns.

Revision ID: 0032
Revises: 0031
"""

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

_COUNTED = "status NOT IN ('cancelled', 'canceled', 'refunded', 'void')"
_LOCK = 60311
_T = "report_customer_months"
_SQLITE_TRIGGERS = ("report_months_prev_ai", "report_months_prev_au", "report_months_prev_ad")


def _prev_before(customer: str, month: str) -> str:
    return f"(SELECT max(p.last_at) FROM {_T} p WHERE p.customer_id = {customer} AND p.month < {month})"


def _next_month(customer: str, month: str) -> str:
    return (
        f"(SELECT min(q.month) FROM {_T} q WHERE q.customer_id = {customer} AND q.month > {month})"
    )


def _sqlite_upgrade() -> None:
    op.execute(
        f"CREATE TRIGGER report_months_prev_ai AFTER INSERT ON {_T} BEGIN"
        f" UPDATE {_T} SET prev_last_at = {_prev_before('NEW.customer_id', 'NEW.month')}"
        " WHERE customer_id = NEW.customer_id AND month = NEW.month;"
        f" UPDATE {_T} SET prev_last_at = NEW.last_at WHERE customer_id = NEW.customer_id"
        f" AND month = {_next_month('NEW.customer_id', 'NEW.month')};"
        " END"
    )
    op.execute(
        f"CREATE TRIGGER report_months_prev_au AFTER UPDATE OF last_at ON {_T}"
        " WHEN OLD.last_at IS NOT NEW.last_at BEGIN"
        f" UPDATE {_T} SET prev_last_at = NEW.last_at WHERE customer_id = NEW.customer_id"
        f" AND month = {_next_month('NEW.customer_id', 'NEW.month')};"
        " END"
    )
    op.execute(
        f"CREATE TRIGGER report_months_prev_ad AFTER DELETE ON {_T} BEGIN"
        f" UPDATE {_T} SET prev_last_at = {_prev_before('OLD.customer_id', 'OLD.month')}"
        " WHERE customer_id = OLD.customer_id"
        f" AND month = {_next_month('OLD.customer_id', 'OLD.month')};"
        " END"
    )


def _refresh(customers: str) -> str:
    """PostgreSQL: set ``prev_last_at`` of every month of ``customers`` (a subquery)."""
    return f"""
    UPDATE {_T} r SET prev_last_at = w.prev
    FROM (
        SELECT m.customer_id, m.month,
               lag(m.last_at) OVER (PARTITION BY m.customer_id ORDER BY m.month) AS prev
        FROM {_T} m WHERE m.customer_id IN ({customers})
    ) w
    WHERE r.customer_id = w.customer_id AND r.month = w.month
      AND r.prev_last_at IS DISTINCT FROM w.prev;
"""


def _pg_refresh_function(op_name: str) -> str:
    if op_name == "INSERT":
        customers = "SELECT DISTINCT n.customer_id FROM new_months n"
    elif op_name == "DELETE":
        customers = "SELECT DISTINCT o.customer_id FROM old_months o"
    else:
        customers = (
            "SELECT DISTINCT n.customer_id FROM old_months o JOIN new_months n"
            " ON n.customer_id = o.customer_id AND n.month = o.month"
            " WHERE n.last_at IS DISTINCT FROM o.last_at"
        )
    return f"""
CREATE FUNCTION report_rollup_months_{op_name.lower()}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS ({customers}) THEN
        RETURN NULL;
    END IF;
    {_refresh(customers)}
    RETURN NULL;
END $$
"""


_PG_MONTH = "to_char(n.ordered_at AT TIME ZONE 'UTC', 'YYYY-MM')"
_COUNTED_N = _COUNTED.replace("status", "n.status")

_PG_ORDERS_INSERTED = f"""
CREATE OR REPLACE FUNCTION report_rollup_orders_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({_LOCK});
    -- the customer's total row first: it serialises writers of one customer's orders
    INSERT INTO report_customer_orders AS r (customer_id, orders, revenue, first_at, last_at)
        SELECT n.customer_id, count(*), sum(n.total), min(n.ordered_at), max(n.ordered_at)
        FROM new_orders n WHERE {_COUNTED_N}
        GROUP BY 1 ORDER BY 1
    ON CONFLICT (customer_id) DO UPDATE SET
        orders = r.orders + excluded.orders, revenue = r.revenue + excluded.revenue,
        first_at = least(r.first_at, excluded.first_at),
        last_at = greatest(r.last_at, excluded.last_at);
    INSERT INTO {_T} AS r (customer_id, month, orders, revenue, first_at, last_at)
        SELECT n.customer_id, {_PG_MONTH}, count(*), sum(n.total),
               min(n.ordered_at), max(n.ordered_at)
        FROM new_orders n WHERE {_COUNTED_N}
        GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (customer_id, month) DO UPDATE SET
        orders = r.orders + excluded.orders, revenue = r.revenue + excluded.revenue,
        first_at = least(r.first_at, excluded.first_at),
        last_at = greatest(r.last_at, excluded.last_at);
    RETURN NULL;
END $$
"""


def _postgres_upgrade() -> None:
    op.execute(_PG_ORDERS_INSERTED)
    for name in ("INSERT", "UPDATE", "DELETE"):
        op.execute(_pg_refresh_function(name))
    op.execute(
        f"CREATE TRIGGER report_months_prev_ai AFTER INSERT ON {_T}"
        " REFERENCING NEW TABLE AS new_months FOR EACH STATEMENT"
        " EXECUTE FUNCTION report_rollup_months_insert()"
    )
    op.execute(
        f"CREATE TRIGGER report_months_prev_au AFTER UPDATE ON {_T}"
        " REFERENCING OLD TABLE AS old_months NEW TABLE AS new_months FOR EACH STATEMENT"
        " EXECUTE FUNCTION report_rollup_months_update()"
    )
    op.execute(
        f"CREATE TRIGGER report_months_prev_ad AFTER DELETE ON {_T}"
        " REFERENCING OLD TABLE AS old_months FOR EACH STATEMENT"
        " EXECUTE FUNCTION report_rollup_months_delete()"
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.add_column(_T, sa.Column("prev_last_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        f"UPDATE {_T} SET prev_last_at = w.prev FROM ("
        " SELECT customer_id, month,"
        " lag(last_at) OVER (PARTITION BY customer_id ORDER BY month) AS prev"
        f" FROM {_T}) AS w"
        f" WHERE {_T}.customer_id = w.customer_id AND {_T}.month = w.month"
        " AND w.prev IS NOT NULL"
    )
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
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {_T}")
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP FUNCTION IF EXISTS report_rollup_months_{name}()")
    with op.batch_alter_table(_T) as batch:
        batch.drop_column("prev_last_at")
