"""The machine-readable result of a run (``conductor-nb run --json``).

Shape (stable; new keys may be added)::

    {"run_id": "...", "blueprint_id": "...", "status": "succeeded|failed|cancelled|...",
     "exit_code": 0, "duration": 1.23, "started_at": "ISO-8601", "finished_at": "ISO-8601",
     "params": {...},
     "counts": {"succeeded": 2, "failed": 1},   # the run's own nodes by state
     "nodes": {"clean": {"type": "clean", "status": "succeeded", "duration": 0.1,
                         "attempts": 1, "error": null, "error_type": null}, ...},
     "outputs": {"total": 42},                  # the declared outputs that are JSON-able
     "unserialisable_outputs": {"frame": "DataFrame"},   # the others: name -> type
     "hints": ["..."],                          # fixes for the failures, if any
     "report": null}                            # the --report file, if one was written

Values that are not JSON-able are never turned into strings behind the caller's
back: they are listed by type instead. ``counts`` tallies the states of the run's own
nodes (its plan); ``nodes`` also holds nested records (``loop[0].double``), after
their node, but not the engine's own plumbing (``loop[0]._input``, the node that
feeds an iteration its item). ``runs show ID --json`` prints the same object for a
recorded run (its ``exit_code`` is the one ``run`` exited with: 0 succeeded, 130
cancelled, 1 otherwise).

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
import reprlib
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from conductor_nb.headless.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

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


ErrorTypes = Mapping[str, str | None]
"""node id -> the type name of the exception it failed with, as the run history recorded
it (a run rebuilt from history no longer holds the exception itself)."""

FILE_ROOT_HINT = (
    "on the command line, allow another folder with --file-root DIR (repeatable; "
    "the working directory stays allowed), or remap an Atomiton flow's absolute paths "
    "with --path-map /data=./data"
)


def is_internal(node_id: str) -> bool:
    """Whether ``node_id`` is engine plumbing rather than a node someone wrote: the
    ``_input`` node that feeds a loop or parallel body its item (``each[0]._input``)."""
    return node_id.rpartition(".")[2] == "_input"


def error_type(record: NodeRun, error_types: ErrorTypes | None = None) -> str | None:
    """The type name of the exception behind a failed record: the original exception of a
    live run, else what the history recorded."""
    error = record.error
    if error is None:
        return None
    cause = getattr(error, "original", None) or error.__cause__
    if cause is not None:
        return type(cause).__name__
    return (error_types or {}).get(record.node_id)


def node_result(record: NodeRun, error_types: ErrorTypes | None = None) -> dict[str, Any]:
    error = record.error
    return {
        "type": record.type,
        "status": record.status.value,
        "duration": None if record.duration is None else round(record.duration, 6),
        "attempts": record.attempts,
        "error": None if error is None else str(error),
        "error_type": error_type(record, error_types),
    }


def recorded_exit_code(run: Run) -> int:
    """The exit code ``conductor-nb run`` gives a run that ended this way."""
    status = run.status.value
    if status == "succeeded" and not run.failed_nodes:
        return EXIT_OK
    return EXIT_INTERRUPTED if status == "cancelled" else EXIT_FAILED


def run_result(
    run: Run,
    exit_code: int | None = None,
    *,
    error_types: ErrorTypes | None = None,
    internal: bool = False,
) -> dict[str, Any]:
    """The ``--json`` object of ``run`` (see the module docstring); ``exit_code`` defaults to
    the one its status implies; ``internal`` also lists the engine's plumbing records."""
    outputs: dict[str, Any] = {}
    others: dict[str, str] = {}
    for name, value in run.redact(run.outputs).items():  # secrets from --env read ***
        if is_jsonable(value):
            outputs[name] = value
        else:
            others[name] = type(value).__name__
    records = run.node_runs
    result: dict[str, Any] = {
        "run_id": run.id,
        "blueprint_id": run.blueprint.id,
        "status": run.status.value,
        "exit_code": recorded_exit_code(run) if exit_code is None else exit_code,
        "duration": None if run.duration is None else round(run.duration, 6),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "params": {k: v for k, v in run.params.items() if is_jsonable(v)},
        "counts": plan_counts(run),
        "nodes": {
            node_id: node_result(records[node_id], error_types)
            for node_id, _ in listed_records(run, internal=internal)
        },
        "outputs": outputs,
        "unserialisable_outputs": others,
        "hints": run_hints(run, error_types),
        "report": None,
    }
    if run.error is not None:  # the run itself failed (an executor that cannot run it)
        result["error"] = str(run.error)
    return result


def listed_records(run: Run, *, internal: bool = False) -> Iterator[tuple[str, int]]:
    """``(node id, depth)`` of every record in plan order, each nested record (depth 1)
    right after the node it belongs to; internal records only if ``internal``."""
    plan = list(run.plan.order)
    nested: dict[str | None, list[str]] = {}
    for node_id in run.node_runs:
        if node_id not in plan and (internal or not is_internal(node_id)):
            nested.setdefault(plan_parent(node_id, plan), []).append(node_id)
    for node_id in [*plan, *nested.pop(None, [])]:
        if node_id in run.node_runs:
            yield node_id, 0
        for inner in nested.get(node_id, []):
            yield inner, 1


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


def run_summary(run: Run, error_types: ErrorTypes | None = None) -> str:
    """``run ID of 'bp': failed in 1.20s (1 failed, 3 succeeded)``, each failed node's
    error (and a hint, when the command line can fix it), counting the run's own nodes
    only (see :func:`plan_counts`)."""
    counts = ", ".join(f"{n} {state}" for state, n in sorted(plan_counts(run).items()))
    took = f" in {run.duration:.2f}s" if run.duration is not None else ""
    lines = [f"run {run.id} of {run.blueprint.id!r}: {run.status.value}{took} ({counts})"]
    if run.error is not None:  # the run itself failed (an executor that cannot run it)
        lines.extend(f"  {line}" for line in str(run.error).splitlines())
    for record in _failed(run):
        lines.append(f"  {record.error}")
        lines.extend(f"    hint: {hint}" for hint in _node_hints(record, error_types))
    return "\n".join(lines)


def _failed(run: Run) -> Iterator[NodeRun]:
    for node_id in run.plan.order:
        record = run.node_runs.get(node_id)
        if record is not None and record.status.value == "failed" and record.error is not None:
            yield record


def _node_hints(record: NodeRun, error_types: ErrorTypes | None) -> list[str]:
    """What the CLI can add to a node's own message: the node says how to fix it in
    Python (``settings={'file_roots': [...]}``); here it is a command-line flag."""
    if error_type(record, error_types) == "PathNotAllowed":
        return [FILE_ROOT_HINT]
    return []


def run_hints(run: Run, error_types: ErrorTypes | None = None) -> list[str]:
    """The hints :func:`run_summary` prints, once each (the ``hints`` of ``--json``)."""
    found = (hint for record in _failed(run) for hint in _node_hints(record, error_types))
    return list(dict.fromkeys(found))


class _Preview(reprlib.Repr):
    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        """As reprlib's, but in the dict's own order (reprlib sorts the keys)."""
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = [
            f"{self.repr1(key, level - 1)}: {self.repr1(value, level - 1)}"
            for key, value in list(x.items())[: self.maxdict]
        ]
        more = ", ..." if len(x) > self.maxdict else ""
        return "{" + ", ".join(items) + more + "}"


_PREVIEW = _Preview()  # keyword arguments need Python 3.12
_PREVIEW.maxlevel = 3
_PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxdict = _PREVIEW.maxset = 4
_PREVIEW.maxstring, _PREVIEW.maxother = 40, 60


def preview(value: Any, limit: int = 100) -> str:
    """A one-line look at a value: ``['Hello Ada', 'Hello Bo', ...]``; an object whose
    repr spans lines shows its type (and shape or length) instead."""
    try:
        text = _PREVIEW.repr(value)
    except Exception:  # a broken __repr__ must not break the summary
        text = f"<{type(value).__name__}>"
    if "\n" in text:
        size = getattr(value, "shape", None)
        if size is None and hasattr(value, "__len__"):
            try:
                size = f"len {len(value)}"
            except Exception:
                size = None
        text = f"<{type(value).__name__}{'' if size is None else f' {size}'}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def outputs_text(run: Run) -> str:
    """The declared outputs, one line each (``outputs:`` then ``  name = preview``); a
    declared output that was not produced says which node it waited for. Empty when the
    blueprint declares none."""
    declared = run.plan.outputs
    if not declared:
        return ""
    values = run.redact(run.outputs)
    lines = ["outputs:"]
    for name, source in declared.items():
        if name in values:
            lines.append(f"  {name} = {preview(values[name])}")
            continue
        record = run.node_runs.get(source.node)
        state = record.status.value if record is not None else "pending"
        lines.append(f"  {name}: not produced ({source.node} {state})")
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
