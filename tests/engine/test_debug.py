"""Step-through debugging: paused start, step, breakpoints, run_to, retry after a fix, rerun."""

from __future__ import annotations

import pytest

import conductor_nb as cnb
from conductor_nb.engine import events as ev


@pytest.fixture
def chain(registry) -> cnb.Blueprint:
    bp = cnb.Blueprint("chain", registry=registry)
    bp.add("double", id="a", x=1)
    bp.add("double", id="b")
    bp.add("double", id="c")
    bp.add("double", id="side", x=10)
    bp.connect("a", "b.x")
    bp.connect("b", "c.x")
    return bp


def states(run) -> dict[str, str]:
    return {n: r.status.value for n, r in run.node_runs.items()}


def test_debug_starts_paused_and_step_runs_exactly_one_node(chain) -> None:
    run = chain.debug(history=False)
    run.wait()
    assert run.status is cnb.RunState.PAUSED
    assert set(states(run).values()) == {"pending"}
    assert run.next_node() == "a"
    first = run.step()
    assert first.node_id == "a" and first.output == 2
    assert states(run) == {"a": "succeeded", "b": "pending", "c": "pending", "side": "pending"}
    assert run.step().node_id == "b"  # stable order: b (added before side) is next
    assert run.step().node_id == "c"
    assert run.step().node_id == "side"
    with pytest.raises(cnb.RunStateError, match="nothing left to step"):
        run.wait().step()
    assert run.status is cnb.RunState.SUCCEEDED


def test_breakpoint_pauses_before_the_node_and_resume_passes_it(chain) -> None:
    run = chain.start(breakpoints=["c"], history=False)
    run.wait()
    assert run.status is cnb.RunState.PAUSED and run.paused_at == "c"
    assert states(run)["c"] == "pending" and states(run)["b"] == "succeeded"
    run.resume().wait()
    assert run.status is cnb.RunState.SUCCEEDED and run["c"].output == 8


def test_breakpoints_can_be_added_while_paused_and_run_to(chain) -> None:
    run = chain.debug(history=False)
    run.add_breakpoint("b")
    run.resume().wait()
    assert run.paused_at == "b" and states(run)["side"] == "succeeded"
    run.run_to("c").wait()
    assert run.paused_at == "c" and states(run)["b"] == "succeeded"
    assert states(run)["c"] == "pending"
    run.resume().wait()
    assert run.status is cnb.RunState.SUCCEEDED


def test_pause_then_cancel(chain) -> None:
    run = chain.debug(history=False)
    run.step()
    run.cancel().wait()
    assert run.status is cnb.RunState.CANCELLED
    assert states(run) == {
        "a": "succeeded",
        "b": "cancelled",
        "c": "cancelled",
        "side": "cancelled",
    }


def test_retry_uses_the_fixed_definition_and_continues_downstream(registry) -> None:
    @cnb.node(registry=registry)
    def parse(text: str) -> int:
        return int(text)  # fails on "4.5"

    bp = cnb.Blueprint("fix", registry=registry)
    bp.add("parse", id="parse", text="4.5")
    bp.add("double", id="after")
    bp.connect("parse", "after.x")
    run = bp.run(history=False)
    assert run.status is cnb.RunState.FAILED and states(run)["after"] == "skipped"

    @cnb.node(registry=registry)  # the user fixes the function in a cell
    def parse(text: str) -> int:  # noqa: F811
        return round(float(text))

    run.retry("parse")
    assert run.status is cnb.RunState.SUCCEEDED
    assert run["parse"].output == 4 and run["after"].output == 8
    assert run["parse"].attempts == 2
    with pytest.raises(cnb.RunStateError, match="is succeeded"):
        run.retry("parse")


def test_rerun_with_edited_inputs(chain) -> None:
    run = chain.run(history=False)
    assert run["b"].output == 4
    again = run.rerun("b", inputs={"x": 100})
    assert again.output == 200 and again.inputs == {"x": 100}
    assert run["c"].output == 8  # downstream untouched by default
    run.rerun("b", inputs={"x": 5}, downstream=True)
    run.wait()
    assert run["c"].output == 20
    with pytest.raises(KeyError, match="has no input 'y'"):
        run.rerun("b", inputs={"y": 1})


def test_step_before_start_of_a_node_waits_for_it_to_finish(registry) -> None:
    import threading

    gate = threading.Event()

    def gated(x: int) -> int:
        gate.wait(10)
        return x

    registry.register(cnb.NodeType.from_function(gated))
    bp = cnb.Blueprint("g", registry=registry)
    bp.add("gated", id="g", x=3)
    run = bp.debug(history=False)
    run.subscribe(lambda event: gate.set(), ev.NodeStarted)  # only once step() has begun
    record = run.step()
    assert record.status is cnb.NodeState.SUCCEEDED and record.output == 3


def test_slow_motion_and_fault_injection(chain) -> None:
    run = chain.run(faults={"b": "fail"}, slow_motion=0.01, history=False)
    assert states(run)["b"] == "failed" and "fault injected" in str(run["b"].error)
    assert states(run)["c"] == "skipped" and states(run)["side"] == "succeeded"
    run = chain.run(fault_rate=1.0, fault_seed=1, history=False)
    assert run.status is cnb.RunState.FAILED


def test_await_forms_in_async_code(chain) -> None:
    import asyncio

    async def main():
        run = chain.debug(history=False)
        first = await run.astep()
        await run.aresume()
        return first, run

    first, run = asyncio.run(main())
    assert first.node_id == "a" and run.status is cnb.RunState.SUCCEEDED


def test_pause_holds_new_nodes_until_resume(chain) -> None:
    run = chain.start(history=False, slow_motion=0.05)
    run.pause()
    run.wait(timeout=10)  # settles: nothing running, nothing new dispatched
    assert run.status is cnb.RunState.PAUSED
    done_while_paused = set(run.counts())
    assert "pending" in done_while_paused
    paused = [e for e in run.events if isinstance(e, ev.RunPaused)]
    assert paused and paused[-1].reason == "pause"
    run.resume().wait(timeout=10)
    assert run.status is cnb.RunState.SUCCEEDED
    assert any(isinstance(e, ev.RunResumed) for e in run.events)


def test_breakpoints_given_to_run_pause_it(chain) -> None:
    run = chain.run(breakpoints=["c"], history=False)
    assert run.status is cnb.RunState.PAUSED and run.next_node() == "c"
    assert run["b"].status is cnb.NodeState.SUCCEEDED
    assert run["c"].status is cnb.NodeState.PENDING
    run.resume().wait(timeout=10)
    assert run.status is cnb.RunState.SUCCEEDED
