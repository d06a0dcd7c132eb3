"""The machine-readable result of a run (``conductor-nb run --json``).

Shape (stable; new keys may be added)::

    {"run_id": "...", "blueprint_id": "...", "status": "succeeded|failed|cancelled|...",
     "exit_code": 0, "duration": 1.23, "started_at": "ISO-8601", "finished_at": "ISO-8601",
     "params": {...},
     "counts": {"succeeded": 2, "failed": 1},   # the run's own nodes by state
     "nodes": {"clean": {"type": "clean", "status": "succeeded", "duration": 0.1,
                         "attempts": 1, "error": null, "error_type": null}, ...},
     "outputs": {"total": 42},                  # the declared outputs that are JSON-able
     "unserialisable_outputs": {"frame": "DataFrame"}}   # the others: name -> type

Values that are not JSON-able are never turned into strings behind the caller's
back: they are listed by type instead. ``counts`` tallies the states of the run's own
nodes (its plan); ``nodes`` also holds nested records (``loop[0].double``).

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
from collections.abc import Collection, Sequence
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
        "counts": plan_counts(run),
        "nodes": {node_id: node_result(record) for node_id, record in run.node_runs.items()},
        "outputs": outputs,
        "unserialisable_outputs": others,
    }
    return result


def plan_counts(run: Run) -> dict[str, int]:
    """How many of the run's own nodes (``run.plan.order``) are in each state: nested
    records (a loop's iterations, a group's inner nodes) are part of their parent node."""
    counts: dict[str, int] = {}
    for node_id in run.plan.order:
        record = run.node_runs.get(node_id)
        state = record.status.value if record is not None else "pending"
        counts[state] = counts.get(state, 0) + 1
    return counts


def plan_parent(node_id: str, plan_ids: Collection[str]) -> str | None:
    """The plan node a nested record belongs to: ``loop[0].double`` -> ``loop``,
    ``grp.inner`` -> ``grp``; None for a plan node itself or an unknown id."""
    for cut, char in enumerate(node_id):
        if char in ".[" and node_id[:cut] in plan_ids:
            return node_id[:cut]
    return None


def run_summary(run: Run) -> str:
    """``run ID of 'bp': failed in 1.20s (1 failed, 3 succeeded)`` and each failed node's
    error, counting the run's own nodes only (see :func:`plan_counts`)."""
    counts = ", ".join(f"{n} {state}" for state, n in sorted(plan_counts(run).items()))
    took = f" in {run.duration:.2f}s" if run.duration is not None else ""
    lines = [f"run {run.id} of {run.blueprint.id!r}: {run.status.value}{took} ({counts})"]
    for node_id in run.plan.order:
        record = run.node_runs.get(node_id)
        if record is not None and record.status.value == "failed" and record.error is not None:
            lines.append(f"  {record.error}")
    return "\n".join(lines)


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
