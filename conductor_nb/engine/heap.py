"""The collector and a run's long-lived objects.

A run keeps what it prepared (the blueprint snapshot, the plan, one record per node)
until it ends, and adds its events and values as it goes. The cyclic collector's
full passes walk every object in the process: at 10,000 nodes two of them took a
fifth of a run of trivial nodes, to find nothing, since all of it is alive. So a
top-level run moves everything alive when it starts out of the collector's sight
(:func:`gc.freeze`) and gives it back when it ends (when no other run is going on);
what the run creates meanwhile is collected as usual. Only cycles are concerned
(reference counting frees everything else at once): a cycle that existed before the
run and became garbage during it waits until the end of the run (or of the last run
going on, a paused one included).

Preparing a run (validate, compile, records) allocates a few objects per node with
the collector paused and frees none: :func:`promote` hands them to the oldest
generation at once, rather than letting the next young collections walk them all.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_runs = 0


def hold() -> None:
    """A run starts: what is alive now leaves the collector's passes."""
    global _runs
    with _lock:
        _runs += 1
        gc.freeze()


def release() -> None:
    """A run ended: when it was the last one going on, the collector sees everything again."""
    global _runs
    with _lock:
        _runs = max(0, _runs - 1)
        if _runs == 0:
            gc.unfreeze()


def promote() -> None:
    """What was just built to last (a prepared run) joins the oldest generation without a
    collector pass over it (the collector should be paused while calling this)."""
    with _lock:
        gc.freeze()
        if _runs == 0:
            gc.unfreeze()
