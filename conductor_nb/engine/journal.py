"""A run's records and its event stream: every state change is published here.

The journal holds the run's :class:`NodeRun` records and appends every event to
the run's list and bus (observers subscribe there: history, views, progress).
A nested run (a loop, parallel or group body) has a journal of its own for its
records, but publishes into the root's stream with its node ids prefixed by path
(``loop[2].fetch``), and the root keeps a mirrored record for each of them.
Secrets read from the environment are masked in what is published: the records
keep the real values (downstream nodes read them), while observers (history,
views, progress) get events whose outputs read ``***``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from conductor_nb.engine import environ
from conductor_nb.engine.events import (
    Event,
    EventBus,
    NodeCached,
    NodeEvent,
    NodeLog,
    NodeSucceeded,
    RunFinished,
    RunStarted,
)
from conductor_nb.engine.node_runner import NodeRun
from conductor_nb.engine.plan import Plan
from conductor_nb.engine.reducer import apply_event
from conductor_nb.engine.states import NodeState, RunState, move_node


class Journal:
    """Records and events of one run (or one body run, publishing into its root)."""

    def __init__(
        self,
        run_id: str,
        plan: Plan,
        *,
        root: Journal | None = None,
        prefix: str = "",
        secrets: list[str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.plan = plan
        self.node_runs: dict[str, NodeRun] = {
            nid: NodeRun(nid, p.type.name) for nid, p in plan.nodes.items()
        }
        self.root: Journal = root or self
        self.events: list[Event] = []
        self.bus: EventBus = root.bus if root else EventBus()
        self._prefix = prefix
        self._secrets = secrets or []

    # -------------------------------------------------------- publishing
    def publish(self, event: Event) -> None:
        if isinstance(event, NodeEvent):
            own = self.node_runs.get(event.node_id)
            if own is not None:  # every state change of a record goes through the reducer
                apply_event(own, event)
            if self._secrets and isinstance(event, NodeSucceeded | NodeCached):
                event = dataclasses.replace(event, outputs=self.redact(event.outputs))
            if self._prefix:
                event = _prefixed(event, self._prefix)
        elif self._prefix and getattr(event, "node_id", None) is not None:  # RunPaused
            event = _prefixed(event, self._prefix)
        root = self.root
        if root is not self:  # before observers run: what they read of the root is current
            root._mirror(event)
        root.events.append(event)
        root.bus.publish(event)

    def started(
        self, blueprint_id: str, params: Mapping[str, Any], completed: Mapping[str, Any]
    ) -> None:
        """RunStarted, then NodeCached for each node a resumed run reuses."""
        self.publish(
            RunStarted(
                self.run_id,
                blueprint_id=blueprint_id,
                params=dict(params),
                node_ids=tuple(self.plan.order),
            )
        )
        for node_id in completed:
            record = self.node_runs.get(node_id)
            if record is not None:
                self.publish(
                    NodeCached(self.run_id, node_id=node_id, key="resume", outputs=record.outputs)
                )

    def finished(self, state: RunState, duration: float, error: BaseException | None) -> None:
        """RunFinished, with the run's own error or else the first node error."""
        first = error or next((r.error for r in self.node_runs.values() if r.error), None)
        self.publish(
            RunFinished(
                self.run_id,
                status=state.value,
                duration=duration,
                error=str(first) if first else None,
            )
        )

    def _mirror(self, event: Event) -> None:
        """Nested (group/loop) node events also live as NodeRuns of the root, by path."""
        if not isinstance(event, NodeEvent) or not event.node_id:
            return
        node_id = event.node_id
        record = self.node_runs.get(node_id)
        if record is None:
            record = self.node_runs[node_id] = NodeRun(node_id, "")
            record.pinned = True  # nested: not part of the root plan
        apply_event(record, event, observer=True)

    def move(self, node_run: NodeRun, state: NodeState) -> None:
        """A record's state change, checked against the transition table."""
        node_run.status = move_node(node_run.node_id, node_run.status, state)

    def holds_secret(self, value: Any) -> bool:
        """Whether ``value`` holds one of the run's secrets (then it is never cached)."""
        return bool(self._secrets) and environ.holds(value, self._secrets)

    def redact(self, value: Any) -> Any:
        """``value`` with the secrets this run read from the environment masked as ``***``."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, "***")
            return value
        if isinstance(value, Mapping):
            return {k: self.redact(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.redact(v) for v in value)
        return value

    def log(self, node_id: str, stream: str, text: str, level: str = "") -> None:
        text = self.redact(text)  # the record gets the line through the reducer
        self.publish(NodeLog(self.run_id, node_id=node_id, stream=stream, text=text, level=level))

    # ----------------------------------------------------------- reading
    def failed_nodes(self) -> list[str]:
        """Failed nodes of this run's plan (nested ``group.inner`` records are not counted)."""
        return [n for n in self.plan.order if self.node_runs[n].status is NodeState.FAILED]

    def outcome(self) -> RunState:
        """How the run ended by its own nodes: failed if one failed, cancelled if one was
        cancelled, else succeeded."""
        states = {self.node_runs[n].status for n in self.plan.order}
        if NodeState.FAILED in states:
            return RunState.FAILED
        return RunState.CANCELLED if NodeState.CANCELLED in states else RunState.SUCCEEDED

    def counts(self) -> dict[str, int]:
        """How many of this run's own nodes are in each state (nested records not counted:
        a loop's iterations are part of the loop node)."""
        out: dict[str, int] = {}
        for node_id in self.plan.order:
            state = self.node_runs[node_id].status.value
            out[state] = out.get(state, 0) + 1
        return out


def env_secrets(plan: Plan, option: environ.EnvOption) -> list[str]:
    """Values of the environment variables the run exposes (with ``env=True``: those its
    templates read): they are masked in recorded inputs, outputs, logs and errors."""
    names: set[str] = set()
    for planned in plan.nodes.values():
        names |= environ.read_names(planned.node.params)
    return environ.secret_values(option, names)


def _prefixed(event: Event, prefix: str) -> Event:
    node_id = f"{prefix}.{event.node_id}"  # type: ignore[attr-defined]
    return dataclasses.replace(event, node_id=node_id)  # type: ignore[call-arg]
