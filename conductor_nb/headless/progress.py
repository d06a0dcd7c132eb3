"""Progress displays for headless runs: observers of a run's event stream.

:class:`PlainProgress` writes one line per event (CI logs, pipes, files);
:class:`RichProgress` draws a live table of nodes with an overall bar and ETA
on a terminal. Both are attached with :func:`attach`, which subscribes first
and then replays the events the run had already published, so nothing that
happened between ``start()`` and the subscription is lost (or shown twice).
Callbacks run on the engine's thread; each display guards its state with a lock.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from conductor_nb.engine import capture
from conductor_nb.engine import events as ev
from conductor_nb.engine.node_runner import NodeRun
from conductor_nb.engine.reducer import apply_event, display_state, state_of
from conductor_nb.headless.result import is_internal, plan_parent
from conductor_nb.model.states import style_of

if TYPE_CHECKING:
    from conductor_nb.engine.run import Run


class Display(Protocol):
    def handle(self, event: ev.Event) -> None: ...

    def close(self) -> None: ...


def attach(run: Run, display: Display) -> Callable[[], None]:
    """Feed ``display`` every event of ``run``, past and future, once each, in order."""
    lock = threading.Lock()
    seen: set[int] = set()

    def deliver(event: ev.Event) -> None:
        # Events are published inside the node's context: what the display writes must
        # not be captured as that node's output (it would come back as an event).
        token = capture.current_sink.set(None)
        try:
            with lock:
                if id(event) in seen:
                    return
                seen.add(id(event))
                display.handle(event)
        finally:
            capture.current_sink.reset(token)

    unsubscribe = run.subscribe(deliver)
    with lock:
        for event in list(run.events):
            if id(event) not in seen:
                seen.add(id(event))
                display.handle(event)
    return unsubscribe


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


class PlainProgress:
    """One line per event, flushed at once: readable in CI logs and by other programs.
    Without ``end_line``, the end of the run is left to the summary that follows."""

    def __init__(self, stream: TextIO, *, logs: bool = True, end_line: bool = True) -> None:
        self.stream = stream
        self.logs = logs
        self.end_line = end_line
        self._partial: dict[str, str] = {}

    def _say(self, event: ev.Event, text: str) -> None:
        self.stream.write(f"{_clock(event.time)} {text}\n")
        self.stream.flush()

    def handle(self, event: ev.Event) -> None:
        text = self._describe(event)
        if text is not None:
            self._say(event, text)

    def _describe(self, event: ev.Event) -> str | None:
        if isinstance(event, ev.RunStarted):
            return (
                f"run {event.run_id} of {event.blueprint_id!r} started: {len(event.node_ids)} nodes"
            )
        if isinstance(event, ev.NodeStarted):
            again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            return f"node {event.node_id} started{again}"
        if isinstance(event, ev.NodeSucceeded):
            return f"node {event.node_id} succeeded in {event.duration:.2f}s"
        if isinstance(event, ev.NodeCached):
            return f"node {event.node_id} reused a cached result"
        if isinstance(event, ev.NodeFailed):
            return f"node {event.node_id} failed: {_first_line(event.error)}"
        if isinstance(event, ev.NodeRetrying):
            return (
                f"node {event.node_id} attempt {event.attempt} failed, retrying in "
                f"{event.delay:.1f}s: {_first_line(event.error)}"
            )
        if isinstance(event, ev.NodeSkipped):
            return f"node {event.node_id} skipped: {event.reason}"
        if isinstance(event, ev.NodeCancelled):
            return f"node {event.node_id} cancelled: {event.reason}"
        if isinstance(event, ev.NodeLog):
            return self._log_lines(event)
        if isinstance(event, ev.RunPaused):
            return f"run paused ({event.reason})"
        if isinstance(event, ev.RunFinished) and self.end_line:
            return f"run {event.run_id} {event.status} in {event.duration:.2f}s"
        return None

    def _log_lines(self, event: ev.NodeLog) -> str | None:
        if not self.logs:
            return None
        text = self._partial.pop(event.node_id, "") + event.text
        if not text.endswith("\n"):
            head, sep, rest = text.rpartition("\n")
            if rest:
                self._partial[event.node_id] = rest
            if not sep:
                return None
            text = head + "\n"
        return "\n".join(f"  {event.node_id} | {line}" for line in text.rstrip("\n").split("\n"))

    def close(self) -> None:
        for node_id, rest in self._partial.items():
            self.stream.write(f"  {node_id} | {rest}\n")
        self._partial.clear()
        self.stream.flush()


class _NodeLine:
    """One row: the node's record (kept by the one reducer), its display state and a note."""

    __slots__ = ("inner", "inner_counts", "note", "record", "state")

    def __init__(self, node_id: str) -> None:
        self.record = NodeRun(node_id, "")
        self.state = "pending"
        self.note = ""
        self.inner: dict[str, _NodeLine] = {}  # nested record id -> its line
        self.inner_counts: Counter[str] = Counter()

    @property
    def node_id(self) -> str:
        return self.record.node_id

    @property
    def started(self) -> float | None:
        return self.record.started_at

    @property
    def finished(self) -> float | None:
        return self.record.finished_at

    @property
    def attempts(self) -> int:
        return self.record.attempts

    def track_inner(self, node_id: str, event: ev.Event) -> None:
        """A nested record of this node (``loop[2].double``) changed state: kept as a
        tally shown on this node's row, never as a row or a step of the bar."""
        if is_internal(node_id):  # the engine's feed of a body's input, not a node
            return
        line = self.inner.get(node_id)
        before = None if line is None else line.state
        if line is None:
            line = self.inner[node_id] = _NodeLine(node_id)
        _update_line(line, event)
        if before == line.state:
            return
        if before is not None:
            self.inner_counts[before] -= 1
        self.inner_counts[line.state] += 1

    @property
    def inner_note(self) -> str:
        tally = ", ".join(f"{n} {state}" for state, n in sorted(self.inner_counts.items()) if n)
        return f"inner nodes: {tally}" if tally else ""


class RichProgress:
    """A live view on a terminal: one line per node (state, time, attempts, error) and an
    overall bar with elapsed time and ETA. Log lines of nodes scroll above it."""

    max_rows = 20

    def __init__(self, stream: TextIO, *, logs: bool = True) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(file=stream)
        self.logs = logs
        self.lines: dict[str, _NodeLine] = {}
        self.plan: tuple[str, ...] = ()  # the run's own nodes: what the bar counts
        self._plan_ids: frozenset[str] = frozenset()
        self._done: set[str] = set()  # finished nodes (of the plan, once it is known)
        self.title = "run"
        self._lock = threading.Lock()
        self._partial: dict[str, str] = {}
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task = self.bar.add_task("starting", total=None)
        self.live = Live(
            get_renderable=self._render, console=self.console, refresh_per_second=8, transient=False
        )
        self.live.start()

    def handle(self, event: ev.Event) -> None:
        with self._lock:
            self._apply(event)
        if isinstance(event, ev.NodeLog) and self.logs:
            self._print_log(event)

    def _apply(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.title = f"{event.blueprint_id} ({event.run_id})"
            self.plan = tuple(event.node_ids)
            self.lines = {n: _NodeLine(n) for n in self.plan}
            self._plan_ids, self._done = frozenset(self.plan), set()
            self.bar.update(
                self.task, description=self.title, total=len(event.node_ids), completed=0
            )
            return
        if isinstance(event, ev.RunFinished):
            self.bar.update(self.task, description=f"{self.title}: {event.status}")
            return
        node_id = getattr(event, "node_id", None)
        if not node_id:
            return
        # Rows and the bar follow the run's own nodes (the plan); the records a loop,
        # parallel or group node publishes for its body (``loop[0].double``, ``grp.inner``)
        # are tallied on that node's row, so the count never passes the total.
        parent = None if node_id in self.lines else plan_parent(node_id, self.lines)
        if parent is not None:
            self.lines[parent].track_inner(node_id, event)
            return
        line = self.lines.setdefault(node_id, _NodeLine(node_id))
        _update_line(line, event)
        if line.record.status.is_finished and node_id in self._plan_ids:
            self._done.add(node_id)
        else:
            self._done.discard(node_id)
        self.bar.update(self.task, completed=len(self._done))

    def _print_log(self, event: ev.NodeLog) -> None:
        from rich.text import Text

        text = self._partial.pop(event.node_id, "") + event.text
        head, sep, rest = text.rpartition("\n")
        if rest:
            self._partial[event.node_id] = rest
        if sep:
            for item in head.split("\n"):
                self.console.print(Text(f"  {event.node_id} | {item}", style="dim"))

    def _render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        with self._lock:
            rows = _visible(list(self.lines.values()), self.max_rows)
            hidden = len(self.lines) - len(rows)
            table = Table.grid(padding=(0, 1))
            now = time.time()
            for item in rows:
                look = style_of(item.state)
                icon, style = look.icon, look.terminal
                took = ""
                if item.started is not None:
                    took = f"{(item.finished or now) - item.started:.1f}s"
                tries = f"x{item.attempts}" if item.attempts > 1 else ""
                table.add_row(
                    Text(icon, style=style),
                    Text(item.node_id, style="bold"),
                    Text(item.state, style=style),
                    took,
                    tries,
                    Text(
                        item.note or item.inner_note,
                        style="red" if item.state == "failed" else "dim",
                    ),
                )
            parts: list[Any] = [table]
            if hidden:
                parts.append(Text(f"  … and {hidden} more nodes", style="dim"))
            parts.append(self.bar.get_renderable())
            return Group(*parts)

    def close(self) -> None:
        self.live.refresh()
        self.live.stop()


def _update_line(line: _NodeLine, event: ev.Event) -> None:
    """The record moves by the one reducer; the row adds its display state and note."""
    state = state_of(event)
    if state is None or not apply_event(line.record, event, observer=True):
        return
    line.state = display_state(event, state)
    note = _note(event)
    if note is not None:
        line.note = note


def _note(event: ev.Event) -> str | None:
    """The note a row shows after ``event`` (None: keep the current one)."""
    if isinstance(event, ev.NodeStarted | ev.NodeReset):
        return ""
    if isinstance(event, ev.NodeCached):
        return "cached"
    if isinstance(event, ev.NodeFailed):
        return _first_line(event.error, 90)
    if isinstance(event, ev.NodeRetrying):
        return f"retry in {event.delay:.1f}s"
    if isinstance(event, ev.NodeSkipped):
        return _first_line(event.reason, 90)
    return None


def _visible(lines: list[_NodeLine], limit: int) -> list[_NodeLine]:
    """All nodes when they fit; else running and failed ones first, then the latest others."""
    if len(lines) <= limit:
        return lines
    urgent = [item for item in lines if item.state in ("running", "retrying", "failed")]
    rest = [item for item in lines if item not in urgent and item.state != "pending"]
    rest.sort(key=lambda item: item.finished or item.started or 0, reverse=True)
    chosen = {id(item) for item in (urgent + rest)[:limit]}
    return [item for item in lines if id(item) in chosen]


def make_display(
    stream: TextIO, mode: str, *, logs: bool = True, end_line: bool = True
) -> Display | None:
    """``mode``: ``auto`` (rich on a terminal, plain otherwise), ``rich``, ``plain``, ``none``.
    ``end_line``: the plain display writes a line when the run ends."""
    if mode == "none":
        return None
    if mode == "auto":
        mode = "rich" if _is_terminal(stream) else "plain"
    if mode == "rich":
        return RichProgress(stream, logs=logs)
    return PlainProgress(stream, logs=logs, end_line=end_line)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
