"""Calls that cross from the caller's thread (or loop) to the loop a run lives on.

A run executes on one event loop: the engine's background thread for ``start``,
``debug`` and ``run``, the caller's loop for ``arun``. The :class:`~conductor_nb.
engine.run.Run` handle may be called from anywhere; these helpers hand a call to
the run's loop (or make it right away when already there) and wait for it in
short slices, so Ctrl-C and Kernel -> Interrupt reach a blocked caller within a
fraction of a second.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Coroutine
from typing import Any

WAKE_SLICE = 0.1
"""Blocking waits wake this often so interrupts are seen promptly."""


def running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def call_on(loop: asyncio.AbstractEventLoop | None, fn: Callable[[], Any]) -> None:
    """Call ``fn`` on ``loop`` (now, if we are on it or it is gone); a plain thread waits
    for it and gets its exception, another loop does not block on it."""
    running = running_loop()
    if loop is None or running is loop or loop.is_closed():
        fn()
        return
    done: concurrent.futures.Future[None] = concurrent.futures.Future()

    def call() -> None:
        try:
            fn()
            done.set_result(None)
        except BaseException as exc:  # handed back to the calling thread
            done.set_exception(exc)

    loop.call_soon_threadsafe(call)
    if running is None:
        done.result(timeout=10)


def future_on(
    loop: asyncio.AbstractEventLoop | None, make: Callable[[], concurrent.futures.Future[None]]
) -> concurrent.futures.Future[None]:
    """``make()`` called on ``loop``, after any call queued there before; its future."""
    if loop is None or loop.is_closed() or running_loop() is loop:
        return make()
    fut: concurrent.futures.Future[None] = concurrent.futures.Future()

    def register() -> None:
        inner = make()
        inner.add_done_callback(lambda _: None if fut.done() else fut.set_result(None))

    loop.call_soon_threadsafe(register)
    return fut


def wait_in_slices(
    fut: concurrent.futures.Future[Any],
    timeout: float | None,
    too_long: Callable[[], BaseException],
) -> Any:
    """``fut.result()``, waking every :data:`WAKE_SLICE` seconds (interrupts get through);
    ``too_long()`` is raised after ``timeout`` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            return fut.result(timeout=WAKE_SLICE)
        except concurrent.futures.TimeoutError:
            if fut.done():  # the call itself raised TimeoutError
                raise
            if deadline is not None and time.monotonic() > deadline:
                raise too_long() from None


def submit_to(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any]
) -> concurrent.futures.Future[Any]:
    return asyncio.run_coroutine_threadsafe(coro, loop)


async def await_on(loop: asyncio.AbstractEventLoop, make: Callable[[], Any]) -> Any:
    """Await ``make()`` on ``loop``, from whatever loop we are on."""
    if running_loop() is loop:
        return await make()
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(make(), loop))
