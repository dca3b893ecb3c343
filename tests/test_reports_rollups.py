"""The order roll-ups the reports read (revision 0031) stay equal to the raw aggregation of
the orders after every kind of write: service writes, raw bulk inserts, status and time and
amount changes, deletes, merges and their undo."""

from __future__ import annotations

from datetime import UTC, datetime

from reports_dataset import NOW, at, build
from sqlalchemy import delete, func, insert, select, update

from crm_core import activities as act
from crm_core import reports
from crm_core.dedupe import merge as mg
from crm_core.models import CustomerOrderMonth, CustomerOrderTotals, Order
from crm_core.reports.activity_groups import activity_differences
from crm_core.reports.customer_groups import customer_count_differences
from crm_core.reports.groups import group_differences
from crm_core.reports.lines import line_differences
from crm_core.reports.rollups import (
    customer_months,
    raw_customer_months,
    rebuild_order_rollups,
    rollup_differences,
)


def _exact(db) -> None:
    with db.transaction() as s:
        assert rollup_differences(s) == []
        assert group_differences(s) == []  # the group counts (revision 0040) follow too
        assert line_differences(s) == []  # and the product-line roll-ups (revision 0042)
        assert activity_differences(s) == []  # and the interaction counts (revision 0043)
        assert customer_count_differences(s) == []  # and the customer counts (revision 0044)


def test_rollups_follow_service_writes_changes_and_deletes(db, staff):
    data = build(db, staff)
    c1, c2, c4 = data.ids["c1"], data.ids["c2"], data.ids["c4"]
    _exact(db)
    with db.transaction() as s:
        months = s.execute(
            select(CustomerOrderMonth.month, CustomerOrderMonth.orders).where(
                CustomerOrderMonth.customer_id == c1
            )
        ).all()
        totals = s.get(CustomerOrderTotals, c2)
        assert sorted(months) == [
            ("2025-01", 1),
            ("2025-02", 1),
            ("2025-08", 1),
            ("2025-10", 1),
            ("2026-01", 1),
        ]
        assert (totals.orders, float(totals.revenue)) == (4, 2400.0)
        assert totals.first_at == at(2025, 1, 20) and totals.last_at == at(2026, 5, 20)
    with db.transaction() as s:
        extra = act.create_order(
            s, actor=staff.admin, customer_id=c1, total=70, ordered_at=at(2025, 1, 3)
        )
        act.create_order(s, actor=staff.admin, customer_id=c4, total=5, ordered_at=at(2026, 3, 3))
    _exact(db)
    with db.transaction() as s:  # cancelled, moved to another month and customer, new amount
        order = s.get(Order, extra.id)
        order.status = "cancelled"
        s.flush()
        assert s.get(CustomerOrderMonth, (c1, "2025-01")).orders == 1
        order.status = "paid"
        order.ordered_at = at(2025, 4, 30, 23)
        order.total = 75
        order.customer_id = c2
    _exact(db)
    with db.transaction() as s:
        assert s.get(CustomerOrderMonth, (c2, "2025-04")).orders == 1
        assert s.get(CustomerOrderMonth, (c1, "2025-01")).first_at == at(2025, 1, 10)
        s.execute(delete(Order).where(Order.customer_id == c4))
        s.execute(update(Order).where(Order.customer_id == c1).values(total=Order.total + 1))
    _exact(db)
    with db.transaction() as s:
        assert s.get(CustomerOrderTotals, c4) is None
        assert s.get(CustomerOrderTotals, c1).orders == 5


def test_rollups_follow_bulk_inserts_merges_and_undo(db, staff):
    data = build(db, staff)
    c1, c3, c5 = data.ids["c1"], data.ids["c3"], data.ids["c5"]
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {
            "customer_id": (c1, c3, c5)[i % 3],
            "number": f"B-{i}",
            "ordered_at": datetime(2024, 1 + i % 12, 1 + i % 28, i % 24, tzinfo=UTC),
            "total": 10 + i,
            "currency": "CNY",
            "status": "void" if i % 10 == 0 else "paid",
            "created_at": stamp,
            "updated_at": stamp,
            "version": 1,
        }
        for i in range(300)
    ]
    with db.transaction() as s:
        s.execute(insert(Order), rows)  # executemany, as imports and bulk loads write
    _exact(db)
    with db.transaction() as s:
        merge = mg.merge_customers(s, actor=staff.admin, customer_ids=[c1, c5], survivor_id=c1)
        merge_id = merge.id
    _exact(db)
    with db.transaction() as s:
        assert s.get(CustomerOrderTotals, c5) is None
        mg.undo_merge(s, actor=staff.admin, merge_id=merge_id)
    _exact(db)
    with db.transaction() as s:
        assert s.get(CustomerOrderTotals, c5).orders == 90


def test_rebuild_and_edge_months_equal_the_orders(db, staff):
    build(db, staff)
    with db.transaction() as s:
        rebuild_order_rollups(s)
    _exact(db)
    start, end = at(2025, 1, 15), at(2026, 1, 5, 13)
    with db.transaction() as s:
        sub = customer_months(s, start=start, end=end)
        got = sorted(
            tuple(r) for r in s.execute(select(sub.c.customer_id, sub.c.month, sub.c.orders))
        )
        raw = raw_customer_months(s, start=start, end=end).subquery()
        want = sorted(
            tuple(r) for r in s.execute(select(raw.c.customer_id, raw.c.month, raw.c.orders))
        )
        assert got == want and len(got) == 10
        one = customer_months(s, start=at(2025, 1, 11), end=at(2025, 1, 21))
        assert s.scalar(select(func.sum(one.c.orders))) == 1  # c2's order of 01-20 only


def test_reports_read_rollups_with_date_ranges_and_now(db, staff):
    """The roll-up paths give what the orders give for ranges cutting months and for a
    ``now`` before the last order (compared with the same reports over a copy without them)."""
    data = build(db, staff)
    with db.transaction() as s:
        act.create_order(
            s, actor=staff.admin, customer_id=data.ids["c4"], total=10, ordered_at=at(2026, 7, 1)
        )
    f = reports.ReportFilter(
        date_from=datetime(2025, 1, 15).date(), date_to=datetime(2026, 1, 4).date()
    )
    with db.transaction() as s:
        revenue = reports.revenue_by_month(s, actor=staff.admin, filters=f)
        rfm = reports.rfm_scores(s, actor=staff.admin, filters=f, now=NOW)
    assert revenue["orders"].sum() == 9 and revenue["month"].iloc[0] == "2025-01"
    assert revenue.set_index("month").loc["2025-01", "customers"] == 2  # c2 and c6
    assert set(rfm["frequency"]) <= {1, 2, 3, 4}
    assert rfm["frequency"].sum() == 9


def test_number_columns_equal_the_driver_rows(db, staff):
    """RFM reads its million rows with ``number_columns`` (PostgreSQL: the binary numbers of
    every row in one value, read by numpy): every value equals the one the driver gives, and a
    time column comes as its microseconds since 1970."""
    from sqlalchemy import BigInteger, Float, cast

    from crm_core.reports._common import number_columns, raw_rows

    build(db, staff)
    stmt = select(
        Order.id, cast(Order.id, BigInteger) * 10**12, cast(Order.total, Float) / 3
    ).order_by(Order.id)
    with db.transaction() as s:
        ids, big, thirds = number_columns(s, stmt, ("int64", "int64", "float64"))
        rows = raw_rows(s, stmt)
        empty = number_columns(s, stmt.where(Order.id < 0), ("int64", "float64"))
    assert len(rows) > 5
    assert [tuple(r) for r in rows] == list(
        zip(ids.tolist(), big.tolist(), thirds.tolist(), strict=True)
    )
    assert [len(c) for c in empty] == [0, 0] and empty[1].dtype == "float64"
    if db.dialect == "postgresql":
        with db.transaction() as s:
            stamps = s.execute(select(Order.ordered_at).order_by(Order.id)).scalars().all()
            (micros,) = number_columns(s, select(Order.ordered_at).order_by(Order.id), ("int64",))
        want = [int(t.timestamp()) * 1_000_000 + t.microsecond for t in stamps]
        assert micros.tolist() == want


def test_sqlite_microseconds_of_every_written_form(sqlite_db):
    """RFM's SQLite microseconds (``rfm._microseconds``): the six fraction digits SQLAlchemy
    writes are read as they are, and shorter, missing or longer fractions are padded or cut
    as before (the result equals the padded expression and the value's own microseconds)."""
    from sqlalchemy import Integer, String, cast, literal, union_all

    from crm_core.reports import rfm

    written = [
        "2025-01-02 03:04:05.123456",
        "2025-01-02 03:04:05.000001",
        "2025-01-02 03:04:05",
        "2025-01-02 03:04:05.5",
        "2025-01-02 03:04:05.123",
        "2025-01-02 03:04:05.1234567",
        "1999-12-31 23:59:59.999999",
    ]
    rows = union_all(*(select(literal(w, String).label("stamp")) for w in written)).subquery()
    before = cast(func.strftime("%s", rows.c.stamp), Integer) * 1_000_000 + cast(
        func.substr(rows.c.stamp.op("||")(literal("000000", String)), 21, 6), Integer
    )
    with sqlite_db.transaction() as s:
        got = s.execute(select(rfm._microseconds(rows.c.stamp, "sqlite"), before)).all()
    want = []
    for w in written:
        day = datetime.fromisoformat(w[:19]).replace(tzinfo=UTC)
        fraction = (w[20:] + "000000")[:6] if len(w) > 19 else "0"
        want.append(int(day.timestamp()) * 1_000_000 + int(fraction))
    assert [g for g, _ in got] == [b for _, b in got]
    # (SQLite takes the seconds of a time from milliseconds rounded: .999999 counts as the
    # next second, before as now)
    assert [g for g, _ in got][:6] == want[:6] and got[6][0] == want[6] + 1_000_000
