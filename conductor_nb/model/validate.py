"""Semantic checks of a blueprint against a registry. Every problem is collected, none raised.

Checks: node types and versions exist; node settings make sense; params and
input values fit the type's schema; edges name existing nodes and ports; an
input takes one edge unless it is ``many``; required inputs are connected or
given; outputs name real ports; templates parse and read declared params; the
graph has no cycle (the problem names the cycle).
"""

from __future__ import annotations

import graphlib
from collections import defaultdict
from typing import TYPE_CHECKING

from conductor_nb.errors import Problem, ProblemList
from conductor_nb.model import templates
from conductor_nb.model.blueprint import (
    ID_PATTERN,
    _did_you_mean,
    _unknown_value_problem,
    port_hints,
)
from conductor_nb.model.types import NodeType, ParamField, Port, check_type, kind_mismatch

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint, Edge


def validate_blueprint(bp: Blueprint) -> list[Problem]:
    found = ProblemList()
    types = _check_nodes(found, bp)
    connected = _check_edges(found, bp, types)
    _check_required(found, bp, types, connected)
    for name, endpoint in bp.outputs.items():
        _check_output(found, f"outputs.{name}", endpoint, bp, types)
    for name, param in bp.params.items():
        mismatch = check_type(param.type, param.default)
        if mismatch:
            found.add(f"params.{name}.default", mismatch)
    _check_cycles(found, bp)
    return found.problems


def _check_nodes(found: ProblemList, bp: Blueprint) -> dict[str, NodeType]:
    """Ids, types and versions, param values and settings; the resolved type per node."""
    types: dict[str, NodeType] = {}
    for node_id, node in bp.nodes.items():
        path = f"nodes.{node_id}"
        if not ID_PATTERN.match(node_id):
            found.add(
                path,
                "node ids are identifiers: letters, digits, '_' or '-', starting "
                "with a letter or '_', at most 64 characters",
            )
        node_type = bp.registry.find(node.type, node.version)
        if node_type is None:
            found.add(
                f"{path}.type"
                if node.version is None or node.type not in bp.registry
                else f"{path}.version",
                bp.registry.unknown_message(node.type, node.version),
            )
            continue
        types[node_id] = node_type
        for key, value in node.params.items():
            spec = node_type.param(key)
            if spec is None and node_type.input(key) is None:
                found.problems.append(_unknown_value_problem(node_id, node_type, key))
                continue
            if key in node_type.raw_params and not _is_declared(node_type, key):
                continue  # a sub-blueprint body: its templates belong to the inner runs
            _check_value(found, f"{path}.params.{key}", spec or node_type.input(key), value, bp)
        if node_type.validate_params is not None:
            for key, message in node_type.validate_params(node.params):
                found.add(f"{path}.params.{key}" if key else f"{path}.params", message)
        if node_type.check_nested is not None:
            for key, message in node_type.check_nested(node.params, bp.registry):
                found.add(f"{path}.params.{key}", message)
        check_settings(found, path, node)
    return types


def _check_edges(
    found: ProblemList, bp: Blueprint, types: dict[str, NodeType]
) -> dict[str, set[str]]:
    """Edges name real nodes and ports; single inputs take one edge. Connected inputs."""
    connected: dict[str, set[str]] = defaultdict(set)
    incoming: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, edge in enumerate(bp.edges):
        if _check_edge(found, f"edges[{i}]", edge, bp, types):
            connected[edge.target].add(edge.target_port)
            incoming[(edge.target, edge.target_port)].append(i)
    for (target, port_name), indexes in incoming.items():
        port = types[target].input(port_name)
        if port is not None and not port.many and len(indexes) > 1:
            found.add(
                f"edges[{indexes[1]}]",
                f"input '{target}.{port_name}' already has an edge (edges[{indexes[0]}]) "
                "and takes only one",
                "hint: join the values in a node first, or use a node type whose input is 'many'",
            )
    return connected


def _check_required(
    found: ProblemList, bp: Blueprint, types: dict[str, NodeType], connected: dict[str, set[str]]
) -> None:
    """Required inputs are connected or given; required params are given."""
    for node_id, node_type in types.items():
        node = bp.nodes[node_id]
        for port_name in node_type_required(node_type):
            if port_name not in connected[node_id] and port_name not in node.params:
                found.add(
                    f"nodes.{node_id}",
                    f"required input {port_name!r} of {node_id!r} ({node_type.name}) is "
                    "neither connected nor given a value",
                    f"fix: bp.connect('<node>', '{node_id}.{port_name}') or give "
                    f"{port_name}=... in the node's params",
                )
        for f in node_type.params:
            if f.required and f.name not in node.params and f.name not in connected[node_id]:
                found.add(
                    f"nodes.{node_id}.params",
                    f"required param {f.name!r} of {node_id!r} ({node_type.name}) is "
                    "missing" + (f": {f.description}" if f.description else ""),
                )


def _is_declared(node_type: NodeType, name: str) -> bool:
    """A raw param among the type's own params renders itself against the run's names
    (``edit-fields`` values, per record), so its templates are checked like any other."""
    return any(spec.name == name for spec in node_type.params)


def node_type_required(node_type: NodeType) -> list[str]:
    return [p.name for p in node_type.inputs if p.required]


def _check_value(
    found: ProblemList, path: str, spec: ParamField | Port | None, value: object, bp: Blueprint
) -> None:
    if isinstance(spec, Port):  # a value for an input port: plainly the wrong kind?
        problem = None if templates.has_template(value) else kind_mismatch(spec.type, value)
    else:
        problem = spec.check(value) if spec is not None else None
    if problem:
        found.add(path, problem)
    _check_templates(found, path, value, bp)


def _check_templates(found: ProblemList, path: str, value: object, bp: Blueprint) -> None:
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return
        problem = templates.check_syntax(value)
        if problem:
            found.add(path, problem)
            return
        for name in sorted(templates.referenced_params(value) - set(bp.params)):
            hints = [f"declared params: {', '.join(sorted(bp.params)) or 'none'}"]
            found.add(
                path,
                f"template reads params.{name}, which the blueprint does not declare",
                *hints,
                _declare_hint(bp, name),
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_templates(found, f"{path}.{key}", item, bp)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_templates(found, f"{path}[{i}]", item, bp)


def _declare_hint(bp: Blueprint, name: str) -> str:
    if bp.source and str(bp.source).endswith((".yaml", ".yml", ".json")):
        return f"fix: declare it in the file's params, e.g. params: {{{name}: {{default: ...}}}}"
    return f"fix: declare it, e.g. Blueprint(..., params={{{name!r}: ...}})"


def check_settings(found: ProblemList, path: str, node: object) -> None:
    retries = getattr(node, "retries", 0)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        found.add(f"{path}.retries", f"expected an integer >= 0, got {retries!r}")
    timeout = getattr(node, "timeout", None)
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        found.add(f"{path}.timeout", f"expected a number of seconds > 0, got {timeout!r}")
    delay = getattr(node, "retry_delay", 0)
    if not isinstance(delay, int | float) or delay < 0:
        found.add(f"{path}.retry_delay", f"expected a number of seconds >= 0, got {delay!r}")


def _check_edge(
    found: ProblemList, path: str, edge: Edge, bp: Blueprint, types: dict[str, NodeType]
) -> bool:
    ok = True
    for node_id, port, side in (
        (edge.source, edge.source_port, "output"),
        (edge.target, edge.target_port, "input"),
    ):
        if node_id not in bp.nodes:
            found.add(
                path, f"edge {edge} names no node {node_id!r}", *_did_you_mean(node_id, bp.nodes)
            )
            ok = False
            continue
        node_type = types.get(node_id)
        if node_type is None:
            ok = False
            continue
        found_port = node_type.output(port) if side == "output" else node_type.input(port)
        if found_port is not None:
            continue
        hints = port_hints(node_id, node_type, port, side, suggest=1)
        found.add(path, f"node {node_id!r} has no {side} port {port!r}", *hints)
        ok = False
    if edge.source == edge.target and edge.source in bp.nodes:
        found.add(path, f"edge {edge} connects node {edge.source!r} to itself")
        ok = False
    return ok


def _check_output(
    found: ProblemList, path: str, endpoint: str, bp: Blueprint, types: dict[str, NodeType]
) -> None:
    node_id, _, port = endpoint.partition(".")
    if node_id not in bp.nodes:
        found.add(path, f"output names no node {node_id!r}", *_did_you_mean(node_id, bp.nodes))
        return
    node_type = types.get(node_id)
    if node_type is not None and node_type.output(port) is None:
        hints = port_hints(node_id, node_type, port, "output", suggest=0)
        found.add(path, f"node {node_id!r} has no output port {port!r}", *hints)


def _check_cycles(found: ProblemList, bp: Blueprint) -> None:
    graph: dict[str, set[str]] = {nid: set() for nid in bp.nodes}
    for edge in bp.edges:
        if edge.source in graph and edge.target in graph and edge.source != edge.target:
            graph[edge.target].add(edge.source)
    if _is_acyclic(graph):  # the common case, in linear time; graphlib only to name a cycle
        return
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])  # graphlib lists it along the edges
        found.add(
            "edges",
            "the graph has a cycle: " + " -> ".join(cycle),
            "hint: a blueprint is a DAG; remove one of these edges (use a loop node "
            "to repeat work)",
        )


def _is_acyclic(parents: dict[str, set[str]]) -> bool:
    children: dict[str, list[str]] = {n: [] for n in parents}
    indegree = {n: len(p) for n, p in parents.items()}
    for node, ups in parents.items():
        for up in ups:
            children[up].append(node)
    ready = [n for n, d in indegree.items() if d == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for child in children[node]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    return seen == len(parents)
