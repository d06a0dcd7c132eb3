"""Storage: blueprint stores, the run history (SQLite) and the result cache.

::

    store       BlueprintStore: named, versioned blueprints (folder, memory, fsspec URL)
    values      how inputs/outputs are kept: JSON, or blob files with their type noted
    history     RunHistory: runs, nodes, logs in <home>/history.db; retention; interrupted runs
    recorder    the event subscriber that writes a run into the history as it goes
    cache       the result cache (same SQLite file); what its key covers
    rebuild     load_run (a Run from history) and resume (re-run what did not succeed)

The engine reaches this layer only through ``engine.hooks`` (wired in
``conductor_nb/__init__``): :func:`on_run_created`, :func:`default_cache` and
:func:`load_blueprint`. Importing this package is cheap: no fsspec until a
store at a URL is opened, no database until a history is used.

Public: ``BlueprintStore``, ``RunHistory``, ``runs``, ``load_run``, ``resume``.
"""

from __future__ import annotations

import logging
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor_nb.storage.history import NodeRecord, RunHistory, RunRecord, default_history
from conductor_nb.storage.store import BlueprintStore, check_name, default_store
from conductor_nb.storage.values import StoredValue

if TYPE_CHECKING:
    from conductor_nb.engine.run import Run
    from conductor_nb.model.blueprint import Blueprint
    from conductor_nb.storage.cache import HistoryCache

log = logging.getLogger("conductor_nb.storage")


def runs(
    limit: int | None = 50,
    *,
    status: str | None = None,
    blueprint: str | None = None,
    home: str | PathLike[str] | None = None,
) -> list[RunRecord]:
    """Recorded runs, newest first: records with ``.id``, ``.status``, ``.blueprint_id``,
    ``.started_at``, ``.finished_at``, ``.duration``, ``.error``, ``.counts``...

    ``home`` picks the history folder (default: $CONDUCTOR_HOME, else the project's
    ``.conductor/`` found upward from the working directory, else the user data folder).
    """
    history = default_history(home)
    history.mark_interrupted()  # another process may have died since we opened it
    return history.runs(limit, status=status, blueprint=blueprint)


def load_run(
    run_id: str, *, home: str | PathLike[str] | None = None, allow_pickle: bool | None = None
) -> Run:
    """A finished Run rebuilt from history (``run_id``: an id, a unique prefix or 'latest').

    ``run.summary()``, ``run.to_svg()``, ``run.view()`` and ``run["node"].outputs`` work.
    """
    from conductor_nb.storage.rebuild import load_run as _load_run

    return _load_run(run_id, history=default_history(home), allow_pickle=allow_pickle)


def resume(
    run_id: str, *, home: str | PathLike[str] | None = None, wait: bool = True, **options: Any
) -> Run:
    """Re-run what failed, was cancelled or interrupted, or never ran; reuse what succeeded.

    Returns the new Run (finished, unless ``wait=False``). Keywords: ``allow_pickle``,
    ``registry``, ``blueprint`` (an edited Blueprint to resume with instead of the
    recorded one) and run options (``concurrency=``, ``executor=``...).
    """
    from conductor_nb.storage.rebuild import resume as _resume

    return _resume(run_id, history=default_history(home), wait=wait, **options)


# ----------------------------------------------------------------- engine hooks
def on_run_created(run: Run) -> None:
    """Record ``run`` in its history (``history=`` run option: a RunHistory or a folder;
    default: the default history). Never raises: a broken history must not stop a run."""
    try:
        history = _history_for(run.options.history, run)
        if history is None:
            return
        from conductor_nb.storage import children
        from conductor_nb.storage.rebuild import _resumed_from
        from conductor_nb.storage.recorder import Recorder

        run.subscribe(
            Recorder(history, run, resumed_from=_resumed_from.get(run.id)), *Recorder.EVENTS
        )
        children.keep_for(run, history)
    except Exception as exc:
        log.warning(
            "run history: run %s is not recorded (%s: %s)",
            getattr(run, "id", "?"),
            type(exc).__name__,
            exc,
            exc_info=True,
        )


def _history_for(option: Any, run: Run | None = None) -> RunHistory | None:
    if option is False:
        return None
    if option is None or option is True:  # the project's history, found from the blueprint
        return default_history(start=_blueprint_folder(run))
    if isinstance(option, RunHistory):
        return option
    return default_history(option)


def default_cache(run: Run | None = None) -> HistoryCache:
    """The result cache for ``run``: that of its ``history=`` option when it names a history
    or a folder, else of the default history (the engine calls this when caching)."""
    history = _history_for(run.options.history, run) if run is not None else None
    return (history or default_history()).cache()


def history_home(run: Run) -> Path | None:
    """The folder where ``run`` is recorded (None when it is not)."""
    history = _history_for(run.options.history, run)
    return None if history is None else history.home


def _blueprint_folder(run: Run | None) -> Path | None:
    from conductor_nb.nodes.file_roots import blueprint_folder

    return blueprint_folder(run.blueprint) if run is not None else None


def load_blueprint(name: str) -> Blueprint:
    """A blueprint from the default store, by name (``group`` nodes use this)."""
    return default_store().load(name)


__all__ = [
    "BlueprintStore",
    "NodeRecord",
    "RunHistory",
    "RunRecord",
    "StoredValue",
    "check_name",
    "default_cache",
    "default_history",
    "default_store",
    "history_home",
    "load_blueprint",
    "load_run",
    "on_run_created",
    "resume",
    "runs",
]
