"""Coalescing engine events for user interfaces: latest state per node, at most N flushes/s.

A 1,000-node run publishes thousands of events a second; a view needs only the
latest state of each node (named by the one reducer,
:mod:`conductor_nb.engine.reducer`), a few times a second. :class:`Coalescer` collects
node states and calls ``flush(changes)`` with ``{node_id: state}`` (and the
latest progress) no more often than ``max_rate`` times a second, plus once at
the end of the run so the final picture is exact. It never sleeps on the
engine's loop: flushes are scheduled with ``call_later``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from conductor_nb.engine import events as ev
from conductor_nb.engine.reducer import display_state, state_of


class Coalescer:
    def __init__(self, flush: Callable[[dict[str, Any]], None], max_rate: float = 10.0) -> None:
        self._flush_cb = flush
        self._interval = 1.0 / max_rate
        self._pending: dict[str, Any] = {}
        self._run: dict[str, Any] = {}
        self._last = 0.0
        self._scheduled = False
        self._lock = threading.Lock()
        self.flushes = 0

    def __call__(self, event: ev.Event) -> None:
        """Subscribe this to a run: ``run.subscribe(coalescer)``."""
        state = state_of(event)
        with self._lock:
            if state is not None:
                node_id = event.node_id  # type: ignore[attr-defined]
                self._pending[node_id] = display_state(event, state)
            elif isinstance(event, ev.RunPaused):
                self._run.update(status="paused", paused_at=event.node_id)
            elif isinstance(event, ev.RunResumed | ev.RunStarted):
                self._run.update(status="running", paused_at=None)
            elif isinstance(event, ev.RunProgress):
                self._run.update(done=event.done, total=event.total, eta=event.eta)
            elif isinstance(event, ev.RunFinished):
                self._run.update(status=event.status, paused_at=None)
        if isinstance(event, ev.RunFinished | ev.RunPaused):
            self.flush()
            return
        self._schedule()

    def _schedule(self) -> None:
        now = time.monotonic()
        wait = self._last + self._interval - now
        if wait <= 0:
            self.flush()
            return
        if self._scheduled:
            return
        self._scheduled = True
        try:
            asyncio.get_running_loop().call_later(wait, self._timer)
        except RuntimeError:  # no loop in this thread: flush now rather than never
            self._scheduled = False
            self.flush()

    def _timer(self) -> None:
        self._scheduled = False
        self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._pending and not self._run:
                return
            changes: dict[str, Any] = {"nodes": self._pending, "run": self._run}
            self._pending, self._run = {}, {}
            self._last = time.monotonic()
        self.flushes += 1
        self._flush_cb(changes)
