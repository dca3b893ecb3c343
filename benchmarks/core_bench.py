"""Foundation benchmark: bulk insert of generated customers through the services, then
quick-search latency over 200 mixed queries (name part, pinyin, phone in another format).

    .venv/bin/python benchmarks/core_bench.py --customers 100000
    .venv/bin/python benchmarks/core_bench.py --customers 1000000
    .venv/bin/python benchmarks/core_bench.py --customers 100000 --database-url postgresql+psycopg://...

Prints one table row per run. Aims (issue 2): 100,000 customers stored in under 10 s on SQLite,
search p95 under 50 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import phonenumbers
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crm_core.bulk import bulk_create_customers
from crm_core.customers import search_customers
from crm_core.datagen import generate
from crm_core.db import Database
from crm_core.users import get_system_user


def _rows(frame) -> list[dict]:  # type: ignore[no-untyped-def]
    out = []
    for rec in frame.to_dict("records"):
        phones = [p for p in (rec.get("phone"), rec.get("phone2")) if isinstance(p, str) and p]
        email = rec.get("email")
        out.append(
            {
                "name": rec["name"],
                "kind": rec["kind"],
                "phones": phones,
                "emails": [email] if isinstance(email, str) and email else [],
                "company_name": rec["company"] if isinstance(rec.get("company"), str) else None,
                "city": rec["city"] if isinstance(rec.get("city"), str) else None,
                "country": rec["country"] if isinstance(rec.get("country"), str) else None,
            }
        )
    return out


def _queries(rows: list[dict], n: int, rng: random.Random) -> list[tuple[str, str]]:
    from crm_core.normalize import has_cjk, pinyin_syllables

    queries: list[tuple[str, str]] = []
    while len(queries) < n:
        row = rng.choice(rows)
        kind = ("name", "pinyin", "phone")[len(queries) % 3]
        name = row["name"]
        if kind == "name":
            if has_cjk(name):
                queries.append((kind, name[:2] if len(name) <= 3 else name[1:4]))
            else:
                word = max(name.replace(",", " ").split(), key=len)
                queries.append((kind, word[:5]))
        elif kind == "pinyin":
            if not has_cjk(name):
                continue
            syllables = pinyin_syllables(name)
            queries.append((kind, " ".join(syllables[:2])))
        else:
            if not row["phones"]:
                continue
            try:
                number = phonenumbers.parse(row["phones"][0], row.get("country") or "CN")
            except phonenumbers.NumberParseException:
                continue
            fmt = rng.choice(
                [
                    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                    phonenumbers.PhoneNumberFormat.NATIONAL,
                ]
            )
            queries.append((kind, phonenumbers.format_number(number, fmt)))
    return queries


def run(n: int, url: str | None, seed: int, keep: Path | None = None) -> dict[str, float]:
    tmp = None
    admin_engine = None
    if keep is not None:
        keep.unlink(missing_ok=True)
        url = f"sqlite:///{keep}"
    elif url is None:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
    elif url.startswith("postgresql"):
        name = f"crm_bench_{uuid.uuid4().hex[:8]}"
        admin_engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(url).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    db.init()
    t0 = time.perf_counter()
    data = generate(n, seed=seed, history=False)
    rows = _rows(data.customers)
    t_gen = time.perf_counter() - t0

    t0 = time.perf_counter()
    with db.transaction() as s:
        actor = get_system_user(s)
        result = bulk_create_customers(s, actor=actor, rows=rows, skip_invalid=True, source="bench")
    db.analyze()
    t_insert = time.perf_counter() - t0

    rng = random.Random(seed)
    queries = _queries(rows, 200, rng)
    latencies: dict[str, list[float]] = {"name": [], "pinyin": [], "phone": []}
    found = 0
    with db.transaction() as s:
        actor = get_system_user(s)
        search_customers(s, actor=actor, query="warm up")
        for kind, q in queries:
            t0 = time.perf_counter()
            hits = search_customers(s, actor=actor, query=q, limit=50)
            latencies[kind].append((time.perf_counter() - t0) * 1000)
            found += bool(hits)
    every = sorted(x for v in latencies.values() for x in v)
    db.dispose()
    if admin_engine is not None:
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    if tmp is not None:
        tmp.cleanup()

    def p95(values: list[float]) -> float:
        return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]

    return {
        "customers": len(result.ids),
        "generate_s": t_gen,
        "insert_s": t_insert,
        "rows_per_s": len(result.ids) / t_insert,
        "search_median_ms": statistics.median(every),
        "search_p95_ms": p95(every),
        **{f"{k}_p95_ms": p95(v) for k, v in latencies.items() if v},
        "queries_with_hits": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--customers", type=int, nargs="+", default=[100_000])
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL server URL (default: a temporary SQLite file)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="keep the SQLite database here")
    args = parser.parse_args()
    backend = "postgresql" if args.database_url else "sqlite"
    header = (
        f"{'backend':<10} {'customers':>10} {'insert s':>9} {'rows/s':>9} {'search med ms':>14} "
        f"{'search p95 ms':>14} {'name p95':>9} {'pinyin p95':>11} {'phone p95':>10} {'hits':>5}"
    )
    print(header)
    print("-" * len(header))
    for n in args.customers:
        r = run(n, args.database_url, args.seed, args.keep)
        print(
            f"{backend:<10} {r['customers']:>10,} {r['insert_s']:>9.1f} {r['rows_per_s']:>9,.0f} "
            f"{r['search_median_ms']:>14.2f} {r['search_p95_ms']:>14.2f} {r['name_p95_ms']:>9.2f} "
            f"{r.get('pinyin_p95_ms', 0):>11.2f} {r['phone_p95_ms']:>10.2f} {r['queries_with_hits']:>5}"
        )


if __name__ == "__main__":
    main()
