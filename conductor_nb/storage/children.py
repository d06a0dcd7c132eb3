"""Completion records of shell-command children in the history (see ``conductor_nb._completions``).

A recorded run keeps its children's records under ``<home>/children``. A node's records
are dropped once its success is committed (or it failed), and when the run ends all but
those of cancelled nodes; a cancelled or interrupted node keeps its record. ``resume`` then asks
:func:`finish_from_records`: a node the killed (or cancelled) run left unfinished whose
child completed by itself is finished from the record (its row in the old run becomes
``succeeded`` with the recorded outputs) and reused by the resumed run, so the child's
side effect is not repeated.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor_nb import _completions
from conductor_nb.engine import events as ev
from conductor_nb.engine.states import NodeState
from conductor_nb.storage.values import RecordBudget

if TYPE_CHECKING:
    from conductor_nb.engine.run import Run
    from conductor_nb.model.blueprint import Blueprint
    from conductor_nb.storage.history import NodeRecord, RunHistory

log = logging.getLogger("conductor_nb.storage")

FOLDER = "children"
UNFINISHED = ("cancelled", "running", "queued", "pending")
"""Node states a killed or cancelled run leaves: a completed child may finish them."""


def records_root(history: RunHistory) -> Path:
    return history.home / FOLDER


def keep_for(run: Run, history: RunHistory) -> None:
    """Record ``run``'s children in ``history``; drop each node's records once its outcome
    is committed (subscribed after the recorder, which commits a side-effecting node's
    success before passing the event on), and at the end of the run all but those of
    cancelled nodes (a resume may finish them from their records)."""
    root = records_root(history)
    _completions.keep_records(run.id, root)

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.RunFinished):
            made = _completions.made(run.id)
            records = run.node_runs
            kept = {n for n in made if n in records and records[n].status is NodeState.CANCELLED}
            _completions.drop(root, run.id, None if not kept else sorted(made - kept))
        elif _completions.holds(run.id, event.node_id):  # type: ignore[attr-defined]
            _completions.drop(root, run.id, [event.node_id])  # type: ignore[attr-defined]

    # Only a side-effecting node (shell-command) starts children that leave records: a plan
    # without one has nothing to drop per node, and is not called on every node's end.
    spawns = bool(run.plan.side_effect_nodes)
    run.subscribe(on_event, *((ev.NodeSucceeded, ev.NodeFailed) if spawns else ()), ev.RunFinished)


def completed_children(
    history: RunHistory, run_id: str, nodes: list[NodeRecord], bp: Blueprint
) -> dict[str, tuple[dict[str, Any], float]]:
    """Nodes of run ``run_id`` left unfinished whose child completed by itself: node id ->
    (outputs, end time), from their records."""
    root = records_root(history)
    found: dict[str, tuple[dict[str, Any], float]] = {}
    for node in nodes:
        if node.status not in UNFINISHED or node.node_id not in bp.nodes:
            continue
        done = _completions.latest(root, run_id, node.node_id)
        if done is None or not done.finished:
            continue
        outputs = bp.node_type(node.node_id).split_outputs(done.result())
        found[node.node_id] = (outputs, done.ended)
    return found


def finish_from_records(
    history: RunHistory, run_id: str, finished: dict[str, tuple[dict[str, Any], float]], run: Run
) -> None:
    """Write the nodes of ``finished`` as succeeded in run ``run_id`` (outputs masked by
    ``run``, the resume, which holds the secrets), then drop that run's records."""
    budget = RecordBudget.from_env()
    statements: list[tuple[str, Any]] = []
    for node_id, (outputs, ended) in finished.items():
        text, digests = history.codec.encode(run.redact(outputs), budget)
        reason = "finished from its child's completion record (the runner ended before it)"
        statements.append(
            (
                "UPDATE nodes SET status='succeeded', finished_at=?, outputs=?, reason=?, "
                "error=NULL, error_type=NULL, traceback=NULL WHERE run_id=? AND node_id=?",
                (ended, text, reason, run_id, node_id),
            )
        )
        statements += [
            ("INSERT OR IGNORE INTO blob_refs VALUES (?,?)", (run_id, d)) for d in digests
        ]
    if statements:
        history.write(statements, durable=True)
    _completions.drop(records_root(history), run_id)
