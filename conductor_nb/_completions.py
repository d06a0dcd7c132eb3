"""Completion records of shell-command children: what a child did, kept on disk by its
supervisor (:mod:`conductor_nb._supervisor`) so that a runner killed between the child's
end and the commit of the node's success does not make a resume run the child again.

Layout, under the run history's folder (``<home>/children``, registered per run by the
storage layer with :func:`keep_records`)::

    <run id>/<node id, %-quoted>/<attempt>/intent.json   what the runner asked for
                                           stdout, stderr the child's output
                                           record.json    its end (written atomically)

The runner reads the record when the child ends (instead of a pipe). Records stay until
the node's outcome is committed: the storage layer drops a node's records once its
success is on disk (or it failed), and at the end of a run those of every node that did
not end ``cancelled`` (:func:`drop`); a cancelled or interrupted node keeps its record,
and ``runs resume`` finishes it from the record (:func:`latest`) when the child
completed, instead of running it again. A run that is
not recorded (no history, a process-pool worker) uses a temporary folder, removed as
soon as the runner has read it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

RECORD = "record.json"
INTENT = "intent.json"

_roots: dict[str, Path] = {}
_made: dict[str, set[str]] = {}  # run id -> nodes with records made by this process
_lock = threading.Lock()


def keep_records(run_id: str, root: Path | None) -> None:
    """Record the children of run ``run_id`` under ``root`` (None: forget the run)."""
    with _lock:
        if root is None:
            _roots.pop(run_id, None)
            _made.pop(run_id, None)
        else:
            _roots[run_id] = root


def node_folder(root: Path, run_id: str, node_id: str) -> Path:
    return root / run_id / quote(node_id, safe="")


def new_folder(run_id: str, node_id: str, attempt: int) -> tuple[Path, bool]:
    """A fresh folder for one attempt's record, and whether it is durable (a recorded run;
    else a temporary folder the caller removes after reading it)."""
    with _lock:
        root = _roots.get(run_id)
    if root is None:
        return Path(tempfile.mkdtemp(prefix="cnb-child-")), False
    folder = node_folder(root, run_id, node_id) / str(attempt)
    shutil.rmtree(folder, ignore_errors=True)  # a leftover of an attempt that never started
    folder.mkdir(parents=True)
    with _lock:
        _made.setdefault(run_id, set()).add(node_id)
    return folder, True


def holds(run_id: str, node_id: str) -> bool:
    """Whether ``node_id`` of run ``run_id`` has records made by this process (not yet dropped)."""
    with _lock:
        return node_id in _made.get(run_id, ())


def made(run_id: str) -> set[str]:
    """The nodes of run ``run_id`` that have records made by this process (not yet dropped)."""
    with _lock:
        return set(_made.get(run_id, ()))


def write_intent(folder: Path, *, encoding: str, allow_failure: bool, program: str) -> None:
    """What the node makes of the child's end, for whoever reads the record."""
    intent = {"encoding": encoding, "allow_failure": allow_failure, "program": program}
    (folder / INTENT).write_text(json.dumps(intent))


@dataclass(frozen=True)
class Completion:
    """A child's recorded end, with what its node asked for."""

    exit_code: int
    started: float
    ended: float
    stdout: bytes
    stderr: bytes
    encoding: str
    allow_failure: bool
    program: str
    runner_died: bool

    @property
    def succeeded(self) -> bool:
        """Whether the node succeeds with this end: exit 0, or any exit with allowFailure."""
        return self.exit_code == 0 or self.allow_failure

    @property
    def finished(self) -> bool:
        """The child succeeded and ended by itself (not by a signal: a cancel, a timeout or
        its runner's death killed it before it was done): a resume may take this end."""
        return self.succeeded and self.exit_code >= 0

    def text(self, data: bytes) -> str:
        return data.decode(self.encoding, errors="replace")

    def result(self, duration: float | None = None) -> dict[str, Any]:
        """The shell-command node's return value for this end."""
        return {
            "stdout": self.text(self.stdout),
            "stderr": self.text(self.stderr),
            "exit_code": self.exit_code,
            "duration": self.ended - self.started if duration is None else duration,
        }


def read(folder: Path) -> Completion | None:
    """The completion recorded in ``folder``, or None when the child's end is not recorded."""
    try:
        record = json.loads((folder / RECORD).read_text())
        intent = json.loads((folder / INTENT).read_text())
        stdout = (folder / "stdout").read_bytes()
        stderr = (folder / "stderr").read_bytes()
    except (OSError, ValueError):
        return None
    return Completion(
        exit_code=int(record["exit_code"]),
        started=float(record["started"]),
        ended=float(record["ended"]),
        stdout=stdout,
        stderr=stderr,
        encoding=str(intent["encoding"]),
        allow_failure=bool(intent["allow_failure"]),
        program=str(intent["program"]),
        runner_died=bool(record.get("runner_died")),
    )


def latest(root: Path, run_id: str, node_id: str) -> Completion | None:
    """The recorded end of the last attempt of ``node_id`` in run ``run_id`` that has one."""
    folder = node_folder(root, run_id, node_id)
    try:
        attempts = sorted((int(p.name), p) for p in folder.iterdir() if p.name.isdigit())
    except OSError:
        return None
    for _, path in reversed(attempts):
        found = read(path)
        if found is not None:
            return found
    return None


def drop(root: Path, run_id: str, node_ids: list[str] | None = None) -> None:
    """Remove the records of ``node_ids`` of run ``run_id`` (None: all of that run's)."""
    run_folder = root / run_id
    with _lock:
        if node_ids is None:
            _made.pop(run_id, None)
        else:
            _made.get(run_id, set()).difference_update(node_ids)
    if node_ids is None:
        shutil.rmtree(run_folder, ignore_errors=True)
        return
    for node_id in node_ids:
        shutil.rmtree(node_folder(root, run_id, node_id), ignore_errors=True)
    try:
        run_folder.rmdir()  # when nothing is left
    except OSError:
        pass
