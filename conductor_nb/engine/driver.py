"""The driver of a run: its state, and the loop that dispatches its nodes.

The driver takes ready nodes from the :class:`Scheduler` in stable order and
dispatches them as tasks it owns, at most ``concurrency`` at a time, until
nothing is ready or running. Debug control is a few flags the driver reads
before each dispatch: ``paused`` (dispatch nothing new), a step budget (while
paused, dispatch exactly N more), breakpoints (pause before a node). The driver
sleeps on an ``asyncio.Event`` that every state change sets; it never polls.
Every state change is published as an event; nested runs (the bodies of
``group``, ``loop`` and ``parallel``) publish into their root run, by path.

:class:`conductor_nb.engine.run.Run` is the handle users hold; it adds the
controls (pause, step, retry, rerun...), waiting and views on top of this.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as _dt
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import capture, node_runner
from conductor_nb.engine.events import (
    Event,
    EventBus,
    NodeCached,
    NodeCancelled,
    NodeEvent,
    NodeLog,
    NodeQueued,
    NodeSkipped,
    RunFinished,
    RunPaused,
    RunProgress,
    RunStarted,
)
from conductor_nb.engine.executors import Executor, make_executor
from conductor_nb.engine.limits import Limits, current_permit
from conductor_nb.engine.node_runner import NodeRun
from conductor_nb.engine.options import (
    ResultCache,
    RunOptions,
    RunSetup,
    new_run_id,
    resolve_params,
)
from conductor_nb.engine.plan import Plan
from conductor_nb.engine.reducer import apply_event
from conductor_nb.engine.scheduler import Scheduler
from conductor_nb.engine.states import NodeState, RunState, move_node, move_run
from conductor_nb.errors import ConductorError, NodeExecutionError, RunStateError
from conductor_nb.model import templates

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

log = logging.getLogger("conductor_nb.engine")


class RunDriver:
    """One execution's state and the loop that drives it (see the module docstring)."""

    # ------------------------------------------------------------- state
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
    ) -> None:
        setup = setup or RunSetup()
        self.id: str = setup.run_id or (parent.id if parent else new_run_id())
        self.blueprint = blueprint
        self.plan = plan
        self.params = dict(params)
        self.options = options
        self.status = RunState.CREATED
        self.node_runs: dict[str, NodeRun] = {
            nid: NodeRun(nid, p.type.name) for nid, p in plan.nodes.items()
        }
        self.events: list[Event] = []
        self.bus: EventBus = parent.bus if parent else EventBus()
        self.breakpoints: set[str] = set(options.breakpoints)
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.paused_at: str | None = None
        self.error: BaseException | None = None
        self.executor: Executor = parent.executor if parent else make_executor(options.executor)
        self._parent = parent
        # the full path from the root: a body inside a body publishes 'p[1].q[0].w'
        outer = parent._prefix if parent is not None else ""
        self._prefix = f"{outer}.{prefix}" if outer and prefix else prefix
        self.completed = setup.completed
        self._sched = Scheduler(plan, succeeded=[n for n in setup.completed if n in plan.nodes])
        for node_id, outputs in setup.completed.items():
            if node_id in self.node_runs:
                self.node_runs[node_id].outputs = dict(outputs)
                self.node_runs[node_id].status = NodeState.CACHED
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._driver: asyncio.Task[None] | None = None
        self._paused = options.paused
        self._step_budget = 0
        self._step_waiters: list[asyncio.Future[NodeRun]] = []
        self._stepped: dict[str, asyncio.Future[NodeRun]] = {}
        self._passed_breakpoint: set[str] = set()
        self._run_to: str | None = None
        self._cancelling = False
        self._failing_fast = False  # the cancel comes from fail_fast: the run failed
        self._settle_waiters: list[concurrent.futures.Future[None]] = []
        self._lock = threading.Lock()
        self._limits: Limits = (
            parent._limits if parent else Limits(options.concurrency, options.type_limits)
        )
        self._cache: ResultCache | None = options.result_cache
        self._fault_rng = random.Random(options.debug.fault_seed)
        self._last_progress = 0.0
        self._children: list[RunDriver] = []
        self._retry_types: dict[str, Any] = {}
        self._secrets: list[str] = (
            _env_secrets(plan) if options.env else []
        )  # node -> its type's definition at retry time

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
        """The event loop this run executes on (None before it starts)."""
        return self._loop

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at

    @property
    def is_finished(self) -> bool:
        return self.status.is_finished

    @property
    def is_paused(self) -> bool:
        return self.status is RunState.PAUSED

    @property
    def is_cancelling(self) -> bool:
        return self._cancelling

    @property
    def failed_nodes(self) -> list[str]:
        """Failed nodes of this run's plan (nested ``group.inner`` records are not counted)."""
        return [n for n in self.plan.order if self.node_runs[n].status is NodeState.FAILED]

    def counts(self) -> dict[str, int]:
        """How many of this run's own nodes are in each state (nested records not counted:
        a loop's iterations are part of the loop node)."""
        out: dict[str, int] = {}
        for node_id in self.plan.order:
            state = self.node_runs[node_id].status.value
            out[state] = out.get(state, 0) + 1
        return out

    def progress(self) -> tuple[int, int]:
        """(finished, total) nodes of this run's plan."""
        return self._sched.finished_count, len(self.plan.order)

    def eta(self) -> float | None:
        """Seconds left, from the mean duration so far and the remaining nodes' levels
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
        return self._sched.peek()

    # -------------------------------------------------------- publishing
    def _publish(self, event: Event) -> None:
        if isinstance(event, NodeEvent):
            own = self.node_runs.get(event.node_id)
            if own is not None:  # every state change of a record goes through the reducer
                apply_event(own, event)
        if self._prefix and getattr(event, "node_id", None) is not None:
            event = _prefixed(event, self._prefix)
        root = self._root()
        root.events.append(event)
        root.bus.publish(event)
        if root is not self:
            root._mirror(event)

    def _root(self) -> RunDriver:
        run = self
        while run._parent is not None:
            run = run._parent
        return run

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

    def _set_state(self, node_run: NodeRun, state: NodeState) -> None:
        node_run.status = move_node(node_run.node_id, node_run.status, state)

    def _set_run_state(self, state: RunState) -> None:
        self.status = move_run(self.id, self.status, state)

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

    def _log(self, node_id: str, stream: str, text: str, level: str = "") -> None:
        text = self.redact(text)  # the record gets the line through the reducer
        self._publish(NodeLog(self.id, node_id=node_id, stream=stream, text=text, level=level))

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _template_context(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        started = (
            _dt.datetime.fromtimestamp(self.started_at, _dt.UTC) if self.started_at else None
        )  # a datetime, like `now`: {{ run.started_at.strftime('%Y-%m-%d') }}
        ctx = templates.base_context(
            self.params, self.id, started, env=os.environ if self.options.env else None
        )
        ctx["inputs"] = dict(inputs)
        return ctx

    # ----------------------------------------------------------- driving
    def _driver_active(self) -> bool:
        return self._driver is not None and not self._driver.done()

    def _ensure_driver(self) -> None:
        """Start (or restart, after retry/rerun) the driving task on this run's loop."""
        if self._driver_active():
            self._kick()
            return
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:
            raise RunStateError(f"run {self.id} lives on another event loop")
        self._loop = loop
        self._wake = asyncio.Event()
        self._driver = loop.create_task(self._drive(), name=f"conductor-run-{self.id}")

    def _kick(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _drive(self) -> None:
        assert self._wake is not None
        if self.options.capture:
            capture.install()
        first = self.started_at is None
        try:  # everything, the executor's start included: a failure must end the run
            if first:
                await self._begin()
            self._set_run_state(RunState.PAUSED if self._paused else RunState.RUNNING)
            if self._paused:
                self._publish(RunPaused(self.id, reason="debug", node_id=self._sched.peek()))
            self.finished_at = None
            while True:
                self._dispatch()
                if not self._sched.is_active() or (self._cancelling and not self._tasks):
                    break
                self._settle()
                await self._wake.wait()
                self._wake.clear()
        except asyncio.CancelledError:
            await self._cancel_tasks("the run was cancelled")
            self._cancelling = True
        except ConductorError as exc:  # e.g. the executor cannot start: the run fails with it
            self.error = exc
            await self._cancel_tasks("the run could not go on")
            self._cancelling = True
        except Exception as exc:  # an engine bug: the run fails, it never looks like success
            self.error = ConductorError(f"run {self.id} stopped on an internal error: {exc!r}")
            self.error.__cause__ = exc
            log.error("run %s: the driver failed", self.id, exc_info=True)
            await self._cancel_tasks("the run driver failed")
            self._cancelling = True
        finally:
            await self._finish(first)

    async def _begin(self) -> None:
        """The first start: the executor, the result cache, RunStarted, resumed nodes."""
        self.started_at = time.time()
        await self.executor.start()
        self._open_cache()
        self._publish(
            RunStarted(
                self.id,
                blueprint_id=self.blueprint.id,
                params=dict(self.params),
                node_ids=tuple(self.plan.order),
            )
        )
        for node_id in self.completed:
            if node_id in self.node_runs:
                outputs = self.node_runs[node_id].outputs
                self._publish(NodeCached(self.id, node_id=node_id, key="resume", outputs=outputs))

    def _open_cache(self) -> None:
        """The result cache, when some node of this plan caches: the option's, else the
        one the whole run tree shares (the storage layer's default, opened once)."""
        if self._cache is not None or not any(
            self.options.caches(p.node) for p in self.plan.nodes.values()
        ):
            return
        root = self._root()
        if root._cache is None:
            from conductor_nb.engine import hooks

            root._cache = hooks.default_cache(root)
        self._cache = root._cache

    def _dispatch(self) -> None:
        if self._cancelling:
            return
        while len(self._tasks) < max(1, self.options.concurrency):
            node_id = self._sched.peek()
            if node_id is None:
                return
            stepping = self._paused and self._step_budget > 0
            if self._paused and not stepping:
                return
            if node_id == self._run_to and not stepping:
                self._run_to = None
                self._pause(reason="run_to", node_id=node_id)
                return
            if (
                node_id in self.breakpoints
                and node_id not in self._passed_breakpoint
                and not stepping
            ):
                self._passed_breakpoint.add(node_id)
                self._pause(reason="breakpoint", node_id=node_id)
                return
            self._sched.take(node_id)
            if stepping:
                self._step_budget -= 1
                if self._step_waiters:
                    self._stepped[node_id] = self._step_waiters.pop(0)
            self._start_node(node_id)

    def _start_node(self, node_id: str) -> None:
        planned = self.plan.nodes[node_id]
        record = self.node_runs[node_id]
        if not planned.node.enabled:
            self._skip([node_id], "the node is disabled", schedule=True)
            return
        record.queued_at = time.time()
        self._set_state(record, NodeState.QUEUED)
        self._publish(NodeQueued(self.id, node_id=node_id))
        assert self._loop is not None
        task = self._loop.create_task(self._node_task(node_id), name=f"conductor-node-{node_id}")
        self._tasks[node_id] = task

    async def _node_task(self, node_id: str, pinned: Mapping[str, Any] | None = None) -> None:
        planned = self.plan.nodes[node_id]
        record = self.node_runs[node_id]
        ok, skipped_ports = False, set[str]()
        permit = self._limits.permit(planned.type.name, planned.type.concurrency)
        try:
            if self.options.debug.slow_motion:
                await asyncio.sleep(self.options.debug.slow_motion)
            await permit.acquire()
            current_permit.set(permit)
            ok, skipped_ports = await node_runner.execute(
                self, planned, record, pinned, self._current_type(node_id)
            )
        except asyncio.CancelledError:
            self._mark_cancelled(node_id, "cancelled while running")
        except Exception as exc:  # an engine bug must not hang the run
            node_runner._fail(self, planned, record, exc, f"internal error: {exc!r}")
        finally:
            permit.release()
            self._tasks.pop(node_id, None)
            self._node_done(node_id, ok, skipped_ports)

    def _current_type(self, node_id: str) -> Any:
        return self._retry_types.get(node_id)

    def _node_done(self, node_id: str, ok: bool, skipped_ports: set[str]) -> None:
        record = self.node_runs[node_id]
        skipped = (
            [] if self._sched.is_finished(node_id) else self._sched.done(node_id, ok, skipped_ports)
        )
        reason = (
            f"upstream node {node_id!r} {record.status.value}"
            if not ok
            else f"branch not taken by {node_id!r}"
        )
        if self._cancelling:
            for skipped_id in skipped:
                self._mark_cancelled(skipped_id, "the run was cancelled")
        else:
            self._skip(skipped, reason)
        waiter = self._stepped.pop(node_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(record)
        if not ok and self.options.fail_fast and record.status is NodeState.FAILED:
            self._failing_fast = True
            self._begin_cancel(f"fail_fast: node {node_id!r} failed")
        self._maybe_progress()
        self._kick()

    def _skip(self, node_ids: Iterable[str], reason: str, schedule: bool = False) -> None:
        for node_id in node_ids:
            record = self.node_runs[node_id]
            if schedule:  # disabled: finish it in the scheduler, skipping its downstream
                self._set_state(record, NodeState.SKIPPED)
                self._publish(NodeSkipped(self.id, node_id=node_id, reason=reason))
                self._node_done(node_id, False, set())
                continue
            if record.status.is_finished:
                continue
            self._set_state(record, NodeState.SKIPPED)
            self._publish(NodeSkipped(self.id, node_id=node_id, reason=reason))

    def _mark_cancelled(self, node_id: str, reason: str) -> None:
        record = self.node_runs[node_id]
        if record.status.is_finished:
            return
        record.finished_at = time.time() if record.started_at else None
        self._set_state(record, NodeState.CANCELLED)
        self._publish(NodeCancelled(self.id, node_id=node_id, reason=reason))

    def _maybe_progress(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < 0.1:
            return
        self._last_progress = now
        done, total = self.progress()
        self._publish(
            RunProgress(self.id, done=done, total=total, running=len(self._tasks), eta=self.eta())
        )

    def _pause(self, reason: str, node_id: str | None = None) -> None:
        self._paused = True
        self.paused_at = node_id
        if self.status is not RunState.PAUSED:
            self._set_run_state(RunState.PAUSED)
        self._publish(RunPaused(self.id, reason=reason, node_id=node_id))
        self._settle()

    def _settle(self) -> None:
        """Wake blocking ``wait()`` callers when the run is paused with nothing running."""
        if self._paused and not self._tasks and self._step_budget == 0:
            self._release_waiters()

    def _release_waiters(self) -> None:
        with self._lock:
            waiters, self._settle_waiters = self._settle_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _finish(self, first: bool) -> None:
        for node_id in self._sched.cancel_pending() if self._cancelling else ():
            self._mark_cancelled(node_id, "the run was cancelled")
        for fut in self._step_waiters + list(self._stepped.values()):
            if not fut.done():
                fut.set_exception(RunStateError("the run ended before a node could be stepped"))
        self._step_waiters.clear()
        self._stepped.clear()
        self.finished_at = time.time()
        if self.error is not None:
            state = RunState.FAILED
        elif self._cancelling and not self._failing_fast:
            state = RunState.CANCELLED
        elif any(self.node_runs[n].status is NodeState.FAILED for n in self.plan.order):
            state = RunState.FAILED
        elif any(self.node_runs[n].status is NodeState.CANCELLED for n in self.plan.order):
            state = RunState.CANCELLED
        else:
            state = RunState.SUCCEEDED
        self._set_run_state(state)
        self._paused = False
        self._cancelling = self._failing_fast = False
        self._maybe_progress(force=True)
        first_error = self.error or next(
            (r.error for r in self.node_runs.values() if r.error), None
        )
        self._publish(
            RunFinished(
                self.id,
                status=state.value,
                duration=self.duration or 0.0,
                error=str(first_error) if first_error else None,
            )
        )
        if self._parent is None:
            await self.executor.close()
        self._release_waiters()

    def _begin_cancel(self, reason: str) -> None:
        if not self._driver_active():
            return
        self._cancelling = True
        for task in list(self._tasks.values()):
            task.cancel(reason)
        for child in self._children:
            child._begin_cancel(reason)
        self._kick()

    async def _cancel_tasks(self, reason: str) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel(reason)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------- nested runs
    async def _run_child(
        self, blueprint: Any, params: Mapping[str, Any], prefix: str
    ) -> dict[str, Any]:
        from conductor_nb.engine.plan import compile_plan

        plan = compile_plan(blueprint)
        child = type(self)(
            blueprint,
            plan,
            resolve_params(blueprint, params),
            self.options.for_body(self.executor, self._cache),
            parent=self,
            prefix=prefix,
        )
        child._loop = asyncio.get_running_loop()
        child._wake = asyncio.Event()
        child.started_at = time.time()
        child._set_run_state(RunState.RUNNING)
        child._open_cache()
        self._children.append(child)
        permit = current_permit.get()
        try:
            child._driver = asyncio.current_task()
            if permit is None:
                await child._drive_child()
            else:
                async with permit.lent():  # the body's nodes need the slots, not this node
                    await child._drive_child()
        finally:
            self._children.remove(child)
        failed = child.failed_nodes
        if failed:
            error = child.node_runs[failed[0]].error
            inner = f"{prefix}.{failed[0]}"
            raise NodeExecutionError(
                f"inner node {inner!r} failed: {error}",
                node_id=inner,
                attempt=error.attempt if error else 1,
                attempts=error.attempts if error else 1,
                original=error,
            ) from error
        if child._cancelling or any(
            r.status is NodeState.CANCELLED for r in child.node_runs.values()
        ):
            raise asyncio.CancelledError()
        return child.outputs

    async def _drive_child(self) -> None:
        assert self._wake is not None
        try:
            while True:
                self._dispatch()
                if not self._sched.is_active() or (self._cancelling and not self._tasks):
                    break
                await self._wake.wait()
                self._wake.clear()
        except asyncio.CancelledError:
            await self._cancel_tasks("cancelled")
            for node_id in self._sched.cancel_pending():
                self._mark_cancelled(node_id, "the run was cancelled")
            raise
        for node_id in self._sched.cancel_pending() if self._cancelling else ():
            self._mark_cancelled(node_id, "the run was cancelled")


def _env_secrets(plan: Plan) -> list[str]:
    """Values of the environment variables the plan's templates read (``{{ env.NAME }}``):
    they are masked in recorded inputs, logs and errors."""
    names: set[str] = set()
    for planned in plan.nodes.values():
        for text in templates.strings_in(planned.node.params):
            if "env" in text:
                names |= templates.referenced_names(text, "env")
    values = [os.environ[n] for n in sorted(names) if len(os.environ.get(n, "")) >= 4]
    return sorted(values, key=len, reverse=True)


def _prefixed(event: Event, prefix: str) -> Event:
    import dataclasses

    node_id = f"{prefix}.{event.node_id}"  # type: ignore[attr-defined]
    return dataclasses.replace(event, node_id=node_id)  # type: ignore[call-arg]
