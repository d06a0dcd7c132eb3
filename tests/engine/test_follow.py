"""Plain sync nodes fed to worker threads, reported live (engine/follow.py)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import conductor_nb as cnb
from conductor_nb.engine import plain
from conductor_nb.engine.api import launch, prepare
from conductor_nb.engine.threads import ThreadLane
from conductor_nb.errors import StoreError
from conductor_nb.storage import RunHistory


def sync_chain(registry: cnb.Registry, n: int, fn: Callable[..., Any]) -> cnb.Blueprint:
    registry.register(cnb.NodeType.from_function(fn, name="step"))
    bp = cnb.Blueprint("follow", registry=registry)
    for i in range(n):
        bp.add("step", id=f"n{i}")
        if i:
            bp.connect(f"n{i - 1}", f"n{i}.x")
    return bp


def counting_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What the loop hands to worker threads: a node's function (``call``), or a feed's
    worker (``post``)."""
    calls: list[str] = []
    call, post = ThreadLane.call, ThreadLane.post

    def counted_call(self: ThreadLane, fn: Any, kwargs: Any) -> Any:
        calls.append(fn.__name__)
        return call(self, fn, kwargs)

    def counted_post(self: ThreadLane, fn: Any) -> None:
        calls.append("feed")
        post(self, fn)

    monkeypatch.setattr(ThreadLane, "call", counted_call)
    monkeypatch.setattr(ThreadLane, "post", counted_post)
    return calls


def no_feeds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every node goes through the loop one by one (the path before feeds)."""
    monkeypatch.setattr(plain, "is_plain", lambda driver, planned: False)


def wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30  # a guard against hanging, not a performance bound
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_chain_of_sync_nodes_runs_on_one_worker_with_history_on(registry, monkeypatch) -> None:
    """One worker runs the whole chain (each node claimed by the worker that ran the one
    before it), with the defaults (history on); every node is recorded as usual, in
    order, with the times it ran, in the run and in the history."""
    calls = counting_calls(monkeypatch)

    def step(x: int = 0) -> int:
        return x + 1

    run = sync_chain(registry, 300, step).run()
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert run["n299"].output == 300
    assert calls == ["feed"]
    assert run["n5"].inputs == {"x": 5} and run["n5"].attempts == 1
    kinds = [(e.kind, e.node_id) for e in run.events if getattr(e, "node_id", None) == "n7"]
    assert kinds == [("NodeQueued", "n7"), ("NodeStarted", "n7"), ("NodeSucceeded", "n7")]
    for a, b in zip(list(run.node_runs.values()), list(run.node_runs.values())[1:], strict=False):
        assert a.started_at <= a.finished_at <= b.started_at <= b.finished_at
    stored = stored_states(run.id)
    assert set(stored.values()) == {"succeeded"} and len(stored) == 300


def test_without_feeds_every_node_goes_through_the_loop(registry, monkeypatch) -> None:
    no_feeds(monkeypatch)
    calls = counting_calls(monkeypatch)

    def step(x: int = 0) -> int:
        return x + 1

    run = sync_chain(registry, 20, step).run(history=False)
    assert run["n19"].output == 20 and calls == ["step"] * 20


def test_a_long_followed_node_is_seen_running_while_it_runs(registry, monkeypatch) -> None:
    """A watcher, the run's records and the history see the node a worker went on with
    running while it runs, and the quick one before it succeeded."""
    calls = counting_calls(monkeypatch)
    gate, seen = threading.Event(), []

    def step(x: int = 0) -> int:
        if x == 3:
            assert gate.wait(30)
        return x + 1

    run = prepare(sync_chain(registry, 5, step), None, {})
    run.subscribe(lambda event: seen.append((event.kind, getattr(event, "node_id", None))))
    launch(run)  # watched from its start: its first nodes may end before start() returned
    wait_until(lambda: run["n3"].status is cnb.NodeState.RUNNING)
    assert [run[f"n{i}"].status.value for i in range(5)] == [
        *["succeeded"] * 3,
        "running",
        "pending",
    ]
    wait_until(lambda: ("NodeStarted", "n3") in seen)
    assert ("NodeSucceeded", "n3") not in seen
    wait_until(lambda: stored_states(run.id).get("n3") == "running")
    stored = stored_states(run.id)
    assert [stored[f"n{i}"] for i in range(3)] == ["succeeded"] * 3
    gate.set()
    run.wait(timeout=30)
    assert run.status is cnb.RunState.SUCCEEDED and run["n4"].output == 5
    assert calls == ["feed"]  # n3 was run by the worker that ran n2


def stored_states(run_id: str) -> dict[str, str]:
    """Node states as the history has them now (none before the run's row is written)."""
    try:
        return {n.node_id: n.status for n in RunHistory().nodes(run_id)}
    except StoreError:
        return {}


def outcome(run: cnb.Run) -> dict[str, tuple[str, str, int]]:
    return {
        nid: (r.status.value, str(r.error or r.reason), r.attempts)
        for nid, r in run.node_runs.items()
    }


def test_a_node_failing_on_the_worker_ends_as_on_the_loop(registry, monkeypatch) -> None:
    """Failure, its message, the traceback and the skipped downstream are the same as
    when every node goes through the loop."""

    def step(x: int = 0) -> int:
        if x == 3:
            raise ValueError("boom")
        return x + 1

    bp = sync_chain(registry, 8, step)
    fed = bp.run(history=False)
    no_feeds(monkeypatch)
    plain = bp.run(history=False)
    assert fed.status is cnb.RunState.FAILED
    assert outcome(fed) == outcome(plain)
    assert "ValueError: boom" in str(fed["n3"].error)
    assert 'raise ValueError("boom")' in fed["n3"].traceback
    assert fed["n4"].reason == "upstream node 'n3' failed"


def random_graph(registry: cnb.Registry, n: int, seed: int) -> cnb.Blueprint:
    def mix(items: list | None = None) -> int:
        return sum(items or ()) % 1_000_003 + 1

    node_type = cnb.NodeType.from_function(mix)
    node_type.inputs = tuple(cnb.Port(p.name, many=True) for p in node_type.inputs)
    registry.register(node_type)
    rng = random.Random(seed)
    bp = cnb.Blueprint("random", registry=registry)
    for i in range(n):
        bp.add("mix", id=f"r{i}")
        for up in rng.sample(range(max(0, i - 30), i), k=min(i, rng.randint(0, 3))):
            bp.connect(f"r{up}", f"r{i}.items")
    return bp


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_graphs_give_the_same_results_fed_or_not(registry, monkeypatch, seed) -> None:
    bp = random_graph(registry, 400, seed)
    fed = bp.run(history=False, concurrency=random.Random(seed).choice([1, 3, 8]))
    no_feeds(monkeypatch)
    plain = bp.run(history=False)
    assert fed.status is cnb.RunState.SUCCEEDED, fed.summary()
    assert {k: r.output for k, r in fed.node_runs.items()} == {
        k: r.output for k, r in plain.node_runs.items()
    }
    for node_id, planned in fed.plan.nodes.items():  # no node started before its inputs ended
        for up in planned.upstream:
            assert fed[up].finished_at <= fed[node_id].started_at


def test_no_more_nodes_run_at_once_than_concurrency(registry) -> None:
    running, most, lock = [0], [0], threading.Lock()

    def busy(items: list | None = None) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.003)
        with lock:
            running[0] -= 1
        return 1

    node_type = cnb.NodeType.from_function(busy)
    node_type.inputs = tuple(cnb.Port(p.name, many=True) for p in node_type.inputs)
    registry.register(node_type)
    bp = cnb.Blueprint("wide", registry=registry)
    for i in range(40):
        bp.add("busy", id=f"b{i}")
    run = bp.run(history=False, concurrency=3)
    assert run.status is cnb.RunState.SUCCEEDED
    assert 1 < most[0] <= 3  # blocking nodes do run side by side, within the limit


def test_what_fed_nodes_print_lands_in_their_own_records(registry, monkeypatch) -> None:
    calls = counting_calls(monkeypatch)

    def step(x: int = 0) -> int:
        print(f"at {x}")
        return x + 1

    run = sync_chain(registry, 6, step).run(history=False)
    assert calls == ["feed"]
    assert [r.log_text for r in run.node_runs.values()] == [f"at {i}\n" for i in range(6)]


def test_a_paused_run_starts_no_node_on_the_worker(registry) -> None:
    """n5 pauses the run and waits until it is paused: its worker starts nothing more."""
    gate, handle = threading.Event(), []

    def step(x: int = 0) -> int:
        if x == 0:
            assert gate.wait(30)
        if x == 5:
            handle[0].pause()
            wait_until(lambda: handle[0].is_paused)
        return x + 1

    run = sync_chain(registry, 12, step).start(history=False)
    handle.append(run)
    gate.set()
    run.wait(timeout=30)
    states = {nid: r.status.value for nid, r in run.node_runs.items()}
    assert run.is_paused
    assert [states[f"n{i}"] for i in range(6)] == ["succeeded"] * 6
    assert [states[f"n{i}"] for i in range(6, 12)] == ["pending"] * 6
    run.resume().wait(timeout=30)
    assert run.status is cnb.RunState.SUCCEEDED and run["n11"].output == 12


def test_a_breakpoint_stops_the_worker_before_its_node(registry) -> None:
    ran: list[int] = []

    def step(x: int = 0) -> int:
        ran.append(x)
        return x + 1

    run = sync_chain(registry, 10, step).start(breakpoints=["n7"], history=False)
    run.wait(timeout=30)
    assert run.is_paused and run.paused_at == "n7"
    assert ran == list(range(7)) and run["n7"].status is cnb.NodeState.PENDING
    run.resume().wait(timeout=30)
    assert run.status is cnb.RunState.SUCCEEDED and ran == list(range(10))


def test_a_cancel_stops_the_worker_and_the_run_ends_cancelled(registry) -> None:
    gate, handle, ran = threading.Event(), [], []

    def step(x: int = 0) -> int:
        ran.append(x)
        if x == 0:
            assert gate.wait(30)
        if x == 4:
            handle[0].cancel()
            wait_until(lambda: handle[0].is_cancelling or handle[0].is_finished)
        return x + 1

    run = sync_chain(registry, 10, step).start(history=False)
    handle.append(run)
    gate.set()
    run.wait(timeout=30)
    assert run.status is cnb.RunState.CANCELLED
    assert ran == [0, 1, 2, 3, 4]
    states = [run[f"n{i}"].status.value for i in range(10)]
    assert states[:4] == ["succeeded"] * 4 and states[5:] == ["cancelled"] * 5
    # n4 ran on while the run was cancelling: it ends as the loop learnt first
    assert states[4] in {"succeeded", "cancelled"}


def test_two_blocking_nodes_ready_together_run_side_by_side(registry) -> None:
    """Two blocking nodes meet at a barrier of two: one worker alone would wait forever;
    a second worker takes the waiting call once the first is stuck in its own."""
    barrier = threading.Barrier(2, timeout=30)

    def src() -> int:
        return 1

    def meet(x: int = 0) -> int:
        return x + barrier.wait()

    registry.register(cnb.NodeType.from_function(src))
    registry.register(cnb.NodeType.from_function(meet))
    bp = cnb.Blueprint("fork", registry=registry)
    bp.add("src", id="s")
    for name in ("a", "b"):
        bp.add("meet", id=name)
        bp.connect("s", f"{name}.x")
    run = bp.run(history=False)
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()


SHOWN = """
import conductor_nb as cnb
def step(x: int = 0) -> int:
    print(f"at {x}")
    return x + 1
reg = cnb.Registry()
reg.register(cnb.NodeType.from_function(step))
bp = cnb.Blueprint("shown", registry=reg)
for i in range(4):
    bp.add("step", id=f"n{i}")
    if i:
        bp.connect(f"n{i - 1}", f"n{i}.x")
run = bp.run(history=False)
print(run.status.value, run["n3"].log_text.strip())
"""


def test_what_followed_nodes_print_is_shown_as_from_any_thread(tmp_path) -> None:
    """A script's output shows every node's print, the followed ones' too."""
    import subprocess
    import sys

    env = {"CONDUCTOR_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", SHOWN], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["at 0", "at 1", "at 2", "at 3", "succeeded at 3"]


def test_a_node_with_side_effects_goes_through_the_loop(registry, monkeypatch) -> None:
    """Its success is committed before the run goes on: no worker runs it, nor goes on
    after it."""
    calls = counting_calls(monkeypatch)

    def plain(x: int = 0) -> int:
        return x + 1

    def effect(x: int = 0) -> int:
        return x + 1

    registry.register(cnb.NodeType.from_function(plain))
    registry.register(cnb.NodeType.from_function(effect, side_effects=True))
    bp = cnb.Blueprint("effects", registry=registry)
    for i, name in enumerate(["plain", "effect", "plain", "plain"]):
        bp.add(name, id=f"s{i}")
        if i:
            bp.connect(f"s{i - 1}", f"s{i}.x")
    run = bp.run(history=False)
    assert run["s3"].output == 4
    assert calls == ["feed", "effect", "feed"]


def wide(registry: cnb.Registry, n: int, fn: Callable[..., Any]) -> cnb.Blueprint:
    """``src`` feeding ``n`` nodes that are all ready together."""
    registry.register(cnb.NodeType.from_function(fn, name="leaf"))
    registry.register(cnb.NodeType.from_function(lambda: 0, name="src"))
    bp = cnb.Blueprint("wide", registry=registry)
    bp.add("src", id="src")
    for i in range(n):
        bp.add("leaf", id=f"w{i}", params={"i": i})
        bp.connect("src", f"w{i}.x")
    return bp


def test_a_wide_run_paused_midway_leaves_the_rest_pending_in_order(registry) -> None:
    """Nodes taken ahead for a worker go back when the run pauses: nothing is left queued
    or running, the next node is the first one not run, and resuming runs the rest."""
    handle: list[cnb.Run] = []
    ran: list[int] = []

    def leaf(x: int = 0, i: int = 0) -> int:
        ran.append(i)
        if i == 40:
            handle[0].pause()
            wait_until(lambda: handle[0].is_paused)
        return x + i

    run = wide(registry, 300, leaf).start(history=False, paused=True)
    handle.append(run)
    run.resume()
    run.wait(timeout=30)
    assert run.is_paused
    states = {nid: r.status.value for nid, r in run.node_runs.items() if nid != "src"}
    assert set(states.values()) == {"succeeded", "pending"}
    done = sorted(int(nid[1:]) for nid, state in states.items() if state == "succeeded")
    assert done == sorted(ran) and 40 in done and len(done) < 300
    assert run.next_node() == f"w{min(set(range(300)) - set(done))}"
    run.resume().wait(timeout=30)
    assert run.status is cnb.RunState.SUCCEEDED
    assert [run[f"w{i}"].output for i in range(300)] == list(range(300))
    assert sorted(ran) == list(range(300))


def test_a_wide_run_cancelled_midway_ends_every_node(registry) -> None:
    handle: list[cnb.Run] = []

    def leaf(x: int = 0, i: int = 0) -> int:
        if i == 40:
            handle[0].cancel()
            wait_until(lambda: handle[0].is_cancelling or handle[0].is_finished)
        return x + i

    run = wide(registry, 300, leaf).start(paused=True)
    handle.append(run)
    run.resume()
    run.wait(timeout=30)
    assert run.status is cnb.RunState.CANCELLED
    states = {r.status.value for r in run.node_runs.values()}
    assert states <= {"succeeded", "cancelled"} and "cancelled" in states
    assert sum(r.status is cnb.NodeState.CANCELLED for r in run.node_runs.values()) > 200


def test_an_engine_error_in_a_feed_fails_its_nodes_and_the_run_ends(registry, monkeypatch) -> None:
    """A bug while recording a fed node does not hang the run: the nodes it had fail
    with an internal error, and the run ends failed."""
    from conductor_nb.engine import node_runner

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("recording broke")

    monkeypatch.setattr(node_runner, "record_started", broken)

    def step(x: int = 0) -> int:
        return x + 1

    run = sync_chain(registry, 5, step).run(history=False)
    assert run.status is cnb.RunState.FAILED
    assert "internal error" in str(run["n0"].error) and "recording broke" in str(run["n0"].error)
    assert run["n4"].status is cnb.NodeState.SKIPPED


def test_a_worker_goes_on_with_the_first_node_of_a_fork(registry, monkeypatch) -> None:
    """``s`` makes ``a`` and ``b`` ready: its worker goes on with ``a`` (the first in plan
    order) and the loop hands ``b`` to the same feed,
    and neither is run twice (no node goes to a thread on its own)."""
    calls = counting_calls(monkeypatch)
    ran: list[str] = []

    def src() -> int:
        ran.append("s")
        return 1

    def branch(x: int = 0, name: str = "") -> int:
        ran.append(name)
        return x + 1

    registry.register(cnb.NodeType.from_function(src))
    registry.register(cnb.NodeType.from_function(branch))
    bp = cnb.Blueprint("fork", registry=registry)
    bp.add("src", id="s")
    for name in ("a", "b"):
        bp.add("branch", id=name, params={"name": name})
        bp.connect("s", f"{name}.x")
    run = bp.run()
    assert run.status is cnb.RunState.SUCCEEDED
    assert set(calls) == {"feed"} and sorted(ran) == ["a", "b", "s"] and ran[:2] == ["s", "a"]
    assert run["a"].output == run["b"].output == 2
