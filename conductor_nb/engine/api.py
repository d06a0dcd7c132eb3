"""Starting runs: synchronously, asynchronously, or in the background.

``start``/``debug``/``run`` execute on the engine's own event loop in a daemon
thread, so the caller (a notebook cell, a script, the CLI) stays free: widget
buttons keep working while a background run goes on, and a blocking ``run()``
waits in short slices that Ctrl-C and Kernel -> Interrupt can break (the run is
then cancelled cleanly). ``arun`` runs on the caller's own loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import environ, heap, hooks
from conductor_nb.engine.options import RunOptions, RunSetup, resolve_params
from conductor_nb.engine.plan import gc_paused, plan_of
from conductor_nb.engine.run import Run
from conductor_nb.errors import BlueprintError, UnknownNameError
from conductor_nb.model import snapshot
from conductor_nb.nodes import file_roots

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

log = logging.getLogger("conductor_nb.engine")


class EngineLoop:
    """One background event loop per process, started on first use."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        with cls._lock:
            if cls._loop is None or cls._thread is None or not cls._thread.is_alive():
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                cls._thread = threading.Thread(target=serve, name="conductor-engine", daemon=True)
                cls._thread.start()
                ready.wait()
                cls._loop = loop
            return cls._loop


def prepare(
    bp: Blueprint,
    params: Mapping[str, Any] | None,
    options: RunOptions | Mapping[str, Any],
    setup: RunSetup | None = None,
) -> Run:
    """Validate, compile and create a run handle (not started). ``options`` may also be
    ``bp.run``-style keywords in a mapping."""
    if not isinstance(options, RunOptions):
        options = RunOptions.from_keywords(options)
    with gc_paused():
        snap = snapshot.take(bp)  # edits made while the run goes on do not change it
        snapshot_bp, plan = snap.blueprint, plan_of(snap)
        options = _checked_against(snapshot_bp, options)
        run = Run(snapshot_bp, plan, resolve_params(bp, params), options, setup=setup)
        for name in options.breakpoints:
            if name not in plan.nodes:
                where = f"breakpoints: blueprint {bp.id!r} has "
                raise UnknownNameError("node", name, plan.order, where=where)
        if options.history is not False:
            for hook in list(hooks.run_created):
                try:
                    hook(run)
                except Exception as exc:  # history is an observer: it must never stop a run
                    log.warning("run history is unavailable for run %s: %s", run.id, exc)
        heap.promote()  # what was prepared lives as long as the run: no young pass over it
    return run


def _checked_against(bp: Blueprint, options: RunOptions) -> RunOptions:
    """The options with what the blueprint adds (file roots from its folder, its ``env:``
    names), after the checks that need both: literal paths inside the file roots, every
    ``{{ env.NAME }}`` exposed. Problems raise before anything runs."""
    import dataclasses

    options = dataclasses.replace(
        options,
        settings=file_roots.run_settings(bp, options.settings),
        env=environ.exposed(bp, options.env),
    )
    found = file_roots.path_problems(bp, options.settings)
    found += environ.problems(bp, options.env)
    if found:
        raise BlueprintError(found, name=bp.id, source=bp.source)
    return options


def start(
    bp: Blueprint,
    params: Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
    setup: RunSetup | None = None,
) -> Run:
    """Start on the engine loop and return the handle at once."""
    return launch(prepare(bp, params, options or RunOptions(), setup))


def launch(run: Run) -> Run:
    """Start a prepared run on the engine loop. An observer that must see every event (a
    view) subscribes between :func:`prepare` and this: a quick run may be over by the time
    :func:`start` returns."""
    loop = EngineLoop.get()
    started = asyncio.run_coroutine_threadsafe(_start_on_loop(run), loop)
    started.result()
    return run


async def _start_on_loop(run: Run) -> None:
    run._launch()


def run_sync(
    bp: Blueprint, params: Mapping[str, Any] | None = None, options: RunOptions | None = None
) -> Run:
    """Run to the end (or to a pause); Ctrl-C cancels the run and re-raises."""
    run = start(bp, params, options)
    return run.wait()


async def run_async(
    bp: Blueprint, params: Mapping[str, Any] | None = None, options: RunOptions | None = None
) -> Run:
    run = prepare(bp, params, options or RunOptions())
    run._launch()
    try:
        return await run
    except BaseException:
        # KeyboardInterrupt (Kernel -> Interrupt) or the awaiting task was cancelled:
        # cancel the run and let it finish cleanly before the error goes on.
        await run._stop(grace=5)
        raise
