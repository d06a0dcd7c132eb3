"""Capturing what a node prints and logs into that node's record.

While a node runs, a context variable names its log sink. ``sys.stdout`` and
``sys.stderr`` are wrapped once by a tee that copies writes made inside a
node's context to its sink and passes everything on to the original stream (so
output stays visible where a user expects it: the cell, the terminal). A
logging handler on the root logger does the same for log records.
Context variables follow ``asyncio`` tasks and the worker threads the engine
starts with a copied context, so concurrent nodes never mix their logs.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

Sink = Callable[[str, str, str], None]  # (stream, text, level)

current_sink: contextvars.ContextVar[Sink | None] = contextvars.ContextVar(
    "conductor_nb_log_sink", default=None
)

_lock = threading.Lock()
_installed = False


class _Tee:
    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self._name = name

    def write(self, text: str) -> int:
        sink = current_sink.get()
        if sink is not None and text:
            try:
                sink(self._name, text, "")
                text = getattr(sink, "redact", _same)(text)  # secrets stay off the terminal too
            except Exception:
                pass
            if not getattr(sink, "passthrough", True):  # the sink delivers it elsewhere
                return len(text)
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _same(text: str) -> str:
    return text


class _SinkHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sink = current_sink.get()
        if sink is None or record.name.startswith("conductor_nb.engine"):
            return
        try:
            sink("log", self.format(record) + "\n", record.levelname)
        except Exception:
            pass


def install() -> None:
    """Wrap stdout/stderr and attach the log handler (idempotent, cheap after the first)."""
    global _installed
    if _installed and isinstance(sys.stdout, _Tee) and isinstance(sys.stderr, _Tee):
        return
    with _lock:
        if not isinstance(sys.stdout, _Tee) and sys.stdout is not None:
            sys.stdout = _Tee(sys.stdout, "stdout")  # type: ignore[assignment]
        if not isinstance(sys.stderr, _Tee) and sys.stderr is not None:
            sys.stderr = _Tee(sys.stderr, "stderr")  # type: ignore[assignment]
        if not _installed:
            handler = _SinkHandler(level=logging.DEBUG)
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            logging.getLogger().addHandler(handler)
            _installed = True


class LineCollector:
    """A sink for a node running in another process (a process pool, a Dask worker).

    It keeps the lines for the engine, which replays them into the node's record
    (:func:`replay`), and does not echo them: a worker's stdout may be the client's.
    """

    passthrough = False

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []

    def __call__(self, stream: str, text: str, level: str) -> None:
        self.lines.append((stream, text, level))


def replay(lines: Iterable[tuple[str, str, str]], sink: Sink | None) -> None:
    """Deliver lines collected elsewhere to ``sink`` (a node's log sink)."""
    if sink is None:
        return
    for stream, text, level in lines:
        try:
            sink(stream, text, level)
        except Exception:  # a log sink must never break a run
            pass


@contextlib.contextmanager
def collecting(enabled: bool = True) -> Iterator[list[tuple[str, str, str]]]:
    """In another process: collect what the code inside prints or logs (when ``enabled``)."""
    if not enabled:
        yield []
        return
    install()
    collector = LineCollector()
    token = current_sink.set(collector)
    try:
        yield collector.lines
    finally:
        current_sink.reset(token)
