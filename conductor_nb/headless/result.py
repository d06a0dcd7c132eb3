"""The machine-readable result of a run (``conductor-nb run --json``).

Shape (stable; new keys may be added)::

    {"run_id": "...", "blueprint_id": "...", "status": "succeeded|failed|cancelled|...",
     "exit_code": 0, "duration": 1.23, "started_at": "ISO-8601", "finished_at": "ISO-8601",
     "params": {...},
     "nodes": {"clean": {"type": "clean", "status": "succeeded", "duration": 0.1,
                         "attempts": 1, "error": null, "error_type": null}, ...},
     "outputs": {"total": 42},                  # the declared outputs that are JSON-able
     "unserialisable_outputs": {"frame": "DataFrame"}}   # the others: name -> type

Values that are not JSON-able are never turned into strings behind the caller's
back: they are listed by type instead.

A command that fails before (or instead of) a run still prints one object, with
the same ``status`` and ``exit_code`` keys (exit code 2 for user errors)::

    {"status": "error", "exit_code": 2, "error": "the message printed on stderr",
     "problems": [{"path": "edges[1]", "message": "...", "line": 12, "column": 5,
                   "hints": ["..."]}],          # a blueprint's (or -p's) problems, if any
     "hints": ["node types defined in Python: pass --import MODULE ..."]}
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor_nb.engine.node_runner import NodeRun
    from conductor_nb.engine.run import Run
    from conductor_nb.errors import Problem


def is_jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).isoformat(timespec="milliseconds")


def node_result(record: NodeRun) -> dict[str, Any]:
    error = record.error
    cause = getattr(error, "original", None) or (error.__cause__ if error else None)
    return {
        "type": record.type,
        "status": record.status.value,
        "duration": None if record.duration is None else round(record.duration, 6),
        "attempts": record.attempts,
        "error": None if error is None else str(error),
        "error_type": None if cause is None else type(cause).__name__,
    }


def run_result(run: Run, exit_code: int | None = None) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    others: dict[str, str] = {}
    for name, value in run.outputs.items():
        if is_jsonable(value):
            outputs[name] = value
        else:
            others[name] = type(value).__name__
    result: dict[str, Any] = {
        "run_id": run.id,
        "blueprint_id": run.blueprint.id,
        "status": run.status.value,
        "exit_code": exit_code,
        "duration": None if run.duration is None else round(run.duration, 6),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "params": {k: v for k, v in run.params.items() if is_jsonable(v)},
        "nodes": {node_id: node_result(record) for node_id, record in run.node_runs.items()},
        "outputs": outputs,
        "unserialisable_outputs": others,
    }
    return result


def problem_result(problem: Problem) -> dict[str, Any]:
    return {
        "path": problem.path,
        "message": problem.message,
        "line": problem.line,
        "column": problem.column,
        "hints": list(problem.hints),
    }


def error_result(
    message: str,
    exit_code: int,
    *,
    problems: Sequence[Problem] = (),
    hints: Sequence[str] = (),
    status: str = "error",
) -> dict[str, Any]:
    """What ``--json`` prints when a command fails before (or instead of) a run."""
    return {
        "status": status,
        "exit_code": exit_code,
        "error": message,
        "problems": [problem_result(p) for p in problems],
        "hints": list(hints),
    }
