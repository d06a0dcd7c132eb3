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

Shell-command children are started by a supervisor instead (:class:`Supervisor`,
the script :mod:`conductor_nb._supervisor`): one small process per runner, in a session
of its own, that starts each child in a process group of its own, records its end on
disk (so a resume finishes a node whose child ended but whose success was not yet
committed, instead of running it again) and, when the pipe from the runner closes (the
runner ended, however), SIGKILLs the groups of the children still running: what a
child started (``sh -c "curl ...; touch done"`` forks curl) dies too (POSIX).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from functools import lru_cache
from pathlib import Path
from typing import Any

from conductor_nb._supervisor import PR_SET_PDEATHSIG, libc_prctl


@lru_cache(maxsize=1)
def _prctl() -> Any:
    """libc's prctl, resolved in the parent (a forked child should not load libraries)."""
    return libc_prctl()


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


SUPERVISOR = str(Path(__file__).with_name("_supervisor.py"))
"""The script that starts shell-command children and records their ends."""


class Supervisor:
    """This process's end of its children's supervisor (:mod:`conductor_nb._supervisor`),
    started with the first child: requests go down its stdin, answers come back on its
    stdout to a reader thread, which settles each child's futures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipe: Any = None
        self._owner = 0  # the pid that started the supervisor (a forked child has none)
        self._next = 0
        self._waiting: dict[int, tuple[Future[int], Future[int]]] = {}

    def start(
        self,
        argv: list[str],
        *,
        env: Mapping[str, str],
        cwd: str | None,
        folder: str,
        stdin: str | None,
    ) -> tuple[Future[int], Future[int]]:
        """Start ``argv`` (stdin from the file ``stdin``, output into ``folder``): futures
        of its pid (or its start error) and of its exit code, recorded in ``folder``."""
        started: Future[int] = Future()
        ended: Future[int] = Future()
        with self._lock:
            self._next += 1
            request = {"id": self._next, "argv": argv, "env": dict(env), "cwd": cwd}
            request |= {"folder": folder, "stdin": stdin}
            self._waiting[self._next] = (started, ended)
            try:
                self._open().write(json.dumps(request) + "\n")
            except (OSError, ValueError) as exc:
                del self._waiting[self._next]
                self._pipe = None
                raise RuntimeError(f"the children's supervisor is gone: {exc}") from exc
        return started, ended

    def _open(self) -> Any:
        if self._pipe is not None and self._owner == os.getpid():
            return self._pipe
        self._waiting = {k: v for k, v in self._waiting.items() if k == self._next}
        read, write = os.pipe()  # neither end is inherited by other children
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", SUPERVISOR],
                stdin=read,
                stdout=subprocess.PIPE,
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
        reader = threading.Thread(target=self._read, args=(proc,), name="cnb-children", daemon=True)
        reader.start()
        return self._pipe

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            answer = json.loads(line)
            with self._lock:
                futures = self._waiting.get(answer["id"])
                if futures is not None and "pid" not in answer:
                    del self._waiting[answer["id"]]
            if futures is not None:
                _settle(futures, answer)
        proc.wait()
        with self._lock:  # it ended: nothing it was asked for will be answered
            gone, self._waiting = self._waiting, {}
            if self._owner == os.getpid():
                self._pipe = None
        for futures in gone.values():
            for future in futures:
                if not future.done():
                    future.set_exception(RuntimeError("the children's supervisor ended"))


def _settle(futures: tuple[Future[int], Future[int]], answer: dict[str, Any]) -> None:
    started, ended = futures
    if "pid" in answer:
        started.set_result(int(answer["pid"]))
    elif "exit" in answer:
        ended.set_result(int(answer["exit"]))
    else:
        number, filename = answer.get("errno"), answer.get("filename")
        error: Exception = ValueError(answer["error"])
        if number:
            error = OSError(number, answer["error"], filename)  # FileNotFoundError for ENOENT
        started.set_exception(error)
        ended.set_exception(error)


supervisor = Supervisor()
