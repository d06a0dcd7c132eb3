"""The history recorder: an event subscriber that keeps a run's rows in SQLite, in batches.

Events arrive on the thread of the run's event loop. A node event only marks its
node dirty: the run's own records already hold the node's state, kept by the one
reducer (:func:`conductor_nb.engine.reducer.apply_event`), nested records
included; run-level changes and log lines queue up as statements. A flush (on
the same loop) builds the rows of the dirty nodes that are due plus the queued
statements, and hands them to the history's writer thread
(:mod:`conductor_nb.storage.writer`) as one transaction; one batch is in flight at
a time, and the run's own row (with its blueprint and plan) goes first.

A node has no row until it has run: the run's row lists the plan, and the history
reads a plan node without a row as pending. A node gets one row when it finishes
(its values encoded once); before that only where it matters: a side-effecting node
while it runs, a node still running at the next flush (a long one), a node reset
after its row was written, and every started node at a pause or the end. A queued
node reads as pending. Flushes happen at
most every :data:`FLUSH_INTERVAL` seconds while the run goes on (``call_later``
on the run's loop), or every :data:`BATCH_ROWS` nodes that succeeded (so the writer
thread writes while the run goes on, and the last batch is small), and at once on
``RunPaused`` and ``RunFinished``, which wait for the writer, so a finished or paused
run is on disk before ``run.wait()`` returns. A flush does not wait for the batches
before it unless :data:`MAX_IN_FLIGHT` are unwritten, so a process killed mid-run
loses at most the nodes of the last interval and of the batches the writer had not
written yet (quick nodes without side effects: they run again on resume); its run is
found as interrupted (and resumable) when the history is next opened: its nodes
that had not finished, row or not, are then cancelled.

Write-through for side effects. A node whose type declares ``side_effects``
(shell-command, http-request, notebook, file-system, sql, image, spreadsheet, code,
the containers loop/parallel/group, and functions declared with
``@cnb.node(side_effects=True)``) has its success committed, with everything
pending (the recorder waits for the writer), before ``NodeSucceeded`` returns to
the engine, that is before the run goes on; that commit is synced to disk
(``synchronous=FULL`` for it: WAL fsync), so it also survives a power cut. Other
nodes stay batched (a 10,000-node run of quick pure functions writes a few dozen
transactions), except that a node that ran longer than the batching window is
sent at once too. The guarantee after a kill is *at least once*: a node whose
effect happened but whose success was not yet committed runs again on resume.
For a declared node that window is the time from its effect to the commit: the
end of the child process (or the function), the engine noticing it, and one
SQLite commit, milliseconds; for an undeclared quick node it is up to
:data:`FLUSH_INTERVAL` more.

Outputs of the nodes a resumed run reuses are written when the run is created, so a
resumed run killed at once still hands them on to the next resume.

The recorder never breaks a run: every failure is logged; after a few failures
in a row it stops recording that run.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import events as ev
from conductor_nb.engine.states import NodeState
from conductor_nb.storage.values import RecordBudget, plain_text

if TYPE_CHECKING:
    from conductor_nb.engine.run import Run
    from conductor_nb.storage.history import RunHistory, Statement

log = logging.getLogger("conductor_nb.storage")

MAX_FAILURES = 3
FLUSH_INTERVAL = 0.1
"""Seconds between two writes while a run goes on (at most this much is lost on a kill)."""
BATCH_ROWS = 1024
"""Nodes that succeeded since the last write that make the next write go at once."""
MAX_IN_FLIGHT = 4
"""Batches sent and not yet written before a flush waits for the oldest."""

_NODE_ROW = (
    "INSERT OR REPLACE INTO nodes (run_id, node_id, type, status, attempts, queued_at, "
    "started_at, finished_at, error, error_type, traceback, reason, inputs, outputs, cache_key, "
    "position) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_PLAIN_ROW = (  # most rows: no error, reason or cache key (those columns stay NULL)
    "INSERT OR REPLACE INTO nodes (run_id, node_id, type, status, attempts, queued_at, "
    "started_at, finished_at, inputs, outputs, position) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
_LOG = "INSERT INTO logs VALUES (?,?,?,?,?,?)"
_BLOB_REF = "INSERT OR IGNORE INTO blob_refs VALUES (?,?)"


class Recorder:
    """Subscribe with ``run.subscribe(Recorder(history, run), *Recorder.EVENTS)``; it records
    the run first (:meth:`RunHistory.begin_statements`)."""

    def __init__(self, history: RunHistory, run: Run, *, resumed_from: str | None = None) -> None:
        self.history = history
        self.run_id = run.id
        self.known: dict[str, int] = {nid: i for i, nid in enumerate(run.node_runs)}
        self.plan = run.plan  # names a failed node's type and attempts in its error
        self.write_through = run.plan.side_effect_nodes
        self.records = run.node_runs  # the run's records, kept by the one reducer
        self.redact = run.redact  # outputs hold real values; what is written masks secrets
        self.masks = bool(run.options.env)  # no env exposed to the run: no secret to mask
        self.errors: dict[str, tuple[str, str]] = {}  # node -> (message, type) of its failure
        self.dirty: dict[str, None] = {}  # nodes whose row changed since the last write
        self.waiting: set[str] = set()  # running at the last write, not written yet
        self.shown: set[str] = set()  # nodes whose row on disk is not their final one
        self.statements: list[Statement] = []  # run rows, new nested nodes, log lines
        self.encoded: dict[tuple[str, str], tuple[Any, str | None, list[str]]] = {}
        self.budget = RecordBudget.from_env()  # this run's cap on recorded value bytes
        self.scheduled = False
        self.ended = 0  # nodes that succeeded since the last write
        self.failures = 0
        self.stopped = False
        self.in_flight: deque[tuple[Future[None], int]] = deque()  # (batch, changes); 0: begin
        begin = history.begin_statements(run, resumed_from=resumed_from)
        self.in_flight.append((history.submit(begin), 0))
        reused = [nid for nid, r in self.records.items() if r.status is NodeState.CACHED]
        if reused:  # a resume: the outputs it reuses are on disk before anything runs
            self.dirty.update(dict.fromkeys(reused))
            self.flush()

    EVENTS: tuple[type[ev.Event], ...] = (
        ev.RunStarted,
        ev.RunPaused,
        ev.RunResumed,
        ev.RunFinished,
        ev.NodeStarted,
        ev.NodeSucceeded,
        ev.NodeCached,
        ev.NodeFailed,
        ev.NodeRetrying,
        ev.NodeSkipped,
        ev.NodeCancelled,
        ev.NodeLog,
        ev.NodeReset,
    )
    """What it subscribes to: every event but ``NodeQueued`` (a queued node reads as
    pending: it has no row of its own) and ``RunProgress``."""

    def __call__(self, event: ev.Event) -> None:
        if self.stopped:
            return
        kind = type(event)
        if kind is ev.NodeStarted and event.node_id in self.known:  # type: ignore[attr-defined]
            self.dirty[event.node_id] = None  # type: ignore[attr-defined]  # the hot path
            if not self.scheduled:
                self._schedule()
            return
        if kind is ev.NodeSucceeded and event.node_id in self.known:  # type: ignore[attr-defined]
            node_id = event.node_id  # type: ignore[attr-defined]  # the other hot path
            self.dirty[node_id] = None
            if node_id in self.write_through:
                self.flush(durable=True)
            elif (
                event.duration >= FLUSH_INTERVAL  # type: ignore[attr-defined]  # _is_slow_success
                or (ended := self.ended + 1) >= BATCH_ROWS
            ):
                self.flush()
            else:
                self.ended = ended
                if not self.scheduled:
                    self._schedule()
            return
        if kind is ev.RunProgress:
            return
        if isinstance(event, ev.NodeEvent):
            self._node_event(event)
        else:
            self.statements += self._run_rows(event)
        if kind is ev.NodeSucceeded and event.node_id in self.write_through:  # type: ignore[attr-defined]
            self.flush(durable=True)
        elif kind is ev.RunFinished or kind is ev.RunPaused:
            self.flush(wait=True)
        elif _is_slow_success(event):
            self.flush()
        elif not self.scheduled:
            self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside a loop: write now rather than never
            self.flush()
            return
        self.scheduled = True
        loop.call_later(FLUSH_INTERVAL, self.flush)

    # ------------------------------------------------------------ node events
    def _node_event(self, event: ev.NodeEvent) -> None:
        node_id = event.node_id
        if node_id not in self.known:
            self.known[node_id] = len(self.known)
        if type(event) is ev.NodeLog:
            line = (self.run_id, node_id, event.time, event.stream, event.text, event.level)  # type: ignore[attr-defined]
            self.statements.append((_LOG, line))
            return
        if isinstance(event, ev.NodeRetrying):
            text = f"attempt {event.attempt} failed: {event.error}; retrying in {event.delay:g}s\n"
            self.statements.append(
                (_LOG, (self.run_id, node_id, event.time, "retry", text, "WARNING"))
            )
        elif isinstance(event, ev.NodeFailed):
            self.errors[node_id] = (self._message(event), event.error_type)
        elif isinstance(event, ev.NodeReset):
            self.errors.pop(node_id, None)
            self.shown.add(node_id)  # its row (if any) says finished: write it pending
        self.dirty[node_id] = None

    def _message(self, event: ev.NodeFailed) -> str:
        planned = self.plan.nodes.get(event.node_id)
        if planned is None:
            return event.error
        attempts = 1 + max(0, planned.node.retries)
        return (
            f"node {event.node_id!r} ({planned.type.name}) failed on attempt "
            f"{event.attempt}/{attempts}: {event.error}"
        )

    # ------------------------------------------------------------- run events
    def _run_rows(self, event: ev.Event) -> list[Statement]:
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

    # ----------------------------------------------------------------- writing
    def flush(self, durable: bool = False, wait: bool = False) -> None:
        """Send the due nodes' rows and the queued statements to the writer thread as one
        transaction (``durable``: synced to disk; with ``wait`` too, written before this
        returns, every running node included). It does not wait for the batches sent
        before (the writer keeps their order) unless :data:`MAX_IN_FLIGHT` are still
        being written: the run goes on while the writer thread writes."""
        self.scheduled, self.ended = False, 0
        self._settle(wait=False)
        if self.stopped or not (self.dirty or self.statements):
            return
        due = self._due(everything=wait)
        due.sort()  # in key order: SQLite inserts a batch of rows about 3x faster than shuffled
        statements, self.statements = self.statements, []
        changes = len(due) + len(statements)
        if changes:
            try:
                rows, refs = self._node_rows(due)
            except Exception as exc:
                self._failed(exc, changes)
            else:
                batch = [*statements, *refs, *rows]
                self.in_flight.append((self.history.submit(batch, durable=durable), changes))
        if self.dirty and not self.scheduled:  # long nodes, written at the next flush
            self._schedule()
        if durable or wait:
            self._settle()

    def _due(self, everything: bool) -> list[str]:
        """The dirty nodes whose row is written now. A node gets one row when it finishes;
        before that only when it matters: a side-effecting node that runs, a node still
        running one flush later (a long one), a node reset after its row was written, or
        ``everything`` (a pause, the end). A queued node has no row
        (it reads as pending). The rest stays dirty or waits for its next event."""
        due: list[str] = []
        dirty, self.dirty = self.dirty, {}
        for node_id in dirty:
            r = self.records.get(node_id)
            if r is None:
                continue
            state = r.status
            if state in _FINAL:
                due.append(node_id)
                self.shown.discard(node_id)
                self.waiting.discard(node_id)
            elif node_id in self.shown or (everything and state is not NodeState.PENDING):
                due.append(node_id)
                self.shown.add(node_id)
            elif state is NodeState.RUNNING:
                if node_id in self.waiting or node_id in self.write_through:
                    due.append(node_id)
                    self.shown.add(node_id)
                    self.waiting.discard(node_id)
                else:
                    self.waiting.add(node_id)
                    self.dirty[node_id] = None
        return due

    def _settle(self, wait: bool = True) -> None:
        """Report the failures of the batches written, in the order they were sent; with
        ``wait``, wait for every batch in flight first. The run's own row is always waited
        for (nothing more is sent when it failed), and the oldest batch when too many are
        in flight (the writer falls behind: the run waits for it)."""
        in_flight = self.in_flight
        while in_flight:
            future, changes = in_flight[0]
            if not (wait or changes == 0 or len(in_flight) > MAX_IN_FLIGHT or future.done()):
                return
            in_flight.popleft()
            if not future.cancelled():
                self._report(future.exception(), changes)

    def _report(self, error: BaseException | None, changes: int) -> None:
        if self.stopped:
            return  # sent before recording stopped (its failure, if any, was said once)
        if error is None:
            self.failures = 0
        elif changes == 0:  # the run's own row: nothing later can be recorded
            self._stop()
            log.warning(
                "run history: run %s is not recorded (%s: %s)",
                self.run_id,
                type(error).__name__,
                error,
                exc_info=error,
            )
        else:
            self._failed(error, changes)

    def _failed(self, exc: BaseException, changes: int) -> None:
        self.failures += 1
        if self.failures >= MAX_FAILURES:
            self._stop()
        log.warning(
            "run history: could not record %d changes of run %s (%s: %s)%s",
            changes,
            self.run_id,
            type(exc).__name__,
            exc,
            "; recording stopped for this run" if self.stopped else "",
            exc_info=exc if self.failures == 1 else None,
        )

    def _stop(self) -> None:
        """Record nothing more of this run: the batches the writer has not begun are dropped."""
        self.stopped = True
        for future, _ in self.in_flight:
            future.cancel()  # False for the one being written: it is reported, silently

    def _node_rows(self, node_ids: list[str]) -> tuple[list[Statement], list[Statement]]:
        """The rows of ``node_ids`` (in their order, those with nothing to say of an error,
        a reason or a cache key first, written without those columns) and the blob refs."""
        rows: list[Statement] = []
        plain: list[Statement] = []
        digests: set[str] = set()
        run_id, known, records, errors = self.run_id, self.known, self.records, self.errors
        for node_id in node_ids:
            r = records[node_id]
            state = r.status
            final = state in _FINAL
            if final and not self.encoded:  # the common case: a node's only row
                inputs = self._text(r.inputs, digests)
                outputs = self._text(self.redact(r.outputs) if self.masks else r.outputs, digests)
            else:  # a row before the last: its texts are kept for the next one
                inputs = self._encode(node_id, "inputs", r.inputs, digests, final)
                masked = self._masked(node_id, r.outputs, final)
                outputs = self._encode(node_id, "outputs", masked, digests, final)
            error, error_type = (
                errors.get(node_id, _NO_ERROR) if state is NodeState.FAILED else _NO_ERROR
            )
            row = (run_id, node_id, r.type, _TEXT[state], r.attempts, r.queued_at, r.started_at)
            if error is None and not r.traceback and not r.reason and r.cache_key is None:
                plain.append((_PLAIN_ROW, (*row, r.finished_at, inputs, outputs, known[node_id])))
                continue
            rows.append(
                (
                    _NODE_ROW,
                    (
                        *row,
                        r.finished_at,
                        error,
                        error_type,
                        r.traceback or None,
                        r.reason or None,
                        inputs,
                        outputs,
                        r.cache_key,
                        known[node_id],
                    ),
                )
            )
        refs: list[Statement] = [(_BLOB_REF, (self.run_id, d)) for d in sorted(digests)]
        return plain + rows, refs

    def _text(self, values: Any, digests: set[str]) -> str | None:
        if values is None:
            return None
        text = plain_text(values)  # the common case: one dumps, no blob
        if text is None:
            text, found = self.history.codec.encode(values, self.budget)
            digests.update(found)
        return text

    def _masked(self, node_id: str, outputs: Any, final: bool) -> Any:
        """``outputs`` with the run's secrets masked; the same object while it is unchanged
        (so it is encoded once). ``final``: the node's last row, nothing is kept."""
        key = (node_id, "source")
        cached = self.encoded.pop(key, None) if final else self.encoded.get(key)
        if cached is not None and cached[0] is outputs:
            return cached[1]
        masked = self.redact(outputs)
        if not final:
            self.encoded[key] = (outputs, masked, [])
        return masked

    def _encode(
        self, node_id: str, field: str, value: Any, digests: set[str], final: bool
    ) -> str | None:
        """The stored text of a value, encoded once while it stays the same object
        (``final``: the node's last row, nothing is kept)."""
        key = (node_id, field)
        cached = self.encoded.pop(key, None) if final else self.encoded.get(key)
        if value is None:
            return None
        if cached is not None and cached[0] is value:
            digests.update(cached[2])
            return cached[1]
        text, found = self.history.codec.encode(value, self.budget)
        if not final:
            self.encoded[key] = (value, text, list(found))
        digests.update(found)
        return text


_NO_ERROR: tuple[None, None] = (None, None)
_FINAL = frozenset(s for s in NodeState if s.is_finished)
_TEXT = {state: state.value for state in NodeState}  # a dict lookup, not the enum's property


def _is_slow_success(event: ev.Event) -> bool:
    """A node that ran longer than the batching window has just succeeded: write it now.
    A node type that does not declare side effects may still have some (an undeclared
    function); this bounds what a kill can repeat. At most one extra write per
    FLUSH_INTERVAL of node time: batching still holds for quick nodes."""
    return isinstance(event, ev.NodeSucceeded) and event.duration >= FLUSH_INTERVAL
