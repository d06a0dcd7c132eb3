"""Using history: rebuild a finished Run from its records, and resume a run.

``load_run`` gives back an engine :class:`Run` (not started, nothing executes):
status, times, and every NodeRun with its status, attempts, inputs, outputs,
error, traceback and logs, so ``run.summary()``, ``run.to_svg()``, views and
reports work on it. Node types that are not registered in this process (say,
functions defined in another notebook) are stood in for by placeholders: the
picture and records work, executing them does not.

``resume`` starts a *new* run of the recorded blueprint with the recorded
params, passing the outputs of nodes that succeeded (or were cached) as
``completed``: the engine reuses them and never runs those nodes again. So does a
node the run left unfinished (killed or cancelled) whose shell-command child had completed:
it is finished from the child's completion record (see :mod:`.children`). Failed,
cancelled, skipped, interrupted and never-run nodes run. A succeeded node whose
outputs cannot be restored (a pickle while pickles are not allowed, or a value
that was kept only as a repr) has to run again; a warning names it.
"""

from __future__ import annotations

import graphlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor_nb.errors import BlueprintError, NodeExecutionError, StoreError
from conductor_nb.storage import children, process
from conductor_nb.storage.values import has_stored

if TYPE_CHECKING:
    from conductor_nb.engine.run import Run
    from conductor_nb.model.blueprint import Blueprint
    from conductor_nb.model.types import NodeType, Registry
    from conductor_nb.storage.history import NodeRecord, RunHistory

log = logging.getLogger("conductor_nb.storage")

REUSABLE = ("succeeded", "cached")


def _history(history: RunHistory | None) -> RunHistory:
    from conductor_nb.storage.history import default_history

    return history if history is not None else default_history()


def load_run(
    run_id: str, *, history: RunHistory | None = None, allow_pickle: bool | None = None
) -> Run:
    """A Run rebuilt from history: finished, with its node runs filled in.

    ``run_id`` may be a unique prefix or ``"latest"``. Nothing is executed.
    """
    from conductor_nb.engine.node_runner import NodeRun
    from conductor_nb.engine.options import RunSetup
    from conductor_nb.engine.plan import compile_plan
    from conductor_nb.engine.run import Run
    from conductor_nb.engine.states import NodeState, RunState

    hist = _history(history)
    record = hist.get(run_id)
    bp = _blueprint_for_viewing(hist.blueprint_doc(record.id))
    plan = compile_plan(bp, validate=False)
    nodes = hist.nodes(record.id, allow_pickle=allow_pickle)
    completed = {
        n.node_id: n.outputs or {}
        for n in nodes
        if n.status in REUSABLE and n.node_id in plan.nodes
    }
    run = Run.restored(
        bp,
        plan,
        record.params,
        setup=RunSetup(run_id=record.id, completed=completed),
        status=RunState(record.status),
        started_at=record.started_at,
        finished_at=record.finished_at,
    )
    for node in nodes:
        node_run = run.node_runs.get(node.node_id)
        if node_run is None:  # a node inside a group/loop, recorded by path
            node_run = run.node_runs[node.node_id] = NodeRun(node.node_id, node.type)
            node_run.pinned = True
        _fill(node_run, node, NodeState(node.status))
    for node_id, line in hist.logs(record.id):
        if node_id in run.node_runs:
            run.node_runs[node_id].logs.append(line)
    return run


def _fill(node_run: Any, node: NodeRecord, state: Any) -> None:
    node_run.status = state
    node_run.attempts = node.attempts
    node_run.queued_at, node_run.started_at = node.queued_at, node.started_at
    node_run.finished_at = node.finished_at
    node_run.inputs, node_run.outputs = node.inputs, node.outputs
    node_run.traceback = node.traceback or ""
    node_run.cache_key = node.cache_key
    if node.error:
        node_run.error = NodeExecutionError(
            node.error, node_id=node.node_id, attempt=node.attempts, attempts=node.attempts
        )


def _blueprint_for_viewing(doc: dict[str, Any]) -> Blueprint:
    """The recorded blueprint, with placeholders for node types this process lacks."""
    from conductor_nb.model.blueprint import Blueprint
    from conductor_nb.model.types import registry as default_registry

    registry = default_registry.copy()
    bp = Blueprint.from_dict(doc, registry=registry, validate=False)
    for node in bp.nodes.values():
        if registry.find(node.type, node.version) is None:
            registry.register(_placeholder(bp, node.id, node.type, node.version))
    return bp


def _placeholder(bp: Blueprint, node_id: str, type_name: str, version: int | None) -> NodeType:
    from conductor_nb.model.types import NodeType, Port

    inputs = {e.target_port for e in bp.edges if e.target == node_id}
    inputs |= set(bp.nodes[node_id].params)
    outputs = {e.source_port for e in bp.edges if e.source == node_id}
    outputs |= {
        ref.split(".", 1)[1] for ref in bp.outputs.values() if ref.startswith(node_id + ".")
    }

    def unavailable(**_: Any) -> Any:
        raise StoreError(
            f"node type {type_name!r} is not defined in this process; define or "
            "import it to run this node"
        )

    return NodeType(
        name=type_name,
        fn=unavailable,
        version=version or 1,
        inputs=tuple(Port(p) for p in sorted(inputs)),
        outputs=tuple(Port(p) for p in sorted(outputs or {"output"})),
        category="unavailable",
        module="conductor_nb.storage.placeholder",
    )


def resume(
    run_id: str,
    *,
    history: RunHistory | None = None,
    registry: Registry | None = None,
    allow_pickle: bool | None = None,
    wait: bool = True,
    blueprint: Blueprint | None = None,
    **options: Any,
) -> Run:
    """Run a recorded run's failed, cancelled, interrupted and never-run nodes again.

    Nodes that succeeded are not run: their recorded outputs are reused. Returns the new
    Run (recorded in the same history, with ``resumed_from`` set); with ``wait=False`` it
    returns at once, as ``bp.start`` does. Other keywords are run options
    (``concurrency=``, ``executor=``...). The node types must be defined in this process.

    ``blueprint`` resumes with an edited blueprint instead of the recorded one (after a
    fix to the file): a succeeded node is reused only if it, its incoming edges and
    every node upstream of it are unchanged; the rest runs.
    """
    from conductor_nb.engine import api
    from conductor_nb.engine.options import RunOptions, RunSetup, new_run_id

    hist = _history(history)
    hist.mark_interrupted()
    record = hist.get(run_id)
    if not record.is_finished and process.is_alive(record.pid, None, record.host):
        raise StoreError(
            f"run {record.id} is still {record.status} in process {record.pid} "
            f"on {record.host}; wait for it or cancel it before resuming"
        )
    recorded = _blueprint_for_running(hist, record.id, registry)
    bp = recorded if blueprint is None else blueprint
    unchanged = _unchanged_nodes(recorded, bp) if blueprint is not None else set(bp.nodes)
    completed = {}
    nodes = hist.nodes(record.id, allow_pickle=allow_pickle)
    finished = children.completed_children(
        hist, record.id, [n for n in nodes if n.node_id in unchanged], bp
    )
    completed.update({node_id: outputs for node_id, (outputs, _) in finished.items()})
    for node in nodes:
        if node.status not in REUSABLE or node.node_id not in unchanged:
            continue
        if has_stored(node.outputs):
            log.warning(
                "resume %s: node %r succeeded but its outputs cannot be restored "
                "without unpickling (allow_pickle=True); it runs again",
                record.id,
                node.node_id,
            )
            continue
        completed[node.node_id] = node.outputs or {}
    if blueprint is None:
        _roots_from_the_recorded_folder(options, hist.blueprint_folder(record.id))
    run_options = RunOptions.from_keywords({"history": hist, **options})
    new_id = new_run_id()
    _resumed_from[new_id] = record.id
    try:
        setup = RunSetup(run_id=new_id, completed=completed)
        run = api.start(bp, record.params, run_options, setup)
    finally:
        _resumed_from.pop(new_id, None)
    children.finish_from_records(hist, record.id, finished, run)
    return run.wait() if wait else run


def _unchanged_nodes(recorded: Blueprint, edited: Blueprint) -> set[str]:
    """Nodes of ``edited`` whose own definition, incoming edges and upstream nodes are all
    as they were in ``recorded``: only their recorded outputs still hold."""
    before, after = recorded.to_dict()["nodes"], edited.to_dict()["nodes"]

    def incoming(bp: Blueprint, node_id: str) -> list[str]:
        return sorted(str(edge) for edge in bp.edges if edge.target == node_id)

    graph = {n: {e.source for e in edited.edges if e.target == n} for n in edited.nodes}
    same: set[str] = set()
    for node_id in graphlib.TopologicalSorter(graph).static_order():
        if (
            before.get(node_id) == after.get(node_id)
            and incoming(recorded, node_id) == incoming(edited, node_id)
            and graph[node_id] <= same
        ):
            same.add(node_id)
    return same


def _roots_from_the_recorded_folder(options: dict[str, Any], folder: str | None) -> None:
    """A resume runs the blueprint's relative paths from its file's folder, as the first
    run did, wherever it is started from (unless the caller gives file roots)."""
    settings = dict(options.get("settings") or {})
    if folder is None or settings.get("file_roots"):
        return
    cwd = str(Path.cwd().resolve())
    settings["file_roots"] = [folder] + ([cwd] if cwd != folder else [])
    options["settings"] = settings


_resumed_from: dict[str, str] = {}
"""run id -> the run it resumes, read by ``on_run_created`` while the new run is recorded."""


def _blueprint_for_running(hist: RunHistory, run_id: str, registry: Registry | None) -> Blueprint:
    from conductor_nb.model.blueprint import Blueprint

    try:
        return Blueprint.from_dict(
            hist.blueprint_doc(run_id), registry=registry, source=f"run {run_id}"
        )
    except BlueprintError as exc:
        raise StoreError(
            f"cannot resume run {run_id}: its blueprint does not validate "
            f"here; define or import the node functions it uses first\n{exc}"
        ) from exc
