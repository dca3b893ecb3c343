"""Roll-ups of orders that the reports read instead of scanning every order.

They are derived data, kept exact by database triggers on ``orders`` (revisions 0031 and 0032): every
writer (services, imports, merges, erasure, cold archiving, bulk loads) keeps them in step
without knowing of them. Only counted orders are rolled up (not cancelled, refunded or void;
see ``crm_core.reports._common.EXCLUDED_ORDER_STATUSES``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Index, Integer, Numeric, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models.base import Base, UTCDateTime

RollupMoney = Numeric(18, 2)


class CustomerOrderMonth(Base):
    """One customer's counted orders in one calendar month (UTC)."""

    __tablename__ = "report_customer_months"

    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # 'YYYY-MM'
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(RollupMoney)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The customer's last counted order before this month (``None`` for the first month).
    prev_last_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_report_customer_months_month", "month", "customer_id"),)


class CustomerOrderTotals(Base):
    """One customer's counted orders over all time."""

    __tablename__ = "report_customer_orders"

    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(RollupMoney)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_report_customer_orders_last_at", "last_at"),)


class GroupCount(Base):
    """Report counts summed over one group of customers (revision 0040).

    A group is the customers that share ``owner_id``, ``team_id`` (0 for none), ``archived``
    and ``unowned_lead`` (no owner and lifecycle stage ``lead``): the customer columns the
    access policy and the owner, team and archive filters read. ``kind`` says what is counted
    (``crm_core.reports.groups``). On PostgreSQL one key may have several rows (signed deltas
    appended by the triggers); the value of a key is the sum of its rows.
    """

    __tablename__ = "report_group_counts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    kind: Mapped[int] = mapped_column(SmallInteger)
    owner_id: Mapped[int] = mapped_column(Integer)
    team_id: Mapped[int] = mapped_column(Integer)
    archived: Mapped[int] = mapped_column(SmallInteger)
    unowned_lead: Mapped[int] = mapped_column(SmallInteger)
    k1: Mapped[str] = mapped_column(String(7))
    k2: Mapped[str] = mapped_column(String(7))
    orders: Mapped[int] = mapped_column(BigInteger)
    revenue_cents: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(BigInteger)
    #: 1 for a delta row appended by a PostgreSQL trigger and not folded yet.
    delta: Mapped[int] = mapped_column(SmallInteger, server_default="0")

    __table_args__ = (
        Index(
            "ix_report_group_counts_delta",
            "id",
            sqlite_where=text("delta = 1"),
            postgresql_where=text("delta = 1"),
        ),
        Index(
            "ix_report_group_counts_key",
            "kind",
            "owner_id",
            "team_id",
            "archived",
            "unowned_lead",
            "k1",
            "k2",
        ),
    )


class CustomerOrderLine(Base):
    """One customer's counted orders in one calendar month (UTC) and product line
    (revision 0042)."""

    __tablename__ = "report_customer_lines"

    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # 'YYYY-MM'
    #: ``'=' || product_line``, or ``''`` for orders without one (a key cannot be ``NULL``).
    line: Mapped[str] = mapped_column(String(81), primary_key=True)
    orders: Mapped[int] = mapped_column(Integer)
    revenue: Mapped[Decimal] = mapped_column(RollupMoney)


class GroupLineCount(Base):
    """Counted orders per month and product line summed over one group of customers (the
    groups of ``GroupCount``; revision 0042): ``n`` is the number of distinct buyers. On
    PostgreSQL one key may have several rows (signed deltas); its value is their sum."""

    __tablename__ = "report_group_lines"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    owner_id: Mapped[int] = mapped_column(Integer)
    team_id: Mapped[int] = mapped_column(Integer)
    archived: Mapped[int] = mapped_column(SmallInteger)
    unowned_lead: Mapped[int] = mapped_column(SmallInteger)
    month: Mapped[str] = mapped_column(String(7))
    line: Mapped[str] = mapped_column(String(81))
    orders: Mapped[int] = mapped_column(BigInteger)
    revenue_cents: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(BigInteger)
    #: 1 for a delta row appended by a PostgreSQL trigger and not folded yet.
    delta: Mapped[int] = mapped_column(SmallInteger, server_default="0")

    __table_args__ = (
        Index(
            "ix_report_group_lines_delta",
            "id",
            sqlite_where=text("delta = 1"),
            postgresql_where=text("delta = 1"),
        ),
        Index(
            "ix_report_group_lines_key",
            "owner_id",
            "team_id",
            "archived",
            "unowned_lead",
            "month",
            "line",
        ),
    )


class GroupActivityCount(Base):
    """Interactions per month, user (0 for none) and kind summed over one group of customers
    (the groups of ``GroupCount``; revision 0043). On PostgreSQL one key may have several
    rows (signed deltas); its value is their sum."""

    __tablename__ = "report_group_activity"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    owner_id: Mapped[int] = mapped_column(Integer)
    team_id: Mapped[int] = mapped_column(Integer)
    archived: Mapped[int] = mapped_column(SmallInteger)
    unowned_lead: Mapped[int] = mapped_column(SmallInteger)
    month: Mapped[str] = mapped_column(String(7))
    user_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    n: Mapped[int] = mapped_column(BigInteger)
    #: 1 for a delta row appended by a PostgreSQL trigger and not folded yet.
    delta: Mapped[int] = mapped_column(SmallInteger, server_default="0")

    __table_args__ = (
        Index(
            "ix_report_group_activity_delta",
            "id",
            sqlite_where=text("delta = 1"),
            postgresql_where=text("delta = 1"),
        ),
        Index(
            "ix_report_group_activity_key",
            "owner_id",
            "team_id",
            "archived",
            "unowned_lead",
            "month",
            "user_id",
            "kind",
        ),
    )


class GroupCustomerCount(Base):
    """Live customers per value of a distribution (``dimension``: ``'industry'``, ``'city'``
    with ``value`` the province, ``'lifecycle_stage'``) counted over one group of customers
    (the groups of ``GroupCount``; revision 0044). ``value`` and ``city`` keep ``NULL``. On
    PostgreSQL one key may have several rows (signed deltas); its value is their sum."""

    __tablename__ = "report_group_customers"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    owner_id: Mapped[int] = mapped_column(Integer)
    team_id: Mapped[int] = mapped_column(Integer)
    archived: Mapped[int] = mapped_column(SmallInteger)
    unowned_lead: Mapped[int] = mapped_column(SmallInteger)
    dimension: Mapped[str] = mapped_column(String(20))
    value: Mapped[str | None] = mapped_column(String(80))
    city: Mapped[str | None] = mapped_column(String(80))
    n: Mapped[int] = mapped_column(BigInteger)
    #: 1 for a delta row appended by a PostgreSQL trigger and not folded yet.
    delta: Mapped[int] = mapped_column(SmallInteger, server_default="0")

    __table_args__ = (
        Index(
            "ix_report_group_customers_delta",
            "id",
            sqlite_where=text("delta = 1"),
            postgresql_where=text("delta = 1"),
        ),
        Index(
            "ix_report_group_customers_key",
            "owner_id",
            "team_id",
            "archived",
            "unowned_lead",
            "dimension",
            "value",
            "city",
        ),
    )
