"""Data at real size: the built-in nodes against pandas (and polars, DuckDB) on one job.

    python bench/data.py            # 1,000,000 and 3,000,000 generated orders
    python bench/data.py --quick    # 100,000 orders, for CI (numbers are noisier)
    python bench/data.py --rows 200000

The job: read a generated orders CSV -> keep paid orders of 50 or more -> sort by
amount, largest first (stable: equal amounts keep file order) -> group by region
(orders, revenue, mean, the first order id in sorted order) -> write both the
sorted rows and the summary as CSV. conductor_nb runs it through built-in nodes
(spreadsheet, transform, spreadsheet write) with the default run history on.

Every contender runs in a fresh process, one after the other in the same run, and
reports its wall time (imports included) and peak RSS. Headline ratios are against
pandas. Targets (issue 15): <= 2x pandas' wall time and peak RSS; the run history
<= 1.5x the input file's size; the results row-for-row equal to pandas'. Targets are
printed as met or missed, never failed on (machines are noisy), but a wrong result
exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXPRESSION = "item.status == 'paid' and item.amount >= 50"
REGIONS = ["north", "south", "east", "west", "central", "coast", "hills", "islands"]
STATUSES = ["paid", "paid", "paid", "pending", "refunded", "cancelled"]


# ------------------------------------------------------------------ the data


def generate(path: Path, rows: int, seed: int = 15) -> None:
    """An orders CSV: id, customer, region, status, amount (2 decimals), quantity."""
    import numpy as np
    import pyarrow as pa
    from pyarrow import csv as pacsv

    rng = np.random.default_rng(seed)
    table = pa.table(
        {
            "order_id": np.arange(1, rows + 1),
            "customer": [f"C{n:06d}" for n in rng.integers(0, 200_000, rows)],
            "region": pa.array(np.array(REGIONS)[rng.integers(0, len(REGIONS), rows)]),
            "status": pa.array(np.array(STATUSES)[rng.integers(0, len(STATUSES), rows)]),
            "amount": np.round(rng.integers(100, 20_000, rows) / 100, 2),  # many ties
            "quantity": rng.integers(1, 10, rows),
        }
    )
    options = pacsv.WriteOptions(quoting_style="needed")
    pacsv.write_csv(table, str(path), options)


# --------------------------------------------------------------- contenders


def job_conductor(csv: Path, out: Path) -> dict[str, float]:
    start = time.perf_counter()
    import conductor_nb as cnb

    imported = time.perf_counter() - start
    bp = cnb.Blueprint("orders")
    bp.add("spreadsheet", id="load", path=str(csv))
    bp.add("transform", id="paid", operation="filter", expression=EXPRESSION)
    bp.add("transform", id="ranked", operation="sort", key="amount", direction="desc")
    bp.add("spreadsheet", id="save_rows", operation="write", path=str(out / "sorted.csv"))
    bp.add(
        "transform",
        id="summary",
        operation="group",
        key="region",
        aggregate={
            "orders": "count()",
            "revenue": "sum(amount)",
            "mean": "mean(amount)",
            "top": "first(order_id)",
        },
    )
    bp.add("spreadsheet", id="save", operation="write", path=str(out / "summary.csv"))
    bp.connect("load.records", "paid.input")
    bp.connect("paid", "ranked.input")
    bp.connect("ranked", "save_rows.input")
    bp.connect("ranked", "summary.input")
    bp.connect("summary", "save.input")
    run = bp.run()
    if run.status.value != "succeeded":
        raise SystemExit(run.summary())
    nodes = {f"node {n}": run[n].duration or 0.0 for n in run.node_runs}
    return {"import conductor_nb": imported, **nodes}


def job_pandas(csv: Path, out: Path) -> dict[str, float]:
    import pandas as pd

    df = pd.read_csv(csv)
    paid = df[(df["status"] == "paid") & (df["amount"] >= 50)]
    ranked = paid.sort_values("amount", ascending=False, kind="stable")
    ranked.to_csv(out / "sorted.csv", index=False)
    summary = (
        ranked.groupby("region", sort=False)
        .agg(
            orders=("order_id", "size"),
            revenue=("amount", "sum"),
            mean=("amount", "mean"),
            top=("order_id", "first"),
        )
        .reset_index()
    )
    summary.to_csv(out / "summary.csv", index=False)
    return {}


def job_polars(csv: Path, out: Path) -> dict[str, float]:
    import polars as pl

    df = pl.read_csv(csv)
    paid = df.filter((pl.col("status") == "paid") & (pl.col("amount") >= 50))
    ranked = paid.sort("amount", descending=True, maintain_order=True)
    ranked.write_csv(out / "sorted.csv")
    summary = ranked.group_by("region", maintain_order=True).agg(
        pl.len().alias("orders"),
        pl.col("amount").sum().alias("revenue"),
        pl.col("amount").mean().alias("mean"),
        pl.col("order_id").first().alias("top"),
    )
    summary.write_csv(out / "summary.csv")
    return {}


def job_duckdb(csv: Path, out: Path) -> dict[str, float]:
    import duckdb

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE ranked AS SELECT *, row_number() OVER () AS rn FROM read_csv(?) "
        "WHERE status = 'paid' AND amount >= 50",
        [str(csv)],
    )
    con.execute(
        "COPY (SELECT * EXCLUDE rn FROM ranked ORDER BY amount DESC, rn) TO ? (HEADER)",
        [str(out / "sorted.csv")],
    )
    con.execute(
        "COPY (SELECT region, count(*) AS orders, sum(amount) AS revenue, avg(amount) AS mean, "
        "arg_min(order_id, [-amount, rn]) AS top, min(rn) AS first_seen FROM ranked "
        "GROUP BY region ORDER BY min(rn)) TO ? (HEADER)",
        [str(out / "summary.csv")],
    )
    return {}


JOBS = {
    "conductor_nb": job_conductor,
    "pandas": job_pandas,
    "polars": job_polars,
    "duckdb": job_duckdb,
}


def worker(name: str, csv: Path, out: Path) -> None:
    """Run one contender in this (fresh) process and print its measurements as JSON."""
    start = time.perf_counter()
    parts = JOBS[name](csv, out)
    wall = time.perf_counter() - start
    print(json.dumps({"wall": wall, "rss_mb": peak_rss_mb(), "parts": parts}))


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM starts afresh at exec; ru_maxrss would not (Linux
    keeps the parent's across fork + exec, which would floor every contender at ours)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------ harness


def measure(name: str, csv: Path, work: Path) -> dict[str, Any] | None:
    out = work / name
    out.mkdir()
    env = {**os.environ, "CONDUCTOR_HOME": str(out / ".conductor")}
    cmd = [sys.executable, __file__, "--worker", name, "--csv", str(csv), "--out", str(out)]
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        if name in ("polars", "duckdb") and "No module named" in "".join(message[-1:]):
            return None  # an optional comparison that is not installed
        raise SystemExit(f"{name} failed:\n" + "\n".join(message[-20:]))
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    history = out / ".conductor"
    if history.exists():
        result["history_mb"] = _size(history) / 1e6
    return result


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def same_results(work: Path, name: str) -> str | None:
    """Why ``name``'s outputs differ from pandas' (None when they are equal row for row)."""
    import pandas as pd

    for file in ("sorted.csv", "summary.csv"):
        ours = pd.read_csv(work / name / file)
        theirs = pd.read_csv(work / "pandas" / file)
        ours = ours[[c for c in theirs.columns if c in ours.columns]]
        try:
            pd.testing.assert_frame_equal(
                ours, theirs, check_dtype=False, check_exact=False, rtol=1e-9
            )
        except AssertionError as exc:
            return f"{file}: {str(exc).splitlines()[0:3]}"
    return None


def bench(rows: int, work: Path) -> bool:
    csv = work / "orders.csv"
    start = time.perf_counter()
    cmd = [sys.executable, __file__, "--generate", str(rows), "--csv", str(csv)]
    subprocess.run(cmd, check=True)  # in a child, so this process stays small
    size_mb = csv.stat().st_size / 1e6
    print(
        f"\n{rows:,} orders, {size_mb:.1f} MB CSV (generated in {time.perf_counter() - start:.1f}s)"
    )
    results = {name: measure(name, csv, work) for name in JOBS}
    base = results["pandas"]
    assert base is not None
    print(f"  {'':14}{'wall s':>9}{'x pandas':>10}{'peak RSS MB':>13}{'x pandas':>10}")
    for name, r in results.items():
        if r is None:
            print(f"  {name:14}(not installed)")
            continue
        print(
            f"  {name:14}{r['wall']:>9.2f}{r['wall'] / base['wall']:>10.2f}"
            f"{r['rss_mb']:>13.0f}{r['rss_mb'] / base['rss_mb']:>10.2f}"
        )
    ours = results["conductor_nb"]
    assert ours is not None
    parts = ours.get("parts") or {}
    print("  conductor_nb breakdown: " + ", ".join(f"{k} {v:.2f}s" for k, v in parts.items()))
    history = ours.get("history_mb", 0.0)
    wrong = same_results(work, "conductor_nb")
    checks = [
        ("wall time <= 2x pandas", ours["wall"] <= 2 * base["wall"]),
        ("peak RSS <= 2x pandas", ours["rss_mb"] <= 2 * base["rss_mb"]),
        (
            f"run history {history:.1f} MB <= 1.5x the input ({1.5 * size_mb:.1f} MB)",
            history <= 1.5 * size_mb,
        ),
        ("result row-for-row equal to pandas'", wrong is None),
    ]
    for label, ok in checks:
        print(f"  {'met   ' if ok else 'MISSED'} {label}")
    if wrong:
        print(f"  conductor_nb's result differs from pandas': {wrong}")
    return wrong is None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows (CI)")
    parser.add_argument("--rows", type=int, action="append", help="rows (repeatable)")
    parser.add_argument("--worker", choices=sorted(JOBS), help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args.csv, args.generate)
        return
    if args.worker:
        sys.path.insert(0, str(ROOT))
        worker(args.worker, args.csv, args.out)
        return
    sizes = args.rows or ([100_000] if args.quick else [1_000_000, 3_000_000])
    ok = True
    for rows in sizes:
        work = Path(tempfile.mkdtemp(prefix="cnb-data-bench-"))
        try:
            ok = bench(rows, work) and ok
        finally:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
