"""The run handle: what ``bp.run()``, ``start()`` and ``debug()`` return.

A run lives on one event loop (the engine's background thread for ``start``,
``debug`` and ``run``; the caller's loop for ``arun``). Handle methods called
from other threads are handed to that loop; blocking ones wait in short slices,
so Ctrl-C and Kernel -> Interrupt reach them within a fraction of a second.
The state and the dispatch loop live in :mod:`conductor_nb.engine.driver`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from conductor_nb.engine import node_runner
from conductor_nb.engine.driver import RunDriver
from conductor_nb.engine.events import (
    Event,
    NodeQueued,
    NodeReset,
    RunPaused,
    RunResumed,
)
from conductor_nb.engine.node_runner import NodeRun
from conductor_nb.engine.states import NodeState, RunState
from conductor_nb.errors import RunCancelled, RunStateError, RunTimeout, UnknownNameError

WAKE_SLICE = 0.1
"""Blocking waits wake this often so interrupts are seen promptly."""


class Run(RunDriver):
    """A live (or finished) execution. Index it by node id for the :class:`NodeRun`."""

    # ----------------------------------------------------------- reading
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
        if self.is_finished and not self._driver_active():
            for event in history:
                yield event
            return
        async for event in self.bus.stream(history):
            yield event

    # ----------------------------------------------------------- control
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

    def _check_node(self, node_id: str) -> None:
        if node_id not in self.plan.nodes:
            raise UnknownNameError("node", node_id, self.plan.order, where="run has ")

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
            for name in inputs:
                if name not in planned.type.value_names:
                    where = f"node {node_id!r} ({planned.type.name}) has "
                    raise UnknownNameError("input", name, planned.type.value_names, where=where)
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
        try:
            fut = self._settle_future()
        except KeyboardInterrupt:  # Ctrl-C may land before the wait has begun
            self._cancel_after_interrupt()
            raise
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
                        raise RunTimeout(
                            f"run {self.id} still {self.status.value} after {timeout}s"
                        ) from None
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
