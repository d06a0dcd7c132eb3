"""Lifecycle states of runs and node runs, with the one function that moves between them."""

from __future__ import annotations

from enum import StrEnum

from conductor_nb.errors import RunStateError


class NodeState(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    CACHED = "cached"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value

    @property
    def is_finished(self) -> bool:
        return self in _NODE_FINAL

    @property
    def is_success(self) -> bool:
        return self in (NodeState.SUCCEEDED, NodeState.CACHED)


_NODE_FINAL = frozenset(
    {
        NodeState.SUCCEEDED,
        NodeState.CACHED,
        NodeState.FAILED,
        NodeState.SKIPPED,
        NodeState.CANCELLED,
    }
)

_NODE_MOVES: dict[NodeState, frozenset[NodeState]] = {
    NodeState.PENDING: frozenset(
        {
            NodeState.QUEUED,
            NodeState.SKIPPED,
            NodeState.CANCELLED,
            NodeState.RUNNING,
            NodeState.CACHED,
        }
    ),
    NodeState.QUEUED: frozenset(
        {
            NodeState.RUNNING,
            NodeState.CANCELLED,
            NodeState.PENDING,
            NodeState.CACHED,
            NodeState.SKIPPED,
            NodeState.FAILED,
        }
    ),
    NodeState.RUNNING: frozenset(
        {NodeState.SUCCEEDED, NodeState.FAILED, NodeState.CANCELLED, NodeState.CACHED}
    ),
    # finished nodes go back to pending only through retry/rerun/resume
    NodeState.SUCCEEDED: frozenset({NodeState.PENDING}),
    NodeState.CACHED: frozenset({NodeState.PENDING}),
    NodeState.FAILED: frozenset({NodeState.PENDING}),
    NodeState.SKIPPED: frozenset({NodeState.PENDING}),
    NodeState.CANCELLED: frozenset({NodeState.PENDING}),
}


def move_node(node_id: str, current: NodeState, target: NodeState) -> NodeState:
    if target is current or target in _NODE_MOVES[current]:
        return target
    raise RunStateError(f"node {node_id!r} cannot go from {current.value} to {target.value}")


class RunState(StrEnum):
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # found unfinished in history (the process died)

    def __str__(self) -> str:
        return self.value

    @property
    def is_finished(self) -> bool:
        return self in (
            RunState.SUCCEEDED,
            RunState.FAILED,
            RunState.CANCELLED,
            RunState.INTERRUPTED,
        )


_RUN_MOVES: dict[RunState, frozenset[RunState]] = {
    RunState.CREATED: frozenset(
        {RunState.RUNNING, RunState.PAUSED, RunState.CANCELLED, RunState.FAILED}  # no start
    ),
    RunState.RUNNING: frozenset(
        {RunState.PAUSED, RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED}
    ),
    RunState.PAUSED: frozenset(
        {RunState.RUNNING, RunState.CANCELLED, RunState.SUCCEEDED, RunState.FAILED}
    ),
    # retry / rerun / resume bring a finished run back to life
    RunState.SUCCEEDED: frozenset({RunState.RUNNING, RunState.PAUSED}),
    RunState.FAILED: frozenset({RunState.RUNNING, RunState.PAUSED}),
    RunState.CANCELLED: frozenset({RunState.RUNNING, RunState.PAUSED}),
    RunState.INTERRUPTED: frozenset({RunState.RUNNING}),
}


def move_run(run_id: str, current: RunState, target: RunState) -> RunState:
    if target is current or target in _RUN_MOVES[current]:
        return target
    raise RunStateError(f"run {run_id} cannot go from {current.value} to {target.value}")
