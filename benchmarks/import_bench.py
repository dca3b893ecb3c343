"""Import benchmark: generated customers from a CSV file through preview and commit.

    .venv/bin/python benchmarks/import_bench.py                      # 100,000 rows, SQLite
    .venv/bin/python benchmarks/import_bench.py --rows 100000 1000000
    .venv/bin/python benchmarks/import_bench.py --url postgresql+psycopg://postgres@127.0.0.1/test
    .venv/bin/python benchmarks/import_bench.py --rows 1000000 --phases commit re-import

Each phase (preview, commit, re-import of the same file) runs in a fresh process so its peak
memory (resident set size, workers included) is its own. Aims (issue 5): 100,000 rows validated
and committed in under 15 s on SQLite with peak memory under 1 GB; 1,000,000 rows in under
3 minutes with memory that does not grow with the file.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from queue import Empty

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEADER = ["姓名", "手机", "电话", "邮箱", "公司", "职位", "行业", "来源", "省份", "城市", "区",
          "地址", "邮编", "生日", "阶段", "等级", "标签"]  # fmt: skip
COLUMNS = ["name", "phone", "phone2", "email", "company", "position", "industry", "source",
           "province", "city", "district", "street", "postcode", "birthday", "lifecycle_stage",
           "value_tier", "tags"]  # fmt: skip
PART = 100_000
PHASES = ("preview", "commit", "re-import")


def write_csv(path: Path, rows: int, encoding: str) -> None:
    """The file a user would bring: Chinese headers, blanks, phones in many spellings."""
    from crm_core.datagen import generate

    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for part, start in enumerate(range(0, rows, PART)):
            n = min(PART, rows - start)
            frame = generate(n, seed=1000 + part, duplicate_rate=0.02, history=False).customers
            frame = frame[COLUMNS].astype(object).where(frame[COLUMNS].notna(), "")
            # make e-mails unique across parts (each part is seeded on its own)
            frame["email"] = [
                e.replace("@", f".p{part}@", 1) if e else e for e in frame["email"].tolist()
            ]
            writer.writerows(frame.itertuples(index=False, name=None))


def _phase(url: str, path: str, phase: str, queue: multiprocessing.Queue) -> None:
    from sqlalchemy import select

    from crm_core.db import Database
    from crm_core.importing import ImportOptions, run_import
    from crm_core.models import User

    db = Database(url)
    started = time.perf_counter()
    with db.transaction() as s:
        actor = s.scalar(select(User).where(User.username == "steward"))
        report = run_import(
            s,
            actor=actor,
            source=Path(path),
            file_name="bench.csv",
            options=ImportOptions(all_or_nothing=False, check_duplicates=True),
            dry_run=phase == "preview",
        )
    seconds = time.perf_counter() - started
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    own, workers = me.ru_maxrss, kids.ru_maxrss
    cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    queue.put(
        {
            "phase": phase,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "peak_mb": own / 1024,
            "worker_peak_mb": workers / 1024,
            **report.counts(),
        }
    )
    db.dispose()


def run_phase(url: str, path: Path, phase: str) -> dict:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_phase, args=(url, str(path), phase, queue))
    proc.start()
    while True:  # a phase that fails (a refused file) ends its process without a result
        try:
            result = queue.get(timeout=1)
            break
        except Empty:
            if not proc.is_alive():
                raise SystemExit(f"the {phase} phase failed (exit code {proc.exitcode})") from None
    proc.join()
    return result


def fresh_database(url: str | None, folder: Path) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from crm_core import users
    from crm_core.db import Database
    from crm_core.models import Role

    if url:
        name = f"crm_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        target = make_url(url).set(database=name).render_as_string(hide_password=False)
    else:
        target = f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:6]}.sqlite3'}"
    db = Database(target)
    db.init()
    with db.transaction() as s:
        boss = users.create_user(s, actor=None, username="admin", role=Role.ADMIN,
                                 password="bench-password-123")  # fmt: skip
        users.create_user(s, actor=boss, username="steward", role=Role.DATA_STEWARD,
                          password="bench-password-123")  # fmt: skip
    db.dispose()
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--url", help="PostgreSQL server URL (default: a SQLite file)")
    parser.add_argument("--encoding", default="utf-8-sig", help="CSV encoding (gb18030 …)")
    parser.add_argument("--keep", action="store_true", help="Keep the files in the temp folder")
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=PHASES,
        default=list(PHASES),
        help="Phases to run, in this order (a re-import needs the commit before it)",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="crm-import-bench-"))
    results = []
    for rows in args.rows:
        path = folder / f"customers-{rows}.csv"
        t0 = time.perf_counter()
        write_csv(path, rows, args.encoding)
        print(
            f"generated {rows:,} rows ({path.stat().st_size / 1e6:.0f} MB) in "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        url = fresh_database(args.url, folder)
        for phase in [p for p in PHASES if p in args.phases]:
            result = run_phase(url, path, phase)
            result["rows"] = rows
            results.append(result)
            print(json.dumps(result), flush=True)
        if not args.keep:
            path.unlink()
            if url.startswith("sqlite"):
                for suffix in ("", "-wal", "-shm"):
                    Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    backend = "PostgreSQL" if args.url else "SQLite"
    load = os.getloadavg()[0]
    print(
        f"\nimport benchmark on {backend}, {os.cpu_count()} cores (load average {load:.1f}), "
        f"file {args.encoding}"
    )
    print(
        "| rows | phase | seconds | CPU s | rows/s | peak RSS MB (workers) | created | updated | unchanged | merged | invalid |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['rows']:,} | {r['phase']} | {r['seconds']:.1f} | {r['cpu_seconds']:.1f} "
            f"| {r['rows'] / r['seconds']:,.0f} "
            f"| {r['peak_mb']:.0f} ({r['worker_peak_mb']:.0f}) | {r['created']:,} | "
            f"{r['updated']:,} | {r['unchanged']:,} | {r['merged']:,} | {r['invalid']:,} |"
        )


if __name__ == "__main__":
    main()
