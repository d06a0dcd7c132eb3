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

The parent-death signal reaches the child only: what *it* started (``sh -c
"curl ...; touch done"`` forks curl) would be orphaned. So a child that leads a
process group of its own is also watched (:func:`watch_group`): a small watchdog
process, started once per runner in a session of its own, holds the read end of a
pipe from the runner and, when the pipe closes (the runner ended, however),
SIGKILLs the groups still registered (POSIX).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
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


WATCHDOG = """
import os, signal, sys
groups = set()
for line in sys.stdin:  # '+PGID' / '-PGID' from the runner; EOF: the runner is gone
    sign, pgid = line[:1], int(line[1:])
    if sign == '+':
        groups.add(pgid)
    else:
        groups.discard(pgid)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class _GroupWatch:
    """The runner's end of the watchdog's pipe, opened with the first watched group."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipe: Any = None
        self._owner = 0  # the pid that started the watchdog (a forked child has none)

    def send(self, line: str) -> None:
        with self._lock:
            try:
                self._open().write(line)
            except (OSError, ValueError):  # no watchdog: the parent-death signal still holds
                self._pipe = None

    def _open(self) -> Any:
        if self._pipe is not None and self._owner == os.getpid():
            return self._pipe
        read, write = os.pipe()  # neither end is inherited by other children
        try:
            subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHDOG],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a signal to the runner's group spares it
            )
        except BaseException:
            os.close(write)
            raise
        finally:
            os.close(read)
        self._pipe = os.fdopen(write, "w", buffering=1)
        self._owner = os.getpid()
        return self._pipe


_watch = _GroupWatch()


def watch_group(pgid: int) -> None:
    """SIGKILL the process group ``pgid`` if this process ends before
    :func:`unwatch_group` (POSIX; a no-op elsewhere)."""
    if os.name == "posix":
        _watch.send(f"+{pgid}\n")


def unwatch_group(pgid: int) -> None:
    """The group ``pgid`` is gone (or this process killed it): stop watching it."""
    if os.name == "posix":
        with contextlib.suppress(OSError, ValueError):
            _watch.send(f"-{pgid}\n")
