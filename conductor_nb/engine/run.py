"""The run handle: what ``bp.run()``, ``start()`` and ``debug()`` return.

A :class:`Run` wraps a :class:`~conductor_nb.engine.driver.RunDriver` (the state
and the dispatch loop) the way an ``asyncio.Task`` wraps a coroutine: it reads
the run's state, checks names, and hands control calls to the driver's loop.
A run lives on one event loop (the engine's background thread for ``start``,
``debug`` and ``run``; the caller's loop for ``arun``). Handle methods called
from other threads are handed to that loop; blocking ones wait in short slices,
so Ctrl-C and Kernel -> Interrupt reach them within a fraction of a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import control, crossing
from conductor_nb.engine.driver import RunDriver
from conductor_nb.engine.events import Event, EventBus, RunResumed
from conductor_nb.engine.executors import Executor
from conductor_nb.engine.node_runner import NodeRun
from conductor_nb.engine.options import RunOptions, RunSetup
from conductor_nb.engine.plan import Plan
from conductor_nb.engine.states import RunState
from conductor_nb.errors import RunCancelled, RunStateError, RunTimeout, UnknownNameError

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

WAKE_SLICE = crossing.WAKE_SLICE


class Run:
    """A live (or finished) execution. Index it by node id for the :class:`NodeRun`."""

    def __init__(
        self,
        blueprint: Blueprint,
        plan: Plan,
        params: Mapping[str, Any],
        options: RunOptions,
        *,
        setup: RunSetup | None = None,
    ) -> None:
        self._driver = RunDriver(blueprint, plan, params, options, setup=setup, handle=self)

    @classmethod
    def restored(
        cls,
        blueprint: Blueprint,
        plan: Plan,
        params: Mapping[str, Any],
        *,
        setup: RunSetup,
        status: RunState,
        started_at: float | None,
        finished_at: float | None,
    ) -> Run:
        """A finished run rebuilt from history (nothing executes; fill ``node_runs``)."""
        run = cls(blueprint, plan, params, RunOptions(history=False, capture=False), setup=setup)
        driver = run._driver
        driver.status, driver.started_at, driver.finished_at = status, started_at, finished_at
        return run

    # ----------------------------------------------------------- reading
    @property
    def id(self) -> str:
        return self._driver.id

    @property
    def blueprint(self) -> Blueprint:
        return self._driver.blueprint

    @property
    def plan(self) -> Plan:
        return self._driver.plan

    @property
    def params(self) -> dict[str, Any]:
        return self._driver.params

    @property
    def options(self) -> RunOptions:
        return self._driver.options

    @property
    def executor(self) -> Executor:
        return self._driver.executor

    @property
    def status(self) -> RunState:
        return self._driver.status

    @property
    def node_runs(self) -> dict[str, NodeRun]:
        """Every node's record, by id (nested ones by path: ``loop[2].fetch``)."""
        return self._driver.node_runs

    @property
    def events(self) -> list[Event]:
        return self._driver.journal.events

    @property
    def bus(self) -> EventBus:
        return self._driver.journal.bus

    @property
    def outputs(self) -> dict[str, Any]:
        """The blueprint's declared outputs (those whose node has succeeded)."""
        return self._driver.outputs

    @property
    def error(self) -> BaseException | None:
        """Why the run itself failed (an executor that cannot start, an internal error)."""
        return self._driver.error

    @property
    def started_at(self) -> float | None:
        return self._driver.started_at

    @property
    def finished_at(self) -> float | None:
        return self._driver.finished_at

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        return (self.finished_at or time.time()) - self.started_at

    @property
    def breakpoints(self) -> frozenset[str]:
        return frozenset(self._driver.stepper.breakpoints)

    @property
    def paused_at(self) -> str | None:
        """The node the run paused before (a breakpoint, run_to), if any."""
        return self._driver.paused_at

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop this run executes on (None before it starts)."""
        return self._driver.loop

    @property
    def is_finished(self) -> bool:
        return self.status.is_finished

    @property
    def is_paused(self) -> bool:
        return self.status is RunState.PAUSED

    @property
    def is_cancelling(self) -> bool:
        return self._driver.is_cancelling

    @property
    def failed_nodes(self) -> list[str]:
        """Failed nodes of this run's plan (nested ``group.inner`` records are not counted)."""
        return self._driver.journal.failed_nodes()

    def counts(self) -> dict[str, int]:
        """How many of this run's own nodes are in each state."""
        return self._driver.journal.counts()

    def progress(self) -> tuple[int, int]:
        """(finished, total) nodes of this run's plan."""
        return self._driver.progress()

    def eta(self) -> float | None:
        """Seconds left (None while paused or before any node finished)."""
        return self._driver.eta()

    def next_node(self) -> str | None:
        """The node ``step()`` would run next (stable order), if one is ready."""
        return self._driver.next_node()

    def redact(self, value: Any) -> Any:
        """``value`` with the secrets this run read from the environment masked."""
        return self._driver.journal.redact(value)

    def __getitem__(self, node_id: str) -> NodeRun:
        try:
            return self.node_runs[node_id]
        except KeyError:
            raise UnknownNameError("node", node_id, self.node_runs, where="run has ") from None

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.node_runs

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
        if self.error is not None:  # the run itself failed (an internal error)
            raise self.error
        if self.status is RunState.CANCELLED:
            raise RunCancelled(f"run {self.id} was cancelled")
        for node_id in self.failed_nodes:
            error = self.node_runs[node_id].error
            if error is not None:
                raise error
        return self

    def subscribe(
        self, callback: Callable[[Event], Any], *types: type[Event]
    ) -> Callable[[], None]:
        return self.bus.subscribe(callback, *types)

    async def stream(self, replay: bool = True) -> AsyncIterator[Event]:
        """``async for event in run.stream()``: past events (if replay) then live ones."""
        history = list(self.events) if replay else []
        if self.is_finished and not self._driver.is_active:
            for event in history:
                yield event
            return
        async for event in self.bus.stream(history):
            yield event

    # ----------------------------------------------------------- control
    def _launch(self) -> None:
        """Start driving on the current loop (the engine's ``start``/``arun``)."""
        self._driver.ensure_running()

    def _on_loop(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` on this run's loop (now, if we are on it)."""
        crossing.call_on(self.loop, fn)

    def pause(self) -> Run:
        """Dispatch nothing new; running nodes finish."""

        def do() -> None:
            if self._driver.is_active and not self._driver.stepper.paused:
                self._driver.pause("pause")

        self._on_loop(do)
        return self

    def resume(self) -> Run:
        """Continue a paused run (returns at once; ``wait()`` for the end)."""

        def do() -> None:
            if self._driver.resume() and self._driver.is_active:
                self._driver.journal.publish(RunResumed(self.id))

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
            self._driver.stepper.run_to = node_id

        self._on_loop(do)
        return self.resume()

    def add_breakpoint(self, node_id: str) -> None:
        self._check_node(node_id)
        self._on_loop(lambda: self._driver.stepper.add_breakpoint(node_id))

    def remove_breakpoint(self, node_id: str) -> None:
        self._on_loop(lambda: self._driver.stepper.breakpoints.discard(node_id))

    def cancel(self) -> Run:
        """Cancel: running nodes are cancelled, pending ones end cancelled."""
        self._on_loop(lambda: self._driver.begin_cancel("the run was cancelled"))
        return self

    def _check_node(self, node_id: str) -> None:
        if node_id not in self.plan.nodes:
            raise UnknownNameError("node", node_id, self.plan.order, where="run has ")

    # ---------------------------------------------------------- stepping
    async def astep(self) -> NodeRun:
        """Run exactly the next ready node (stable order), then stay paused; its NodeRun."""
        return await self._await_on_loop(lambda: control.step(self._driver))

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
        control.retry(self._driver, node_id)

    async def arerun(
        self, node_id: str, inputs: Mapping[str, Any] | None = None, downstream: bool = False
    ) -> NodeRun:
        self._check_node(node_id)
        if inputs is not None:
            node_type = self.plan.nodes[node_id].type
            for name in inputs:
                if name not in node_type.value_names:
                    where = f"node {node_id!r} ({node_type.name}) has "
                    raise UnknownNameError("input", name, node_type.value_names, where=where)
        return await self._await_on_loop(
            lambda: control.rerun(self._driver, node_id, inputs, downstream)
        )

    def rerun(
        self, node_id: str, inputs: Mapping[str, Any] | None = None, *, downstream: bool = False
    ) -> NodeRun:
        """Run one node again, with ``inputs`` pinned (edited) or its recorded ones.

        With ``downstream=True`` its downstream nodes run again afterwards as well.
        """
        return self._block(self.arerun(node_id, inputs, downstream))

    # ----------------------------------------------------------- waiting
    def __await__(self) -> Any:
        return self._await_settled().__await__()

    async def _await_settled(self) -> Run:
        """``await run``: until it finishes or pauses. If the awaiting task is cancelled
        (Kernel -> Interrupt in a cell), the run is cancelled too, as with ``wait()``;
        ``await asyncio.shield(run)`` waits without that."""
        fut = self._settle_future()
        try:
            while not fut.done():  # wake regularly: interrupts must get through
                await asyncio.wait([asyncio.wrap_future(fut)], timeout=WAKE_SLICE * 2)
        except asyncio.CancelledError:
            self.cancel()
            raise
        return self

    def _settle_future(self) -> concurrent.futures.Future[None]:
        """A future that completes when the run is finished or paused with nothing running.

        The check runs on the run's loop, after any control call queued before it.
        """
        return crossing.future_on(self.loop, self._driver.settle_future)

    async def _stop(self, grace: float) -> None:
        """Cancel and give the run ``grace`` seconds to end cleanly (on its own loop)."""
        self.cancel()
        task = self._driver.task
        if task is not None and not task.done():
            await asyncio.wait([task], timeout=grace)

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run finishes or pauses (breakpoint, step); Ctrl-C cancels it."""
        try:
            fut = self._settle_future()
        except KeyboardInterrupt:  # Ctrl-C may land before the wait has begun
            self._cancel_after_interrupt()
            raise
        self._block_future(fut, timeout)
        return self

    def _block(self, coro: Any) -> Any:
        """Run a coroutine on this run's loop from another thread and wait for its result."""
        if self.loop is None:
            raise RunStateError("this run has not started")
        if crossing.running_loop() is self.loop:
            coro.close()
            raise RunStateError(
                "this run lives on the current event loop: use the async form "
                "(await run.astep(), await run, await run.aretry(...))"
            )
        return self._block_future(crossing.submit_to(self.loop, coro), None)

    def _block_future(self, fut: concurrent.futures.Future[Any], timeout: float | None) -> Any:
        def too_long() -> RunTimeout:
            return RunTimeout(f"run {self.id} still {self.status.value} after {timeout}s")

        try:
            return crossing.wait_in_slices(fut, timeout, too_long)
        except KeyboardInterrupt:
            self._cancel_after_interrupt()
            raise

    def _cancel_after_interrupt(self) -> None:
        """Ctrl-C / Kernel -> Interrupt while blocked on the run: cancel it, let it end."""
        self.cancel()
        with contextlib.suppress(Exception):
            self._settle_future().result(timeout=5)

    async def _await_on_loop(self, make: Callable[[], Any]) -> Any:
        """Await ``make()`` on this run's loop, from whatever loop we are on."""
        if self.loop is None:
            raise RunStateError("this run has not started")
        return await crossing.await_on(self.loop, make)

    # --------------------------------------------------- views & reports
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


def _badge(record: NodeRun) -> str:
    parts = []
    if record.attempts > 1:
        parts.append(f"x{record.attempts}")
    if record.duration is not None and record.status.is_finished:
        parts.append(f"{record.duration:.2f}s")
    return " ".join(parts)


__all__ = ["Run"]
