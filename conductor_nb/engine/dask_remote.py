"""What a run needs from a Dask cluster it did not start: matching versions, the user's code,
and a way to ask a running node to stop.

The model (the Dask executor calls these; the cluster runs the ``on_*`` functions):

- **Versions** (:func:`version_problems`): client, scheduler and every worker report their
  versions (``Client.get_versions``). ``conductor_nb``, ``dask``, ``distributed`` and
  ``cloudpickle`` must match exactly and Python in its minor version (pickled code is
  tied to Python's minor version). A mismatch
  fails the run once, before any node is dispatched, naming the package, each side's
  version and the fix.
- **User code travels by value** (:func:`ship_modules`): the modules that define the
  run's node functions, and the modules of the user's they use, are registered with
  ``cloudpickle.register_pickle_by_value``; their functions then travel inside each task.
  Nothing is written to the cluster, so workers that start (or restart) later run the
  same code and two users' ``mods.py`` cannot collide (``Client.upload_file`` would write
  files and keep modules imported in every worker, persistent state the next run finds).
  A module is the user's when no installed distribution provides it: installed packages
  (site-packages, editable installs, conductor_nb itself) must be installed on the cluster.
  Functions defined in a notebook (``__main__``) travel by value anyway.
  Each node function travels as :class:`ShippedFunction` bytes, so the scheduler (which
  unpickles task graphs) never needs the user's code or packages.
- **Probe** (:func:`load_problems`): each distinct node function is pickled once and
  every worker tries to load it. A function they cannot load (a package
  missing there) fails the run once, naming the module, the package and its version.
  The functions are those of the plan's nodes and of the nodes inside its ``loop``,
  ``parallel`` and ``group`` bodies, at any depth (:func:`node_functions`); a body given
  only at run time (from an input) is loaded when it runs.
- **Cooperative cancel** (:class:`ClusterContext`): a node that takes a ``NodeContext``
  gets, on the cluster, one whose ``cancelled`` reads a Dask ``Event`` named after its
  task. The executor sets it when the task is cancelled while running; the function sees
  ``ctx.cancelled`` turn True (read at most every 0.2 s, a scheduler round trip) and can
  stop. Anything else running cannot be interrupted by Dask: it finishes there and its
  result is dropped; the executor says so when the cancel happens.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import pickle
import sys
import time
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

from conductor_nb.nodes import inner

CHECKED_PACKAGES = ("conductor_nb", "dask", "distributed", "cloudpickle")
_DIST_NAMES = {"conductor_nb": "conductor-nb"}


# ----------------------------------------------------------------------- versions
def version_problems(versions: Mapping[str, Any]) -> list[str]:
    """One line per package whose version differs between the client and the cluster.

    ``versions`` is what ``Client.get_versions(packages=["conductor_nb"])`` returns.
    """
    client = versions["client"]["packages"]
    places = {"scheduler": versions["scheduler"]["packages"]}
    for address, info in sorted(versions.get("workers", {}).items()):
        if isinstance(info, Mapping) and "packages" in info:
            places[f"worker {address}"] = info["packages"]
    problems = []
    for package in ("python", *CHECKED_PACKAGES):
        mine = client.get(package)
        differ = {
            where: found.get(package)
            for where, found in places.items()
            if not _same(package, mine, found.get(package))
        }
        if differ:
            sides = [f"client {_shown(mine)}"]
            sides += [f"{where} {_shown(version)}" for where, version in list(differ.items())[:4]]
            if len(differ) > 4:
                sides.append(f"and {len(differ) - 4} more")
            problems.append(f"{package}: {', '.join(sides)}")
    return problems


def version_fix(versions: Mapping[str, Any], problems: list[str]) -> str:
    """The one command that brings the cluster to the client's versions."""
    client = versions["client"]["packages"]
    names = [line.split(":", 1)[0] for line in problems]
    pins = [
        f"'{_DIST_NAMES.get(name, name)}=={client[name]}'"
        for name in names
        if name != "python" and client.get(name)
    ]
    fix = []
    if pins:
        fix.append(f"on the scheduler and every worker: pip install {' '.join(pins)}")
    if "python" in names:
        major_minor = ".".join(str(client.get("python", "")).split(".")[:2])
        fix.append(f"run the scheduler and workers with Python {major_minor}, like the client")
    fix.append("or run the client from an environment that matches the cluster's")
    return "; ".join(fix)


def _same(package: str, mine: Any, theirs: Any) -> bool:
    if package == "python":
        return str(mine).split(".")[:2] == str(theirs).split(".")[:2]
    return mine == theirs


def _shown(version: Any) -> str:
    return "not installed" if version is None else str(version)


# ------------------------------------------------------------------- user code
def _installed_top_levels() -> frozenset[str]:
    """Top-level import names that some installed distribution provides (on this path)."""
    return _top_levels_on(tuple(sys.path))


@functools.lru_cache(maxsize=4)
def _top_levels_on(path: tuple[str, ...]) -> frozenset[str]:
    return frozenset(importlib.metadata.packages_distributions())


def is_user_module(name: str) -> bool:
    """``name`` is the user's own code: not built in, not the standard library, and
    provided by no installed distribution (so the cluster cannot be expected to have it)."""
    top = name.partition(".")[0]
    if name == "__main__" or top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return False
    if top == "conductor_nb" or top in _installed_top_levels():
        return False
    module = sys.modules.get(name)
    return module is not None and getattr(module, "__file__", None) is not None


def user_modules(names: Iterable[str]) -> set[str]:
    """``names`` that are the user's, and the user's modules they use (transitively):
    a helper module imported by ``mods.py`` must travel with it."""
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in found or not is_user_module(name):
            continue
        found.add(name)
        todo.extend(_used_modules(sys.modules[name]))
    return found


def _used_modules(module: ModuleType) -> set[str]:
    used = set()
    for value in list(vars(module).values()):
        if isinstance(value, ModuleType):
            used.add(value.__name__)
            continue
        try:
            owner = getattr(value, "__module__", None)
        except Exception:  # an object whose attribute access fails: not a dependency
            continue
        if isinstance(owner, str):
            used.add(owner)
    return used


_shipped: set[str] = set()


def ship_modules(names: Iterable[str]) -> set[str]:
    """Register the user's modules among ``names`` (and those they use) for pickling by
    value; returns the ones registered now. Process-wide and idempotent."""
    import cloudpickle

    new = user_modules(names) - _shipped
    for name in sorted(new):
        cloudpickle.register_pickle_by_value(sys.modules[name])
        _shipped.add(name)
    return new


class ShippedFunction:
    """A node function as it travels: cloudpickle's bytes, made once per run by the client.

    Dask pickles a task graph with plain pickle first, which sends a function nested in
    a task's arguments by reference (the cluster must import it); these bytes carry the
    user's code by value instead. The scheduler never loads them (it needs no user code
    or package); each worker loads a function once (:meth:`load` caches by content).
    """

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    @classmethod
    def of(cls, fn: Any) -> ShippedFunction:
        import cloudpickle

        return cls(cloudpickle.dumps(fn))

    def load(self) -> Any:
        return _load_function(self.blob)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ShippedFunction, (self.blob,))


@functools.lru_cache(maxsize=256)
def _load_function(blob: bytes) -> Any:
    return pickle.loads(blob)


# ----------------------------------------------------------------------- probe
def node_functions(plan: Any) -> dict[str, Any]:
    """Label -> function, for every distinct node function the run may send to the cluster:
    the plan's nodes, then the nodes inside their bodies (a label names the first body node
    path that uses a type found only in bodies, e.g. ``each.fetch``)."""
    found: dict[int, tuple[str, Any]] = {}

    def note(node_type: Any, path: str | None) -> None:
        fn = node_type.fn
        if node_type.runs_beside_engine or fn is None or id(fn) in found:
            return
        label = f"node type {node_type.name!r} ({_where(fn)})"
        found[id(fn)] = (label if path is None else f"{label}, in body node {path!r}", fn)

    for planned in plan.nodes.values():
        note(planned.type, None)
    registry = getattr(plan, "registry", None)
    if registry is not None:
        for planned in plan.nodes.values():
            for path, node_type in inner.body_types(
                planned.id, planned.type, planned.node.params, registry
            ):
                note(node_type, path)
    return dict(found.values())


def _where(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def on_cluster_load(blobs: list[tuple[str, bytes]]) -> dict[str, str]:
    """On a worker: try to load each function; label -> the error."""
    failed = {}
    for label, blob in blobs:
        try:
            pickle.loads(blob)
        except Exception as exc:
            failed[label] = f"{type(exc).__name__}: {exc}"
    return failed


def load_problems(failures: Mapping[str, Mapping[str, str]]) -> tuple[list[str], list[str]]:
    """(problem lines, fixes) from ``{place: {label: error}}``: one line per function and
    error, with the places that reported it."""
    by_error: dict[tuple[str, str], list[str]] = {}
    for place, failed in failures.items():
        for label, error in failed.items():
            by_error.setdefault((label, error), []).append(place)
    lines, fixes = [], []
    for (label, error), places in sorted(by_error.items()):
        where = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
        lines.append(f"{label} cannot be loaded on {where}: {error}")
        fix = _missing_module_fix(error)
        if fix and fix not in fixes:
            fixes.append(fix)
    return lines, fixes


def _missing_module_fix(error: str) -> str | None:
    marker = "No module named '"
    if marker not in error:
        return None
    module = error.split(marker, 1)[1].split("'", 1)[0]
    top = module.partition(".")[0]
    dists = importlib.metadata.packages_distributions().get(top, [])
    if not dists:
        return (
            f"module {module!r} is not on the cluster and the client cannot say which "
            "package provides it: install it on the scheduler and every worker"
        )
    pins = []
    for dist in dists:
        try:
            pins.append(f"'{dist}=={importlib.metadata.version(dist)}'")
        except importlib.metadata.PackageNotFoundError:
            pins.append(f"'{dist}'")
    return (
        f"module {module!r} comes from an installed package, which is not shipped: on the "
        f"scheduler and every worker, pip install {' '.join(pins)}"
    )


# ------------------------------------------------------------------ cancelling
def cancel_event_name(key: str) -> str:
    return f"conductor-nb-cancel-{key}"


def on_scheduler_workers(dask_scheduler: Any) -> str:
    """On the scheduler: its id and each worker's address and server id, as one string
    that changes when a worker joins, leaves or restarts."""
    workers = sorted(f"{ws.address}={ws.server_id}" for ws in dask_scheduler.workers.values())
    return f"{dask_scheduler.id} " + " ".join(workers)


def on_scheduler_running(dask_scheduler: Any, keys: list[str]) -> dict[str, str]:
    """On the scheduler: key -> worker address, for the keys a worker holds to run."""
    running = {}
    for key in keys:
        task = dask_scheduler.tasks.get(key)
        if task is not None and task.state == "processing" and task.processing_on is not None:
            running[key] = task.processing_on.address
    return running


class ClusterContext:
    """A node's context on a Dask worker: the detached context's facts, and ``cancelled``
    read from the task's cancel event (see the module docstring).

    The facts travel as cloudpickle bytes (they hold the node type, whose function the
    cluster may only have by value), loaded on first use on the worker.
    """

    POLL_EVERY = 0.2  # seconds between two reads of the event (each asks the scheduler)

    def __init__(self, inner: Any, event_name: str, blob: bytes | None = None) -> None:
        self._inner = inner
        self._blob = blob
        self._event_name = event_name
        self._seen = False
        self._checked = -float("inf")

    @classmethod
    def around(cls, inner: Any, event_name: str) -> ClusterContext:
        import cloudpickle

        return cls(inner, event_name, cloudpickle.dumps(inner))

    @property
    def cancelled(self) -> bool:
        now = time.monotonic()
        if self._seen or now - self._checked < self.POLL_EVERY:
            return self._seen
        self._checked = now
        try:
            from distributed import Event

            self._seen = bool(Event(self._event_name).is_set())
        except Exception:  # not on a worker, or the scheduler is gone: nothing to read
            return False
        return self._seen

    def release(self) -> None:
        """The task ended: drop its event from the scheduler if it was set."""
        if self._seen:
            try:
                from distributed import Event

                Event(self._event_name).clear()  # a cleared event with no waiter is deleted
            except Exception:
                pass

    def _facts(self) -> Any:
        if self._inner is None and self._blob is not None:
            self._inner = pickle.loads(self._blob)
        return self._inner

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_inner", "_blob"):
            raise AttributeError(name)
        return getattr(self._facts(), name)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ClusterContext, (None, self._event_name, self._blob))

    def __repr__(self) -> str:
        return f"<NodeContext {self.node_id!r} on a Dask worker (pid {os.getpid()})>"


__all__ = [
    "CHECKED_PACKAGES",
    "ClusterContext",
    "cancel_event_name",
    "is_user_module",
    "load_problems",
    "node_functions",
    "ShippedFunction",
    "on_cluster_load",
    "on_scheduler_running",
    "on_scheduler_workers",
    "ship_modules",
    "user_modules",
    "version_fix",
    "version_problems",
]
