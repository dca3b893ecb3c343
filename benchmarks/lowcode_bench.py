"""Custom-module benchmark: a module with 1,000,000 records (``--records``), on SQLite and
PostgreSQL.

Measures, through the same services the panel calls:
- one list page (50 records, keyset) with a filter on a custom choice field, the next page by
  cursor, two filters (choice + money range), no filter, and a quick search;
- a grouped report: count by region, and sum of a money field by month and region;
for an admin and for a sales user (whose scope is the records linked to their own customers).

    .venv/bin/python benchmarks/lowcode_bench.py                          # 1,000,000 records
    .venv/bin/python benchmarks/lowcode_bench.py --records 200000 --backend postgresql

The module and 2,000 customers are made through the services; the records and their typed
value rows are then written set-based (SQLite ``executemany``, PostgreSQL ``COPY``) in the form
``crm_core.lowcode.records`` writes them. Prints median and 95th percentile in ms.
Aims (issue 8): list page p95 < 200 ms, report < 3 s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from crm_core import customers as customer_svc  # noqa: E402
from crm_core import users as user_service  # noqa: E402
from crm_core.db import Database  # noqa: E402
from crm_core.lowcode import modules, records  # noqa: E402
from crm_core.lowcode import report_builder as rb  # noqa: E402
from crm_core.lowcode.records import Condition, RecordFilter  # noqa: E402
from crm_core.models import CustomModule, Role, User  # noqa: E402

REGIONS = [f"Region {i:02d}" for i in range(20)]
SALES = 8
CUSTOMERS = 2000
START = datetime(2024, 1, 1, tzinfo=UTC)


def setup(db: Database) -> tuple[int, list[tuple[int, int]]]:
    """Users, customers and the module through the services; returns the module id and
    ``(customer id, owner id)`` pairs."""
    with db.transaction() as s:
        admin = user_service.create_user(
            s, actor=None, username="admin", role=Role.ADMIN, password="bench-password-1"
        )
        team = user_service.create_team(s, actor=admin, name="Sales")
        sales = [
            user_service.create_user(
                s,
                actor=admin,
                username=f"sales{i}",
                role=Role.SALES,
                password="bench-password-1",
                team_id=team.id,
            )  # fmt: skip
            for i in range(SALES)
        ]
        pairs = []
        for i in range(CUSTOMERS):
            owner = sales[i % SALES]
            c = customer_svc.create_customer(
                s, actor=admin, data={"name": f"Customer {i}", "owner_id": owner.id,
                                      "lifecycle_stage": "customer"},
            )  # fmt: skip
            pairs.append((c.id, owner.id))
        module = modules.define_module(
            s, actor=admin, key="visits", name_en="Site visits", name_zh="现场拜访",
            fields=[
                {"key": "title", "label_en": "Title", "field_type": "text", "required": True},
                {"key": "region", "label_en": "Region", "field_type": "choice", "choices": REGIONS},
                {"key": "amount", "label_en": "Amount", "field_type": "money"},
                {"key": "visited", "label_en": "Visited", "field_type": "date"},
                {"key": "customer", "label_en": "Customer", "field_type": "customer"},
            ],
        )  # fmt: skip
        return module.id, pairs


def generate(n: int, module_id: int, pairs: list[tuple[int, int]], seed: int) -> tuple[list, list]:
    rng = random.Random(seed)
    recs, vals = [], []
    vid = 0
    for rid in range(1, n + 1):
        cid, owner = pairs[rng.randrange(len(pairs))]
        region = REGIONS[rng.randrange(len(REGIONS))]
        amount = f"{rng.randrange(1, 100_000) / 100:.2f}"
        visited = (START + timedelta(days=rng.randrange(730))).date().isoformat()
        stamp = START + timedelta(seconds=rng.randrange(730 * 86400))
        title = f"Visit {rid}"
        data = {"title": title, "region": region, "amount": amount, "visited": visited,
                "customer": cid}  # fmt: skip
        search = f"{title} {region}".lower()
        recs.append((rid, module_id, json.dumps(data), title, search, cid, owner, stamp, stamp, 1))
        for key, tv, nv in (("title", title, None), ("region", region, None),
                            ("amount", None, float(amount)), ("visited", visited, None),
                            ("customer", None, float(cid))):  # fmt: skip
            vid += 1
            vals.append((vid, module_id, rid, key, tv, nv))
    return recs, vals


REC_COLS = ("id, module_id, data, display_name, search_text, customer_id, created_by_id, "
            "created_at, updated_at, version")  # fmt: skip
VAL_COLS = "id, module_id, record_id, field_key, text_value, num_value"


def load(db: Database, recs: list, vals: list) -> None:
    if db.dialect == "sqlite":
        path = db.engine.url.database
        db.dispose()
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA synchronous=OFF")

        def ts(v: datetime) -> str:
            return v.strftime("%Y-%m-%d %H:%M:%S.%f")

        conn.executemany(
            f"INSERT INTO module_records ({REC_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
            ((*r[:7], ts(r[7]), ts(r[8]), r[9]) for r in recs),
        )
        conn.executemany(f"INSERT INTO module_values ({VAL_COLS}) VALUES (?,?,?,?,?,?)", vals)
        conn.commit()
        conn.execute("ANALYZE")
        conn.commit()
        conn.close()
        return
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for table, cols, rows in (("module_records", REC_COLS, recs),
                                  ("module_values", VAL_COLS, vals)):  # fmt: skip
            for start in range(0, len(rows), 500_000):
                buffer = io.StringIO()
                for row in rows[start : start + 500_000]:
                    buffer.write("\t".join(
                        "\\N" if v is None else (v.isoformat() if isinstance(v, datetime)
                                                 else str(v).replace("\\", "\\\\"))
                        for v in row) + "\n")  # fmt: skip
                with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    copy.write(buffer.getvalue())
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT max(id) FROM {table}))")  # fmt: skip
        raw.commit()
        raw.driver_connection.autocommit = True
        raw.driver_connection.execute("VACUUM ANALYZE")
    finally:
        raw.close()


def timed(db: Database, fn: Callable[[Any], Any], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        with db.transaction() as s:
            started = time.perf_counter()
            fn(s)
            out.append((time.perf_counter() - started) * 1000)
    return out


def measure(db: Database, username: str, repeat: int) -> dict[str, list[float]]:
    with db.transaction() as s:
        actor = s.scalar(select(User).where(User.username == username))
        _ = actor.team
        s.expunge(actor)
    region = Condition("region", "eq", "Region 03")

    def page(filters: RecordFilter, cursor: str | None = None) -> Callable[[Any], Any]:
        return lambda s: records.list_records(
            s, actor=actor, module_key="visits", filters=filters, cursor=cursor, limit=50
        )

    with db.transaction() as s:
        first = page(RecordFilter(conditions=[region]))(s)
    cases: dict[str, Callable[[Any], Any]] = {
        "list: filter region (page 1)": page(RecordFilter(conditions=[region])),
        "list: filter region (page 2, cursor)": page(
            RecordFilter(conditions=[region]), first.next_cursor
        ),  # fmt: skip
        "list: region + amount >= 900": page(
            RecordFilter(conditions=[region, Condition("amount", "gte", 900)])
        ),
        "list: no filter": page(RecordFilter()),
        "list: search 'visit 4242'": page(RecordFilter(query="visit 4242")),
    }
    out = {k: timed(db, fn, repeat) for k, fn in cases.items()}
    reports = {
        "report: count by region": rb.ReportDefinition(
            source="module:visits", group_by=[rb.Grouping("region")]
        ),
        "report: sum amount by month x region": rb.ReportDefinition(
            source="module:visits",
            measure="sum",
            measure_field="amount",
            group_by=[rb.Grouping("visited", "month"), rb.Grouping("region")],
        ),  # fmt: skip
    }
    for key, definition in reports.items():
        out[key] = timed(
            db, lambda s, d=definition: rb.run_definition(s, actor=actor, definition=d), 3
        )
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--sqlite-path", default="/tmp/crm_lowcode_bench.sqlite3")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, dict[str, dict[str, list[float]]]] = {}
    for backend in backends:
        if backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{args.sqlite_path}{suffix}").unlink(missing_ok=True)
            url = f"sqlite:///{args.sqlite_path}"
        else:
            name = "crm_lowcode_bench"
            admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = (
                make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False)
            )
        db = Database(url)
        db.init()
        started = time.perf_counter()
        module_id, pairs = setup(db)
        recs, vals = generate(args.records, module_id, pairs, args.seed)
        load(db, recs, vals)
        del recs, vals
        db = Database(url)
        with db.transaction() as s:
            assert s.scalar(select(CustomModule.id).where(CustomModule.key == "visits"))
        print(f"[{backend}] {args.records:,} records built in {time.perf_counter() - started:.0f} s",
              flush=True)  # fmt: skip
        results[backend] = {u: measure(db, u, args.repeat) for u in ("admin", "sales1")}
        db.dispose()
    print(f"\nCustom module with {args.records:,} records: median / p95 in ms "
          f"({args.repeat} runs per list case, 3 per report)\n")  # fmt: skip
    cols = [(b, u) for b in results for u in ("admin", "sales1")]
    print("| case | " + " | ".join(f"{b} {u}" for b, u in cols) + " |")
    print("|---" * (1 + len(cols)) + "|")
    for key in next(iter(results.values()))["admin"]:
        cells = [
            f"{statistics.median(results[b][u][key]):.1f} / {p95(results[b][u][key]):.1f}"
            for b, u in cols
        ]
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
