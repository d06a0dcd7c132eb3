"""The one vocabulary of states: lifecycles of runs and node runs, their moves, their looks.

:class:`NodeState` and :class:`RunState` are the states; :func:`move_node` and
:func:`move_run` are the only way between them (a table of legal moves; an
illegal one raises :class:`~conductor_nb.errors.RunStateError`).
:data:`STATE_STYLES` is how every state looks, in one table that the SVG
picture, the HTML report, the CLI progress and the view's front end (sent to
it as a trait, never copied into its JS or CSS) all read. Besides the node
states it has two display states: ``paused`` (the node a paused run waits
before) and ``retrying`` (a running node between two attempts).
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

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

    @property
    def is_active(self) -> bool:
        """Queued or running: the node is being executed."""
        return self in (NodeState.QUEUED, NodeState.RUNNING)


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


class StateStyle(NamedTuple):
    """How one state looks: box fill and stroke, a readable text colour on white, an icon,
    a label, and the closest style in the terminal (a ``rich`` style)."""

    fill: str
    stroke: str
    text: str
    icon: str
    label: str
    terminal: str


STATE_STYLES: dict[str, StateStyle] = {
    "pending": StateStyle("#f4f5f7", "#9aa3ad", "#57606a", "·", "pending", "dim"),
    "queued": StateStyle("#e8f0fe", "#7aa2e3", "#0969da", "…", "queued", "cyan"),
    "running": StateStyle("#fff4d6", "#f0a500", "#9a6700", "▶", "running", "bold yellow"),
    "succeeded": StateStyle("#e3f5e6", "#2e9d44", "#1a7f37", "✔", "succeeded", "green"),
    "cached": StateStyle("#e0f2f1", "#26a69a", "#00796b", "↺", "cached", "cyan"),
    "failed": StateStyle("#fde7e7", "#d93025", "#cf222e", "✘", "failed", "bold red"),
    "skipped": StateStyle("#f1f1f1", "#b0b0b0", "#6e7781", "⤼", "skipped", "dim"),
    "cancelled": StateStyle("#f3e8fd", "#8e44ad", "#8250df", "■", "cancelled", "magenta"),
    "paused": StateStyle("#fff0e0", "#e67e22", "#bc4c00", "⏸", "paused", "bold yellow"),
    "retrying": StateStyle("#fff4d6", "#e67e22", "#bc4c00", "↻", "retrying", "yellow"),
}
"""Every node state and the two display states, by name (see the module docstring)."""


def style_of(state: str | None) -> StateStyle:
    """The style of ``state`` (a NodeState or a display state); unknown -> pending."""
    return STATE_STYLES.get(state or "pending", STATE_STYLES["pending"])


def style_table() -> dict[str, dict[str, str]]:
    """:data:`STATE_STYLES` as plain JSON (what the view's front end receives)."""
    return {name: style._asdict() for name, style in STATE_STYLES.items()}
