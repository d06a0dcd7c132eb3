"""Debug control as a little state machine the dispatch loop consults before each node.

The driver asks :meth:`Stepper.verdict` about the next ready node: ``GO`` (dispatch
it), ``HOLD`` (paused: dispatch nothing) or a reason to pause first (a breakpoint,
``run_to``). Stepping is a budget of nodes that may go while paused; each step
waits on a future that the driver completes when its node finishes. Forced nodes
(``rerun``) go whatever the pause, and their callers wait the same way. Nothing
here touches the scheduler or the event loop beyond the futures it hands out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import threading
from collections.abc import Iterable, Mapping
from typing import Any


class Verdict(enum.Enum):
    GO = "go"
    HOLD = "hold"
    BREAKPOINT = "breakpoint"
    RUN_TO = "run_to"


class Stepper:
    """Pause, step budget, breakpoints, run_to and forced nodes of one run."""

    def __init__(self, breakpoints: Iterable[str], paused: bool) -> None:
        self.breakpoints: set[str] = set(breakpoints)
        self.paused = paused
        self.run_to: str | None = None
        self._passed: set[str] = set()  # breakpoints already paused at (once per node)
        self._budget = 0
        self._step_waiters: list[asyncio.Future[Any]] = []
        self._node_waiters: dict[str, asyncio.Future[Any]] = {}
        self.forced: dict[str, Mapping[str, Any] | None] = {}
        """Nodes to run now whatever the pause (rerun), with their pinned inputs."""
        self._settle_waiters: list[concurrent.futures.Future[None]] = []
        self._lock = threading.Lock()  # blocking waiters register from other threads

    # ------------------------------------------------------------ the loop's questions
    @property
    def is_stepping(self) -> bool:
        return self.paused and self._budget > 0

    @property
    def lets_all_go(self) -> bool:
        """No pause, step, breakpoint or ``run_to``: the verdict on every node is ``GO``
        (the driver then asks nothing per node)."""
        return not self.paused and self.run_to is None and not self.breakpoints

    def verdict(self, node_id: str) -> Verdict:
        """May ``node_id`` (the next ready node) be dispatched now?"""
        stepping = self.is_stepping
        if self.paused and not stepping:
            return Verdict.HOLD
        if stepping:
            return Verdict.GO
        if node_id == self.run_to:
            self.run_to = None
            return Verdict.RUN_TO
        if node_id in self.breakpoints and node_id not in self._passed:
            self._passed.add(node_id)
            return Verdict.BREAKPOINT
        return Verdict.GO

    def took(self, node_id: str, stepping: bool) -> None:
        """``node_id`` was dispatched; a step spends the budget and waits for that node."""
        if stepping:
            self._budget -= 1
            if self._step_waiters:
                self._node_waiters[node_id] = self._step_waiters.pop(0)

    def is_settled(self, running: int) -> bool:
        """Paused, nothing running and no step asked for: blocking waits may return."""
        return self.paused and not running and self._budget == 0

    # ------------------------------------------------------------------ requests
    def request_step(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
        waiter: asyncio.Future[Any] = loop.create_future()
        self._step_waiters.append(waiter)
        self._budget += 1
        return waiter

    def force(
        self, node_id: str, pinned: Mapping[str, Any] | None, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[Any]:
        waiter: asyncio.Future[Any] = loop.create_future()
        self.forced[node_id] = pinned
        self._node_waiters[node_id] = waiter
        return waiter

    def add_breakpoint(self, node_id: str) -> None:
        self.breakpoints.add(node_id)
        self._passed.discard(node_id)

    # ------------------------------------------------------------------ outcomes
    def finished(self, node_id: str, record: Any) -> None:
        waiter = self._node_waiters.pop(node_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(record)

    def fail_waiters(self, error: BaseException) -> None:
        """The run ended: nobody waits for a step or a forced node any more."""
        for waiter in [*self._step_waiters, *self._node_waiters.values()]:
            if not waiter.done():
                waiter.set_exception(error)
        self._step_waiters.clear()
        self._node_waiters.clear()
        self.forced.clear()
        self._budget = 0

    # ------------------------------------------------- waiting from other threads
    def settle_waiter(self, settled: bool) -> concurrent.futures.Future[None]:
        """A future for a blocking ``wait()``: done now if ``settled``, else at the next
        :meth:`release_waiters` (the run paused with nothing running, or ended)."""
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._lock:
            if settled:
                fut.set_result(None)
            else:
                self._settle_waiters.append(fut)
        return fut

    def release_waiters(self) -> None:
        with self._lock:
            waiters, self._settle_waiters = self._settle_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
