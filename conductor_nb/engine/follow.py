"""Plain sync nodes fed to worker threads: no trip through the event loop per node.

A sync node's function runs on a worker thread. Sent one by one, each node would cost
a round trip (the loop hands the call over, the worker hands the result back, the
node's task wakes up). A :class:`Feed` instead keeps a queue of *plain* sync calls
that a worker drains without waiting for the loop, while the loop records what
the worker reports and adds the nodes that become ready:

* the worker posts each node's start, the lines it prints or logs, and its end as they
  happen; the loop applies them in batches (one wake-up per batch), so the run's
  records, events, history and CLI progress show each node running exactly while it
  runs, at most a loop tick late;
* the loop adds ready plain nodes to the queue while slots are free (at most
  ``concurrency`` nodes queued or running, as for any dispatch), each with its slot;
  when every slot is taken it also takes up to :data:`RESERVE` ready plain nodes
  ahead, in order: a worker that ends a node starts the next of them in its slot
  (they stay pending until then, and go back to the ready nodes when the run pauses,
  steps or has a breakpoint or ``run_to``);
* a worker that ends a node whose success makes plain nodes ready, with nothing else
  queued or ready, goes on with the first of them itself (a chain of sync nodes then
  costs no round trip at all; the loop dispatches the others); it *claims* the node in
  the same report as the end of the one before, so the loop never dispatches it too,
  and the claimed node runs in the slot of the node before it;
* a worker runs at most :data:`BACKLOG` nodes ahead of what the loop has recorded,
  so a watcher never lags behind the work, nor a cancel or pause;
* nodes that block are not held up behind each other: when every worker of the feed
  has been in one call for :data:`HELP_AFTER` seconds and calls are waiting, another
  worker thread takes the next one (up to ``concurrency``).

*Plain* nodes and the node a worker goes on with are defined in
:mod:`~conductor_nb.engine.plain` (no side effects among them: the history commits such
a node's success before the run goes on). Any other node is dispatched from the loop
as usual. Cancelling a feed starts nothing more; a call
already running cannot be stopped (as with any sync node) and ends cancelled.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import capture, node_runner
from conductor_nb.engine.context import LineSink
from conductor_nb.engine.plain import Ended, Job, feeds, successor
from conductor_nb.model.types import SKIP

if TYPE_CHECKING:
    from conductor_nb.engine.driver import RunDriver
    from conductor_nb.engine.limits import Permit
    from conductor_nb.engine.plan import PlannedNode

log = logging.getLogger("conductor_nb.engine")

BACKLOG = 256
"""Nodes a worker may end before the loop has recorded them; then it waits."""

RESERVE = 256
"""Ready plain nodes taken ahead, for a worker to start when it ends a node."""

HELP_AFTER = 0.001
"""Seconds every worker of a feed may spend in one call while others wait, before
another worker takes the next waiting call."""


async def run_plain(driver: RunDriver, task: asyncio.Task[None], node_id: str) -> bool:
    """Run plain ``node_id`` (taken and queued) in the run's feed: the one running now
    (then this lane ends: False), else a new one that this lane runs until it has
    nothing open (True: the lane goes on; False: it was cancelled)."""
    feed = driver.feed
    if feed is not None and feed.adopt(node_id):
        return False
    feed = driver.feed = Feed(driver, task)
    try:
        return await feed.run(node_id)
    finally:
        driver.feed = None


class Feed:
    """Plain sync nodes of one run on worker threads, for one lane (its task)."""

    def __init__(self, driver: RunDriver, task: asyncio.Task[None]) -> None:
        lane = driver.executor.thread_lane()
        assert lane is not None
        self._driver, self._task, self._lane = driver, task, lane
        self._host = driver.host()
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # a worker waits here for the loop
        self._jobs: deque[Job] = deque()  # queued, not started
        self._items: list[tuple[Any, ...]] = []  # reports not applied yet
        self._waiter: asyncio.Future[Any] | None = None
        self._workers = 0
        self._busy: dict[int, float] = {}  # worker thread -> when its current call started
        self._backlog = 0  # nodes ended on a worker, not recorded yet
        self._open: dict[str, Job] = {}  # queued or running (the loop's view)
        self._ran: dict[str, dict[str, Any]] = {}  # outputs of nodes ended on a worker
        self._timer: asyncio.TimerHandle | None = None
        self.stop = False
        self.refused: set[str] = set()  # claimed by a worker while the run was ending
        self._reserve: deque[Job] = deque()  # taken ahead, for a worker that ends a node
        self._reserved: dict[str, Job] = {}  # the same, as the loop sees them

    # ------------------------------------------------------------------ on the loop
    async def run(self, first: str) -> bool:
        """Run ``first`` (taken and queued) and the plain nodes that become ready while
        it runs, until none is open; False when cancelled."""
        planned = self._driver.plan.nodes[first]
        permit = self._driver.limits.permit(planned.type.name, planned.type.concurrency)
        try:
            await permit.acquire()
        except asyncio.CancelledError:
            self._driver.mark_cancelled(first, "cancelled while running")
            self._close(first, None, False, set())
            return False
        try:
            self._add(first, permit)
            self._refill()
            while self._open:
                for item in self._take_items() or await self._wait_items():
                    await self._apply(item)
                self._refill()
        except asyncio.CancelledError:
            for item in self._take_items():  # what ended before the cancel ended so
                await self._apply(item)
            self._cancel()
            return False
        except Exception as exc:  # an engine bug must not hang the run: its nodes fail
            log.error("run %s: a sync feed failed", self._driver.id, exc_info=True)
            self._fail_open(exc)
        finally:
            if self._timer is not None:
                self._timer.cancel()
        self._unreserve()
        return True

    def adopt(self, node_id: str) -> bool:
        """Take ``node_id`` (taken and queued by another lane) if a slot is free now."""
        planned = self._driver.plan.nodes[node_id]
        permit = self._driver.limits.permit(planned.type.name, planned.type.concurrency)
        if self.stop or not permit.take_now():
            return False
        self._add(node_id, permit)
        return True

    def _add(self, node_id: str, permit: Permit | None) -> None:
        """Queue ``node_id`` for a worker (or fail it now: a value that cannot fit)."""
        driver, host = self._driver, self._host
        planned = driver.plan.nodes[node_id]
        edge_inputs = node_runner.resolve_inputs(host, planned)
        mismatch = node_runner.edge_mismatch(host, planned, edge_inputs)
        if mismatch is not None:
            record = driver.node_runs[node_id]
            error = TypeError(mismatch)
            node_runner.fail_before_call(host, planned, record, error, f"TypeError: {mismatch}")
            self._close(node_id, permit, False, set())
            return
        kwargs = node_runner.build_arguments(host, planned, planned.type, edge_inputs)
        job = Job(planned, kwargs, permit)
        self._open[node_id] = job
        driver.running_in(node_id, self._task)
        with self._lock:
            self._jobs.append(job)
            start = self._workers == 0
            self._workers += start
        if start:
            self._lane.post(self._drain)

    def _refill(self) -> None:
        """Queue ready plain nodes while slots are free; others get a lane of their own."""
        driver = self._driver
        while not self.stop and driver.has_free_slot():
            node_id = driver.take_next()
            if node_id is None:
                break
            planned = driver.plan.nodes[node_id]
            permit = driver.limits.permit(planned.type.name, planned.type.concurrency)
            if not feeds(driver, planned) or not permit.take_now():
                driver.dispatch_taken(node_id)  # dispatched from the loop as usual
            elif driver.queue(node_id):
                self._add(node_id, permit)
            else:
                permit.release()  # disabled: skipped
        if self._may_reserve():
            self._top_up()
        elif self._reserved:
            self._unreserve()  # paused, stepping, a breakpoint set...: they wait in order
        if self._jobs and self._timer is None and not self.stop:
            self._timer = self._loop.call_later(HELP_AFTER, self._help)

    def _may_reserve(self) -> bool:
        driver, stepper = self._driver, self._driver.stepper
        return not (
            self.stop
            or driver.is_cancelling
            or stepper.paused
            or stepper.forced
            or stepper.breakpoints
            or stepper.run_to is not None
        )

    def _top_up(self) -> None:
        """Take ready plain nodes ahead (in order), so a worker that ends a node starts
        the next one without waiting for the loop: they stay pending until it does."""
        driver, host = self._driver, self._host
        while len(self._reserved) < RESERVE:
            node_id = driver.scheduler.peek()
            if node_id is None:
                return
            planned = driver.plan.nodes[node_id]
            if not feeds(driver, planned):
                return
            edge_inputs = node_runner.resolve_inputs(host, planned)
            if node_runner.edge_mismatch(host, planned, edge_inputs) is not None:
                return  # dispatched as usual, and failed there
            driver.scheduler.take(node_id)
            kwargs = node_runner.build_arguments(host, planned, planned.type, edge_inputs)
            job = self._reserved[node_id] = Job(planned, kwargs, None, reserved=True)
            with self._lock:
                self._reserve.append(job)

    def _unreserve(self) -> None:
        """The nodes taken ahead that no worker started go back to the ready ones."""
        with self._lock:
            jobs = list(self._reserve)
            self._reserve.clear()
        for job in jobs:
            del self._reserved[job.planned.id]
            self._driver.scheduler.untake(job.planned.id)

    def _help(self) -> None:
        """Another worker for the waiting calls when every worker is stuck in one call."""
        self._timer = None
        now, limit = time.monotonic(), max(1, self._driver.options.concurrency)
        with self._lock:
            if self.stop or not self._jobs:
                return
            stuck = len(self._busy) == self._workers and all(
                now - since >= HELP_AFTER for since in self._busy.values()
            )
            more = stuck and self._workers < limit
            self._workers += more
        if more:
            self._lane.post(self._drain)
        self._timer = self._loop.call_later(HELP_AFTER, self._help)

    def _take_items(self) -> list[tuple[Any, ...]]:
        with self._lock:
            items, self._items = self._items, []
            if not items:
                self._waiter = self._loop.create_future()
            return items

    async def _wait_items(self) -> list[tuple[Any, ...]]:
        assert self._waiter is not None
        await self._waiter
        with self._lock:
            items, self._items = self._items, []
            return items

    async def _apply(self, item: tuple[Any, ...]) -> None:
        kind, node_id, value = item
        if kind == "end":
            with self._lock:
                self._backlog -= 1
                self._room.notify_all()
        job = self._open.get(node_id)
        if job is None:  # the run refused it (it was ending): it ends cancelled
            return
        host, record = self._host, self._driver.node_runs[node_id]
        if kind == "line":
            host.log(node_id, *value)
        elif kind == "start":
            job.started = True
            node_runner.record_started(host, job.planned, record, job.kwargs, value)
        else:
            ended: Ended = value
            ok, skipped = await node_runner.record_ended(host, job.planned, record, ended)
            claim, permit = ended.claim, job.permit
            self._close(node_id, None if claim else permit, ok, skipped)  # makes it ready
            if claim is None:
                return
            if not self._claim(claim, permit):
                if permit is not None:
                    permit.release()
                return
            record = self._driver.node_runs[claim.planned.id]  # it runs in this slot
            node_runner.record_started(
                host, claim.planned, record, claim.kwargs, ended.claim_started
            )

    def _claim(self, claim: Job, permit: Permit | None) -> bool:
        """Record that a worker took ``claim`` after the node before it; False when the
        run no longer lets it run (its reports are then ignored)."""
        driver, node_id = self._driver, claim.planned.id
        if claim.reserved:
            taken = driver.queue(node_id)
            if taken:
                del self._reserved[node_id]
        else:
            taken = driver.take_claimed(node_id)
        if not taken:
            self.refused.add(node_id)
            return False
        self._open[node_id] = Job(claim.planned, claim.kwargs, permit, started=True)
        driver.running_in(node_id, self._task)
        return True

    def _close(self, node_id: str, permit: Permit | None, ok: bool, skipped: set[str]) -> None:
        self._open.pop(node_id, None)
        if permit is not None:
            permit.release()
        self._driver.node_ended(node_id, ok, skipped)

    def _fail_open(self, exc: Exception) -> None:
        with self._lock:
            self.stop = True
            self._jobs.clear()
            self._room.notify_all()
        for node_id, job in list(self._open.items()):
            record = self._driver.node_runs[node_id]
            node_runner.fail_internal(self._host, job.planned, record, exc)
            self._close(node_id, job.permit, False, set())

    def _cancel(self) -> None:
        with self._lock:
            self.stop = True
            self._jobs.clear()
            self._room.notify_all()
        for node_id, job in list(self._open.items()):
            reason = "cancelled while running" if job.started else "the run was cancelled"
            self._driver.mark_cancelled(node_id, reason)
            self._close(node_id, job.permit, False, set())
        with self._lock:
            self._reserve.clear()
        for node_id in list(self._reserved):
            del self._reserved[node_id]
            self._driver.mark_cancelled(node_id, "the run was cancelled")
            self._driver.node_ended(node_id, False, set())

    # ------------------------------------------------------------ on a worker
    def _post(self, item: tuple[Any, ...]) -> None:
        with self._lock:
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._lane.wake(self._loop, waiter)

    def _line(self, node_id: str, stream: str, text: str, level: str) -> None:
        self._post(("line", node_id, (stream, text, level)))

    def _drain(self) -> None:
        """A worker: run queued calls (and the nodes it claims) until none is left."""
        me = threading.get_ident()
        job: Job | None = None
        try:
            while True:
                with self._lock:
                    while not self.stop and self._must_wait(job is None):
                        self._room.wait()  # the loop records what ended, then may queue more
                    if job is None and self._jobs and not self.stop:
                        job = self._jobs.popleft()
                    if job is None or self.stop:
                        return
                    self._busy[me] = time.monotonic()
                if not job.started:  # a claimed node's start goes with the end before it
                    self._post(("start", job.planned.id, time.time()))
                ended = self._call(job)
                with self._lock:
                    del self._busy[me]
                    self._backlog += 1
                    if ended.claim is None and self._reserve and self._may_start_reserved():
                        ended.claim = self._reserve.popleft()  # in the slot of the one ended
                    if ended.claim is not None:
                        ended.claim.started, ended.claim_started = True, time.time()
                    self._items.append(("end", job.planned.id, ended))
                    waiter, self._waiter = self._waiter, None
                if waiter is not None:
                    self._lane.wake(self._loop, waiter)
                job = ended.claim
        finally:
            with self._lock:
                self._busy.pop(me, None)
                self._workers -= 1

    def _may_start_reserved(self) -> bool:
        driver, stepper = self._driver, self._driver.stepper
        return not (
            self.stop or self._jobs or driver.is_cancelling or stepper.paused or stepper.forced
        )

    def _must_wait(self, idle: bool) -> bool:
        """Too far ahead of the loop; or nothing to run while the loop may queue more."""
        return self._backlog >= BACKLOG or (idle and not self._jobs and self._backlog > 0)

    def _call(self, job: Job) -> Ended:
        """Run one node's function here; what it printed goes to the loop line by line."""
        host, planned = self._host, job.planned
        node_type = planned.type
        sink: LineSink | None = None
        if host.options.capture:
            sink = LineSink(host, planned.id)
            sink.log = self._line
        token = capture.current_sink.set(sink)
        error: BaseException | None = None
        try:
            result = node_type.fn(**node_type.adapt_inputs(dict(job.kwargs)))
        except StopIteration as exc:  # as the thread lane hands it over
            error = RuntimeError(f"StopIteration: {exc}")
        except BaseException as exc:  # the node fails with it, as on the loop
            error = exc
        finally:
            capture.current_sink.reset(token)
            if sink is not None:
                sink.flush()
        ended = Ended(time.time())
        if error is not None:
            ended.error = error
        elif inspect.isawaitable(result):
            ended.result = result
        else:
            try:
                ended.outputs = host.executor.split_outputs(node_type, result)
            except Exception as exc:
                ended.error = exc
                return ended
            self._ran[planned.id] = ended.outputs
            if not any(value is SKIP for value in ended.outputs.values()):
                ended.claim = self._next_of(planned)
        return ended

    def _next_of(self, planned: PlannedNode) -> Job | None:
        """The node this worker goes on with after ``planned`` (see the module docstring)."""
        if self.stop or self._jobs or self._reserve:
            return None
        return successor(self._driver, self._host, planned, self._ran, self.refused)
