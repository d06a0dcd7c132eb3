"""Child processes die with their runner, even when the runner is killed with SIGKILL.

A runner killed by the OOM killer, ``kill -9`` or a CI timeout cannot clean up;
its children (shell commands, notebook kernels, process-pool workers) would
keep running and repeat their side effects when the run is resumed. On Linux
each child asks the kernel for a parent-death signal
(``prctl(PR_SET_PDEATHSIG, SIGKILL)``) before it runs anything, then checks
that its parent is still the runner (the runner may have died in between).

The signal fires when the *thread* that started the child ends, not only the
process, so children must be started from a long-lived thread: the engine's
event loop thread, or the main thread. Elsewhere (macOS, Windows) this is a
no-op: children are still killed as a process group on timeout and cancel.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any

PR_SET_PDEATHSIG = 1


@lru_cache(maxsize=1)
def _prctl() -> Any:
    """libc's prctl, resolved in the parent (a forked child should not load libraries)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover (a libc without prctl)
        return None


def die_with_parent(parent_pid: int) -> None:
    """In the child: be killed when ``parent_pid`` dies; exit now if it already has."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` for subprocesses that ties them to this process, or None where the
    platform has no parent-death signal."""
    if _prctl() is None:
        return None
    parent = os.getpid()

    def tie() -> None:
        die_with_parent(parent)

    return tie
