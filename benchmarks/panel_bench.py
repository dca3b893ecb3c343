"""Web panel benchmark on a database of generated customers (1,000,000 by default).

Measures the server time of what the panel does for
- one page of the customer list: with no filter, with a filter (stage, city, owner), the next
  page by keyset cursor, and with a quick search (name part, pinyin, phone, 2-character
  Chinese name) - the service call plus shaping the grid rows, as ``customers_page.load`` does;
- opening a customer page with a long history (``customer._read``: profile, custom fields,
  owners, timeline);
- the full HTTP page through NiceGUI (``GET /customers``, ``GET /customers/{id}``: session
  check, page build and render) for a logged-in manager.

    .venv/bin/python benchmarks/panel_bench.py                       # 1,000,000 customers
    .venv/bin/python benchmarks/panel_bench.py --customers 100000
    .venv/bin/python benchmarks/panel_bench.py --database benchmarks/out/panel-1m.sqlite3

The database is built once and kept for later runs: ``--base`` customers (200,000) are
generated and stored through ``crm_core.bulk`` (owners spread over eight sales users), the rest
are copies of them under new ids (see ``replicate``). Prints one table: median and 95th percentile in ms.
Aims (issue 3): list page p95 < 150 ms, customer page p95 < 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# NiceGUI's in-process HTTP client (its User simulation) expects to run under pytest and clears
# its storage folder: give it a private one
os.environ.setdefault("NICEGUI_STORAGE_PATH", str(ROOT / "benchmarks" / "out" / "nicegui"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sqlalchemy import func, select, text  # noqa: E402

from crm_core import activities, sessions  # noqa: E402
from crm_core import users as user_service  # noqa: E402
from crm_core.customers import CustomerFilter, list_customers  # noqa: E402
from crm_core.db import Database  # noqa: E402
from crm_core.models import Customer, Role, User  # noqa: E402

PASSWORD = "bench-password-123"


def build(db: Database, n: int, seed: int) -> None:
    """Generated customers through the bulk service, owners spread over eight sales users."""
    from core_bench import _rows

    from crm_core.bulk import bulk_create_customers
    from crm_core.datagen import generate

    db.init()
    t0 = time.perf_counter()
    with db.transaction() as s:
        activities.ensure_pipeline_stages(s)
        admin = user_service.create_user(
            s, actor=None, username="admin", role=Role.ADMIN, password=PASSWORD
        )
        team = user_service.create_team(s, actor=admin, name="East")
        user_service.create_user(
            s, actor=admin, username="manager", role=Role.MANAGER, password=PASSWORD,
            team_id=team.id,
        )  # fmt: skip
        sales = [
            user_service.create_user(
                s, actor=admin, username=f"sales{i}", role=Role.SALES, password=PASSWORD,
                team_id=team.id if i < 4 else None,
            ).id
            for i in range(8)
        ]  # fmt: skip
    rng = random.Random(seed)
    stages = ["lead", "prospect", "customer", "vip", "dormant", "churned"]
    chunk = 50_000
    data = generate(n, seed=seed, history=False)
    rows = _rows(data.customers)
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        for row in part:
            row["owner_id"] = rng.choice(sales) if rng.random() < 0.9 else None
            row["lifecycle_stage"] = rng.choices(stages, weights=[30, 20, 35, 5, 6, 4])[0]
        with db.transaction() as s:
            admin_user = s.scalar(select(User).where(User.username == "admin"))
            bulk_create_customers(s, actor=admin_user, rows=part, skip_invalid=True, source="bench")
        print(f"  {min(start + chunk, len(rows)):>9,} customers stored", flush=True)
    with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            conn.execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE customers"))
    print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)


def replicate(db: Database, n: int) -> None:
    """Grow the table to ``n`` customers by copying the generated ones under new ids (names,
    phones and e-mails repeat; the search index follows through its triggers and indexes).
    Generating and validating a million rows one by one takes about an hour on a loaded
    two-core machine; the copies give the same table size and index depth in minutes."""
    customer_cols = [c.name for c in Customer.__table__.columns if c.name != "id"]
    with db.transaction() as s:
        base = int(s.scalar(select(func.max(Customer.id))) or 0)
        have = int(s.scalar(select(func.count()).select_from(Customer)) or 0)
    cols = ", ".join(customer_cols)
    offset = base
    t0 = time.perf_counter()
    while have < n:
        take = min(base, n - have)
        with db.engine.begin() as conn:
            conn.execute(
                text(
                    f"INSERT INTO customers (id, {cols}) SELECT id + :off, {cols} FROM customers "
                    "WHERE id <= :take"
                ),
                {"off": offset, "take": take},
            )
            for table, columns in (
                ("customer_phones", "e164, raw, label, is_primary"),
                ("customer_emails", "email, label, is_primary"),
            ):
                conn.execute(
                    text(
                        f"INSERT INTO {table} (customer_id, {columns}) "
                        f"SELECT customer_id + :off, {columns} FROM {table} WHERE customer_id <= :take"
                    ),
                    {"off": offset, "take": take},
                )
            conn.execute(
                text(
                    "INSERT INTO customer_tags (customer_id, tag_id) SELECT customer_id + :off, "
                    "tag_id FROM customer_tags WHERE customer_id <= :take"
                ),
                {"off": offset, "take": take},
            )
        have += take
        offset += base
        print(f"  {have:>9,} customers ({time.perf_counter() - t0:.0f} s)", flush=True)
    with db.engine.begin() as conn:
        conn.execute(text("ANALYZE" if db.dialect == "sqlite" else "ANALYZE customers"))


def long_history(db: Database, interactions: int = 400) -> int:
    """A customer with hundreds of interactions, deals, orders, tickets and tasks."""
    with db.transaction() as s:
        existing = s.scalar(
            select(Customer.id).where(Customer.notes == "bench: long history").limit(1)
        )
        if existing:
            return int(existing)
        admin = s.scalar(select(User).where(User.username == "admin"))
        customer = s.scalar(select(Customer).where(Customer.archived_at.is_(None)).limit(1))
        customer.notes = "bench: long history"
        now = datetime.now(UTC)
        for i in range(interactions):
            activities.log_interaction(
                s, actor=admin, customer_id=customer.id, kind="call", subject=f"Call {i}",
                body="Discussed the renewal and the next order.",
                occurred_at=now - timedelta(hours=i * 7),
            )  # fmt: skip
        for i in range(60):
            activities.create_deal(
                s, actor=admin, customer_id=customer.id, title=f"Deal {i}", amount=1000 + i
            )
            activities.create_order(s, actor=admin, customer_id=customer.id, total=200 + i)
            activities.create_ticket(
                s, actor=admin, customer_id=customer.id, kind="request", subject=f"Ticket {i}"
            )
            activities.create_task(s, actor=admin, customer_id=customer.id, title=f"Task {i}")
        return customer.id


def pct(values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    return statistics.median(values), statistics.quantiles(values, n=20, method="inclusive")[-1]


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def service_rows(db: Database, username: str, repeat: int, customer_id: int) -> list[tuple]:
    from app.pages.customer import _read
    from app.pages.customers import rows_for
    from crm_core.normalize import pinyin_syllables

    results = []
    with db.transaction() as s:
        actor = s.scalar(select(User).where(User.username == username))
        owners = {u.id: u.username for u in user_service.list_users(s, actor=actor)}
        names = [
            r[0]
            for r in s.execute(
                select(Customer.name)
                .where(Customer.id % 997 == 0)
                .order_by(Customer.id)
                .limit(repeat * 4)
            )
        ]
        phones = [
            r[0]
            for r in s.execute(
                select(Customer.phone).where(Customer.phone.is_not(None), Customer.id % 991 == 0)
                .order_by(Customer.id).limit(repeat)
            )
        ]  # fmt: skip
        cities = [
            r[0]
            for r in s.execute(
                select(Customer.city).where(Customer.city.is_not(None)).group_by(Customer.city)
                .limit(30)
            )
        ]  # fmt: skip
    from crm_core.normalize import has_cjk

    cjk = [n for n in names if has_cjk(n)]
    latin = [n for n in names if not has_cjk(n)]
    rng = random.Random(7)

    class Ctx:
        locale = "en"

        def _(self, m: str, **k: object) -> str:
            return m.format(**k) if k else m

        def date(self, v: Any) -> str:
            from app.fmt import fmt_date

            return fmt_date(v, "en")

    ctx = Ctx()

    def page(filters: CustomerFilter, cursor: str | None = None) -> Any:
        with db.transaction() as s:
            actor = s.get(User, actor_id)
            result = list_customers(s, actor=actor, filters=filters, cursor=cursor, limit=50)
            rows_for(ctx, result, owners)  # type: ignore[arg-type]
            return result

    with db.transaction() as s:
        actor_id = s.scalar(select(User.id).where(User.username == username))
        me = s.get(User, actor_id)
        # owners a person would pick: anyone (admin), the own team (manager), oneself (sales)
        owner_query = select(User.id).where(User.role == Role.SALES)
        if me.role == Role.MANAGER:
            owner_query = owner_query.where(User.team_id == me.team_id)
        elif me.role == Role.SALES:
            owner_query = select(User.id).where(User.id == me.id)
        sales_ids = list(s.scalars(owner_query))

    cases: list[tuple[str, Callable[[], CustomerFilter]]] = [
        ("list, no filter", lambda: CustomerFilter()),
        ("list, stage filter", lambda: CustomerFilter(lifecycle_stage=rng.choice(["vip", "customer", "dormant"]))),
        ("list, city filter", lambda: CustomerFilter(city=rng.choice(cities))),
        ("list, owner filter", lambda: CustomerFilter(owner_id=rng.choice(sales_ids))),
        ("search, name part", lambda: CustomerFilter(query=max(rng.choice(latin).split(), key=len)[:5])),
        ("search, pinyin", lambda: CustomerFilter(query=" ".join(pinyin_syllables(rng.choice(cjk))[:2]))),
        ("search, phone", lambda: CustomerFilter(query=rng.choice(phones))),
        ("search, 2-char 中文", lambda: CustomerFilter(query=rng.choice(cjk)[:2])),
    ]  # fmt: skip
    for label, make in cases:
        values = []
        page(make())
        for _ in range(repeat):
            flt = make()
            t0 = time.perf_counter()
            page(flt)
            values.append((time.perf_counter() - t0) * 1000)
        results.append((username, label, *pct(values)))

    first = page(CustomerFilter())
    cursors = [first.next_cursor]
    for _ in range(repeat):
        cursors.append(page(CustomerFilter(), cursors[-1]).next_cursor)
    values = timed(lambda: page(CustomerFilter(), rng.choice(cursors[:-1])), repeat)
    results.append((username, "list, later page (keyset)", *pct(values)))

    def open_customer() -> None:
        with db.transaction() as s:
            _read(s, s.get(User, actor_id), customer_id)

    if username == "admin":
        results.append(
            (username, "customer page, long history", *pct(timed(open_customer, repeat)))
        )
    return results


async def http_pages(db: Database, repeat: int, customer_id: int) -> list[tuple]:
    """The full panel pages over HTTP (NiceGUI in-process, as its User fixture runs it)."""
    os.environ["CRM_DATABASE_URL"] = db.url
    os.environ["PYTEST_CURRENT_TEST"] = "panel_bench"  # see NICEGUI_STORAGE_PATH above
    os.environ.setdefault("CRM_STORAGE_SECRET", "bench-secret-" + "x" * 32)
    from nicegui import app as nicegui_app
    from nicegui.testing.user_simulation import user_simulation

    from app.security import TOKEN_KEY

    with db.transaction() as s:
        admin = s.scalar(select(User).where(User.username == "admin"))
        token = sessions.start_session(s, user=admin)
    results = []
    async with user_simulation(main_file=ROOT / "app" / "main.py") as user:
        await user.open("/login")
        with user:
            nicegui_app.storage.user[TOKEN_KEY] = token
        for label, path in (
            ("HTTP GET /customers", "/customers"),
            ("HTTP GET /customers/{id}, long history", f"/customers/{customer_id}"),
        ):
            values = []
            await user.open(path)
            for _ in range(repeat):
                t0 = time.perf_counter()
                await user.open(path)
                values.append((time.perf_counter() - t0) * 1000)
            results.append(("admin", label, *pct(values)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--database", type=Path, default=None, help="SQLite file (kept)")
    parser.add_argument("--database-url", default=None, help="a PostgreSQL database to fill")
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument(
        "--base", type=int, default=200_000, help="customers generated; the rest are copies"
    )
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    if args.database_url:
        url = args.database_url
    else:
        path = args.database or ROOT / "benchmarks" / "out" / f"panel-{args.customers}.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    db = Database(url)
    db.init()  # a kept database gets the newest schema
    try:
        with db.transaction() as s:
            have = s.scalar(select(func.count()).select_from(Customer)) or 0
    except Exception:
        have = 0
    if have == 0:
        print(f"generating {min(args.customers, args.base):,} customers in {url} …", flush=True)
        build(db, min(args.customers, args.base), args.seed)
    if have < args.customers:
        print(f"copying them up to {args.customers:,} customers …", flush=True)
        replicate(db, args.customers)
    customer_id = long_history(db)
    with db.transaction() as s:
        total = s.scalar(select(func.count()).select_from(Customer))
    rows = []
    for username in ("admin", "manager", "sales1"):
        rows += service_rows(db, username, args.repeat, customer_id)
    rows += asyncio.run(http_pages(db, args.repeat, customer_id))
    print()
    print(f"{db.dialect}, {total:,} customers, {args.repeat} runs each (ms)")
    header = f"{'user':<8} {'what':<40} {'median':>8} {'p95':>8}"
    print(header)
    print("-" * len(header))
    for user, label, median, p95 in rows:
        print(f"{user:<8} {label:<40} {median:>8.1f} {p95:>8.1f}")
    db.dispose()


if __name__ == "__main__":
    main()
