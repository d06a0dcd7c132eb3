"""The one reducer: an event, applied to a node's record, gives its next state.

Every reader of a run's events keeps node state the same way: the driver (its
own records and the mirrored records of nested runs), the UI coalescer, the
history recorder, the CLI progress and the view. :data:`NODE_STATE_OF` is the
only event -> state mapping; :func:`apply_event` moves a :class:`NodeRun`
through :func:`~conductor_nb.model.states.move_node` (the one transition
table), so an illegal move raises wherever it would happen, and copies the
event's facts (times, attempts, inputs, outputs, traceback, reason, log lines)
onto the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from conductor_nb.engine import events as ev
from conductor_nb.engine.node_runner import LogLine, NodeRun
from conductor_nb.model.states import NodeState, move_node

NODE_STATE_OF: Mapping[type[ev.Event], NodeState] = MappingProxyType(
    {
        ev.NodeQueued: NodeState.QUEUED,
        ev.NodeStarted: NodeState.RUNNING,
        ev.NodeRetrying: NodeState.RUNNING,
        ev.NodeSucceeded: NodeState.SUCCEEDED,
        ev.NodeCached: NodeState.CACHED,
        ev.NodeFailed: NodeState.FAILED,
        ev.NodeSkipped: NodeState.SKIPPED,
        ev.NodeCancelled: NodeState.CANCELLED,
        ev.NodeReset: NodeState.PENDING,
    }
)
"""The node state each event type leads to (NodeLog leads to none)."""


def state_of(event: ev.Event) -> NodeState | None:
    """The state ``event`` moves its node to, or None (run events, log lines)."""
    return NODE_STATE_OF.get(type(event))


def display_state(event: ev.Event, state: NodeState) -> str:
    """The name a display shows for a node in ``state`` after ``event``: a node
    between two attempts shows as ``retrying`` (a display state of STATE_STYLES)."""
    return "retrying" if type(event) is ev.NodeRetrying else state.value


def apply_event(record: NodeRun, event: ev.Event, *, observer: bool = False) -> bool:
    """Apply a node event to ``record``; False when the event is not about a node.

    An ``observer`` follows records that the publishing driver has already moved
    legally, nested ones included (``loop[0].double``): when such a record is
    finished and starts again without a reset, a body is running again (each body
    run is a fresh child run), so the record starts afresh.
    """
    kind = type(event)
    if kind is ev.NodeLog:
        log = event  # a log line moves no state
        record.logs.append(LogLine(log.time, log.stream, log.text, log.level))  # type: ignore[attr-defined]
        return True
    state = NODE_STATE_OF.get(kind)
    if state is None:
        return False
    if kind is ev.NodeReset or (observer and record.status.is_finished and state.is_active):
        record.reset()
    record.status = move_node(record.node_id, record.status, state)
    _FACTS[kind](record, event)
    return True


def _queued(record: NodeRun, event: ev.Event) -> None:
    record.queued_at = event.time


def _started(record: NodeRun, event: ev.Event) -> None:
    assert isinstance(event, ev.NodeStarted)
    record.started_at, record.attempts, record.inputs = event.time, event.attempt, event.inputs
    record.finished_at = None


def _retrying(record: NodeRun, event: ev.Event) -> None:
    assert isinstance(event, ev.NodeRetrying)
    record.attempts = event.attempt


def _succeeded(record: NodeRun, event: ev.Event) -> None:
    assert isinstance(event, ev.NodeSucceeded)
    record.finished_at, record.attempts, record.outputs = event.time, event.attempt, event.outputs


def _cached(record: NodeRun, event: ev.Event) -> None:
    assert isinstance(event, ev.NodeCached)
    record.finished_at, record.outputs = event.time, event.outputs
    if record.started_at is None:
        record.started_at = event.time
    record.cache_key = event.key or record.cache_key


def _failed(record: NodeRun, event: ev.Event) -> None:
    assert isinstance(event, ev.NodeFailed)
    record.finished_at, record.attempts = event.time, event.attempt
    record.traceback = event.traceback


def _skipped(record: NodeRun, event: ev.Event) -> None:
    assert isinstance(event, ev.NodeSkipped | ev.NodeCancelled)
    record.reason = event.reason
    record.finished_at = event.time if record.started_at is not None else None


def _reset(record: NodeRun, event: ev.Event) -> None:
    assert isinstance(event, ev.NodeReset)
    record.reason = event.reason


_FACTS = {
    ev.NodeQueued: _queued,
    ev.NodeStarted: _started,
    ev.NodeRetrying: _retrying,
    ev.NodeSucceeded: _succeeded,
    ev.NodeCached: _cached,
    ev.NodeFailed: _failed,
    ev.NodeSkipped: _skipped,
    ev.NodeCancelled: _skipped,
    ev.NodeReset: _reset,
}

__all__ = ["NODE_STATE_OF", "apply_event", "display_state", "state_of"]
