"""A worker thread goes on with the one sync node its node makes ready (engine/follow.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import conductor_nb as cnb
from conductor_nb.engine import follow
from conductor_nb.engine.threads import ThreadLane


def sync_chain(registry: cnb.Registry, n: int, fn: Callable[..., Any]) -> cnb.Blueprint:
    registry.register(cnb.NodeType.from_function(fn, name="step"))
    bp = cnb.Blueprint("follow", registry=registry)
    for i in range(n):
        bp.add("step", id=f"n{i}")
        if i:
            bp.connect(f"n{i - 1}", f"n{i}.x")
    return bp


def counting_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions handed to worker threads from the loop."""
    calls: list[str] = []
    real = ThreadLane.call

    def call(self: ThreadLane, fn: Any, kwargs: Any, then: Any = None) -> Any:
        calls.append(fn.__name__)
        return real(self, fn, kwargs, then)

    monkeypatch.setattr(ThreadLane, "call", call)
    return calls


def wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_a_chain_of_sync_nodes_goes_on_on_its_worker(registry, monkeypatch) -> None:
    """One hand-off to a thread runs the whole chain (the slice made long); every node
    is recorded as usual, in order, with the times it ran."""
    monkeypatch.setattr(follow, "FOLLOW_SLICE", 60.0)
    calls = counting_calls(monkeypatch)

    def step(x: int = 0) -> int:
        return x + 1

    run = sync_chain(registry, 300, step).run(history=False)
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert run["n299"].output == 300
    assert calls == ["step"]
    assert run["n5"].inputs == {"x": 5} and run["n5"].attempts == 1
    kinds = [(e.kind, e.node_id) for e in run.events if getattr(e, "node_id", None) == "n7"]
    assert kinds == [("NodeQueued", "n7"), ("NodeStarted", "n7"), ("NodeSucceeded", "n7")]
    for a, b in zip(list(run.node_runs.values()), list(run.node_runs.values())[1:], strict=False):
        assert a.started_at <= a.finished_at <= b.started_at <= b.finished_at


def test_with_no_slice_every_node_goes_through_the_loop(registry, monkeypatch) -> None:
    monkeypatch.setattr(follow, "FOLLOW_SLICE", 0.0)
    calls = counting_calls(monkeypatch)

    def step(x: int = 0) -> int:
        return x + 1

    run = sync_chain(registry, 20, step).run(history=False)
    assert run["n19"].output == 20 and len(calls) == 20


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
    monkeypatch.setattr(follow, "FOLLOW_SLICE", 60.0)
    followed = bp.run(history=False)
    monkeypatch.setattr(follow, "FOLLOW_SLICE", 0.0)
    plain = bp.run(history=False)
    assert followed.status is cnb.RunState.FAILED
    assert outcome(followed) == outcome(plain)
    assert "ValueError: boom" in str(followed["n3"].error)
    assert 'raise ValueError("boom")' in followed["n3"].traceback
    assert followed["n4"].reason == "upstream node 'n3' failed"


def test_what_followed_nodes_print_lands_in_their_own_records(registry, monkeypatch) -> None:
    monkeypatch.setattr(follow, "FOLLOW_SLICE", 60.0)
    calls = counting_calls(monkeypatch)

    def step(x: int = 0) -> int:
        print(f"at {x}")
        return x + 1

    run = sync_chain(registry, 6, step).run(history=False)
    assert len(calls) == 1
    assert [r.log_text for r in run.node_runs.values()] == [f"at {i}\n" for i in range(6)]


def test_a_paused_run_starts_no_node_on_the_worker(registry, monkeypatch) -> None:
    """n5 pauses the run and waits until it is paused: its worker starts nothing more."""
    monkeypatch.setattr(follow, "FOLLOW_SLICE", 60.0)
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


def test_a_breakpoint_stops_the_worker_before_its_node(registry, monkeypatch) -> None:
    monkeypatch.setattr(follow, "FOLLOW_SLICE", 60.0)
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


def test_a_cancel_stops_the_worker_and_the_run_ends_cancelled(registry, monkeypatch) -> None:
    monkeypatch.setattr(follow, "FOLLOW_SLICE", 60.0)
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
    assert {r.status for r in run.node_runs.values()} == {cnb.NodeState.CANCELLED}


def test_a_node_two_successors_wait_for_goes_back_to_the_loop(registry, monkeypatch) -> None:
    """A node that makes two nodes ready hands back: they run side by side (two blocking
    nodes meet at a barrier of two; on one worker they would not)."""
    monkeypatch.setattr(follow, "FOLLOW_SLICE", 60.0)
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
from conductor_nb.engine import follow
follow.FOLLOW_SLICE = 60.0
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
    monkeypatch.setattr(follow, "FOLLOW_SLICE", 60.0)
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
    assert calls == ["plain", "effect", "plain"]


@pytest.mark.parametrize("late", [False, True])
def test_a_live_watcher_sees_each_node_end_before_the_next_runs(
    registry, monkeypatch, late
) -> None:
    """With a subscriber to node events (a view, CLI progress) nothing is followed: when a
    node runs, the watcher has already seen its upstream node succeed. Only subscribers
    that take events late (the history recorder) leave the worker to go on."""
    monkeypatch.setattr(follow, "FOLLOW_SLICE", 60.0)
    gate, seen, saw_when_running = threading.Event(), [], {}

    def step(x: int = 0) -> int:
        if x == 0:
            assert gate.wait(30)
        saw_when_running[x] = sum(kind == "NodeSucceeded" for kind in list(seen))
        return x + 1

    def watch(event: Any) -> None:
        seen.append(event.kind)

    if late:
        watch.takes_events_late = True  # type: ignore[attr-defined]
    run = sync_chain(registry, 6, step).start(history=False)
    run.subscribe(watch)
    gate.set()
    run.wait(timeout=30)
    assert run.status is cnb.RunState.SUCCEEDED and run["n5"].output == 6
    if late:  # the worker went on: n1..n5 ran before the loop reported n0's end
        assert saw_when_running[5] < 5, saw_when_running
    else:
        assert saw_when_running == {x: x for x in range(6)}, saw_when_running
