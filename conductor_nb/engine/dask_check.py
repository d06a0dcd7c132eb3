"""The check before a run's first node on a Dask cluster: versions, then node functions.

A run fails once, before any node is dispatched, when the cluster does not match this
client (:func:`~conductor_nb.engine.dask_remote.version_problems`) or cannot load one of
the run's node functions (:func:`~conductor_nb.engine.dask_remote.load_problems`).

What a check found holds for the cluster it was made on, so an executor keeps it
(:class:`ClusterCheck`) for the session and each later run pays one scheduler round trip:

- the cluster's workers are read from the scheduler (address and server id of each, the
  scheduler's own id): while they are the same workers, the versions they reported stand
  and the functions they loaded are not sent again. A worker that joined or restarted (a
  new server id) and a restarted scheduler make the next run check everything again.
- on a full check, the worker list, the version report and the function probe go out
  together (three round trips in flight, not one after the other); the versions are read
  first, so a version mismatch is what the run reports, never a load error it caused. The
  worker list is kept only if every worker in it answered the other two.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from conductor_nb.engine import dask_remote
from conductor_nb.errors import ExecutorError


class ClusterCheck:
    """What this client checked on the cluster it talks to (see the module docstring)."""

    def __init__(self) -> None:
        self._workers: str | None = None  # the workers the versions were checked on
        self._loaded: dict[int, Any] = {}  # id -> a node function those workers loaded

    def run(
        self,
        client: Any,
        where: str,
        functions: dict[str, Any],
        blob_of: Callable[[Any], bytes],
    ) -> None:
        """Check ``functions`` (label -> function) on the cluster behind ``client``, or
        raise an :class:`ExecutorError` saying what to fix (``where`` is its address);
        ``blob_of`` gives a function's bytes as they travel."""
        if self._workers is not None and _workers_of(client) != self._workers:
            self._workers = None  # a worker joined, left or restarted: check everything
            self._loaded.clear()
        dask_remote.ship_modules({getattr(fn, "__module__", "") for fn in functions.values()})
        new = {label: fn for label, fn in functions.items() if self._loaded.get(id(fn)) is not fn}
        blobs = [(label, blob_of(fn)) for label, fn in new.items()]
        if self._workers is None:  # the three round trips at once
            workers, versions, loads = _together(
                lambda: _workers_of(client),
                lambda: client.get_versions(packages=["conductor_nb"]),
                (lambda: client.run(dask_remote.on_cluster_load, blobs)) if blobs else dict,
            )
            reported = versions()
            _raise_for_versions(where, reported)
            failed = loads()
            if _covered(workers(), reported.get("workers", {}), failed, bool(blobs)):
                self._workers = workers()
        elif blobs:
            failed = client.run(dask_remote.on_cluster_load, blobs)
        else:
            return
        lines, fixes = dask_remote.load_problems(
            {f"worker {address}": found for address, found in failed.items()}
        )
        if lines:
            raise ExecutorError(
                f"the Dask cluster at {where} cannot load {len(lines)} node "
                "function(s); no node was dispatched\n  " + "\n  ".join(lines),
                hints=fixes or ["install what they import on the scheduler and every worker"],
            )
        self._loaded.update({id(fn): fn for fn in new.values()})


def _workers_of(client: Any) -> str | None:
    """The scheduler's id and its workers' (address, server id), or None when the
    scheduler cannot say (conductor_nb missing there: the version check says so)."""
    try:
        return str(client.run_on_scheduler(dask_remote.on_scheduler_workers))
    except Exception:
        return None


def _together(*calls: Callable[[], Any]) -> list[Callable[[], Any]]:
    """Start blocking calls at once; each result is read (or raised) when asked for."""
    pool = concurrent.futures.ThreadPoolExecutor(len(calls), thread_name_prefix="cnb-dask-check")
    try:
        return [pool.submit(call).result for call in calls]
    finally:
        pool.shutdown(wait=False)


def _covered(workers: str | None, versions: Any, loaded: Any, probed: bool) -> bool:
    """Every worker in ``workers`` answered the version report (and the probe, if one was
    sent): a worker that joined while they were in flight makes the next run check again."""
    if workers is None:
        return False
    addresses = {item.rsplit("=", 1)[0] for item in workers.split()[1:]}
    return addresses <= set(versions) and (not probed or addresses <= set(loaded))


def _raise_for_versions(where: str, versions: Any) -> None:
    problems = dask_remote.version_problems(versions)
    if problems:
        differ = "packages differ" if len(problems) > 1 else "package differs"
        raise ExecutorError(
            f"the Dask cluster at {where} does not match this client "
            f"({len(problems)} {differ}); no node was dispatched\n  " + "\n  ".join(problems),
            hints=[dask_remote.version_fix(versions, problems)],
        )


__all__ = ["ClusterCheck"]
