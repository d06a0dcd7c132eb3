"""The Scheduler and the Stepper on their own: pure state machines, no event loop needed."""

from __future__ import annotations

import asyncio

import pytest

import conductor_nb as cnb
from conductor_nb.engine.plan import compile_plan
from conductor_nb.engine.scheduler import Scheduler
from conductor_nb.engine.stepper import Stepper, Verdict


def diamond(registry) -> cnb.Blueprint:
    """a -> (b, c) -> d, plus an independent e."""
    bp = cnb.Blueprint("diamond", registry=registry)
    bp.add("double", id="a", x=1)
    bp.add("double", id="b")
    bp.add("double", id="c")
    bp.add("add", id="d")
    bp.add("double", id="e", x=2)
    bp.connect("a", "b.x")
    bp.connect("a", "c.x")
    bp.connect("b", "d.a")
    bp.connect("c", "d.b")
    return bp


def drain(sched: Scheduler) -> list[str]:
    """Run everything to the end in scheduler order, every node succeeding."""
    order = []
    while sched.is_active():
        node_id = sched.take()
        order.append(node_id)
        sched.done(node_id, ok=True)
    return order


def test_ready_order_is_stable_and_follows_dependencies(registry) -> None:
    sched = Scheduler(compile_plan(diamond(registry)))
    assert sched.ready() == ["a", "e"] and sched.peek() == "a"
    assert sched.pending() == ["b", "c", "d"]
    assert drain(sched) == ["a", "b", "c", "d", "e"]
    assert sched.finished_count == 5 and not sched.is_active()


def test_a_node_is_ready_only_when_every_upstream_succeeded(registry) -> None:
    sched = Scheduler(compile_plan(diamond(registry)))
    sched.done(sched.take("a"), ok=True)
    sched.done(sched.take("b"), ok=True)
    assert "d" not in sched.ready()
    sched.take("c")
    assert sched.running == {"c"}
    assert sched.done("c", ok=True) == []
    assert "d" in sched.ready()


def test_a_failure_skips_everything_downstream_and_nothing_else(registry) -> None:
    sched = Scheduler(compile_plan(diamond(registry)))
    sched.take("a")
    assert sorted(sched.done("a", ok=False)) == ["b", "c", "d"]
    assert sched.ready() == ["e"]
    assert drain(sched) == ["e"]


def test_a_branch_not_taken_skips_only_its_readers(registry) -> None:
    bp = cnb.Blueprint("branch")
    bp.add("if", id="cond", input=1, condition="input > 0")
    bp.add("delay", id="yes", seconds=0)
    bp.add("delay", id="no", seconds=0)
    bp.add("delay", id="after_no", seconds=0)
    bp.connect("cond.true", "yes.input")
    bp.connect("cond.false", "no.input")
    bp.connect("no", "after_no.input")
    sched = Scheduler(compile_plan(bp))
    sched.take("cond")
    assert sched.done("cond", ok=True, skipped_ports=["false"]) == ["no", "after_no"]
    assert sched.ready() == ["yes"]


def test_reset_brings_finished_nodes_back(registry) -> None:
    sched = Scheduler(compile_plan(diamond(registry)))
    sched.take("a")
    sched.done("a", ok=False)
    sched.reset(["a", "b", "c", "d"])
    assert sched.ready() == ["a", "e"]
    assert drain(sched) == ["a", "b", "c", "d", "e"]


def test_resumed_nodes_count_as_succeeded(registry) -> None:
    sched = Scheduler(compile_plan(diamond(registry)), succeeded=["a", "b"])
    assert sched.ready() == ["c", "e"] and sched.finished_count == 2


def test_cancel_pending_finishes_what_has_not_started(registry) -> None:
    sched = Scheduler(compile_plan(diamond(registry)))
    sched.take("a")
    assert sched.cancel_pending() == ["b", "c", "d", "e"]
    assert sched.is_active()  # "a" still runs
    sched.done("a", ok=True)
    assert not sched.is_active()


def test_taking_a_node_that_is_not_ready_is_refused(registry) -> None:
    sched = Scheduler(compile_plan(diamond(registry)))
    with pytest.raises(LookupError, match="'d' is not ready"):
        sched.take("d")


def test_a_cycle_is_refused_when_planning_without_validation(registry) -> None:
    bp = cnb.Blueprint("loop", registry=registry)
    bp.add("double", id="a")
    bp.add("double", id="b")
    bp.connect("a", "b.x")
    bp.connect("b", "a.x")
    with pytest.raises(cnb.BlueprintError, match="cycle"):
        compile_plan(bp)
    with pytest.raises(ValueError, match="cycle"):
        compile_plan(bp, validate=False)


def test_10000_node_chain_skips_without_recursion(registry) -> None:
    bp = cnb.Blueprint("chain", registry=registry)
    bp.add("double", id="n0", x=1)
    for i in range(1, 10_000):
        bp.add("double", id=f"n{i}")
        bp.connect(f"n{i - 1}", f"n{i}.x")
    sched = Scheduler(compile_plan(bp, validate=False))
    sched.take("n0")
    assert len(sched.done("n0", ok=False)) == 9_999


# ------------------------------------------------------------------ the stepper


def test_stepper_verdicts() -> None:
    stepper = Stepper(breakpoints=["b"], paused=False)
    assert stepper.verdict("a") is Verdict.GO
    assert stepper.verdict("b") is Verdict.BREAKPOINT
    assert stepper.verdict("b") is Verdict.GO  # once per node
    stepper.run_to = "c"
    assert stepper.verdict("c") is Verdict.RUN_TO and stepper.run_to is None
    stepper.paused = True
    assert stepper.verdict("d") is Verdict.HOLD


def test_stepper_steps_spend_a_budget_and_wait_for_their_node() -> None:
    loop = asyncio.new_event_loop()
    try:
        stepper = Stepper(breakpoints=["x"], paused=True)
        assert stepper.is_settled(running=0)
        waiter = stepper.request_step(loop)
        assert stepper.verdict("x") is Verdict.GO  # a step passes a breakpoint
        stepper.took("x", stepping=stepper.is_stepping)
        assert not stepper.is_stepping and stepper.is_settled(running=0)
        stepper.finished("x", "record")
        assert waiter.result() == "record"
        forced = stepper.force("y", {"v": 1}, loop)
        stepper.fail_waiters(RuntimeError("ended"))
        assert isinstance(forced.exception(), RuntimeError) and not stepper.forced
    finally:
        loop.close()
