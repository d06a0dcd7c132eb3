"""Worker threads for sync node functions, with results handed back to the loop in batches.

``loop.run_in_executor`` wakes the event loop once per finished call (a write to
its self-pipe and a callback each). A :class:`ThreadLane` keeps a fixed set of
worker threads reading one queue; a worker that finishes a call appends the
outcome to its loop's list and wakes the loop only when no wake-up is pending,
so calls that finish together are delivered by one callback. A worker starts only
when every running worker is busy: quick calls are served by one or two threads
(less contention for the interpreter lock), blocking ones get up to ``workers``.
Calls keep their ``contextvars`` context (logs and the node context follow into
the thread).
A call cannot be stopped once running: cancelling its future only drops the
result, as with ``run_in_executor``. :meth:`ThreadLane.post` runs a function with no
future (a :class:`~conductor_nb.engine.follow.Feed` draining its queue), and
:meth:`ThreadLane.wake` resolves a future of the loop's in the same batched hand-back.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("conductor_nb.engine")

_Outcome = tuple[asyncio.Future[Any], bool, Any]
_Item = tuple[
    asyncio.AbstractEventLoop | None,
    asyncio.Future[Any] | None,
    contextvars.Context,
    Callable[..., Any],
    dict[str, Any],
]


class ThreadLane:
    """``await lane.call(fn, kwargs)`` runs ``fn(**kwargs)`` on one of ``workers`` threads."""

    def __init__(self, workers: int, name: str = "conductor-node") -> None:
        self.workers = workers
        self.name = name
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._done: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        self._closed = False
        self._idle = 0  # workers waiting for a call
        self._waiting = 0  # calls queued and not yet taken

    def call(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> asyncio.Future[Any]:
        """``fn(**kwargs)`` on a worker; its result (or exception) comes back in the future."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._put((loop, future, contextvars.copy_context(), fn, kwargs))
        return future

    def post(self, fn: Callable[[], None]) -> None:
        """``fn()`` on a worker, in a copy of the caller's context; nothing is handed
        back (it reports by itself; an exception it raises is logged)."""
        self._put((None, None, contextvars.copy_context(), fn, {}))

    def wake(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        """Resolve ``future`` (with None) on its loop, with the results handed back now
        (callable from any thread)."""
        self._deliver(loop, (future, True, None))

    def _put(self, item: _Item) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the thread lane is shut down")
            self._waiting += 1
            if self._waiting > self._idle and len(self._threads) < self.workers:
                self._spawn()  # every worker is busy: one more (quick calls need few)
        self._queue.put(item)

    def shutdown(self) -> None:
        """Stop the workers once the queued calls are done (running calls finish)."""
        with self._lock:
            self._closed = True
            count = len(self._threads)
        for _ in range(count):
            self._queue.put(None)

    def _spawn(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            item = self._queue.get()
            with self._lock:
                self._idle -= 1
                self._waiting -= item is not None
            if item is None:
                return
            loop, future, ctx, fn, kwargs = item
            if loop is None or future is None:
                try:
                    ctx.run(fn)
                except BaseException:
                    log.error("a posted function failed on a worker thread", exc_info=True)
                continue
            if future.cancelled():
                continue
            try:
                outcome: _Outcome = (future, True, ctx.run(fn, **kwargs))
            except StopIteration as exc:  # cannot travel through a future as itself
                outcome = (future, False, RuntimeError(f"StopIteration: {exc}"))
            except BaseException as exc:  # handed to the awaiting task, which decides
                outcome = (future, False, exc)
            self._deliver(loop, outcome)

    def _deliver(self, loop: asyncio.AbstractEventLoop, outcome: _Outcome) -> None:
        with self._lock:
            pending = self._done.get(loop)
            if pending is not None:
                pending.append(outcome)  # a wake-up is on its way: it takes this one too
                return
            self._done[loop] = [outcome]
        try:
            loop.call_soon_threadsafe(self._drain, loop)
        except RuntimeError:  # the loop is closed: nobody waits for these results
            with self._lock:
                self._done.pop(loop, None)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            outcomes = self._done.pop(loop, [])
        for future, ok, value in outcomes:
            if future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
