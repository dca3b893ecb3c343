"""Benchmark of ``crm_core.dedupe.find_duplicates`` against Splink 4 (DuckDB).

Generates customers with planted duplicates (``crm_core.datagen``, ground truth in
``truth_cluster``) at each size, runs both tools on the same rows, each in a fresh
subprocess, and prints pairwise precision, recall and F1 of their clusters against the
truth, wall time and CPU time of the de-duplication call (CPU summed over threads; on a
busy machine it is the steadier figure) and peak memory (maximum resident set size of the
subprocess, input data included), with the ratios between the tools.

    .venv/bin/python benchmarks/dedupe_bench.py                       # 10k, 100k, 1M
    .venv/bin/python benchmarks/dedupe_bench.py --sizes 10000 100000 --splink-sizes 100000

Splink is an optional benchmark dependency (``pip install -e .[bench]``: splink, duckdb);
without it only this library's figures are printed. Generated data is cached under
``benchmarks/out/`` (git-ignored).

Splink set-up (chosen to be fair, after trying a few): inputs lower-cased with punctuation
removed and phones reduced to their last 11 digits; comparisons ``NameComparison(name)``,
``EmailComparison(email)``, ``LevenshteinAtThresholds(phone, 1)``, ``ExactMatch(city)`` with
term frequencies, ``JaroWinklerAtThresholds(address, [0.95, 0.85])``; blocking on phone, on
email, on name + city and on address + city; the prior from phone/email rules (recall 0.6),
``u`` from 1e6 random pairs, ``m`` by EM blocked on phone and on name + city; clusters at
match probability 0.95 (the best of 0.8 / 0.95 / 0.99 on 100,000 customers). Adding a
company comparison drops Splink's precision to about 0.26: colleagues share the company,
its address and its city, which an independence model counts three times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
COLUMNS = ["id", "name", "company", "email", "phone", "city", "address", "truth_cluster"]


# -- data -----------------------------------------------------------------------------------


def dataset(n: int, seed: int) -> Path:
    """Path of a parquet file of ``n`` generated customers (made once, then reused)."""
    path = OUT / f"customers_{n}_{seed}.parquet"
    if not path.exists():
        from crm_core.datagen import generate

        OUT.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        customers = generate(n, seed=seed, history=False).customers
        frame = customers.rename(columns={"street": "address"})[COLUMNS]
        frame.to_parquet(path, index=False)
        took = time.perf_counter() - started
        print(f"  generated {n:,} customers in {took:.0f}s -> {path.name}", flush=True)
    return path


def pairwise_scores(truth: np.ndarray, found: np.ndarray) -> dict[str, float]:
    """Pairwise precision, recall and F1 of the clustering ``found`` against ``truth``."""

    def pairs(labels: np.ndarray) -> int:
        counts = np.bincount(pd.factorize(labels)[0]).astype(np.int64)
        return int((counts * (counts - 1) // 2).sum())

    both = pd.factorize(pd.Series(truth).astype(str) + "|" + pd.Series(found).astype(str))[0]
    hits, predicted, actual = pairs(both), pairs(found), pairs(truth)
    precision = hits / predicted if predicted else 1.0
    recall = hits / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_pairs": actual}


# -- the tools, each run in a worker process ---------------------------------------------------


def run_ours(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    from crm_core.dedupe import DedupeSettings, find_duplicates

    # --processes: normalise in that many forked processes (DuckDB under Splink uses a thread
    # per core by default, so 2 on this 2-core machine is the like-for-like setting)
    settings = DedupeSettings(processes=int(os.environ.get("DEDUPE_BENCH_PROCESSES", "1")))
    result = find_duplicates(frame.drop(columns="truth_cluster"), id_column="id", settings=settings)
    found = result.clusters.set_index("id").loc[frame["id"], "cluster_id"].to_numpy()
    return found, {"candidate_pairs": result.stats["candidate_pairs"]}


def _splink_input(frame: pd.DataFrame) -> pd.DataFrame:
    def clean(values: pd.Series) -> pd.Series:
        text = values.astype("string").str.lower()
        text = text.str.replace(r"[^\w@.+ ]+", " ", regex=True)
        text = text.str.replace(r"\s+", " ", regex=True).str.strip()
        return text.replace("", pd.NA)

    digits = frame["phone"].astype("string").str.replace(r"\D", "", regex=True)
    out = pd.DataFrame(
        {
            "unique_id": frame["id"].astype("int64"),
            "name": clean(frame["name"]),
            "email": frame["email"].astype("string").str.lower().str.strip(),
            "phone": digits.str[-11:].replace("", pd.NA),
            "city": clean(frame["city"]),
            "address": clean(frame["address"]),
        }
    )
    return out.astype(object).where(out.notna(), None)


def run_splink(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, float]]:
    import logging

    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    logging.getLogger("splink").setLevel(logging.ERROR)
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            cl.NameComparison("name"),
            cl.EmailComparison("email"),
            cl.LevenshteinAtThresholds("phone", [1]),
            cl.ExactMatch("city").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address", [0.95, 0.85]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("phone"),
            block_on("email"),
            block_on("name", "city"),
            block_on("address", "city"),
        ],
    )
    linker = Linker(_splink_input(frame), settings, db_api=DuckDBAPI())
    linker.training.estimate_probability_two_random_records_match(
        [block_on("phone"), block_on("email")], recall=0.6
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("name", "city"))
    predictions = linker.inference.predict(threshold_match_probability=0.5)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=0.95
    )
    table = clusters.as_pandas_dataframe()[["unique_id", "cluster_id"]]
    found = table.set_index("unique_id").loc[frame["id"], "cluster_id"].to_numpy()
    return found, {"candidate_pairs": float("nan")}


def worker(tool: str, path: str) -> None:
    """Run one tool on one data file and print its figures as JSON (last line of stdout)."""
    import contextlib
    import io

    frame = pd.read_parquet(path)
    run = run_ours if tool == "ours" else run_splink
    if tool == "splink":  # import before the clock starts, like ours
        import splink  # noqa: F401
    else:
        import crm_core.dedupe  # noqa: F401
    noise = io.StringIO()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
        found, extra = run(frame)
    seconds = time.perf_counter() - started
    cpu = _cpu_seconds() - cpu_before
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    scores = pairwise_scores(frame["truth_cluster"].to_numpy(), found)
    print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": peak_mb, **scores, **extra}))


def _cpu_seconds() -> float:
    """CPU time of this process, all its threads and its finished children."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def measure(tool: str, path: Path) -> dict[str, float] | None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, __file__, "--worker", tool, str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    if done.returncode:
        print(f"  {tool} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- report -------------------------------------------------------------------------------------


def _row(size: int, tool: str, r: dict[str, float]) -> str:
    cand = "" if np.isnan(r.get("candidate_pairs", np.nan)) else f"{r['candidate_pairs']:,.0f}"
    return (
        f"| {size:>9,} | {tool:<6} | {r['precision']:9.4f} | {r['recall']:6.4f} | {r['f1']:6.4f} "
        f"| {r['seconds']:7.1f} | {r['cpu']:7.1f} | {r['peak_mb']:7,.0f} | {cand:>11} |"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--splink-sizes", type=int, nargs="*", default=None,
        help="sizes Splink runs at (default: every size up to 100,000)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--processes", type=int, default=1,
        help="processes find_duplicates normalises in (DedupeSettings.processes)",
    )  # fmt: skip
    parser.add_argument("--worker", nargs=2, metavar=("TOOL", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return
    os.environ["DEDUPE_BENCH_PROCESSES"] = str(args.processes)  # read by the workers
    splink_sizes = (
        [s for s in args.sizes if s <= 100_000] if args.splink_sizes is None else args.splink_sizes
    )
    try:
        import splink  # noqa: F401
    except ImportError:
        print("Splink is not installed (pip install -e .[bench]); running this library only.")
        splink_sizes = []

    results: dict[tuple[int, str], dict[str, float]] = {}
    for size in args.sizes:
        path = dataset(size, args.seed)
        for tool in ("ours", "splink"):
            if tool == "splink" and size not in splink_sizes:
                continue
            print(f"  running {tool} on {size:,} customers ...", flush=True)
            figures = measure(tool, path)
            if figures:
                results[(size, tool)] = figures

    cpu = os.cpu_count()
    print(f"\nDe-duplication of generated customers (seed {args.seed}, {cpu} CPUs)\n")
    print(
        "|      size | tool   | precision | recall | F1     | seconds |   CPU s | peak MB "
        "| cand. pairs |"
    )
    print(
        "|----------:|--------|----------:|-------:|-------:|--------:|--------:|--------:"
        "|------------:|"
    )
    for (size, tool), figures in results.items():
        print(_row(size, tool, figures))
    ratios = [
        (size, results[(size, "ours")], results[(size, "splink")])
        for size in args.sizes
        if (size, "ours") in results and (size, "splink") in results
    ]
    if ratios:
        print(
            "\n|      size | Splink time / ours | Splink CPU / ours | Splink memory / ours "
            "| F1 ours - Splink |"
        )
        print(
            "|----------:|-------------------:|------------------:|---------------------:"
            "|-----------------:|"
        )
        for size, ours, theirs in ratios:
            print(
                f"| {size:>9,} | {theirs['seconds'] / ours['seconds']:17.1f}x "
                f"| {theirs['cpu'] / ours['cpu']:16.1f}x "
                f"| {theirs['peak_mb'] / ours['peak_mb']:19.1f}x "
                f"| {ours['f1'] - theirs['f1']:+16.4f} |"
            )
    load = os.getloadavg()
    print(f"\nload average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
