"""Automation benchmark: the daily run with every built-in rule on, over generated demo data.

    .venv/bin/python benchmarks/automation_bench.py --customers 100000
    .venv/bin/python benchmarks/automation_bench.py --customers 1000000 --db /tmp/auto1m.sqlite3
    .venv/bin/python benchmarks/automation_bench.py --customers 100000 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

The demo data is loaded with ``crm_core.demo.load_demo`` (kept and reused with ``--db``), then
three passes run through ``run_due`` exactly as ``crm automate run`` does:

1. the first daily run (everything that matches today, a large backlog on fresh data),
2. the same day again (idempotence: nothing new may be done),
3. the next day (the steady state: only that day's new events).

Prints one table row per rule and pass, then the totals. Aim (issue 7): the daily run over
1,000,000 customers in under 60 s on SQLite.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from crm_core import automation as auto
from crm_core import privacy
from crm_core.db import Database
from crm_core.models import Customer
from crm_core.users import get_system_user


def _database(args: argparse.Namespace) -> Database:
    if args.database_url:
        db = Database(args.database_url)
    else:
        path = Path(args.db or f"/tmp/crm_automation_bench_{args.customers}.sqlite3")
        db = Database(f"sqlite:///{path}")
    db.init()
    return db


def _load(db: Database, n: int, seed: int, fast: bool) -> float:
    with db.transaction() as s:
        have = s.scalar(select(func.count()).select_from(Customer)) or 0
    if have >= n:
        return 0.0
    started = time.perf_counter()
    if fast:
        _fast_load(db, n, seed)
    else:
        from crm_core.demo import load_demo

        load_demo(db, n_customers=n, seed=seed)
    return time.perf_counter() - started


def _fast_load(db: Database, n: int, seed: int) -> None:
    """Synthetic customers and history written straight into SQLite (``executemany``), for
    sizes where the realistic demo generator takes too long. Shapes: 5 years of customers,
    one interaction and one order each on average, 10 % with a contract, 5 % with a ticket
    (a third overdue), 10 % with an open deal."""
    import numpy as np

    from crm_core.models import Role, Team, User

    assert db.dialect == "sqlite", "--fast-load writes SQLite directly"
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC).replace(tzinfo=None)
    with db.transaction() as s:
        get_system_user(s)
        teams = [Team(name=f"Bench team {t}") for t in range(5)]
        s.add_all(teams)
        s.flush()
        users = [
            User(username=f"bench_sales{i}", role=Role.SALES, team_id=teams[i % 5].id, active=True)
            for i in range(50)
        ]
        users += [
            User(username=f"bench_mgr{t}", role=Role.MANAGER, team_id=teams[t].id, active=True)
            for t in range(5)
        ]
        users.append(User(username="bench_admin", role=Role.ADMIN, active=True))
        s.add_all(users)
        s.flush()
        sales = [(u.id, u.team_id) for u in users if u.role == Role.SALES]
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    start_id = 1
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA cache_size=-400000")  # 400 MB while loading: indexes stay in memory
        cur.execute("SELECT coalesce(max(id), 0) + 1 FROM customers")
        start_id = cur.fetchone()[0]
        ids = np.arange(start_id, start_id + n)
        created = rng.uniform(0, 5 * 365, n)
        contact = created * rng.uniform(0, 1, n)  # days ago, after creation
        stages = rng.choice(
            ["lead", "prospect", "customer", "vip", "dormant"], n, p=[0.3, 0.2, 0.35, 0.05, 0.1]
        )
        owner = rng.integers(0, len(sales), n)
        born = rng.uniform(18 * 365, 80 * 365, n)
        has_birthday = rng.uniform(0, 1, n) < 0.8

        def ts(days_ago: float) -> str:
            return (now - timedelta(days=float(days_ago))).strftime(fmt)

        customers = []
        for i in range(n):
            made = ts(created[i])
            customers.append(
                (
                    int(ids[i]),
                    "person",
                    f"Customer {ids[i]}",
                    "",
                    f"customer {ids[i]}",
                    str(stages[i]),
                    sales[owner[i]][0],
                    sales[owner[i]][1],
                    made,
                    made,
                    ts(contact[i]),
                    (now - timedelta(days=float(born[i]))).strftime("%Y-%m-%d")
                    if has_birthday[i]
                    else None,
                    "{}",
                    1,
                )
            )
        cur.executemany(
            "INSERT INTO customers (id, kind, name, name_key, search_text, lifecycle_stage,"
            " owner_id, team_id, created_at, updated_at, last_contact_at, birthday, custom,"
            " version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            customers,
        )
        del customers
        cur.executemany(
            "INSERT INTO interactions (customer_id, kind, subject, occurred_at, created_at,"
            " updated_at, version) VALUES (?, 'call', 'Call', ?, ?, ?, 1)",
            [(int(ids[i]), ts(contact[i]), ts(contact[i]), ts(contact[i])) for i in range(n)],
        )
        order_days = created * rng.uniform(0, 1, n)
        cur.executemany(
            "INSERT INTO orders (customer_id, number, ordered_at, total, currency, status,"
            " created_at, updated_at, version) VALUES (?, ?, ?, 100, 'CNY', 'paid', ?, ?, 1)",
            [
                (
                    int(ids[i]),
                    f"SO-{ids[i]}",
                    ts(order_days[i]),
                    ts(order_days[i]),
                    ts(order_days[i]),
                )
                for i in range(n)
            ],
        )
        pick = rng.uniform(0, 1, n)
        contracts = [
            (
                int(ids[i]),
                f"CT-{ids[i]}",
                "Service",
                (now - timedelta(days=300)).strftime("%Y-%m-%d"),
                (now + timedelta(days=int(rng.integers(-200, 200)))).strftime("%Y-%m-%d"),
                ts(300),
                ts(300),
            )
            for i in np.nonzero(pick < 0.10)[0]
        ]
        cur.executemany(
            "INSERT INTO contracts (customer_id, number, title, start_date, end_date, value,"
            " currency, status, created_at, updated_at, version)"
            " VALUES (?, ?, ?, ?, ?, 0, 'CNY', 'active', ?, ?, 1)",
            contracts,
        )
        tickets = [
            (
                int(ids[i]),
                ts(10),
                ts(10),
                "open" if rng.uniform() < 0.33 else "closed",
                ts(float(rng.uniform(-5, 5))),
            )
            for i in np.nonzero((pick >= 0.10) & (pick < 0.15))[0]
        ]
        cur.executemany(
            "INSERT INTO tickets (customer_id, kind, subject, status, priority, created_at,"
            " updated_at, due_at, version) VALUES (?, 'request', 'Help', ?, 'normal', ?, ?, ?, 1)",
            [(c, st, made, made, due) for c, made, _u, st, due in tickets],
        )
        cur.executemany(
            "INSERT INTO deals (customer_id, owner_id, title, stage, status, amount, currency,"
            " created_at, updated_at, version) VALUES (?, ?, 'Deal', 'proposal', 'open', 1000,"
            " 'CNY', ?, ?, 1)",
            [
                (int(ids[i]), sales[owner[i]][0], ts(30), ts(30))
                for i in np.nonzero((pick >= 0.15) & (pick < 0.25))[0]
            ],
        )
        raw.commit()
    finally:
        raw.close()


def _prepare(db: Database) -> None:
    with db.transaction() as s:
        system = get_system_user(s)
        for rule in auto.list_rules(s, actor=system):
            if not rule.enabled:
                auto.set_enabled(s, actor=system, rule_id=rule.id, enabled=True)
        privacy.set_retention_policy(s, actor=system, purpose="all", period_days=6 * 365)


def _pass(db: Database, label: str, now: datetime) -> float:
    """One scheduler pass (what ``run_due`` does), timed rule by rule."""
    from crm_core.automation.email import deliver_pending
    from crm_core.automation.scheduler import is_due, new_holder, prepare, run_rule
    from crm_core.models import AutomationRule, AutomationState

    holder = new_holder()
    started = time.perf_counter()
    prepare(db)
    with db.transaction() as s:
        due = [
            (r.id, r.key)
            for r in s.scalars(select(AutomationRule).order_by(AutomationRule.id))
            if is_due(r, s.get(AutomationState, r.id), now)
        ]
    for rule_id, _key in due:
        t0 = time.perf_counter()
        r = run_rule(db, rule_id, now=now, holder=holder)
        took = time.perf_counter() - t0
        actions = ", ".join(f"{k}={v:,}" for k, v in sorted(r.summary.items())) or "-"
        print(
            f"| {label:<10} | {r.rule_key:<20} | {r.status:<7} | {r.matched:>9,} | {took:>7.2f} |"
            f" {actions} |"
        )
    deliver_pending(db, now=now, holder=holder)
    seconds = time.perf_counter() - started
    print(f"| {label:<10} | **whole pass**       |         |           | {seconds:>7.2f} | |")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", help="SQLite file to create or reuse")
    parser.add_argument("--database-url", help="another database (PostgreSQL)")
    parser.add_argument(
        "--fast-load",
        action="store_true",
        help="synthetic data written straight into SQLite instead of the demo generator",
    )
    args = parser.parse_args()

    db = _database(args)
    load_seconds = _load(db, args.customers, args.seed, args.fast_load)
    with db.transaction() as s:
        n = s.scalar(select(func.count()).select_from(Customer)) or 0
    _prepare(db)
    print(f"\n{db.dialect}, {n:,} customers (demo data loaded in {load_seconds:.0f} s)\n")
    print("| pass       | rule                 | status  |   matched | seconds | actions |")
    print("| ---------- | -------------------- | ------- | --------- | ------- | ------- |")
    today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    # a fresh day for this database: after whatever earlier runs did
    with db.transaction() as s:
        from crm_core.models import AutomationState

        last = s.scalar(select(func.max(AutomationState.last_run_day)))
    if last is not None and last >= today.date():
        today = datetime.combine(last + timedelta(days=1), today.timetz())
    first = _pass(db, "first day", today)
    again = _pass(db, "same day", today + timedelta(hours=1))
    nxt = _pass(db, "next day", today + timedelta(days=1))
    print(f"\ndaily run: first {first:.1f} s, repeated {again:.1f} s, next day {nxt:.1f} s")


if __name__ == "__main__":
    main()
