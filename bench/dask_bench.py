"""Dask executor benchmark: a fan-out blueprint on a LocalCluster next to plain client.submit.

    python bench/dask_bench.py            # 1,000 nodes
    python bench/dask_bench.py --quick    # ~200 nodes, for CI (noisier)
    python bench/dask_bench.py --nodes 5000 --repeat 5 --json

The graph: one source, N-2 independent middle nodes reading it, one sink reading
them all (a ``many`` port). conductor_nb runs it with ``DaskExecutor`` (events,
records, retries bookkeeping and all) at a concurrency as wide as the graph; the
baseline submits the same tasks with ``client.submit`` (futures passed as
arguments, one gather at the end) on the same cluster, in the same process.
Runs alternate and the best of ``--repeat`` is reported. Target (issue 9): the
conductor_nb time is at most 1.5x the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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


def run_conductor(bp: cnb.Blueprint, executor: cnb.DaskExecutor, nodes: int) -> float:
    start = time.perf_counter()
    run = bp.run(executor=executor, concurrency=nodes, history=False)
    elapsed = time.perf_counter() - start
    if run.outputs.get("total") != expected(nodes):
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~200 nodes")
    parser.add_argument("--nodes", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON line as well")
    args = parser.parse_args(argv)
    nodes = args.nodes or (200 if args.quick else 1000)

    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        executor = cnb.DaskExecutor(client)
        bp = fan_out(nodes)
        run_conductor(fan_out(20), executor, 20)  # warm up: imports, connections
        run_plain(client, 20)
        ours, plain = [], []
        for _ in range(args.repeat):
            plain.append(run_plain(client, nodes))
            ours.append(run_conductor(bp, executor, nodes))
        executor.shutdown()

    best_ours, best_plain = min(ours), min(plain)
    ratio = best_ours / best_plain
    verdict = "ok" if ratio <= TARGET else f"over the {TARGET}x target"
    print(f"fan-out of {nodes} nodes on a LocalCluster ({args.workers} workers x 1 thread)")
    print(f"  plain client.submit   {best_plain:8.3f} s   ({best_plain / nodes * 1e3:.2f} ms/node)")
    print(f"  conductor_nb on Dask  {best_ours:8.3f} s   ({best_ours / nodes * 1e3:.2f} ms/node)")
    print(f"  ratio                 {ratio:8.2f}x  (target <= {TARGET}x: {verdict})")
    if args.json:
        print(
            json.dumps(
                {
                    "nodes": nodes,
                    "plain_s": best_plain,
                    "conductor_s": best_ours,
                    "ratio": ratio,
                    "all_plain_s": plain,
                    "all_conductor_s": ours,
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
