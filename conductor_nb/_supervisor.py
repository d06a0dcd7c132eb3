"""The supervisor of a runner's shell-command children: a script, run once per runner as
``python -I -S THIS`` (standard library only, never imported by the package).

The runner (:class:`conductor_nb._children.Supervisor`) sends one JSON line per child to
start (``id``, ``argv``, ``env``, ``cwd``, ``folder``, ``stdin``: a file or null). The
supervisor starts it in a process group of its own, with stdout and stderr going to
``FOLDER/stdout`` and ``FOLDER/stderr``, answers ``{"id", "pid"}`` (or ``{"id", "error",
"errno", "filename"}``), and when the child ends writes ``FOLDER/record.json`` (exit code,
times, whether the runner had gone) atomically: temp file, fsync, rename, fsync of the
folder; only then it answers ``{"id", "exit"}``.

It outlives the runner just long enough: when its stdin closes (the runner ended, however,
SIGKILL included) it SIGKILLs every child's process group at once (children die with their
runner, issue 14), records each end and exits. So a runner killed between a child's end
and the commit of the node's success leaves a record, and ``runs resume`` finishes the
node from it instead of running the child again. A child also dies with the supervisor
(Linux: a parent-death signal), should the supervisor itself be killed.

Single-threaded (a ``select`` loop over stdin and a SIGCHLD wake-up pipe), so starting
children with fork is safe here; it is started in a session of its own, so a signal to
the runner's process group (Ctrl-C in a terminal) spares it.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

PR_SET_PDEATHSIG = 1
RECORD = "record.json"


@dataclass
class Child:
    id: int
    folder: str
    proc: subprocess.Popen[bytes]
    started: float


def libc_prctl() -> Any:
    """libc's prctl on Linux (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover (a libc without prctl)
        return None


PRCTL: Any = libc_prctl() if __name__ == "__main__" else None
ME = os.getpid()


def _tie() -> None:  # in a child, before exec: die with the supervisor
    PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != ME:
        os._exit(1)


def _say(message: dict[str, Any]) -> None:
    try:
        os.write(1, (json.dumps(message) + "\n").encode())
    except OSError:  # the runner is gone: the record on disk is what counts
        pass


def _start(request: dict[str, Any]) -> Child | None:
    folder = request["folder"]
    started = time.time()
    try:
        with (
            open(request["stdin"] or os.devnull, "rb") as stdin,
            open(os.path.join(folder, "stdout"), "wb") as out,
            open(os.path.join(folder, "stderr"), "wb") as err,
        ):
            proc = subprocess.Popen(
                request["argv"],
                stdin=stdin,
                stdout=out,
                stderr=err,
                env=request["env"],
                cwd=request["cwd"],
                process_group=0,  # its own group: killable as a tree
                preexec_fn=_tie if PRCTL is not None else None,
            )
    except Exception as exc:  # not started: the runner raises it
        number = exc.errno if isinstance(exc, OSError) else None
        filename = exc.filename if isinstance(exc, OSError) else None
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        _say({"id": request["id"], "error": text, "errno": number, "filename": filename})
        return None
    _say({"id": request["id"], "pid": proc.pid})
    return Child(request["id"], folder, proc, started)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _record(child: Child, code: int, runner_gone: bool) -> None:
    """Write the child's end durably, then tell the runner."""
    record = {
        "exit_code": code,
        "started": child.started,
        "ended": time.time(),
        "pid": child.proc.pid,
        "runner_died": runner_gone,
    }
    try:
        for name in ("stdout", "stderr"):
            path = os.path.join(child.folder, name)
            if os.path.getsize(path):  # an empty one is whole once the folder is synced
                _fsync(path)
        temp = os.path.join(child.folder, "." + RECORD + ".tmp")
        with open(temp, "w") as fh:
            json.dump(record, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, os.path.join(child.folder, RECORD))
        _fsync(child.folder)
    except OSError:  # the folder is gone (the run's records were dropped): nothing to keep
        pass
    _say({"id": child.id, "exit": code})


def _kill(child: Child) -> None:
    try:
        os.killpg(child.proc.pid, signal.SIGKILL)
    except OSError:
        pass


def main() -> int:
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    children: dict[int, Child] = {}
    pending = b""
    while True:
        ready, _, _ = select.select([0, wake_read], [], [])
        if wake_read in ready:
            while True:
                try:
                    if not os.read(wake_read, 512):
                        break
                except BlockingIOError:
                    break
        if 0 in ready:
            data = os.read(0, 65536)
            if not data:  # the runner ended: its children die now
                break
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                child = _start(json.loads(line))
                if child is not None:
                    children[child.id] = child
        for child in list(children.values()):
            code = child.proc.poll()
            if code is not None:
                del children[child.id]
                _kill(child)  # what it left behind in its group (daemons, orphans)
                _record(child, code, False)
    for child in children.values():
        _kill(child)
    for child in children.values():
        _record(child, child.proc.wait(), True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
