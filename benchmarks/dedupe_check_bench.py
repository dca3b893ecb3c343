"""Benchmark of the database side of de-duplication: keying stored customers, the
single-record duplicate check (``crm_core.dedupe.store.check_customer``) and a full scan.

Loads generated customers (the cached parquet files of ``dedupe_bench.py``) into a fresh
SQLite database (or ``--url``), keys them with ``refresh_keys`` (what a scan does for records
written in bulk), then checks ``--checks`` sampled records as if they were typed into the
create form again, and prints the latency percentiles and how often the planted duplicate
was found.

    .venv/bin/python benchmarks/dedupe_check_bench.py --sizes 100000 1000000
    .venv/bin/python benchmarks/dedupe_check_bench.py --sizes 100000 --scan
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dedupe_bench import dataset  # noqa: E402

from crm_core import users  # noqa: E402
from crm_core.db import Database  # noqa: E402
from crm_core.dedupe import review, store  # noqa: E402
from crm_core.models import Customer, Role  # noqa: E402


def load(db: Database, frame: pd.DataFrame) -> None:
    def text(value: object) -> str | None:
        return (
            None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
        )

    with db.engine.begin() as conn:
        for start in range(0, len(frame), 50_000):
            part = frame.iloc[start : start + 50_000]
            conn.execute(
                insert(Customer.__table__),
                [
                    {
                        "id": int(r.id),
                        "kind": "person",
                        "name": text(r.name) or "?",
                        "name_key": "",
                        "search_text": "",
                        "company_name": text(r.company),
                        "email": text(r.email),
                        "phone": text(r.phone),
                        "city": text(r.city),
                        "street": text(r.address),
                        "lifecycle_stage": "lead",
                        "custom": {},
                        "version": 1,
                    }
                    for r in part.itertuples(index=False)
                ],
            )


def run(size: int, args: argparse.Namespace) -> dict[str, float]:
    frame = pd.read_parquet(dataset(size, args.seed))
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(args.url or f"sqlite:///{tmp}/bench.sqlite3")
        db.init()
        with db.transaction() as s:
            actor = users.create_user(
                s, actor=None, username="bench", role=Role.ADMIN, password="bench-password-1"
            )
            s.flush()
            s.expunge(actor)
        started = time.perf_counter()
        load(db, frame)
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        with db.transaction() as s:
            keyed = store.refresh_keys(s)
        keying = time.perf_counter() - started
        db.analyze()

        rng = np.random.default_rng(args.seed)
        truth = frame["truth_cluster"].to_numpy()
        sizes = pd.Series(truth).map(pd.Series(truth).value_counts()).to_numpy()
        sample = rng.choice(np.flatnonzero(sizes > 1), args.checks, replace=False)
        latencies, found = [], 0
        with db.session() as s:
            for i in sample:
                row = frame.iloc[int(i)]
                data = {
                    k: (None if pd.isna(row[c]) else row[c])
                    for k, c in (
                        ("name", "name"),
                        ("company_name", "company"),
                        ("email", "email"),
                        ("phone", "phone"),
                        ("city", "city"),
                        ("street", "address"),
                    )
                }
                t0 = time.perf_counter()
                hits = store.check_customer(s, actor=actor, data=data, exclude_id=int(row["id"]))
                latencies.append((time.perf_counter() - t0) * 1000)
                twins = set(frame["id"][truth == truth[int(i)]]) - {int(row["id"])}
                found += bool(twins & {h["id"] for h in hits})
        lat = np.array(latencies)
        result = {
            "size": size,
            "load_s": loaded,
            "keyed": keyed,
            "keying_s": keying,
            "p50_ms": float(np.percentile(lat, 50)),
            "p95_ms": float(np.percentile(lat, 95)),
            "max_ms": float(lat.max()),
            "found": found / len(sample),
        }
        if args.scan:
            started = time.perf_counter()
            with db.transaction() as s:
                report = review.scan(s, actor=actor)
            result["scan_s"] = time.perf_counter() - started
            result["scan_pairs"] = report.pairs
        db.dispose()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--checks", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--url", default=None, help="an empty database instead of a SQLite file")
    parser.add_argument("--scan", action="store_true", help="also time a full scan")
    args = parser.parse_args(argv)
    print("\nSingle-record duplicate check against stored customers (SQLite unless --url)\n")
    header = (
        "| customers | load s | keying s | keys/s | check p50 ms | p95 ms | max ms | twin found |"
    )
    if args.scan:
        header += " scan s | pairs |"
    print(header)
    print("|" + "|".join("---" for _ in range(header.count("|") - 1)) + "|")
    for size in args.sizes:
        r = run(size, args)
        line = (
            f"| {r['size']:,} | {r['load_s']:.1f} | {r['keying_s']:.1f} | "
            f"{r['keyed'] / r['keying_s']:,.0f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
            f"{r['max_ms']:.1f} | {r['found']:.1%} |"
        )
        if args.scan:
            line += f" {r['scan_s']:.1f} | {r['scan_pairs']:,} |"
        print(line, flush=True)


if __name__ == "__main__":
    main()
