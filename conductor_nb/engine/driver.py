"""The driver of a run: its state, and the one loop that dispatches its nodes.

The driver takes ready nodes from the :class:`Scheduler` in stable order and
dispatches them as tasks it owns, at most ``concurrency`` at a time, until
nothing is ready or running. Before each dispatch it asks the :class:`Stepper`
(pause, step budget, breakpoints, run_to, forced reruns) whether the node may
go. A node's task is a *lane*: when its node ends and the next ready node may go,
it runs that one too, so nodes that finish without waiting (most of a graph of
small steps) cost no task and no trip through the event loop each; a lane hands
back to the loop every :data:`LANE_SLICE` seconds. A lane whose node is a plain sync
call hands it to a :class:`~conductor_nb.engine.follow.Feed` instead: worker threads run
it and the plain sync nodes that become ready after it, reporting each start and end
as they happen, with no trip through the loop per node. The driver sleeps on an
``asyncio.Event`` that every state change sets; it never polls. Every state change
is published as an event (the journal moves the record through the reducer).

The same loop (:meth:`RunDriver.drive`) serves a top-level run, a retry or rerun
that brings a finished run back to life, and nested runs: the bodies of
``group``, ``loop`` and ``parallel`` (:func:`~conductor_nb.engine.bodies.run_body`) are child
drivers driven inside the container node's task, sharing the root's limits,
cache, executor and event stream (their node ids prefixed by path).

Node execution sees a :class:`~conductor_nb.engine.context.NodeHost`, never the
driver. :class:`conductor_nb.engine.run.Run` is the handle users hold; it wraps
a driver and hands control calls to the driver's loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import capture, heap, node_runner
from conductor_nb.engine.context import NodeHost, build_host
from conductor_nb.engine.events import (
    NodeCancelled,
    NodeQueued,
    NodeSkipped,
    RunPaused,
    RunProgress,
)
from conductor_nb.engine.executors import Executor, make_executor
from conductor_nb.engine.follow import Feed, run_plain
from conductor_nb.engine.journal import Journal, env_secrets
from conductor_nb.engine.limits import LaneSlot, Limits, current_permit
from conductor_nb.engine.options import ResultCache, RunOptions, RunSetup, new_run_id
from conductor_nb.engine.plain import feeds
from conductor_nb.engine.plan import Plan
from conductor_nb.engine.scheduler import Scheduler
from conductor_nb.engine.states import NodeState, RunState, move_run
from conductor_nb.engine.stepper import Stepper, Verdict
from conductor_nb.errors import ConductorError, RunStateError

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

log = logging.getLogger("conductor_nb.engine")

LANE_SLICE = 0.002
"""Seconds a node's task may go on running the next ready nodes before it hands back."""


class RunDriver:
    """One execution's state and the loop that drives it (see the module docstring)."""

    def __init__(
        self,
        blueprint: Blueprint,
        plan: Plan,
        params: Mapping[str, Any],
        options: RunOptions,
        *,
        setup: RunSetup | None = None,
        parent: RunDriver | None = None,
        prefix: str = "",
        handle: Any = None,
    ) -> None:
        setup = setup or RunSetup()
        self.id: str = setup.run_id or (parent.id if parent else new_run_id())
        self.blueprint = blueprint
        self.plan = plan
        self.params = dict(params)
        self.options = options
        self.handle: Any = parent.handle if parent else handle
        self.status = RunState.CREATED
        self.journal: Journal = Journal(
            self.id,
            plan,
            root=parent.journal.root if parent else None,
            prefix=prefix,
            secrets=env_secrets(plan, options.env) if options.env else [],
        )
        self.node_runs = self.journal.node_runs
        self.stepper = Stepper(options.breakpoints, options.paused)
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.paused_at: str | None = None
        self.error: BaseException | None = None
        self.executor: Executor = parent.executor if parent else make_executor(options.executor)
        self.completed = setup.completed
        self._parent = parent
        self.prefix = prefix  # a body's path from the root run ("loop[2]")
        self.scheduler = Scheduler(plan, succeeded=[n for n in setup.completed if n in plan.nodes])
        for node_id, outputs in setup.completed.items():
            if node_id in self.node_runs:
                self.node_runs[node_id].outputs = dict(outputs)
                self.node_runs[node_id].status = NodeState.CACHED
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._driver: asyncio.Task[None] | None = None  # the task driving the loop
        self._cancelling = False
        self._failing_fast = False  # the cancel comes from fail_fast: the run failed
        self._limits: Limits = (
            parent._limits if parent else Limits(options.concurrency, options.type_limits)
        )
        self._cache: ResultCache | None = options.result_cache
        self.fault_rng = random.Random(options.debug.fault_seed)
        self._last_progress = 0.0
        self.children: list[RunDriver] = []  # body runs going on (see bodies.run_body)
        self.current_types: dict[str, Any] = {}
        """node -> its type's definition when it was retried (the function fixed in a cell)"""
        self._host: NodeHost | None = None
        self._holds_heap = False  # the collector leaves the run's objects alone (heap.hold)
        self.plain: dict[int, bool] = {}  # a type is plain sync (engine/follow.py)
        self.feed: Feed | None = None  # the plain sync nodes running now (engine/follow.py)

    # ----------------------------------------------------------- reading
    @property
    def outputs(self) -> dict[str, Any]:
        """The blueprint's declared outputs (those whose node has succeeded)."""
        out = {}
        for name, src in self.plan.outputs.items():
            node_run = self.node_runs.get(src.node)
            if node_run is not None and node_run.outputs is not None:
                out[name] = node_run.outputs.get(src.port)
        return self.executor.resolve(out) if out else out

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    @property
    def is_active(self) -> bool:
        """The dispatch loop is running (or paused inside a run)."""
        return self._driver is not None and not self._driver.done()

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The task that drives the loop (None before the run starts)."""
        return self._driver

    @property
    def is_cancelling(self) -> bool:
        return self._cancelling

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def cache(self) -> ResultCache | None:
        """The result cache this run reads and writes (None: no node caches)."""
        return self._cache

    def progress(self) -> tuple[int, int]:
        """(finished, total) nodes of this run's plan."""
        return self.scheduler.finished_count, len(self.plan.order)

    def eta(self) -> float | None:
        """Seconds left, from the mean duration so far and the remaining nodes
        (None while paused: it waits for you, not for its nodes)."""
        done, total = self.progress()
        if self.status is RunState.PAUSED and done != total:
            return None
        if not done or done == total or self.started_at is None:
            return None if done != total else 0.0
        elapsed = (self.finished_at or time.time()) - self.started_at
        return elapsed / done * (total - done)

    def next_node(self) -> str | None:
        """The node ``step()`` would run next (stable order), if one is ready."""
        return self.scheduler.peek()

    def is_running(self, node_id: str) -> bool:
        return self.is_active and node_id in self.scheduler.running

    # ------------------------------------------------- what nodes may use
    def _set_run_state(self, state: RunState) -> None:
        self.status = move_run(self.id, self.status, state)

    def host(self) -> NodeHost:
        """What executing this run's nodes may use (built once, when its nodes start)."""
        if self._host is None:
            self._host = build_host(self)
        return self._host

    # ----------------------------------------------------------- driving
    def ensure_running(self) -> None:
        """Start (or restart, after retry/rerun) the driving task on the current loop."""
        if self.is_active:
            self.kick()
            return
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RunStateError(f"run {self.id} lives on another event loop")
        self._loop = loop
        self._wake = asyncio.Event()
        self._driver = loop.create_task(self.drive(), name=f"conductor-run-{self.id}")

    def kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def drive(self) -> None:
        """The one dispatch loop: a top-level run (in its own task) or a body (awaited in
        its container node's task; a cancel then propagates to the container)."""
        nested = self._parent is not None
        if nested:
            self._loop, self._driver = asyncio.get_running_loop(), asyncio.current_task()
            self._wake = asyncio.Event()
        assert self._wake is not None
        if self.options.capture:
            capture.install()
        first = self.started_at is None
        try:  # everything, the executor's start included: a failure must end the run
            if first:
                await self._begin()
            paused = self.stepper.paused
            self._set_run_state(RunState.PAUSED if paused else RunState.RUNNING)
            if paused:
                self.journal.publish(
                    RunPaused(self.id, reason="debug", node_id=self.scheduler.peek())
                )
            self.finished_at = None
            while True:
                self._dispatch()
                if not self._is_busy() or (self._cancelling and not self._tasks):
                    break
                self._settle()
                await self._wake.wait()
                self._wake.clear()
        except asyncio.CancelledError:
            await self._cancel_tasks("the run was cancelled")
            if nested:
                raise  # the container node is cancelled with its body
        except ConductorError as exc:  # e.g. the executor cannot start: the run fails with it
            self.error = exc
            await self._cancel_tasks("the run could not go on")
        except Exception as exc:  # an engine bug: the run fails, it never looks like success
            self.error = ConductorError(f"run {self.id} stopped on an internal error: {exc!r}")
            self.error.__cause__ = exc
            log.error("run %s: the driver failed", self.id, exc_info=True)
            await self._cancel_tasks("the run driver failed")
        finally:
            await self._finish()

    def _root(self) -> RunDriver:
        return self._parent._root() if self._parent else self

    def _is_busy(self) -> bool:
        return self.scheduler.is_active() or bool(self.stepper.forced) or bool(self._tasks)

    async def _begin(self) -> None:
        """The first start: the executor, the result cache, RunStarted, resumed nodes."""
        self.started_at = time.time()
        if self._parent is not None:  # a body: the root has started everything
            self._open_cache()
            return
        heap.hold()
        self._holds_heap = True
        await self.executor.start()
        await self.executor.prepare(self.plan)
        self._open_cache()
        self.journal.started(self.blueprint.id, self.params, self.completed)

    def _open_cache(self) -> None:
        """The result cache, when some node of this plan caches: the option's, else the
        one the whole run tree shares (the storage layer's default, opened once)."""
        if self._cache is not None or not self.options.caches_some(self.plan):
            return
        root = self._root()
        if root._cache is None:
            from conductor_nb.engine import hooks

            root._cache = hooks.default_cache(root)
        self._cache = root._cache

    def _dispatch(self) -> None:
        if self._cancelling:
            return
        for forced, pinned in list(self.stepper.forced.items()):  # reruns go first, paused or not
            del self.stepper.forced[forced]
            self._start_node(forced, pinned)
        while len(self._tasks) < max(1, self.options.concurrency):
            node_id = self._take_next()
            if node_id is None:
                return
            self._start_node(node_id)

    def _take_next(self) -> str | None:
        """Take the next ready node (stable order) if the stepper lets it go now; a
        breakpoint or ``run_to`` pauses the run instead."""
        node_id = self.scheduler.peek()
        if node_id is None:
            return None
        stepper = self.stepper
        if stepper.lets_all_go:
            self.scheduler.take(node_id)
            return node_id
        verdict = stepper.verdict(node_id)
        if verdict is Verdict.HOLD:
            return None
        if verdict is not Verdict.GO:
            self.pause(reason=verdict.value, node_id=node_id)
            return None
        stepping = self.stepper.is_stepping
        self.scheduler.take(node_id)
        self.stepper.took(node_id, stepping)
        return node_id

    def _queue(self, node_id: str) -> bool:
        """The node is queued; False when it is disabled (then it is skipped at once)."""
        if not self.plan.nodes[node_id].node.enabled:
            self._skip([node_id], "the node is disabled", schedule=True)
            return False
        self.journal.publish(NodeQueued(self.id, node_id=node_id))  # the reducer moves it
        return True

    def _start_node(self, node_id: str, pinned: Mapping[str, Any] | None = None) -> None:
        if not self._queue(node_id):
            return
        assert self._loop is not None
        task = self._loop.create_task(self._lane(node_id, pinned), name=f"conductor-node-{node_id}")
        self._tasks[node_id] = task

    async def _lane(self, node_id: str, pinned: Mapping[str, Any] | None) -> None:
        """A node's task. When its node ends and the next ready node may go at once, the
        same task runs that one too, for up to :data:`LANE_SLICE` seconds; then it ends and
        the dispatch loop goes on (other tasks, control calls and I/O get their turn).
        A node that took a slice or more (it waited: the loop had its turns meanwhile)
        starts a fresh slice, so a lane of I/O-bound nodes goes on from one to the next.
        A lane saves a task and a trip through the event loop per node."""
        task = asyncio.current_task()
        assert task is not None
        until = time.monotonic() + LANE_SLICE
        next_id: str | None = node_id
        slot = LaneSlot(self._limits)
        try:
            while next_id is not None:
                began = time.monotonic()
                if pinned is None and feeds(self, self.plan.nodes[next_id]):
                    slot.release()  # a feed takes its nodes' permits itself
                    if not await run_plain(self, task, next_id):
                        return
                elif not await self._node_task(next_id, pinned, slot=slot):
                    return
                pinned, next_id = None, None
                now = time.monotonic()
                if now - began >= LANE_SLICE:  # it waited: the loop had its turns meanwhile
                    until = now + LANE_SLICE
                while (
                    not self._cancelling
                    and not self.stepper.paused
                    and not self.stepper.forced
                    and now < until
                    and (next_id := self._take_next()) is not None
                ):
                    if self._queue(next_id):
                        self._tasks[next_id] = task
                        break
                    next_id = None
        finally:
            slot.release()

    async def _node_task(
        self,
        node_id: str,
        pinned: Mapping[str, Any] | None = None,
        *,
        slot: LaneSlot | None = None,
    ) -> bool:
        """Run one node to its end; False when it was cancelled (its lane ends too).
        ``slot``: the lane's, kept after the node."""
        planned = self.plan.nodes[node_id]
        record = self.node_runs[node_id]
        ok, skipped_ports, going_on = False, set[str](), True
        permit, kept = None, False
        try:
            if self.options.debug.slow_motion:
                await asyncio.sleep(self.options.debug.slow_motion)
            if slot is None:
                permit = self._limits.permit(planned.type.name, planned.type.concurrency)
                await permit.acquire()
            else:
                permit, kept = await slot.permit(planned.type.name, planned.type.concurrency)
            current_permit.set(permit)
            node_type = self.current_types.get(node_id)
            ok, skipped_ports = await node_runner.execute(
                self.host(), planned, record, pinned, node_type
            )
        except asyncio.CancelledError:
            self._mark_cancelled(node_id, "cancelled while running")
            going_on = False
        except Exception as exc:  # an engine bug must not hang the run
            node_runner.fail_internal(self.host(), planned, record, exc)
        finally:
            if permit is not None and not kept:
                permit.release()
            self._tasks.pop(node_id, None)
            self._node_done(node_id, ok, skipped_ports)
        return going_on

    # ------------------------------------------ for feeds (engine/follow.py)
    def has_free_slot(self) -> bool:
        """Another ready node may be dispatched now (not pausing, stepping or cancelling)."""
        stepper = self.stepper
        return (
            not self._cancelling
            and not stepper.paused
            and not stepper.forced
            and len(self._tasks) < max(1, self.options.concurrency)
        )

    def take_next(self) -> str | None:
        return self._take_next()

    def dispatch_taken(self, node_id: str) -> None:
        """A taken node gets a lane of its own."""
        self._start_node(node_id)

    def queue(self, node_id: str) -> bool:
        return self._queue(node_id)

    def take_claimed(self, node_id: str) -> bool:
        """A worker went on with ``node_id``: it is taken and queued (also while the run
        is cancelling: it ran, and ends cancelled or as it ended); False when the node is
        not ready."""
        if not self.scheduler.is_ready(node_id):
            return False
        self.scheduler.take(node_id)
        return self._queue(node_id)

    def running_in(self, node_id: str, task: asyncio.Task[None]) -> None:
        self._tasks[node_id] = task

    def node_ended(self, node_id: str, ok: bool, skipped_ports: set[str]) -> None:
        self._tasks.pop(node_id, None)
        self._node_done(node_id, ok, skipped_ports)

    def mark_cancelled(self, node_id: str, reason: str) -> None:
        self._mark_cancelled(node_id, reason)

    def _node_done(self, node_id: str, ok: bool, skipped_ports: set[str]) -> None:
        record = self.node_runs[node_id]
        skipped = (
            []
            if self.scheduler.is_finished(node_id)
            else self.scheduler.done(node_id, ok, skipped_ports)
        )
        if skipped and self._cancelling:
            for skipped_id in skipped:
                self._mark_cancelled(skipped_id, "the run was cancelled")
        elif skipped:
            reason = (
                f"upstream node {node_id!r} {record.status.value}"
                if not ok
                else f"branch not taken by {node_id!r}"
            )
            self._skip(skipped, reason)
        self.stepper.finished(node_id, record)
        if not ok and self.options.fail_fast and record.status is NodeState.FAILED:
            self._failing_fast = True
            self.begin_cancel(f"fail_fast: node {node_id!r} failed")
        self._maybe_progress()
        self.kick()

    def _skip(self, node_ids: Iterable[str], reason: str, schedule: bool = False) -> None:
        for node_id in node_ids:
            record = self.node_runs[node_id]
            if record.status.is_finished and not schedule:
                continue
            self.journal.publish(NodeSkipped(self.id, node_id=node_id, reason=reason))
            if schedule:  # disabled: finish it in the scheduler, skipping its downstream
                self._node_done(node_id, False, set())

    def _mark_cancelled(self, node_id: str, reason: str) -> None:
        record = self.node_runs[node_id]
        if record.status.is_finished:
            return
        self.journal.publish(NodeCancelled(self.id, node_id=node_id, reason=reason))

    def _maybe_progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._parent is not None or (not force and now - self._last_progress < 0.1):
            return  # a body's progress is its container node's
        self._last_progress = now
        done, total = self.progress()
        self.journal.publish(
            RunProgress(self.id, done=done, total=total, running=len(self._tasks), eta=self.eta())
        )

    def _settle(self) -> None:
        """Wake blocking ``wait()`` callers when the run is paused with nothing running."""
        if self.stepper.is_settled(len(self._tasks)):
            self.stepper.release_waiters()

    async def _finish(self) -> None:
        for node_id in self.scheduler.cancel_pending() if self._cancelling else ():
            self._mark_cancelled(node_id, "the run was cancelled")
        self.stepper.fail_waiters(RunStateError("the run ended before the node could run"))
        self.finished_at = time.time()
        if self.error is not None:
            state = RunState.FAILED
        elif self._cancelling and not self._failing_fast:
            state = RunState.CANCELLED
        else:
            state = self.journal.outcome()
        self._set_run_state(state)
        self.stepper.paused = False
        self._cancelling = self._failing_fast = False
        if self._parent is not None:
            return
        self._maybe_progress(force=True)
        self.journal.finished(
            state, self.finished_at - (self.started_at or self.finished_at), self.error
        )
        if self._holds_heap:
            self._holds_heap = False
            heap.release()
        await self.executor.close()
        self.stepper.release_waiters()

    # ----------------------------------------------------------- control
    def pause(self, reason: str = "pause", node_id: str | None = None) -> None:
        """Dispatch nothing new (running nodes finish)."""
        self.stepper.paused = True
        self.paused_at = node_id
        if self.status is not RunState.PAUSED:
            self._set_run_state(RunState.PAUSED)
        self.journal.publish(RunPaused(self.id, reason=reason, node_id=node_id))
        self._settle()

    def resume(self) -> bool:
        """Dispatch again; False when the run was not paused."""
        if not self.stepper.paused:
            return False
        self.stepper.paused = False
        self.paused_at = None
        if self.status is RunState.PAUSED and self.is_active:
            self._set_run_state(RunState.RUNNING)
        self.kick()
        return True

    def begin_cancel(self, reason: str) -> None:
        if not self.is_active:
            return
        self._cancelling = True
        for task in list(self._tasks.values()):
            task.cancel(reason)
        for child in self.children:
            child.begin_cancel(reason)
        self.kick()

    async def _cancel_tasks(self, reason: str) -> None:
        """The run stops here: cancel its running nodes and wait for them to end."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel(reason)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._cancelling = True

    def settle_future(self) -> concurrent.futures.Future[None]:
        """A future done when the run is finished, or paused with nothing running
        (call on the run's loop, or before it starts)."""
        active = self.is_active
        settled = (not active and self._driver is not None) or (
            active and self.stepper.is_settled(len(self._tasks))
        )
        return self.stepper.settle_waiter(settled)
