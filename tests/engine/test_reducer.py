"""The one reducer and the one state table: every reader of events keeps node state alike."""

from __future__ import annotations

import pytest

import conductor_nb as cnb
from conductor_nb.engine import events as ev
from conductor_nb.engine.node_runner import NodeRun
from conductor_nb.engine.reducer import NODE_STATE_OF, apply_event, display_state, state_of
from conductor_nb.errors import RunStateError
from conductor_nb.model.states import STATE_STYLES, NodeState, RunState, style_table


def _node_event_types() -> set[type[ev.Event]]:
    """The node event types the events module exports (its public vocabulary)."""
    return {
        cls
        for cls in vars(ev).values()
        if isinstance(cls, type) and issubclass(cls, ev.NodeEvent) and cls is not ev.NodeEvent
    }


def test_every_node_event_but_log_lines_names_a_state() -> None:
    assert set(NODE_STATE_OF) == _node_event_types() - {ev.NodeLog}
    assert state_of(ev.RunStarted("r")) is None
    assert state_of(ev.NodeLog("r", node_id="a", text="x")) is None


def test_every_state_and_display_state_has_one_style() -> None:
    names = {s.value for s in NodeState} | {"paused", "retrying"}
    assert set(STATE_STYLES) == names
    assert {s.value for s in RunState} - {"created", "interrupted"} <= set(STATE_STYLES)
    table = style_table()
    assert table["cached"]["fill"] == STATE_STYLES["cached"].fill
    assert set(table["failed"]) == {"fill", "stroke", "text", "icon", "label", "terminal"}


def test_illegal_moves_raise_through_the_transition_table() -> None:
    record = NodeRun("a", "t")
    with pytest.raises(RunStateError, match="cannot go from pending to succeeded"):
        apply_event(record, ev.NodeSucceeded("r", node_id="a"))
    assert record.status is NodeState.PENDING


def test_facts_follow_the_events() -> None:
    record = NodeRun("a", "t")
    apply_event(record, ev.NodeQueued("r", node_id="a", time=1.0))
    apply_event(record, ev.NodeStarted("r", node_id="a", attempt=1, inputs={"x": 1}, time=2.0))
    retry = ev.NodeRetrying("r", node_id="a", attempt=1, delay=0.5, error="boom")
    apply_event(record, retry)
    assert display_state(retry, record.status) == "retrying"
    apply_event(record, ev.NodeStarted("r", node_id="a", attempt=2, inputs={"x": 1}, time=3.0))
    apply_event(record, ev.NodeLog("r", node_id="a", text="hi\n"))
    apply_event(record, ev.NodeSucceeded("r", node_id="a", attempt=2, outputs={"o": 2}, time=4.0))
    assert (record.status, record.attempts, record.outputs) == (NodeState.SUCCEEDED, 2, {"o": 2})
    assert (record.queued_at, record.started_at, record.finished_at) == (1.0, 3.0, 4.0)
    assert record.log_text == "hi\n"
    apply_event(record, ev.NodeReset("r", node_id="a", reason="retry"))
    assert (record.status, record.outputs, record.reason) == (NodeState.PENDING, None, "retry")


def test_replaying_a_runs_events_gives_its_records(registry) -> None:
    """The driver's records and any observer's records are the same function of the events."""
    calls: list[int] = []

    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise ConnectionError("refused")
        return x

    def broken(x: int) -> int:
        raise ValueError("no")

    registry.register(cnb.NodeType.from_function(flaky))
    registry.register(cnb.NodeType.from_function(broken))
    bp = cnb.Blueprint("replay", registry=registry)
    bp.add("double", id="a", x=2)
    bp.add("flaky", id="b", retries=1)
    bp.add("broken", id="c")
    bp.add("double", id="d")
    bp.add("double", id="off", x=1, enabled=False)
    bp.connect("a", "b.x")
    bp.connect("a", "c.x")
    bp.connect("c", "d.x")
    run = bp.run(history=False)
    assert run.status is cnb.RunState.FAILED
    replayed = {n: NodeRun(n, "") for n in run.node_runs}
    for event in run.events:
        if isinstance(event, ev.NodeEvent):
            apply_event(replayed[event.node_id], event)
    for node_id, record in run.node_runs.items():
        again = replayed[node_id]
        assert again.status is record.status, node_id
        assert (again.attempts, again.outputs, again.reason) == (
            record.attempts,
            record.outputs,
            record.reason,
        ), node_id
    assert run["b"].attempts == 2 and run["d"].status is NodeState.SKIPPED
    assert "upstream node 'c' failed" in run["d"].reason
