"""Sync successors on the same worker thread: a chain of sync nodes without a loop trip each.

A sync node runs on a worker thread (:class:`~conductor_nb.engine.threads.ThreadLane`).
When it returns, its worker may go on with the one node its success makes ready,
instead of handing the result to the event loop and waiting for the loop to send
that node back to a thread (two thread switches per node: a chain of sync nodes
would cost a loop round trip each). The worker runs such successors for up to
:data:`FOLLOW_SLICE` seconds, then hands back everything it ran; the driver records
those nodes on the loop (queued, started, logs, succeeded or failed, with the times
they really ran) before it dispatches anything else.

It goes on only where that loses nothing (:meth:`Follow.next_of`):

* the loop has nothing else to do: no other node of the run is running or ready (a
  worker running Python holds the interpreter lock the loop would need; where many
  nodes run at once, round trips overlap anyway and results come back in batches);
* the finished node makes exactly one node ready (when it makes several ready, the
  loop dispatches them side by side);
* neither node has side effects (the history commits such a node's success before
  the run goes on), and the next one is a plain sync call: enabled, not async, no
  templates, no NodeContext, no retries, no timeout, no result cache, no per-type
  limit, not steering the run;
* the run is not paused, stepping, cancelling or rerunning, no breakpoint or
  ``run_to`` is on that node, and its type was not replaced by a retry;
* nobody watches node events live (a view, CLI progress, an event stream, the history
  recorder): the nodes a worker goes on with are reported when it hands back, so a
  watcher would see the first node running until the last one ended (and a history
  read while the run goes on, or after a SIGKILL, would miss a long node that ran so).
  Only observers that say ``takes_events_late = True`` leave following on. So runs
  with history on (the default) do not follow; ``history=False`` runs do.

Nobody else can take that node meanwhile: it becomes ready only when the finished
node's success is known, and only this worker knows it. The node runs in the lane's
concurrency slot, as a node an async lane goes on with does. What it prints or logs
is collected and replayed into its record on the loop.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import capture, node_runner
from conductor_nb.model import templates
from conductor_nb.model.types import SKIP

if TYPE_CHECKING:
    from conductor_nb.engine.context import NodeHost
    from conductor_nb.engine.driver import RunDriver
    from conductor_nb.engine.plan import PlannedNode
    from conductor_nb.model.types import NodeType

FOLLOW_SLICE = 0.002
"""Seconds a worker may go on with successors before it hands its results back."""


@dataclass(slots=True)
class Followed:
    """One node a worker ran after the dispatched one, for the driver to record."""

    node_id: str
    kwargs: dict[str, Any]
    started: float
    finished: float = 0.0
    ok: bool = False
    result: Any = None  # the raw result when it is awaitable (the loop awaits it)
    outputs: dict[str, Any] | None = None
    error: BaseException | None = None
    lines: list[tuple[str, str, str]] = field(default_factory=list)


class Follow:
    """Handed with a sync call to the worker; called there with the call's result."""

    __slots__ = ("_driver", "_first", "_host", "_plain", "done", "returned_at", "stop")

    def __init__(self, driver: RunDriver, first: PlannedNode, plain: dict[str, bool]) -> None:
        self._driver = driver
        self._host: NodeHost = driver.host()
        self._first = first
        self._plain = plain  # node -> whether it may be followed (the driver's, shared)
        self.done: list[Followed] = []
        self.stop = False  # the dispatched node was cancelled: start nothing more
        self.returned_at: float | None = None  # when the dispatched call returned

    # ------------------------------------------------------------ on the worker
    def __call__(self, result: Any) -> None:
        """Go on from the dispatched node's ``result`` while the successor is plain."""
        self.returned_at = time.time()
        until = time.monotonic() + FOLLOW_SLICE
        planned = self._first
        outputs = _outputs_of(self._host, planned.type, result)
        ran: dict[str, dict[str, Any]] = {}
        while outputs is not None and time.monotonic() < until:
            ran[planned.id] = outputs
            following = self.next_of(planned, ran)
            if following is None:
                return
            record = self._run(following, ran)
            if record is None:
                return
            self.done.append(record)
            planned, outputs = following, record.outputs

    def next_of(self, planned: PlannedNode, ran: dict[str, dict[str, Any]]) -> PlannedNode | None:
        """The one node ``planned``'s success makes ready, if it may run here now."""
        driver = self._driver
        stepper = driver.stepper
        if self.stop or driver.is_cancelling or stepper.paused or stepper.forced:
            return None
        if driver.journal.bus.wants_node_events_live():  # a watcher came in meanwhile
            return None
        if driver.has_other_work():  # the loop needs the interpreter: let it have it
            return None
        nodes = driver.plan.nodes
        ready: list[str] = []
        for child in planned.downstream:
            left = _left_after(driver, nodes[child], ran)
            if left is None or (left == 0 and ready):
                return None  # it may be ready too: the loop runs them side by side
            if left == 0:
                ready.append(child)
        if not ready:
            return None
        child = ready[0]
        if child in ran or driver.scheduler.is_finished(child) or not self._may_follow(child):
            return None
        if child in stepper.breakpoints or child == stepper.run_to:
            return None
        if child in driver.current_types:
            return None
        return nodes[child]

    def _may_follow(self, node_id: str) -> bool:
        known = self._plain.get(node_id)
        if known is None:
            known = self._plain[node_id] = is_plain(self._driver, self._driver.plan.nodes[node_id])
        return known

    def _run(self, planned: PlannedNode, ran: dict[str, dict[str, Any]]) -> Followed | None:
        host, node_type = self._host, planned.type
        edge_inputs = node_runner.resolve_inputs(host, planned, ran)
        if node_runner.edge_mismatch(host, planned, edge_inputs) is not None:
            return None  # the loop runs it and fails it, with the usual message
        kwargs = node_runner.build_arguments(host, planned, node_type, edge_inputs)
        record = Followed(planned.id, kwargs, time.time())
        collector = _Lines(host.redact) if host.options.capture else None
        token = capture.current_sink.set(collector)
        try:
            result = node_type.fn(**node_type.adapt_inputs(dict(kwargs)))
        except StopIteration as exc:  # as the thread lane hands it over
            record.error = RuntimeError(f"StopIteration: {exc}")
        except Exception as exc:
            record.error = exc
        finally:
            capture.current_sink.reset(token)
            record.finished = time.time()
            record.lines = collector.lines if collector is not None else []
        if record.error is not None:
            self.done.append(record)
            return None
        if inspect.isawaitable(result):
            record.result = result
            self.done.append(record)
            return None
        try:
            record.outputs = host.executor.split_outputs(node_type, result)
        except Exception as exc:
            record.error = exc
            self.done.append(record)
            return None
        record.ok = True
        if any(value is SKIP for value in record.outputs.values()):
            self.done.append(record)
            return None
        return record


class _Lines(capture.LineCollector):
    """What a followed node prints or logs: kept for its record (replayed on the loop) and
    shown where it would be from any worker thread (with the run's secrets masked)."""

    passthrough = True

    def __init__(self, redact: Callable[[Any], Any]) -> None:
        super().__init__()
        self.redact = redact


def _left_after(driver: RunDriver, child: PlannedNode, ran: Mapping[str, Any]) -> int | None:
    """How many upstream nodes ``child`` still waits for once the nodes in ``ran`` are
    recorded (None: too many upstream nodes to count them here)."""
    waiting = driver.scheduler.waiting_on(child.id)
    if waiting <= 1:
        return 0
    if waiting > len(ran) or len(child.upstream) > 64:
        return None if waiting <= len(ran) else waiting - len(ran)
    return waiting - sum(1 for u in child.upstream if u in ran)


def is_plain(driver: RunDriver, planned: PlannedNode) -> bool:
    """Whether ``planned`` is a sync call a worker may run after its upstream node."""
    node, node_type = planned.node, planned.type
    return not (
        not node.enabled
        or node_type.is_async
        or inspect.iscoroutinefunction(node_type.fn)
        or node_type.runs_beside_engine
        or node_type.side_effects
        or node_type.context_arg
        or node_type.raw_params
        or node.retries > 0
        or node.timeout
        or driver.options.caches(node)
        or templates.has_template(node.params)
        or driver.limits.is_limited(node_type.name, node_type.concurrency)
    )


def may_start(driver: RunDriver, planned: PlannedNode) -> bool:
    """Whether a dispatch of ``planned`` may carry a :class:`Follow` (a sync call on the
    local thread lane, no timeout, no fault injection or slow motion, not stepping)."""
    debug = driver.options.debug
    return not (
        planned.type.is_async
        or planned.type.runs_beside_engine
        or planned.type.side_effects  # its success is on disk before the run goes on
        or planned.node.timeout
        or debug.slow_motion
        or debug.faults
        or debug.fault_rate
        or driver.stepper.is_stepping
        or not planned.downstream
        or driver.journal.bus.wants_node_events_live()  # a view or progress shows each node
    )


def _outputs_of(host: NodeHost, node_type: NodeType, result: Any) -> dict[str, Any] | None:
    """The dispatched node's outputs as the loop will split them (None: do not go on)."""
    if inspect.isawaitable(result):
        return None
    try:
        outputs = host.executor.split_outputs(node_type, result)
    except Exception:  # the loop fails the node with it
        return None
    return None if any(value is SKIP for value in outputs.values()) else outputs
