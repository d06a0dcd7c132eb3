"""Which sync nodes a worker thread may run without the event loop in between, and the
node a worker goes on with after the one it ended (see :mod:`~conductor_nb.engine.follow`).

*Plain* (:func:`is_plain`): enabled, not async, no side effects (the history commits
such a node's success before the run goes on, see ``storage/recorder.py``), no
templates, no NodeContext, no retries, no timeout, no result cache, no per-type
limit, not steering the run. :func:`feeds` adds what the run must allow: the local
executor, no fault injection, slow motion or stepping, and the node's type not
replaced by a retry.
"""

from __future__ import annotations

import inspect
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import node_runner
from conductor_nb.model import templates

if TYPE_CHECKING:
    from conductor_nb.engine.context import NodeHost
    from conductor_nb.engine.driver import RunDriver
    from conductor_nb.engine.limits import Permit
    from conductor_nb.engine.plan import PlannedNode


@dataclass(slots=True)
class Job:
    """One node of a feed: its call, and the slot it holds."""

    planned: PlannedNode
    kwargs: dict[str, Any]
    permit: Permit | None
    started: bool = False
    reserved: bool = False  # taken ahead for a worker to start when it ends a node


@dataclass(slots=True)
class Ended:
    """What a worker reports when a node's call is over."""

    finished: float
    outputs: dict[str, Any] | None = None
    error: BaseException | None = None
    result: Any = None  # an awaitable result: the loop awaits it
    claim: Job | None = None  # the node this worker runs next, in the same slot
    claim_started: float = 0.0  # when it started (right after this one ended)


def feeds(driver: RunDriver, planned: PlannedNode) -> bool:
    """Whether ``planned`` goes to a feed (see the module docstring)."""
    debug = driver.options.debug
    if (
        debug.slow_motion
        or debug.faults
        or debug.fault_rate
        or driver.stepper.is_stepping
        or planned.id in driver.current_types
        or driver.executor.thread_lane() is None
    ):
        return False
    return is_plain(driver, planned)


def is_plain(driver: RunDriver, planned: PlannedNode) -> bool:
    """Whether ``planned`` is a sync call a worker may run without the loop in between."""
    node, node_type = planned.node, planned.type
    known = driver.plain.get(id(node_type))  # the type's part, once per type and run
    if known is None:
        known = driver.plain[id(node_type)] = not (
            node_type.is_async
            or inspect.iscoroutinefunction(node_type.fn)
            or node_type.runs_beside_engine
            or node_type.side_effects
            or node_type.context_arg
            or node_type.raw_params
            or driver.limits.is_limited(node_type.name, node_type.concurrency)
        )
    return known and not (
        not node.enabled
        or node.retries > 0
        or node.timeout
        or driver.options.caches(node)
        or templates.has_template(node.params)
    )


def successor(
    driver: RunDriver,
    host: NodeHost,
    planned: PlannedNode,
    ran: Mapping[str, Mapping[str, Any]],
    refused: Collection[str],
) -> Job | None:
    """The first (in plan order) of the nodes ``planned``'s success makes ready, with its
    call's keywords, if the worker that ran ``planned`` may go on with it: no other node
    is ready (none is passed over; the others it makes ready are dispatched by the loop
    when it records ``planned``), it is plain and not refused, no pause, step, breakpoint
    or ``run_to`` is on it (``ran``: outputs of nodes ended on workers, maybe not
    recorded yet). Called on a worker thread: it only reads the run's state, and any
    doubt leaves it to the loop."""
    stepper = driver.stepper
    try:
        if driver.is_cancelling or stepper.paused or stepper.forced:
            return None
        if driver.scheduler.peek() is not None:  # no other ready node is passed over
            return None
        nodes = driver.plan.nodes
        following: PlannedNode | None = None
        for child_id in planned.downstream:
            child = nodes[child_id]
            left = _left_after(driver, child, ran)
            if left is None:
                return None  # it may be ready, and come first
            if left == 0 and (following is None or child.rank < following.rank):
                following = child
        if following is None:
            return None
        ready = following.id
        if ready in ran or ready in refused:
            return None
        if driver.scheduler.is_finished(ready) or ready in stepper.breakpoints:
            return None
        # the run's own conditions held when this feed started (a pause is checked above)
        if ready == stepper.run_to or ready in driver.current_types:
            return None
        if not is_plain(driver, following):
            return None
        edge_inputs = node_runner.resolve_inputs(host, following, ran)
        if node_runner.edge_mismatch(host, following, edge_inputs) is not None:
            return None  # the loop fails it, with the usual message
        kwargs = node_runner.build_arguments(host, following, following.type, edge_inputs)
    except Exception:  # the run changed under this worker: the loop decides
        return None
    return Job(following, kwargs, None)


def _left_after(driver: RunDriver, child: PlannedNode, ran: Mapping[str, Any]) -> int | None:
    """How many upstream nodes ``child`` still waits for once the nodes in ``ran`` are
    recorded (None: too many upstream nodes to count them here). Reads only counts that
    fall as the loop records: a stale read waits for more, never less."""
    scheduler = driver.scheduler
    if scheduler.waiting_on(child.id) <= 1:
        return 0  # only the node just ended, which the loop has not recorded yet
    if len(child.upstream) > 64:
        return None
    return sum(1 for u in child.upstream if u not in ran and not scheduler.succeeded(u))
