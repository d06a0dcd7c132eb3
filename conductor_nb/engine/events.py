"""Typed events: every state change of a run is one record, published in order.

Views, the CLI progress display and the run history subscribe to them; nothing
else reaches into the runner. Subscribe by callback (``bus.subscribe(fn,
NodeFailed)``) or iterate (``async for event in run.stream()``). A subscriber
that raises is detached and reported once; it never breaks the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("conductor_nb.engine")


@dataclass(slots=True)
class Event:
    """A record of one state change. Treat it as read-only: every subscriber gets the same
    object. (Not a frozen dataclass: a frozen one takes four times as long to make, and a
    run makes three per node.)"""

    run_id: str
    time: float = field(default_factory=time.time, kw_only=True)

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(slots=True)
class RunStarted(Event):
    blueprint_id: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    node_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class RunPaused(Event):
    reason: str = "pause"  # "pause" | "breakpoint" | "step" | "debug"
    node_id: str | None = None  # the node paused before (breakpoints)


@dataclass(slots=True)
class RunResumed(Event):
    pass


@dataclass(slots=True)
class RunFinished(Event):
    status: str = "succeeded"
    duration: float = 0.0
    error: str | None = None


@dataclass(slots=True)
class RunProgress(Event):
    done: int = 0
    total: int = 0
    running: int = 0
    eta: float | None = None


@dataclass(slots=True)
class NodeEvent(Event):
    node_id: str = ""


@dataclass(slots=True)
class NodeQueued(NodeEvent):
    pass


@dataclass(slots=True)
class NodeStarted(NodeEvent):
    attempt: int = 1
    inputs: dict[str, Any] | None = None


@dataclass(slots=True)
class NodeSucceeded(NodeEvent):
    duration: float = 0.0
    attempt: int = 1
    outputs: dict[str, Any] | None = None


@dataclass(slots=True)
class NodeCached(NodeEvent):
    key: str = ""
    outputs: dict[str, Any] | None = None


@dataclass(slots=True)
class NodeFailed(NodeEvent):
    error: str = ""
    error_type: str = ""
    traceback: str = ""
    attempt: int = 1
    duration: float = 0.0


@dataclass(slots=True)
class NodeRetrying(NodeEvent):
    attempt: int = 1  # the attempt that failed
    delay: float = 0.0
    error: str = ""


@dataclass(slots=True)
class NodeSkipped(NodeEvent):
    reason: str = ""


@dataclass(slots=True)
class NodeCancelled(NodeEvent):
    reason: str = ""


@dataclass(slots=True)
class NodeLog(NodeEvent):
    stream: str = "stdout"  # stdout | stderr | log
    text: str = ""
    level: str = ""


@dataclass(slots=True)
class NodeReset(NodeEvent):
    """A finished node goes back to pending (retry, rerun or resume)."""

    reason: str = ""


Callback = Callable[[Event], Any]
_Sub = tuple[Callback, tuple[type[Event], ...]]


class EventBus:
    """Ordered fan-out of events to callbacks and async iterators."""

    def __init__(self) -> None:
        self._subs: list[_Sub] = []
        self._routes: dict[type[Event], tuple[_Sub, ...]] = {}  # event type -> its subscribers
        self._queues: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Event | None]]] = []
        self.errors: list[str] = []

    def subscribe(self, callback: Callback, *types: type[Event]) -> Callable[[], None]:
        entry = (callback, types or (Event,))
        self._subs.append(entry)
        self._routes.clear()

        def unsubscribe() -> None:
            self._detach(entry)

        return unsubscribe

    def _detach(self, entry: _Sub) -> None:
        if entry in self._subs:
            self._subs.remove(entry)
            self._routes.clear()

    def _route(self, kind: type[Event]) -> tuple[_Sub, ...]:
        """Work out the subscribers of events of type ``kind``, in the order they
        subscribed, and keep them in the route table (until someone subscribes or leaves:
        a run publishes three events per node, of a handful of types)."""
        route = self._routes[kind] = tuple(e for e in self._subs if issubclass(kind, e[1]))
        return route

    def publish(self, event: Event) -> None:
        kind = type(event)
        route = self._routes.get(kind)
        for entry in self._route(kind) if route is None else route:
            try:
                entry[0](event)
            except Exception as exc:
                self._detach(entry)
                callback = entry[0]
                message = (
                    f"event subscriber {getattr(callback, '__qualname__', callback)!r} "
                    f"raised {type(exc).__name__}: {exc}; it was detached"
                )
                self.errors.append(message)
                log.warning(message, exc_info=True)
        if self._queues:
            for loop, queue in tuple(self._queues):
                _put(loop, queue, event)

    def close(self) -> None:
        for loop, queue in tuple(self._queues):
            _put(loop, queue, None)

    async def stream(
        self, history: list[Event] | None = None, until_finished: bool = True
    ) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        for past in history or ():
            queue.put_nowait(past)
        entry = (asyncio.get_running_loop(), queue)
        self._queues.append(entry)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                yield item
                if until_finished and isinstance(item, RunFinished):
                    return
        finally:
            self._queues.remove(entry)


def _put(
    loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Event | None], item: Event | None
) -> None:
    """Queues belong to the consumer's loop, which may run in another thread."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        queue.put_nowait(item)
    elif not loop.is_closed():
        loop.call_soon_threadsafe(queue.put_nowait, item)
