"""The run: a live handle on one execution of a blueprint, and the loop that drives it.

The driver takes ready nodes from the :class:`Scheduler` in stable order and
dispatches them as tasks it owns, at most ``concurrency`` at a time, until
nothing is ready or running. Debug control is a few flags the driver reads
before each dispatch: ``paused`` (dispatch nothing new), a step budget (while
paused, dispatch exactly N more), breakpoints (pause before a node). The driver
sleeps on an ``asyncio.Event`` that every state change sets; it never polls.

A run lives on one event loop (the engine's background thread for ``start``,
``debug`` and ``run``; the caller's loop for ``arun``). Handle methods called
from other threads are handed to that loop; blocking ones wait in short slices,
so Ctrl-C and Kernel -> Interrupt reach them within a fraction of a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as _dt
import os
import random
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from conductor_nb.engine import capture, node_runner
from conductor_nb.engine.events import (
    Event,
    EventBus,
    NodeCached,
    NodeCancelled,
    NodeLog,
    NodeQueued,
    NodeReset,
    NodeSkipped,
    RunFinished,
    RunPaused,
    RunProgress,
    RunResumed,
    RunStarted,
)
from conductor_nb.engine.executors import Executor, make_executor
from conductor_nb.engine.node_runner import LogLine, NodeRun
from conductor_nb.engine.plan import Plan
from conductor_nb.engine.scheduler import Scheduler
from conductor_nb.engine.states import NodeState, RunState, move_node, move_run
from conductor_nb.errors import BlueprintError, RunCancelled, RunStateError, problem
from conductor_nb.model import templates

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

WAKE_SLICE = 0.1
"""Blocking waits wake this often so interrupts are seen promptly."""


class ResultCache(Protocol):
    """Where cached node outputs live (the storage layer provides one)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, outputs: Mapping[str, Any]) -> None: ...


@dataclass
class RunOptions:
    concurrency: int = 8
    executor: Any = None
    fail_fast: bool = False
    cache: bool = False
    breakpoints: Sequence[str] = ()
    paused: bool = False
    type_limits: Mapping[str, int] = field(default_factory=dict)
    slow_motion: float = 0.0
    faults: Mapping[str, Any] = field(default_factory=dict)
    fault_rate: float = 0.0
    fault_seed: int | None = None
    history: Any = None  # None = the default history; False = do not record
    result_cache: Any = None  # a ResultCache; None = the default when caching is used
    env: bool = False  # expose os.environ to templates as `env`
    capture: bool = True  # capture stdout/stderr/logging into node logs
    settings: Mapping[str, Any] = field(default_factory=dict)  # for node types (file roots...)
    run_id: str | None = None
    completed: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Outputs of nodes that already succeeded (resume): they are reused, never run again."""

    @classmethod
    def from_kwargs(cls, options: Mapping[str, Any]) -> RunOptions:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"unknown run option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; options: {', '.join(sorted(known))}"
            )
        return cls(**options)


def new_run_id() -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def resolve_params(bp: Blueprint, given: Mapping[str, Any] | None) -> dict[str, Any]:
    given = dict(given or {})
    unknown = [k for k in given if k not in bp.params]
    problems = [
        problem(
            f"params.{k}",
            f"blueprint {bp.id!r} has no param {k!r}",
            f"declared params: {', '.join(sorted(bp.params)) or 'none'}",
        )
        for k in unknown
    ]
    values = {}
    for name, spec in bp.params.items():
        if name in given:
            values[name] = given[name]
        elif spec.required and spec.default is None:
            problems.append(
                problem(
                    f"params.{name}",
                    f"param {name!r} is required"
                    + (f" ({spec.description})" if spec.description else ""),
                )
            )
        else:
            values[name] = spec.default
    if problems:
        raise BlueprintError(problems, name=bp.id, source=bp.source)
    return values


class Run:
    """A live (or finished) execution. Index it by node id for the :class:`NodeRun`."""

    def __init__(
        self,
        blueprint: Blueprint,
        plan: Plan,
        params: Mapping[str, Any],
        options: RunOptions,
        *,
        parent: Run | None = None,
        prefix: str = "",
    ) -> None:
        self.id: str = options.run_id or (parent.id if parent else new_run_id())
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
        self._prefix = prefix
        self._sched = Scheduler(plan, succeeded=[n for n in options.completed if n in plan.nodes])
        for node_id, outputs in options.completed.items():
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
        self._settle_waiters: list[concurrent.futures.Future[None]] = []
        self._lock = threading.Lock()
        self._type_sems: dict[str, asyncio.Semaphore] = {}
        self._cache: ResultCache | None = options.result_cache
        self._fault_rng = random.Random(options.fault_seed)
        self._last_progress = 0.0
        self._children: list[Run] = []
        self._retry_types: dict[str, Any] = {}
        self._secrets: list[str] = (
            _env_secrets(plan) if options.env else []
        )  # node -> its type's definition at retry time

    # ----------------------------------------------------------------- reading
    def __getitem__(self, node_id: str) -> NodeRun:
        try:
            return self.node_runs[node_id]
        except KeyError:
            raise KeyError(
                f"run has no node {node_id!r}; nodes: {', '.join(self.node_runs)}"
            ) from None

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.node_runs

    @property
    def outputs(self) -> dict[str, Any]:
        """The blueprint's declared outputs (those whose node has succeeded)."""
        out = {}
        for name, src in self.plan.outputs.items():
            node_run = self.node_runs.get(src.node)
            if node_run is not None and node_run.outputs is not None:
                out[name] = node_run.outputs.get(src.port)
        resolve = getattr(self.executor, "resolve", None)
        return resolve(out) if resolve is not None and out else out

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
        out: dict[str, int] = {}
        for node_run in self.node_runs.values():
            out[node_run.status.value] = out.get(node_run.status.value, 0) + 1
        return out

    def progress(self) -> tuple[int, int]:
        """(finished, total) nodes of this run's plan."""
        return self._sched.finished_count, len(self.plan.order)

    def eta(self) -> float | None:
        """Seconds left, from the mean duration so far and the remaining nodes' levels."""
        done, total = self.progress()
        if not done or done == total or self.started_at is None:
            return None if done != total else 0.0
        elapsed = (self.finished_at or time.time()) - self.started_at
        return elapsed / done * (total - done)

    def next_node(self) -> str | None:
        """The node ``step()`` would run next (stable order), if one is ready."""
        return self._sched.peek()

    def summary(self) -> str:
        counts = ", ".join(f"{v} {k}" for k, v in sorted(self.counts().items()))
        dur = f" in {self.duration:.2f}s" if self.duration is not None else ""
        lines = [f"run {self.id} of {self.blueprint.id!r}: {self.status.value}{dur} ({counts})"]
        for node_id in self.failed_nodes:
            lines.append(f"  {self.node_runs[node_id].error}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        done, total = self.progress()
        return f"<Run {self.id} {self.blueprint.id!r} {self.status.value} {done}/{total} nodes>"

    def raise_for_status(self) -> Run:
        """Raise the first node failure (NodeExecutionError) or RunCancelled; else return self."""
        if self.status is RunState.CANCELLED:
            raise RunCancelled(f"run {self.id} was cancelled")
        for node_id in self.failed_nodes:
            error = self.node_runs[node_id].error
            if error is not None:
                raise error
        return self

    # ------------------------------------------------------------ publishing
    def _publish(self, event: Event) -> None:
        if self._prefix and hasattr(event, "node_id"):
            event = _prefixed(event, self._prefix)
        root = self._root()
        root.events.append(event)
        root.bus.publish(event)
        if root is not self:
            root._mirror(event)

    def _root(self) -> Run:
        run = self
        while run._parent is not None:
            run = run._parent
        return run

    def _mirror(self, event: Event) -> None:
        """Nested (group/loop) node events also live as NodeRuns of the root, by path."""
        node_id = getattr(event, "node_id", None)
        if not node_id:
            return
        record = self.node_runs.get(node_id)
        if record is None:
            record = self.node_runs[node_id] = NodeRun(node_id, "")
            record.pinned = True  # nested: not part of the root plan
        _apply_event(record, event)

    def subscribe(
        self, callback: Callable[[Event], Any], *types: type[Event]
    ) -> Callable[[], None]:
        return self.bus.subscribe(callback, *types)

    async def stream(self, replay: bool = True) -> AsyncIterator[Event]:
        """``async for event in run.stream()``: past events (if replay) then live ones."""
        history = list(self.events) if replay else []
        if self.is_finished and not self._driver_active():
            for event in history:
                yield event
            return
        async for event in self.bus.stream(history):
            yield event

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
        text = self.redact(text)
        record = self.node_runs.get(node_id)
        if record is not None:
            record.logs.append(LogLine(time.time(), stream, text, level))
        self._publish(NodeLog(self.id, node_id=node_id, stream=stream, text=text, level=level))

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _template_context(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        ctx = templates.base_context(
            self.params, self.id, self.started_at, env=os.environ if self.options.env else None
        )
        ctx["inputs"] = dict(inputs)
        return ctx

    # ------------------------------------------------------------- the driver
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
        if first:
            self.started_at = time.time()
            await self.executor.start()
            if self._cache is None and (
                self.options.cache or any(p.node.cache for p in self.plan.nodes.values())
            ):
                from conductor_nb.engine import hooks

                self._cache = hooks.default_cache(self)
            self._publish(
                RunStarted(
                    self.id,
                    blueprint_id=self.blueprint.id,
                    params=dict(self.params),
                    node_ids=tuple(self.plan.order),
                )
            )
            for node_id in self.options.completed:
                if node_id in self.node_runs:
                    self._publish(
                        NodeCached(
                            self.id,
                            node_id=node_id,
                            key="resume",
                            outputs=self.node_runs[node_id].outputs,
                        )
                    )
        self._set_run_state(RunState.PAUSED if self._paused else RunState.RUNNING)
        if self._paused:
            self._publish(RunPaused(self.id, reason="debug", node_id=self._sched.peek()))
        self.finished_at = None
        try:
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
        finally:
            await self._finish(first)

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
        try:
            limit = self._type_limit(planned.type.name, planned.type.concurrency)
            if self.options.slow_motion:
                await asyncio.sleep(self.options.slow_motion)
            if limit is None:
                ok, skipped_ports = await node_runner.execute(
                    self, planned, record, pinned, self._current_type(node_id)
                )
            else:
                async with limit:
                    ok, skipped_ports = await node_runner.execute(
                        self, planned, record, pinned, self._current_type(node_id)
                    )
        except asyncio.CancelledError:
            self._mark_cancelled(node_id, "cancelled while running")
        except Exception as exc:  # an engine bug must not hang the run
            node_runner._fail(self, planned, record, exc, f"internal error: {exc!r}")
        finally:
            self._tasks.pop(node_id, None)
            self._node_done(node_id, ok, skipped_ports)

    def _current_type(self, node_id: str) -> Any:
        return self._retry_types.get(node_id)

    def _type_limit(self, type_name: str, default: int | None) -> asyncio.Semaphore | None:
        limit = self.options.type_limits.get(type_name, default)
        if not limit:
            return None
        sem = self._type_sems.get(type_name)
        if sem is None:
            sem = self._type_sems[type_name] = asyncio.Semaphore(limit)
        return sem

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
        if self._cancelling:
            state = RunState.CANCELLED
        elif any(self.node_runs[n].status is NodeState.FAILED for n in self.plan.order):
            state = RunState.FAILED
        elif any(self.node_runs[n].status is NodeState.CANCELLED for n in self.plan.order):
            state = RunState.CANCELLED
        else:
            state = RunState.SUCCEEDED
        self._set_run_state(state)
        self._paused = False
        self._cancelling = False
        self._maybe_progress(force=True)
        first_error = next((r.error for r in self.node_runs.values() if r.error), None)
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

    # ------------------------------------------------------------- control
    def _on_loop(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on this run's loop (now, if we are on it)."""
        if self._loop is None:
            fn()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop or self._loop.is_closed():
            fn()
            return
        done: concurrent.futures.Future[None] = concurrent.futures.Future()

        def call() -> None:
            try:
                fn()
                done.set_result(None)
            except BaseException as exc:  # handed back to the calling thread
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(call)
        if running is None:  # a plain thread may wait; another loop must not block
            done.result(timeout=10)

    def pause(self) -> Run:
        """Dispatch nothing new; running nodes finish."""

        def do() -> None:
            if self._driver_active() and not self._paused:
                self._pause("pause")

        self._on_loop(do)
        return self

    def resume(self) -> Run:
        """Continue a paused run (returns at once; ``wait()`` for the end)."""

        def do() -> None:
            if not self._paused:
                return
            self._paused = False
            self.paused_at = None
            if self.status is RunState.PAUSED and self._driver_active():
                self._set_run_state(RunState.RUNNING)
                self._publish(RunResumed(self.id))
            self._kick()

        self._on_loop(do)
        return self

    async def aresume(self) -> Run:
        self.resume()
        await asyncio.sleep(0)
        return await self

    def run_to(self, node_id: str) -> Run:
        """Resume and pause again just before ``node_id`` would run."""
        self._check_node(node_id)

        def do() -> None:
            self._run_to = node_id

        self._on_loop(do)
        return self.resume()

    def add_breakpoint(self, node_id: str) -> None:
        self._check_node(node_id)

        def do() -> None:
            self.breakpoints.add(node_id)
            self._passed_breakpoint.discard(node_id)

        self._on_loop(do)

    def remove_breakpoint(self, node_id: str) -> None:
        self._on_loop(lambda: self.breakpoints.discard(node_id))

    def cancel(self) -> Run:
        """Cancel: running nodes are cancelled, pending ones end cancelled."""
        self._on_loop(lambda: self._begin_cancel("the run was cancelled"))
        return self

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

    def _check_node(self, node_id: str) -> None:
        if node_id not in self.plan.nodes:
            raise KeyError(f"run has no node {node_id!r}; nodes: {', '.join(self.plan.order)}")

    # ---------------------------------------------------------- stepping
    async def astep(self) -> NodeRun:
        """Run exactly the next ready node (stable order), then stay paused; its NodeRun."""
        return await self._await_on_loop(self._step_here)

    async def _step_here(self) -> NodeRun:
        if not self._driver_active():
            raise RunStateError(f"run {self.id} is {self.status.value}: nothing left to step")
        if not self._paused:
            self._pause("step")
        assert self._loop is not None
        waiter: asyncio.Future[NodeRun] = self._loop.create_future()
        self._step_waiters.append(waiter)
        self._step_budget += 1
        self._kick()
        record = await waiter
        if self._driver_active() and self._paused:
            self._publish(RunPaused(self.id, reason="step", node_id=self._sched.peek()))
        return record

    def step(self) -> NodeRun:
        return self._block(self.astep())

    async def aretry(self, node_id: str) -> Run:
        await self._await_on_loop(lambda: self._retry_here(node_id))
        return await self

    def retry(self, node_id: str, *, wait: bool = True) -> Run:
        """Re-run a failed (or cancelled) node with its type's *current* definition, then
        continue downstream. With ``wait`` (default) return when the run settles again."""
        self._block(self._await_on_loop(lambda: self._retry_here(node_id)))
        return self.wait() if wait else self

    async def _retry_here(self, node_id: str) -> None:
        self._check_node(node_id)
        record = self.node_runs[node_id]
        if record.status not in (NodeState.FAILED, NodeState.CANCELLED, NodeState.SKIPPED):
            raise RunStateError(
                f"node {node_id!r} is {record.status.value}; retry() re-runs "
                "a failed, cancelled or skipped node (use rerun() for others)"
            )
        if self._driver_active() and node_id in self._sched.running:
            raise RunStateError(f"node {node_id!r} is running")
        planned = self.plan.nodes[node_id]
        current = self.blueprint.registry.find(planned.type.name, planned.node.version)
        if current is not None:
            self._retry_types[node_id] = current
        self._reset_nodes(
            [node_id]
            + [
                d for d in self.plan.descendants(node_id) if not self.node_runs[d].status.is_success
            ],
            reason="retry",
        )
        self._ensure_driver()

    def _reset_nodes(self, node_ids: list[str], reason: str) -> None:
        for node_id in node_ids:
            record = self.node_runs[node_id]
            if record.status is not NodeState.PENDING:
                record.reset()
                self._publish(NodeReset(self.id, node_id=node_id, reason=reason))
        self._sched.reset(node_ids)

    async def arerun(
        self, node_id: str, inputs: Mapping[str, Any] | None = None, downstream: bool = False
    ) -> NodeRun:
        return await self._await_on_loop(lambda: self._rerun_here(node_id, inputs, downstream))

    def rerun(
        self, node_id: str, inputs: Mapping[str, Any] | None = None, *, downstream: bool = False
    ) -> NodeRun:
        """Run one node again, with ``inputs`` pinned (edited) or its recorded ones.

        With ``downstream=True`` its downstream nodes run again afterwards as well.
        """
        return self._block(self.arerun(node_id, inputs, downstream))

    async def _rerun_here(
        self, node_id: str, inputs: Mapping[str, Any] | None, downstream: bool
    ) -> NodeRun:
        self._check_node(node_id)
        if self._driver_active() and (node_id in self._sched.running):
            raise RunStateError(f"node {node_id!r} is running; wait for it first")
        record = self.node_runs[node_id]
        if inputs is not None:
            planned = self.plan.nodes[node_id]
            unknown = [k for k in inputs if k not in planned.type.value_names]
            if unknown:
                raise KeyError(
                    f"node {node_id!r} ({planned.type.name}) has no input "
                    f"{', '.join(map(repr, unknown))}; inputs: "
                    f"{', '.join(planned.type.value_names)}"
                )
        pinned = (
            dict(record.inputs or {}) if inputs is None else {**(record.inputs or {}), **inputs}
        )
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if node_id in self._sched.ready():  # not run yet: run it now, outside the normal order
            self._sched.take(node_id)
        record.reset()
        self._publish(NodeReset(self.id, node_id=node_id, reason="rerun"))
        record.pinned = inputs is not None
        self._set_state(record, NodeState.QUEUED)
        self._publish(NodeQueued(self.id, node_id=node_id))
        current = self.blueprint.registry.find(record.type, self.plan.nodes[node_id].node.version)
        ok, _ = await node_runner.execute(self, self.plan.nodes[node_id], record, pinned, current)
        if node_id in self._sched.running:
            self._node_done(node_id, ok, set())
        if downstream and ok:
            self._reset_nodes(self.plan.descendants(node_id), reason="rerun")
            self._ensure_driver()
        elif not self._driver_active():
            self._refresh_status()
        return record

    def _refresh_status(self) -> None:
        if any(r.status is NodeState.FAILED for r in self.node_runs.values()):
            state = RunState.FAILED
        elif self.status is RunState.CANCELLED:
            return
        else:
            state = RunState.SUCCEEDED
        if self.status.is_finished:
            self.status = state

    # ---------------------------------------------------------- waiting
    def __await__(self) -> Any:
        return self._await_settled().__await__()

    async def _await_settled(self) -> Run:
        fut = self._settle_future()
        while not fut.done():  # wake regularly: interrupts must get through
            await asyncio.wait([asyncio.wrap_future(fut)], timeout=WAKE_SLICE * 2)
        return self

    def _settle_future(self) -> concurrent.futures.Future[None]:
        """A future that completes when the run is finished or paused with nothing running.

        The check runs on the run's loop, after any control call queued before it.
        """
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()

        def register() -> None:
            with self._lock:
                active = self._driver_active()
                settled = (not active and self._driver is not None) or (
                    active and self._paused and not self._tasks and self._step_budget == 0
                )
                if settled:
                    fut.set_result(None)
                else:
                    self._settle_waiters.append(fut)

        if self._loop is None or self._loop.is_closed():
            register()
            return fut
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            register()
        else:
            self._loop.call_soon_threadsafe(register)
        return fut

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run finishes or pauses (breakpoint, step); Ctrl-C cancels it."""
        fut = self._settle_future()
        self._block_future(fut, timeout)
        return self

    def _block(self, coro: Any) -> Any:
        """Run a coroutine on this run's loop from another thread and wait for its result."""
        if self._loop is None:
            raise RunStateError("this run has not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise RunStateError(
                "this run lives on the current event loop: use the async form "
                "(await run.astep(), await run, await run.aretry(...))"
            )
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return self._block_future(fut, None)

    def _block_future(self, fut: concurrent.futures.Future[Any], timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                try:
                    return fut.result(timeout=WAKE_SLICE)
                except concurrent.futures.TimeoutError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError(
                            f"run {self.id} still {self.status.value} after {timeout}s"
                        ) from None
        except KeyboardInterrupt:
            self.cancel()
            with contextlib.suppress(Exception):
                self._settle_future().result(timeout=5)
            raise

    async def _await_on_loop(self, make: Callable[[], Any]) -> Any:
        """Await ``make()`` on this run's loop, from whatever loop we are on."""
        if self._loop is None:
            raise RunStateError("this run has not started")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            return await make()
        fut = asyncio.run_coroutine_threadsafe(make(), self._loop)
        return await asyncio.wrap_future(fut)

    # ---------------------------------------------------------- nested runs
    async def _run_child(
        self, blueprint: Any, params: Mapping[str, Any], prefix: str
    ) -> dict[str, Any]:
        from conductor_nb.engine.plan import compile_plan

        plan = compile_plan(blueprint)
        child_options = RunOptions(
            concurrency=self.options.concurrency,
            executor=self.executor,
            capture=self.options.capture,
            settings=self.options.settings,
            env=self.options.env,
            cache=self.options.cache,
            result_cache=self._cache,
            history=False,
        )
        child = Run(
            blueprint,
            plan,
            resolve_params(blueprint, params),
            child_options,
            parent=self,
            prefix=prefix,
        )
        child._loop = asyncio.get_running_loop()
        child._wake = asyncio.Event()
        child.started_at = time.time()
        child._set_run_state(RunState.RUNNING)
        self._children.append(child)
        try:
            child._driver = asyncio.current_task()
            await child._drive_child()
        finally:
            self._children.remove(child)
        failed = child.failed_nodes
        if failed:
            error = child.node_runs[failed[0]].error
            raise RuntimeError(f"inner node '{prefix}.{failed[0]}' failed: {error}")
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

    # ------------------------------------------------------- views & reports
    def view(self, **options: Any) -> Any:
        from conductor_nb.engine import hooks

        return hooks.view_factory()(self, **options)

    def to_svg(self, **options: Any) -> str:
        from conductor_nb.model.svg import render_svg

        states = {n: r.status.value for n, r in self.node_runs.items() if n in self.plan.nodes}
        if self.paused_at and self.is_paused:
            states[self.paused_at] = "paused"
        details = {n: _badge(r) for n, r in self.node_runs.items() if n in self.plan.nodes}
        return render_svg(
            self.blueprint,
            states,
            details,
            title=options.pop("title", f"{self.blueprint.name}: {self.status.value}"),
            **options,
        )

    def report(self, path: str) -> str:
        from conductor_nb.engine import hooks

        return hooks.report_writer()(self, path)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": self.summary()}
        try:
            bundle["image/svg+xml"] = self.to_svg()
        except Exception as exc:
            bundle["text/plain"] += f"\n(no picture: {exc})"
        return bundle


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


def _badge(record: NodeRun) -> str:
    parts = []
    if record.attempts > 1:
        parts.append(f"x{record.attempts}")
    if record.duration is not None and record.status.is_finished:
        parts.append(f"{record.duration:.2f}s")
    return " ".join(parts)


def _prefixed(event: Event, prefix: str) -> Event:
    import dataclasses

    node_id = f"{prefix}.{event.node_id}"  # type: ignore[attr-defined]
    return dataclasses.replace(event, node_id=node_id)  # type: ignore[call-arg]


def _apply_event(record: NodeRun, event: Event) -> None:
    from conductor_nb.engine import events as ev

    mapping = {
        ev.NodeQueued: NodeState.QUEUED,
        ev.NodeStarted: NodeState.RUNNING,
        ev.NodeSucceeded: NodeState.SUCCEEDED,
        ev.NodeCached: NodeState.CACHED,
        ev.NodeFailed: NodeState.FAILED,
        ev.NodeSkipped: NodeState.SKIPPED,
        ev.NodeCancelled: NodeState.CANCELLED,
        ev.NodeReset: NodeState.PENDING,
    }
    state = mapping.get(type(event))
    if state is not None:
        record.status = state
    if isinstance(event, ev.NodeStarted):
        record.started_at, record.attempts, record.inputs = event.time, event.attempt, event.inputs
    elif isinstance(event, ev.NodeSucceeded | ev.NodeCached):
        record.finished_at, record.outputs = event.time, event.outputs
    elif isinstance(event, ev.NodeFailed):
        record.finished_at, record.traceback = event.time, event.traceback
    elif isinstance(event, ev.NodeLog):
        record.logs.append(LogLine(event.time, event.stream, event.text, event.level))
