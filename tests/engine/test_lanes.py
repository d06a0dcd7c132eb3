"""Lanes: a node's task goes on with the next ready node, and still lets the loop breathe."""

from __future__ import annotations

import asyncio
import gc

import conductor_nb as cnb
from conductor_nb.engine import heap


async def instant(items: list | None = None) -> int:
    return len(items or ())


def chain(registry: cnb.Registry, n: int) -> cnb.Blueprint:
    registry.register(cnb.NodeType.from_function(instant))
    bp = cnb.Blueprint("lanes", registry=registry)
    for i in range(n):
        bp.add("instant", id=f"n{i}")
        if i:
            bp.connect(f"n{i - 1}", f"n{i}.items")
    return bp


def test_a_long_chain_of_instant_nodes_lets_other_tasks_run(registry) -> None:
    """Nodes that never wait run one after another in one task, but that task hands back
    to the event loop regularly: a task on the same loop cancels the run part-way."""
    bp = chain(registry, 20_000)

    async def main() -> cnb.Run:
        run = await asyncio.wait_for(_start(bp), timeout=60)
        return run

    async def _start(bp: cnb.Blueprint) -> cnb.Run:
        from conductor_nb.engine.api import prepare
        from conductor_nb.engine.options import RunOptions

        run = prepare(bp, None, RunOptions(history=False))
        ticks = 0

        async def other() -> None:
            nonlocal ticks
            while run.progress()[0] < 200:
                ticks += 1
                await asyncio.sleep(0)
            run.cancel()

        canceller = asyncio.create_task(other())
        run._launch()
        await run
        await canceller
        assert ticks > 1
        return run

    run = asyncio.run(main())
    counts = run.counts()
    assert run.status is cnb.RunState.CANCELLED
    assert 200 <= counts["succeeded"] < 20_000
    assert counts["succeeded"] + counts.get("cancelled", 0) == 20_000


def test_concurrency_holds_when_tasks_run_several_nodes(registry) -> None:
    running = 0
    peak = 0

    async def work(items: list | None = None) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        return 1

    registry.register(cnb.NodeType.from_function(work))
    bp = cnb.Blueprint("wide", registry=registry)
    for i in range(60):
        bp.add("work", id=f"w{i}")
    run = bp.run(concurrency=3, history=False)
    assert run.status is cnb.RunState.SUCCEEDED
    assert peak == 3


def test_a_run_gives_the_collector_its_objects_back_when_it_ends(registry) -> None:
    """While a run goes on, what was alive at its start is out of the collector's passes
    (gc.freeze); when it ends, everything is collectable again."""
    bp = chain(registry, 50)
    frozen = []
    registry.register(
        cnb.NodeType.from_function(lambda items=None: gc.get_freeze_count(), name="frozen")
    )
    bp.add("frozen", id="probe")
    bp.connect("n49", "probe.items")
    run = bp.run(history=False)
    assert run.status is cnb.RunState.SUCCEEDED
    frozen.append(run["probe"].output)
    assert frozen[0] > 0
    assert heap._runs == 0 and gc.get_freeze_count() == 0


def test_blocking_sync_nodes_run_as_many_at_once_as_the_concurrency(registry) -> None:
    """Worker threads start while all are busy, up to what the run lets run at once: eight
    blocking sync nodes meet at a barrier of eight (with fewer threads it would break)."""
    import threading

    barrier = threading.Barrier(8, timeout=30)
    threads: set[str] = set()

    def meet(i: int = 0) -> int:
        threads.add(threading.current_thread().name)
        return barrier.wait()

    registry.register(cnb.NodeType.from_function(meet))
    bp = cnb.Blueprint("meet", registry=registry)
    for i in range(16):
        bp.add("meet", id=f"m{i}", i=i)
    run = bp.run(concurrency=8, history=False)
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert len(threads) >= 8


def test_a_lane_of_waiting_nodes_goes_on_with_the_next_ready_node(registry) -> None:
    """A node that waited (I/O) let the loop run meanwhile: its lane goes on with the
    next ready node instead of ending and leaving the dispatch loop to start a task."""
    tasks: list[int] = []

    async def wait_a_bit(i: int) -> int:
        tasks.append(id(asyncio.current_task()))
        await asyncio.sleep(0.01)  # longer than a lane's slice
        return i

    registry.register(cnb.NodeType.from_function(wait_a_bit))
    bp = cnb.Blueprint("io", registry=registry)
    for i in range(20):
        bp.add("wait_a_bit", id=f"io{i}", i=i)
    run = bp.run(concurrency=2, history=False)
    assert run.counts() == {"succeeded": 20}
    assert len(set(tasks)) == 2  # two lanes ran the twenty nodes
