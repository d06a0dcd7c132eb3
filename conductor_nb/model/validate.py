"""Semantic checks of a blueprint against a registry. Every problem is collected, none raised.

Checks: node types and versions exist; node settings make sense; params and
input values fit the type's schema; edges name existing nodes and ports; an
input takes one edge unless it is ``many``; required inputs are connected or
given; outputs name real ports; templates and sandboxed expressions parse and read
only names they have (declared params, in a body the params in its scope); the graph
has no cycle (the problem names the cycle).
"""

from __future__ import annotations

import dataclasses
import graphlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conductor_nb.errors import Problem, ProblemList
from conductor_nb.model import settings, templates
from conductor_nb.model.blueprint import (
    ID_PATTERN,
    _did_you_mean,
    _unknown_value_problem,
    port_hints,
)
from conductor_nb.model.params import did_you_mean
from conductor_nb.model.types import (
    NodeType,
    ParamField,
    Port,
    TypeFacts,
    check_type,
    kind_mismatch,
)

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint, Edge


def validate_blueprint(bp: Blueprint, *, is_body: bool = False) -> list[Problem]:
    """Every problem of ``bp``. A body (``is_body``) is told so in messages about names:
    its params in scope include the outer run's (see :mod:`.params`)."""
    return check(bp, is_body=is_body).problems


@dataclass
class Checked:
    """What validating a blueprint found, and the facts a plan reuses from it."""

    problems: list[Problem]
    types: dict[str, NodeType]
    """The resolved type of every node whose type exists."""
    in_order: bool
    """Every edge runs from a node added earlier to one added later: the order nodes were
    added in is then the plan's topological order (and there is no cycle)."""


def check(bp: Blueprint, *, is_body: bool = False) -> Checked:
    """Validate ``bp`` (see :func:`validate_blueprint`), keeping the facts found on the way.

    Proportional and cheap at 10,000 nodes: node types and their port lookups are
    resolved once per type, a node's settings and values go to the slower checks only
    when they are not plainly valid, and an edge costs a few dict lookups.
    """
    found = ProblemList()
    names = _Names(bp, is_body)
    types = _check_nodes(found, bp, names)
    connected, in_order = _check_edges(found, bp, types)
    _check_required(found, bp, types, connected)
    for name, endpoint in bp.outputs.items():
        _check_output(found, f"outputs.{name}", endpoint, bp, types)
    for name, param in bp.params.items():
        mismatch = check_type(param.type, param.default)
        if mismatch:
            found.add(f"params.{name}.default", mismatch)
    if not in_order:
        _check_cycles(found, bp)
    return Checked(found.problems, types, in_order)


def _check_nodes(found: ProblemList, bp: Blueprint, names: _Names) -> dict[str, NodeType]:
    """Ids, types and versions, param values and settings; the resolved type per node."""
    types: dict[str, NodeType] = {}
    resolved: dict[tuple[str, int | None], NodeType | None] = {}
    registry = bp.registry
    problems = found.problems
    valid_id = ID_PATTERN.match
    settings_problems = settings.problems_of
    for node_id, node in bp.nodes.items():
        if not valid_id(node_id):
            found.add(
                f"nodes.{node_id}",
                "node ids are identifiers: letters, digits, '_' or '-', starting "
                "with a letter or '_', at most 64 characters",
            )
        key = (node.type, node.version)
        node_type = resolved.get(key, _UNRESOLVED)
        if node_type is _UNRESOLVED:
            node_type = resolved[key] = registry.find(node.type, node.version)
        if node_type is None:
            path = f"nodes.{node_id}"
            found.add(
                f"{path}.type"
                if node.version is None or node.type not in registry
                else f"{path}.version",
                registry.unknown_message(node.type, node.version),
            )
            continue
        types[node_id] = node_type
        if node.params or node_type.validate_params or node_type.check_nested:
            _check_params(found, bp, f"nodes.{node_id}", node, node_type, names)
        wrong = settings_problems(node, node_id)
        if wrong:
            problems.extend(wrong)
    return types


_UNRESOLVED: Any = object()


def _check_params(
    found: ProblemList, bp: Blueprint, path: str, node: Any, node_type: NodeType, names: _Names
) -> None:
    """A node's param values, its type's own checks of them and of its nested bodies."""
    if node.params:
        _check_values(found, path, node_type, node.params, names)
    if node_type.validate_params is not None:
        for key, message in node_type.validate_params(node.params):
            found.add(f"{path}.params.{key}" if key else f"{path}.params", message)
    if node_type.check_nested is not None:
        for inner in node_type.check_nested(node.params, bp.registry, bp.params):
            found.add(f"{path}.params.{inner.path}", inner.message, *inner.hints)


def _check_values(
    found: ProblemList,
    path: str,
    node_type: NodeType,
    values: Mapping[str, Any],
    names: _Names,
) -> None:
    for key, value in values.items():
        spec = node_type.param(key)
        port = node_type.input(key) if spec is None else None
        if spec is None and port is None:
            found.problems.append(_unknown_value_problem(path[len("nodes.") :], node_type, key))
            continue
        if key in node_type.raw_params and not _is_declared(node_type, key):
            continue  # a sub-blueprint body: its templates belong to the inner runs
        if spec is not None and spec.names and not _in_template_language(node_type, values):
            spec = dataclasses.replace(spec, names=())  # another language: its own checks
        _check_value(found, f"{path}.params.{key}", spec or port, value, names)


def _in_template_language(node_type: NodeType, values: Mapping[str, Any]) -> bool:
    """Whether the node's expressions are in the sandboxed template language: a type with a
    ``language`` param (transform's ``javascript``) says so there; the default is Jinja."""
    spec = node_type.param("language")
    if spec is None:
        return True
    return values.get("language", spec.default) in ("jinja", None)


def _check_edges(
    found: ProblemList, bp: Blueprint, types: dict[str, NodeType]
) -> tuple[set[tuple[str, str]], bool]:
    """Edges name real nodes and ports; single inputs take one edge. Returns the connected
    inputs (node, port) and whether every edge runs forward in the order nodes were added."""
    index = {node_id: i for i, node_id in enumerate(bp.nodes)}
    facts = _facts_by_node(types)
    fed: dict[tuple[str, str], int] = {}  # input -> its first edge
    taken: dict[tuple[str, str], int] = {}  # single inputs -> their second edge
    in_order = True
    for i, edge in enumerate(bp.edges):
        source, target, port = edge.source, edge.target, edge.target_port
        out_facts, in_facts = facts.get(source), facts.get(target)
        if (
            out_facts is None
            or in_facts is None
            or source == target
            or edge.source_port not in out_facts.outputs_by_name
            or port not in in_facts.inputs_by_name
        ):
            in_order = False  # a broken edge: the cycle check decides about the rest
            if not _check_edge(found, f"edges[{i}]", edge, bp, types) or in_facts is None:
                continue
        elif in_order and index[source] > index[target]:
            in_order = False
        key = (target, port)
        if fed.setdefault(key, i) != i and key not in taken and port in in_facts.single_inputs:
            taken[key] = i
    for (target, port), i in sorted(taken.items(), key=lambda item: fed[item[0]]):
        found.add(
            f"edges[{i}]",
            f"input '{target}.{port}' already has an edge (edges[{fed[(target, port)]}]) "
            "and takes only one",
            "hint: join the values in a node first, or use a node type whose input is 'many'",
        )
    return set(fed), in_order


def _facts_by_node(types: dict[str, NodeType]) -> dict[str, TypeFacts]:
    facts = {node_type: node_type.facts for node_type in set(types.values())}
    return {node_id: facts[node_type] for node_id, node_type in types.items()}


def _check_required(
    found: ProblemList,
    bp: Blueprint,
    types: dict[str, NodeType],
    connected: set[tuple[str, str]],
) -> None:
    """Required inputs are connected or given; required params are given."""
    nodes = bp.nodes
    needy = {t for t in set(types.values()) if t.facts.required_inputs or t.facts.required_params}
    for node_id, node_type in types.items():
        if node_type not in needy:
            continue
        facts, node = node_type.facts, nodes[node_id]
        for port_name in facts.required_inputs:
            if (node_id, port_name) not in connected and port_name not in node.params:
                found.add(
                    f"nodes.{node_id}",
                    f"required input {port_name!r} of {node_id!r} ({node_type.name}) is "
                    "neither connected nor given a value",
                    f"fix: bp.connect('<node>', '{node_id}.{port_name}') or give "
                    f"{port_name}=... in the node's params",
                )
        for f in facts.required_params:
            if f.name not in node.params and (node_id, f.name) not in connected:
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
    found: ProblemList, path: str, spec: ParamField | Port | None, value: object, names: _Names
) -> None:
    if isinstance(spec, Port):  # a value for an input port: plainly the wrong kind?
        problem = None if templates.has_template(value) else kind_mismatch(spec.type, value)
    else:
        problem = spec.check(value) if spec is not None else None
    if problem:
        found.add(path, problem)
    own = spec.names if isinstance(spec, ParamField) else ()
    if _is_expression(spec, value):
        names.check_expression(found, path, str(value), own)
    else:
        names.check_templates(found, path, value, own)


def _is_expression(spec: ParamField | Port | None, value: object) -> bool:
    """A sandboxed expression as written (a template renders to one at run time)."""
    return (
        isinstance(spec, ParamField)
        and spec.type == "code"
        and bool(spec.names)
        and isinstance(value, str)
        and not templates.has_template(value)
    )


def _declare_hint(bp: Blueprint, name: str) -> str:
    if bp.source and str(bp.source).endswith((".yaml", ".yml", ".json")):
        return f"fix: declare it in the file's params, e.g. params: {{{name}: {{default: ...}}}}"
    return f"fix: declare it, e.g. Blueprint(..., params={{{name!r}: ...}})"


class _Names:
    """The names templates and expressions may read in one blueprint: its declared params
    (for a body, with the outer run's), the template names, and a param's own names."""

    def __init__(self, bp: Blueprint, is_body: bool) -> None:
        self.bp = bp
        self.is_body = is_body

    def check_templates(
        self, found: ProblemList, path: str, value: object, extra: tuple[str, ...]
    ) -> None:
        if isinstance(value, str):
            if templates.has_template(value):
                self._check_template(found, path, value, extra)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.check_templates(found, f"{path}.{key}", item, extra)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.check_templates(found, f"{path}[{i}]", item, extra)

    def _check_template(
        self, found: ProblemList, path: str, text: str, extra: tuple[str, ...]
    ) -> None:
        problem, reads = templates.template_facts(text)
        if problem:
            found.add(path, problem)
            return
        if reads is None:
            return
        known = (*templates.TEMPLATE_NAMES, *extra)
        for name in sorted(reads.names - set(known)):
            found.add(
                path,
                f"template reads {name!r}, which templates here do not have",
                *did_you_mean(name, known),
                f"names templates here have: {', '.join(known)}",
            )
        self._check_params(found, path, reads.params, "template")

    def check_expression(
        self, found: ProblemList, path: str, expr: str, known: tuple[str, ...]
    ) -> None:
        reads = templates.expression_reads(expr)
        if reads is None:
            return  # a syntax error: the node type's own check reports it
        for name in sorted(reads.names - set(known)):
            found.add(
                path,
                f"expression reads {name!r}, which is not defined here",
                *did_you_mean(name, known),
                f"names this expression has: {', '.join(known)}",
            )
        if "params" in known:
            self._check_params(found, path, reads.params, "expression")

    def _check_params(self, found: ProblemList, path: str, read: frozenset[str], what: str) -> None:
        declared = self.bp.params
        for name in sorted(read - set(declared)):
            if self.is_body:
                message = f"{what} reads params.{name}, which is not in scope in this body"
                listing = f"params in scope here: {', '.join(sorted(declared)) or 'none'}"
                fix = (
                    "fix: declare it in the outer blueprint's params (a body sees them) or in "
                    "the body's own params"
                )
            else:
                message = f"{what} reads params.{name}, which the blueprint does not declare"
                listing = f"declared params: {', '.join(sorted(declared)) or 'none'}"
                fix = _declare_hint(self.bp, name)
            found.add(path, message, *did_you_mean(name, declared), listing, fix)


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
