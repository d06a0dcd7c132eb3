"""Dask executor benchmark: a fan-out blueprint next to plain client.submit, on the same cluster.

    python bench/dask_bench.py            # 1,000 and 10,000 nodes, LocalCluster and external
    python bench/dask_bench.py --quick    # 200 nodes, LocalCluster only (CI, noisier)
    python bench/dask_bench.py --nodes 10000 --cluster external --repeat 5 --json

The graph: one source, N-2 independent middle nodes reading it, one sink reading
them all (a ``many`` port). conductor_nb runs it with ``DaskExecutor`` (events,
records, the version check and code shipping before the first node, history) at a
concurrency as wide as the graph; the baseline submits the same tasks with
``client.submit`` (futures passed as arguments, one gather at the end) on the same
cluster, in the same process. Two clusters:

- ``local``: a ``LocalCluster`` (worker processes of this process tree);
- ``external``: ``dask scheduler`` and ``dask worker`` started by the bench as separate
  processes on 127.0.0.1, as on a real cluster, and stopped at the end.

Headline: what a user gets (history on, in a fresh folder; validation on). History off
is shown beside it. Both sides are measured warm and cold, on the same cluster and graph:

- **warm**: one client (and one executor) that already ran the graph; runs alternate, and
  the median of ``--repeat`` runs of each side is reported (the best and the spread
  worst/best below it; on a shared machine a lucky best of one side skews a ratio of bests);
- **cold**: a fresh client connected to the same cluster for each side, and its first run
  (conductor_nb: a new executor, so the version check and the function probe run; plain:
  the first submits of that client), up to 3 times each, median. Connecting is not timed,
  for either side.

Target (issue 17): conductor_nb <= 1.5x the baseline at every size, warm and cold.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import conductor_nb as cnb

TARGET = 1.5


def source(n: int) -> list[int]:
    return list(range(n))


def middle(xs: list[int], i: int) -> int:
    return xs[i % len(xs)] + i


def sink(items: list[int]) -> int:
    return sum(items)


REG = cnb.Registry()
REG.register(cnb.NodeType.from_function(source, name="bench-source"))
REG.register(cnb.NodeType.from_function(middle, name="bench-middle"))
REG.register(cnb.NodeType.from_function(sink, name="bench-sink"))
_sink_type = REG.get("bench-sink")
_sink_type.inputs = tuple(cnb.Port(p.name, many=True, required=True) for p in _sink_type.inputs)


def fan_out(nodes: int) -> cnb.Blueprint:
    bp = cnb.Blueprint(f"fan-{nodes}", registry=REG)
    bp.add("bench-source", id="src", n=10)
    bp.add("bench-sink", id="sink")
    for i in range(nodes - 2):
        bp.add("bench-middle", id=f"m{i}", i=i)
        bp.connect("src", f"m{i}.xs")
        bp.connect(f"m{i}", "sink.items")
    bp.outputs["total"] = "sink.output"
    return bp


def expected(nodes: int) -> int:
    return sum(i % 10 + i for i in range(nodes - 2))


def run_conductor(
    bp: cnb.Blueprint, executor: cnb.DaskExecutor, nodes: int, history: bool
) -> float:
    start = time.perf_counter()
    run = bp.run(executor=executor, concurrency=nodes, history=history)
    total = run.outputs.get("total")
    elapsed = time.perf_counter() - start
    if total != expected(nodes):
        raise SystemExit(f"conductor_nb run went wrong: {run.summary()}")
    return elapsed


def run_plain(client: Any, nodes: int) -> float:
    start = time.perf_counter()
    src = client.submit(source, 10, pure=False)
    mids = [client.submit(middle, src, i, pure=False) for i in range(nodes - 2)]
    total = client.submit(sink, mids, pure=False).result()
    elapsed = time.perf_counter() - start
    if total != expected(nodes):
        raise SystemExit("plain client.submit run went wrong")
    return elapsed


# ------------------------------------------------------------------ clusters
@contextmanager
def local_cluster(workers: int) -> Iterator[str | Any]:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield cluster


@contextmanager
def external_cluster(workers: int) -> Iterator[str]:
    """``dask scheduler`` + ``dask worker`` as separate processes on 127.0.0.1, in a
    folder of their own; stopped (their whole process groups) on the way out."""
    folder = Path(tempfile.mkdtemp(prefix="cnb-dask-bench-"))
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    file = folder / "scheduler.json"
    procs: list[subprocess.Popen[bytes]] = []

    def spawn(*args: str) -> None:
        with (folder / f"{args[0]}.log").open("ab") as log:
            procs.append(
                subprocess.Popen(
                    [str(bin_dir / "dask"), *args, "--dashboard-address", "127.0.0.1:0"],
                    cwd=folder,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    try:
        spawn("scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(file))
        deadline = time.monotonic() + 60
        while not file.exists():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise SystemExit(f"the scheduler did not start: see {folder}/scheduler.log")
            time.sleep(0.1)
        time.sleep(0.2)  # the file is written whole once it exists; give it a moment
        address = json.loads(file.read_text())["address"]
        spawn(
            "worker", address, "--host", "127.0.0.1", "--nworkers", str(workers), "--nthreads", "1"
        )
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            _stop_group(proc)
        shutil.rmtree(folder, ignore_errors=True)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            if sig == signal.SIGTERM:
                os.killpg(proc.pid, signal.SIGKILL)  # a nanny's worker left in the group
        except subprocess.TimeoutExpired:
            continue
        except ProcessLookupError:
            return


# --------------------------------------------------------------------- bench
def measure(client_target: Any, sizes: list[int], repeat: int) -> list[dict[str, Any]]:
    from distributed import Client

    rows = []
    with Client(client_target, timeout=30) as client:
        executor = cnb.DaskExecutor(client)
        run_conductor(fan_out(20), executor, 20, history=True)  # warm up: imports, connections
        run_plain(client, 20)
        for nodes in sizes:
            bp = fan_out(nodes)
            cold = measure_cold(client_target, bp, nodes, min(repeat, 3))
            ours, bare, plain = [], [], []
            for _ in range(repeat):
                plain.append(run_plain(client, nodes))
                ours.append(run_conductor(bp, executor, nodes, history=True))
                bare.append(run_conductor(bp, executor, nodes, history=False))
            rows.append(
                {
                    "nodes": nodes,
                    "plain_s": plain,
                    "conductor_s": ours,
                    "no_history_s": bare,
                    **cold,
                }
            )
        executor.shutdown()
    return rows


def measure_cold(client_target: Any, bp: cnb.Blueprint, nodes: int, times: int) -> dict[str, Any]:
    """The first run of each side on a fresh client of the same cluster, ``times`` times,
    the side that goes first alternating (closing a client makes the scheduler release
    its keys, which the next client's run shares the cluster with)."""
    from distributed import Client

    plain: list[float] = []
    ours: list[float] = []

    def first_plain() -> None:
        with Client(client_target, timeout=30) as fresh:
            plain.append(run_plain(fresh, nodes))

    def first_ours() -> None:
        with Client(client_target, timeout=30) as fresh, cnb.DaskExecutor(fresh) as executor:
            ours.append(run_conductor(bp, executor, nodes, history=True))

    for turn in range(times):
        for side in (first_plain, first_ours) if turn % 2 == 0 else (first_ours, first_plain):
            side()
    return {"cold_plain_s": plain, "cold_conductor_s": ours}


def report(cluster: str, workers: int, rows: list[dict[str, Any]]) -> list[float]:
    print(f"fan-out on {cluster} cluster ({workers} workers x 1 thread), median of each side:")
    head = "  {:>7}  {:>5}  {:>15}  {:>15}  {:>15}  {:>7}  {:>10}"
    print(
        head.format("nodes", "", "client.submit", "conductor_nb", "history off", "ratio", "target")
    )
    ratios = []
    for row in rows:
        nodes = row["nodes"]
        plain, ours, bare = (
            statistics.median(row[k]) for k in ("plain_s", "conductor_s", "no_history_s")
        )
        cold_plain, cold_ours = (
            statistics.median(row[k]) for k in ("cold_plain_s", "cold_conductor_s")
        )
        for label, mine, theirs, off in (
            ("warm", ours, plain, f"{bare:.3f} s"),
            ("cold", cold_ours, cold_plain, "-"),
        ):
            ratio = mine / theirs
            ratios.append(ratio)
            verdict = "ok" if ratio <= TARGET else "OVER"
            print(
                head.format(
                    f"{nodes:,}",
                    label,
                    f"{theirs:.3f} s",
                    f"{mine:.3f} s",
                    off,
                    f"{ratio:.2f}x",
                    f"<= {TARGET}x {verdict}",
                )
            )
        best = ", ".join(
            f"{name} {min(row[k]):.3f} s (spread {max(row[k]) / min(row[k]):.2f})"
            for name, k in (("plain", "plain_s"), ("ours", "conductor_s"), ("off", "no_history_s"))
        )
        print(f"  {'':>7}  warm: {ours / nodes * 1e3:.2f} ms/node; best of each: {best}")
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 nodes, LocalCluster only")
    parser.add_argument("--nodes", type=int, nargs="+", default=None)
    parser.add_argument("--cluster", choices=["local", "external", "both"], default=None)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON line as well")
    args = parser.parse_args(argv)
    sizes = args.nodes or ([200] if args.quick else [1000, 10000])
    which = args.cluster or ("local" if args.quick else "both")
    clusters = ["local", "external"] if which == "both" else [which]

    home = tempfile.mkdtemp(prefix="cnb-dask-bench-home-")
    os.environ["CONDUCTOR_HOME"] = home  # the default history, in a fresh folder
    results: dict[str, list[dict[str, Any]]] = {}
    worst = 0.0
    try:
        for name in clusters:
            start = local_cluster if name == "local" else external_cluster
            with start(args.workers) as target:
                results[name] = measure(target, sizes, args.repeat)
            worst = max([worst, *report(name, args.workers, results[name])])
    finally:
        shutil.rmtree(home, ignore_errors=True)
    load = os.getloadavg()
    print(f"machine load (1, 5, 15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    print(f"worst ratio {worst:.2f}x (target <= {TARGET}x: {'ok' if worst <= TARGET else 'OVER'})")
    if args.json:
        print(json.dumps({"target": TARGET, "worst_ratio": worst, "clusters": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
