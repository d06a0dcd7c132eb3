"""The history's writer thread: batches of statements executed in order, off the run's loop.

A recorder hands each batch to :meth:`Writer.submit` and goes on; the thread runs the
batches one transaction each, in the order they came, and settles each batch's future.
SQLite does most of a write (B-tree pages, WAL appends, the sync of a durable commit)
without holding the GIL, so on a machine with a spare core the run's event loop does
not wait for it. Whoever needs a write on disk waits for its future: the recorder
does for a side-effecting node's success, a pause and the end of a run, so the crash
guarantees of :mod:`conductor_nb.storage.recorder` hold as they did with writes on
the loop (order included: a batch waited for is behind every batch sent before it).

The thread starts with the first batch and ends after :data:`IDLE` seconds without one
(a notebook that ran once does not keep a thread), and is a daemon: a process that
exits mid-run loses at most the batches nobody waited for, like a kill would.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from typing import Any

Statement = tuple[str, Sequence[Any]]
WriteFn = Callable[[list[Statement], bool], None]

IDLE = 1.0
"""Seconds the thread waits for a batch before it ends (the next batch starts another)."""


class Writer:
    """Executes ``write(statements, durable)`` for each submitted batch, in order."""

    def __init__(self, write: WriteFn, name: str = "conductor-history-writer") -> None:
        self._write = write
        self._name = name
        self._queue: deque[tuple[list[Statement], bool, Future[None]]] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, statements: list[Statement], durable: bool = False) -> Future[None]:
        """Queue one batch (one transaction); its future settles once it is written."""
        done: Future[None] = Future()
        with self._cond:
            self._queue.append((statements, durable, done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()
            else:
                self._cond.notify()
        return done

    def drain(self) -> None:
        """Return once every batch submitted before this call is written, failed or given
        up (the batch's own submitter sees its error)."""
        with self._cond:
            pending = [done for _, _, done in self._queue]
        if pending:
            wait(pending)

    def _serve(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._cond.wait(IDLE)
                if not self._queue:
                    self._thread = None
                    return
                statements, durable, done = self._queue[0]
            if not done.set_running_or_notify_cancel():  # its sender gave it up
                with self._cond:
                    self._queue.popleft()
                continue
            try:
                self._write(statements, durable)
            except BaseException as exc:  # whatever it is, its waiter must not wait forever
                done.set_exception(exc)
            else:
                done.set_result(None)
            finally:
                with self._cond:
                    self._queue.popleft()
