"""The history recorder: an event subscriber that turns a run's events into SQL rows.

Events arrive on the thread of the run's event loop. The recorder only appends
them to a list and asks the loop to flush once the current burst is over
(``loop.call_soon``), so all events of one loop iteration share one
transaction; ``RunFinished`` flushes at once, so a finished run is on disk
before ``run.wait()`` returns. Encoding values (and writing blobs) happens in
the flush, not in the publishing call.

The recorder never breaks a run: every failure is logged; after a few failures
in a row it stops recording that run.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import events as ev

if TYPE_CHECKING:
    from conductor_nb.engine.run import Run
    from conductor_nb.storage.history import RunHistory, Statement

log = logging.getLogger("conductor_nb.storage")

MAX_FAILURES = 3

_NODE_UPDATE = "UPDATE nodes SET {} WHERE run_id = ? AND node_id = ?"
_RESET = (
    "status='pending', attempts=0, queued_at=NULL, started_at=NULL, finished_at=NULL, "
    "error=NULL, error_type=NULL, traceback=NULL, reason=?, inputs=NULL, outputs=NULL, "
    "cache_key=NULL"
)


class Recorder:
    """Subscribe with ``run.subscribe(Recorder(history, run))``."""

    def __init__(self, history: RunHistory, run: Run) -> None:
        self.history = history
        self.run_id = run.id
        self.known: dict[str, int] = {nid: i for i, nid in enumerate(run.node_runs)}
        self.labels = {
            nid: (p.type.name, 1 + max(0, p.node.retries)) for nid, p in run.plan.nodes.items()
        }
        self.pending: list[ev.Event] = []
        self.scheduled = False
        self.failures = 0
        self.stopped = False

    def __call__(self, event: ev.Event) -> None:
        if self.stopped or isinstance(event, ev.RunProgress):
            return
        self.pending.append(event)
        if isinstance(event, ev.RunFinished):
            self.flush()
            return
        if self.scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self.scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        batch, self.pending = self.pending, []
        if not batch or self.stopped:
            return
        try:
            statements: list[Statement] = []
            for event in batch:
                statements += self.statements(event)
            self.history.write(statements)
            self.failures = 0
        except Exception as exc:
            self.failures += 1
            self.stopped = self.failures >= MAX_FAILURES
            log.warning(
                "run history: could not record %d events of run %s (%s: %s)%s",
                len(batch),
                self.run_id,
                type(exc).__name__,
                exc,
                "; recording stopped for this run" if self.stopped else "",
                exc_info=self.failures == 1,
            )

    # -------------------------------------------------------------- translate
    def statements(self, event: ev.Event) -> list[Statement]:
        if isinstance(event, ev.NodeEvent):
            return self._ensure(event.node_id) + self._node(event)
        return self._run(event)

    def _run(self, event: ev.Event) -> list[Statement]:
        rid = self.run_id
        if isinstance(event, ev.RunStarted):
            return [
                (
                    "UPDATE runs SET status='running', started_at=COALESCE(started_at, ?), "
                    "params=? WHERE id=?",
                    (event.time, json.dumps(event.params, default=repr), rid),
                )
            ]
        if isinstance(event, ev.RunPaused):
            return [("UPDATE runs SET status='paused' WHERE id=?", (rid,))]
        if isinstance(event, ev.RunResumed):
            return [("UPDATE runs SET status='running' WHERE id=?", (rid,))]
        if isinstance(event, ev.RunFinished):
            return [
                (
                    "UPDATE runs SET status=?, finished_at=?, error=? WHERE id=?",
                    (event.status, event.time, event.error, rid),
                )
            ]
        return []

    def _ensure(self, node_id: str) -> list[Statement]:
        if node_id in self.known:
            return []
        self.known[node_id] = len(self.known)
        return [
            (
                "INSERT OR IGNORE INTO nodes (run_id, node_id, type, status, position) "
                "VALUES (?,?,?,?,?)",
                (self.run_id, node_id, "", "pending", self.known[node_id]),
            )
        ]

    def _values(self, values: dict[str, Any] | None) -> tuple[str | None, list[Statement]]:
        text, digests = self.history.codec.encode(values)
        refs: list[Statement] = [
            ("INSERT OR IGNORE INTO blob_refs VALUES (?,?)", (self.run_id, d)) for d in digests
        ]
        return text, refs

    def _node(self, event: ev.NodeEvent) -> list[Statement]:
        key = (self.run_id, event.node_id)
        if isinstance(event, ev.NodeQueued):
            return [(_NODE_UPDATE.format("status='queued', queued_at=?"), (event.time, *key))]
        if isinstance(event, ev.NodeStarted):
            inputs, refs = self._values(event.inputs)
            return [
                *refs,
                (
                    _NODE_UPDATE.format(
                        "status='running', attempts=?, started_at=?, finished_at=NULL, inputs=?"
                    ),
                    (event.attempt, event.time, inputs, *key),
                ),
            ]
        if isinstance(event, ev.NodeSucceeded | ev.NodeCached):
            outputs, refs = self._values(event.outputs)
            if isinstance(event, ev.NodeCached):
                return [
                    *refs,
                    (
                        _NODE_UPDATE.format(
                            "status='cached', started_at=COALESCE(started_at, ?), finished_at=?, "
                            "outputs=?, cache_key=?"
                        ),
                        (event.time, event.time, outputs, event.key, *key),
                    ),
                ]
            return [
                *refs,
                (
                    _NODE_UPDATE.format("status='succeeded', finished_at=?, attempts=?, outputs=?"),
                    (event.time, event.attempt, outputs, *key),
                ),
            ]
        if isinstance(event, ev.NodeFailed):
            return [
                (
                    _NODE_UPDATE.format(
                        "status='failed', finished_at=?, attempts=?, error=?, error_type=?, "
                        "traceback=?"
                    ),
                    (
                        event.time,
                        event.attempt,
                        self._message(event),
                        event.error_type,
                        event.traceback,
                        *key,
                    ),
                )
            ]
        if isinstance(event, ev.NodeRetrying):
            text = f"attempt {event.attempt} failed: {event.error}; retrying in {event.delay:g}s\n"
            return [
                (_NODE_UPDATE.format("attempts=?"), (event.attempt, *key)),
                (
                    "INSERT INTO logs VALUES (?,?,?,?,?,?)",
                    (*key, event.time, "retry", text, "WARNING"),
                ),
            ]
        if isinstance(event, ev.NodeSkipped | ev.NodeCancelled):
            state = "skipped" if isinstance(event, ev.NodeSkipped) else "cancelled"
            return [
                (
                    _NODE_UPDATE.format(
                        "status=?, reason=?, finished_at=CASE WHEN started_at IS NULL THEN NULL "
                        "ELSE ? END"
                    ),
                    (state, event.reason, event.time, *key),
                )
            ]
        if isinstance(event, ev.NodeReset):
            return [(_NODE_UPDATE.format(_RESET), (event.reason, *key))]
        if isinstance(event, ev.NodeLog):
            return [
                (
                    "INSERT INTO logs VALUES (?,?,?,?,?,?)",
                    (*key, event.time, event.stream, event.text, event.level),
                )
            ]
        return []

    def _message(self, event: ev.NodeFailed) -> str:
        label = self.labels.get(event.node_id)
        if label is None:
            return event.error
        type_name, attempts = label
        return (
            f"node {event.node_id!r} ({type_name}) failed on attempt "
            f"{event.attempt}/{attempts}: {event.error}"
        )
