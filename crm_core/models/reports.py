"""Roll-ups of orders that the reports read instead of scanning every order.

They are derived data, kept exact by database triggers on ``orders`` (revisions 0031 and 0032): every
writer (services, imports, merges, erasure, cold archiving, bulk loads) keeps them in step
without knowing of them. Only counted orders are rolled up (not cancelled, refunded or void;
see ``crm_core.reports._common.EXCLUDED_ORDER_STATUSES``).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, Integer, Numeric, String
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
