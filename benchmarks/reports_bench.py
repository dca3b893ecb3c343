"""Reports benchmark: every report (and the whole manager dashboard) on a large generated
database, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/reports_bench.py                        # 1M customers, 5M orders
    .venv/bin/python benchmarks/reports_bench.py --customers 100000 --orders 500000
    .venv/bin/python benchmarks/reports_bench.py --backend sqlite --reuse

The data is written set-based (SQLite ``executemany``, PostgreSQL ``COPY``) straight into a
migrated schema: 1 customer : 5 orders, 0.3 deals, 0.2 tickets, 1 interaction, 0.1 tasks.
Prints one table per backend: seconds per report as an admin (every customer) and as a
manager (one team of four). Aims (issue 6): each report under 2 s on PostgreSQL and 5 s on
SQLite; the whole dashboard under 5 s.
"""

from __future__ import annotations

import argparse
import io
import os
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm_core import reports  # noqa: E402
from crm_core import users as user_service  # noqa: E402
from crm_core.activities import ensure_pipeline_stages  # noqa: E402
from crm_core.db import Database  # noqa: E402
from crm_core.migrate import upgrade  # noqa: E402
from crm_core.models import Role, User  # noqa: E402
from crm_core.reports.activity_groups import rebuild_group_activity  # noqa: E402
from crm_core.reports.customer_groups import rebuild_customer_counts  # noqa: E402
from crm_core.reports.groups import rebuild_group_counts  # noqa: E402
from crm_core.reports.lines import rebuild_line_rollups  # noqa: E402
from crm_core.reports.rollups import rebuild_order_rollups  # noqa: E402

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
START = np.datetime64("2023-01-01T00:00:00")
SPAN_S = int((np.datetime64("2026-06-15T12:00:00") - START) / np.timedelta64(1, "s"))
PASSWORD = "bench-password-123"
PROVINCES = {
    "浙江": ["杭州", "宁波", "温州"],
    "广东": ["广州", "深圳", "佛山"],
    "江苏": ["南京", "苏州"],
    "北京": ["北京"],
    "上海": ["上海"],
    "California": ["San Francisco", "Los Angeles"],
}
INDUSTRIES = ["Retail", "Finance", "Manufacturing", "Software", "Education", "Healthcare", None]
SOURCES = ["web", "referral", "event", "ads", "partner", "cold_call"]
STAGES = ["lead", "prospect", "customer", "vip", "dormant", "churned"]
DEAL_STAGES = ["new", "qualified", "proposal", "negotiation", "won", "lost"]


def _ts(seconds: np.ndarray, dialect: str) -> np.ndarray:
    """Timestamp text as each database stores it (SQLite: naive UTC with microseconds)."""
    stamps = START + np.asarray(seconds).astype("timedelta64[s]")
    text_ = pd.Series(np.datetime_as_string(stamps, unit="s"), dtype="string[pyarrow]")
    text_ = text_.str.replace("T", " ", regex=False)
    text_ = text_ + (".000000" if dialect == "sqlite" else "+00")
    return text_.to_numpy(dtype=object)


def generate(n_customers: int, n_orders: int, users: dict[str, list[int]], seed: int = 1):
    """DataFrames of customers, orders, deals, tickets, interactions and tasks."""
    rng = np.random.default_rng(seed)
    n = n_customers
    sales = np.array(users["sales"])
    team_of = users["team_of"]
    ids = np.arange(1, n + 1)
    prov_names = list(PROVINCES)
    prov = rng.integers(0, len(prov_names), n)
    city = np.array(
        [
            PROVINCES[prov_names[p]][i % len(PROVINCES[prov_names[p]])]
            for p, i in zip(prov, ids, strict=True)
        ]
    )
    owner = np.where(rng.random(n) < 0.9, rng.choice(sales, n), 0)
    created_s = rng.integers(0, SPAN_S - 86400 * 30, n)
    customers = pd.DataFrame(
        {
            "id": ids,
            "kind": np.where(rng.random(n) < 0.8, "person", "company"),
            "name": np.char.add("Customer ", ids.astype(str)),
            "name_key": "",
            "search_text": "",
            "industry": rng.choice(np.array(INDUSTRIES, dtype=object), n),
            "source": rng.choice(SOURCES, n),
            "province": np.array(prov_names, dtype=object)[prov],
            "city": city,
            "lifecycle_stage": rng.choice(STAGES, n, p=[0.2, 0.15, 0.4, 0.1, 0.1, 0.05]),
            "value_tier": rng.choice(["A", "B", "C"], n),
            "owner_id": owner,
            "team_id": np.array([team_of.get(int(o), 0) for o in owner]),
            "custom": "{}",
            "last_contact_s": created_s + rng.integers(0, 86400 * 400, n),
            "created_s": created_s,
        }
    )
    # orders: a heavy-tailed number per customer, each after the customer was created
    weights = rng.pareto(1.5, n) + 0.2
    per = rng.multinomial(n_orders, weights / weights.sum())
    cust = np.repeat(ids, per)
    base = np.repeat(created_s, per)
    order_s = np.minimum(base + rng.integers(0, SPAN_S, len(cust)) % (SPAN_S - base + 1), SPAN_S)
    m = len(cust)
    orders = pd.DataFrame(
        {
            "id": np.arange(1, m + 1),
            "customer_id": cust,
            "number": np.char.add("SO-", np.arange(1, m + 1).astype(str)),
            "ordered_s": order_s,
            "total": np.round(rng.lognormal(6, 1, m), 2),
            "currency": "CNY",
            "status": np.where(rng.random(m) < 0.03, "cancelled", "paid"),
            "product_line": rng.choice(["Hardware", "Software", "Service", "Training"], m),
            "channel": rng.choice(["online", "store", "partner"], m),
        }
    )

    def children(k: int) -> np.ndarray:
        return rng.integers(1, n + 1, k)

    k = int(n * 0.3)
    deal_stage = rng.choice(DEAL_STAGES, k, p=[0.15, 0.15, 0.15, 0.1, 0.25, 0.2])
    d_created = rng.integers(0, SPAN_S - 86400 * 60, k)
    d_cust = children(k)
    deals = pd.DataFrame(
        {
            "id": np.arange(1, k + 1),
            "customer_id": d_cust,
            "owner_id": rng.choice(sales, k),
            "title": "Deal",
            "stage": deal_stage,
            "status": np.where(
                deal_stage == "won", "won", np.where(deal_stage == "lost", "lost", "open")
            ),
            "amount": np.round(rng.lognormal(8, 1, k), 2),
            "currency": "CNY",
            "created_s": d_created,
            "closed_s": np.where(
                np.isin(deal_stage, ["won", "lost"]),
                d_created + rng.integers(86400, 86400 * 60, k),
                -1,
            ),
        }
    )
    k = int(n * 0.2)
    t_created = rng.integers(0, SPAN_S - 86400 * 10, k)
    resolved = rng.random(k) < 0.8
    tickets = pd.DataFrame(
        {
            "id": np.arange(1, k + 1),
            "customer_id": children(k),
            "kind": rng.choice(["feedback", "complaint", "request"], k),
            "subject": "Ticket",
            "status": np.where(resolved, "closed", "open"),
            "priority": "normal",
            "created_s": t_created,
            "resolved_s": np.where(resolved, t_created + rng.integers(600, 86400 * 7, k), -1),
            "satisfaction": np.where(resolved & (rng.random(k) < 0.6), rng.integers(1, 6, k), 0),
        }
    )
    k = n
    interactions = pd.DataFrame(
        {
            "id": np.arange(1, k + 1),
            "customer_id": children(k),
            "user_id": rng.choice(sales, k),
            "kind": rng.choice(["call", "email", "meeting", "visit", "chat", "note"], k),
            "subject": "Contact",
            "occurred_s": rng.integers(0, SPAN_S, k),
        }
    )
    k = int(n * 0.1)
    tasks = pd.DataFrame(
        {
            "id": np.arange(1, k + 1),
            "customer_id": children(k),
            "assignee_id": rng.choice(sales, k),
            "title": "Follow up",
            "due_s": rng.integers(SPAN_S - 86400 * 200, SPAN_S + 86400 * 30, k),
            "done": rng.random(k) < 0.7,
        }
    )
    return customers, orders, deals, tickets, interactions, tasks


def _to_table(df: pd.DataFrame, dialect: str) -> tuple[list[str], pd.DataFrame]:
    """Rename the ``*_s`` second columns to timestamp text columns, add bookkeeping columns."""
    out = pd.DataFrame(index=df.index)
    for column in df.columns:
        values = df[column].to_numpy()
        if column.endswith("_s"):
            name = {
                "last_contact_s": "last_contact_at",
                "created_s": "created_at",
                "ordered_s": "ordered_at",
                "closed_s": "closed_at",
                "resolved_s": "resolved_at",
                "occurred_s": "occurred_at",
                "due_s": "due_at",
            }[column]
            stamps = _ts(np.maximum(values, 0), dialect)
            stamps[values < 0] = None
            out[name] = stamps
        elif column == "done":
            out["done_at"] = np.where(values, _ts(np.full(len(df), SPAN_S), dialect), None)
        elif column in ("owner_id", "team_id", "satisfaction"):
            out[column] = pd.array(np.where(values > 0, values, 0), dtype="Int64").astype(object)
            out.loc[values <= 0, column] = None
        else:
            out[column] = values
    stamp = _ts(np.array([SPAN_S]), dialect)[0]
    if "created_at" not in out.columns:
        out["created_at"] = stamp
    out["updated_at"] = stamp
    if "version" not in out.columns:
        out["version"] = 1
    return list(out.columns), out


def load(db: Database, n_customers: int, n_orders: int) -> dict[str, float]:
    timings: dict[str, float] = {}
    # benchmark accounts: argon2id with light parameters (as the test suite does)
    user_service._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    started = time.perf_counter()
    with db.transaction() as s:
        ensure_pipeline_stages(s)
        admin = user_service.create_user(
            s, actor=None, username="admin", role=Role.ADMIN, password=PASSWORD
        )
        teams = [user_service.create_team(s, actor=admin, name=f"Team {i}") for i in range(5)]
        sales, team_of = [], {}
        for i in range(20):
            team = teams[i % 5]
            u = user_service.create_user(
                s,
                actor=admin,
                username=f"sales{i}",
                role=Role.SALES,
                password=PASSWORD,
                team_id=team.id,
            )
            sales.append(u.id)
            team_of[u.id] = team.id
        user_service.create_user(
            s,
            actor=admin,
            username="manager",
            role=Role.MANAGER,
            password=PASSWORD,
            team_id=teams[0].id,
        )
        user_service.create_user(
            s, actor=admin, username="analyst", role=Role.ANALYST, password=PASSWORD
        )
    frames = generate(n_customers, n_orders, {"sales": sales, "team_of": team_of})
    timings["generate"] = time.perf_counter() - started
    names = ["customers", "orders", "deals", "tickets", "interactions", "tasks"]
    dialect = db.dialect
    started = time.perf_counter()
    if dialect == "sqlite":
        path = db.engine.url.database
        db.dispose()
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        # the report roll-up triggers are set aside during the load (row by row they would
        # take most of an hour) and the roll-ups refilled after it by their repair functions
        triggers = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'report_%'"
        ).fetchall()
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        for name, df in zip(names, frames, strict=True):
            columns, table = _to_table(df, dialect)
            sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            for start in range(0, len(table), 200_000):
                chunk = table.iloc[start : start + 200_000]
                conn.executemany(sql, chunk.itertuples(index=False, name=None))
            conn.commit()
        conn.commit()
        conn.close()
        timings["load"] = time.perf_counter() - started
        started = time.perf_counter()
        refill = Database(f"sqlite:///{path}")
        with refill.transaction() as s:
            _refill_rollups(s)
        refill.dispose()
        conn = sqlite3.connect(path)
        for _, sql in triggers:
            conn.execute(sql)
        conn.execute("ANALYZE")
        conn.commit()
        conn.close()
    else:
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            # no triggers during the load (the group-count triggers look up each row); the
            # roll-ups are refilled after it by their repair functions
            cursor.execute("SET session_replication_role = replica")
            for name, df in zip(names, frames, strict=True):
                columns, table = _to_table(df, dialect)
                for start in range(0, len(table), 500_000):
                    buffer = io.StringIO()
                    table.iloc[start : start + 500_000].to_csv(
                        buffer, index=False, header=False, na_rep="\\N", sep="\t"
                    )
                    with cursor.copy(
                        f"COPY {name} ({', '.join(columns)}) FROM STDIN WITH (FORMAT text)"
                    ) as copy:
                        copy.write(buffer.getvalue())
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT max(id) FROM {name}))"
                )
            raw.commit()
            cursor.execute("RESET session_replication_role")
            raw.commit()
        finally:
            raw.close()
        timings["load"] = time.perf_counter() - started
        started = time.perf_counter()
        with db.transaction() as s:
            s.execute(text("SET LOCAL session_replication_role = replica"))
            _refill_rollups(s)
        raw = db.engine.raw_connection()
        try:
            raw.driver_connection.autocommit = True
            raw.driver_connection.execute("VACUUM ANALYZE")
        finally:
            raw.close()
    timings["refill"] = time.perf_counter() - started
    return timings


def _refill_rollups(s) -> None:  # type: ignore[no-untyped-def]
    """Fill every report roll-up from the loaded orders (triggers off meanwhile)."""
    rebuild_order_rollups(s)
    rebuild_group_counts(s)
    rebuild_line_rollups(s)
    rebuild_group_activity(s)
    rebuild_customer_counts(s)


def time_reports(db: Database, username: str) -> dict[str, float]:
    with db.transaction() as s:
        actor = s.query(User).filter(User.username == username).one()
        _ = actor.team
        s.expunge(actor)
    out: dict[str, float] = {}
    extra = {
        "churn_risk": lambda s: reports.churn_risk(s, actor=actor, now=NOW),
        "rfm_scores (top 1000)": lambda s: reports.rfm_scores(s, actor=actor, now=NOW, limit=1000),
        "overdue_tasks": lambda s: reports.overdue_tasks(s, actor=actor, now=NOW),
        "ticket_resolution": lambda s: reports.ticket_resolution(s, actor=actor),
    }
    for key in reports.REPORTS:
        with db.transaction() as s:
            started = time.perf_counter()
            reports.run_report(s, actor=actor, key=key, now=NOW)
            out[key] = time.perf_counter() - started
    for key, fn in extra.items():
        with db.transaction() as s:
            started = time.perf_counter()
            fn(s)
            out[key] = time.perf_counter() - started
    with db.transaction() as s:
        started = time.perf_counter()
        reports.build_dashboard(s, actor=actor, now=NOW)
        out["WHOLE DASHBOARD"] = time.perf_counter() - started
    return out


#: The triggers of each report revision on the tables writers touch (by name prefix).
NEW_TRIGGERS = ("report_lines_orders_", "report_group_lines_", "report_group_activity_")


def _drop_triggers(db: Database, keep: str) -> None:
    """Drop report triggers: ``keep="none"`` all of them, ``"older"`` those of revisions
    0042-0043 (``NEW_TRIGGERS``), ``"all"`` none."""
    if keep == "all":
        return
    with db.transaction() as s:
        if db.dialect == "sqlite":
            found = s.execute(
                text("SELECT name, NULL FROM sqlite_master WHERE type = 'trigger'")
            ).all()
        else:
            found = s.execute(
                text(
                    "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
                )
            ).all()
        for name, table in found:
            if not name.startswith("report_"):
                continue
            if keep == "older" and not name.startswith(NEW_TRIGGERS):
                continue
            s.execute(text(f"DROP TRIGGER {name}" + (f" ON {table}" if table else "")))


def _written(table: str, rng: np.random.Generator, stamp: str, k: int, first: int) -> list:
    """``k`` rows to insert into ``orders`` or ``interactions`` (customers 1-5,000)."""
    customers = rng.integers(1, 5_001, k)
    if table == "interactions":
        users = rng.integers(2, 22, k)
        return [
            (int(c), int(u), "call", "", stamp, 1, stamp, stamp)
            for c, u in zip(customers, users, strict=True)
        ]
    totals = np.round(rng.lognormal(6, 1, k), 2)
    lines = rng.choice(["Hardware", "Software", "Service"], k)
    return [
        (int(c), f"W-{first + i}", stamp, float(t), "CNY", "paid", str(p), 1, stamp, stamp)
        for i, (c, t, p) in enumerate(zip(customers, totals, lines, strict=True))
    ]


def write_cost(backend: str, url: str, bulk: int, single: int) -> dict[str, dict[str, float]]:
    """Seconds to write orders and interactions into a fresh database of 5,000 customers with
    no report triggers, the triggers before revision 0042, and all of them: ``bulk`` rows in
    one transaction (one ``executemany``), ``single`` rows one per transaction."""
    out: dict[str, dict[str, float]] = {}
    for keep in ("none", "older", "all"):
        if backend == "sqlite":
            path = make_url(url).database
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            name = make_url(url).database
            admin = create_engine(
                make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT"
            )
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
        db = Database(url)
        db.init()
        load(db, 5_000, 25_000)
        db = Database(url)
        _drop_triggers(db, keep)
        rng = np.random.default_rng(3)
        stamp = "2026-06-01 10:00:00" + (".000000" if backend == "sqlite" else "+00")
        mark = "?" if backend == "sqlite" else "%s"
        order_sql = (
            "INSERT INTO orders (customer_id, number, ordered_at, total, currency, status,"
            f" product_line, version, created_at, updated_at) VALUES ({', '.join([mark] * 10)})"
        )
        contact_sql = (
            "INSERT INTO interactions (customer_id, user_id, kind, subject, occurred_at,"
            f" version, created_at, updated_at) VALUES ({', '.join([mark] * 8)})"
        )
        times: dict[str, float] = {}
        raw = db.engine.raw_connection()
        try:
            cursor = raw.cursor()
            for label, sql in (("orders", order_sql), ("interactions", contact_sql)):
                batch = _written(label, rng, stamp, bulk, 0)
                started = time.perf_counter()
                cursor.executemany(sql, batch)
                raw.commit()
                times[f"{label}: {bulk:,} in one transaction (s)"] = time.perf_counter() - started
                batch = _written(label, rng, stamp, single, bulk)
                started = time.perf_counter()
                for row in batch:
                    cursor.execute(sql, row)
                    raw.commit()
                elapsed = time.perf_counter() - started
                times[f"{label}: one per transaction (ms each)"] = elapsed / single * 1000
        finally:
            raw.close()
        db.dispose()
        out[keep] = times
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=5_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--sqlite-path", default="/tmp/crm_reports_bench.sqlite3")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument(
        "--pg-database", default="crm_reports_bench", help="PostgreSQL database to (re)create"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep an existing database (its schema is upgraded to the newest revision)",
    )
    parser.add_argument(
        "--write-cost",
        action="store_true",
        help="instead: time order and interaction writes with and without the report triggers",
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if args.write_cost:
        for backend in backends:
            url = (
                "sqlite:////tmp/crm_reports_writecost.sqlite3"
                if backend == "sqlite"
                else make_url(args.postgres_url)
                .set(database="crm_reports_writecost")
                .render_as_string(hide_password=False)
            )
            bulk = 50_000 if backend == "sqlite" else 5_000
            cost = write_cost(backend, url, bulk, 500)
            print(f"\n{backend}: report triggers none / before 0042 / all (5,000 customers)\n")
            print("| write | none | before 0042 | all |\n|---|---:|---:|---:|")
            for key in cost["none"]:
                cells = " | ".join(f"{cost[k][key]:.2f}" for k in ("none", "older", "all"))
                print(f"| {key} | {cells} |")
        return
    results: dict[str, dict[str, dict[str, float]]] = {}
    for backend in backends:
        if backend == "sqlite":
            path = Path(args.sqlite_path)
            fresh = not (args.reuse and path.exists())
            if fresh:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        else:
            name = args.pg_database
            admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                exists = conn.scalar(
                    text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                )
                fresh = not (args.reuse and exists)
                if fresh:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = (
                make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False)
            )
        db = Database(url)
        if fresh:
            db.init()
            timings = load(db, args.customers, args.orders)
            db = Database(url)
            print(
                f"[{backend}] generated in {timings['generate']:.1f} s, loaded in "
                f"{timings['load']:.1f} s, roll-ups filled in {timings['refill']:.1f} s",
                flush=True,
            )
        else:
            started = time.perf_counter()
            upgrade(db.engine)  # new roll-up revisions fill themselves from the orders
            print(
                f"[{backend}] schema upgraded in {time.perf_counter() - started:.1f} s", flush=True
            )
        results[backend] = {
            "admin": time_reports(db, "admin"),
            "manager": time_reports(db, "manager"),
        }
        db.dispose()
    limits = {"sqlite": 5.0, "postgresql": 2.0}
    print(f"\nReports on {args.customers:,} customers and about {args.orders:,} orders (seconds)\n")
    keys = list(next(iter(results.values()))["admin"])
    head = "| report | " + " | ".join(f"{b} admin | {b} manager" for b in results) + " |"
    print(head)
    print("|" + "---|" * (1 + 2 * len(results)))
    for key in keys:
        cells = []
        for backend, by_user in results.items():
            limit = 5.0 if key == "WHOLE DASHBOARD" else limits[backend]
            for who in ("admin", "manager"):
                value = by_user[who][key]
                cells.append(f"{value:.2f}{' !' if value > limit else ''}")
        print(f"| {key} | " + " | ".join(cells) + " |")
    print("\n'!' marks a figure above its aim (report: 2 s PostgreSQL, 5 s SQLite; dashboard: 5 s)")


if __name__ == "__main__":
    main()
