"""Sub-blueprints run by container nodes (loop, parallel, group).

A body is a blueprint document given inline (a dict, the blueprint file
format; ``conductor``/``id`` may be left out) or a stored Blueprint. It sees the
params in its scope (:mod:`conductor_nb.model.params`): the outer run's, its own
declared ones (template defaults rendered over the outer ones), and what the
container passes (``item``, ``index``, ``input``; a group's ``params``). Before
each run it is prepared:

- every name in scope that the body does not declare is declared as a param of
  the body, and template defaults become plain declarations (their values come in
  with the scope);
- entry nodes (no edge into their ``input`` port, no ``input`` value) get an
  edge from an added ``_input`` node (type ``pass``) that holds the current
  value, so their templates read it as ``{{ inputs.input }}``; data is passed
  as a value and never rendered as a template;
- a body without declared outputs outputs its sink nodes' ``output``.

Validation prepares each body the same way, with the names in scope at that
point of the outer blueprint, so a run and its validation agree on what a name
means. Each run is a child of the node's run: its node states appear as
``<prefix>.<inner id>`` (``loop[3].fetch``) in events, views and history.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from conductor_nb.errors import BlueprintError, Problem
from conductor_nb.model import templates
from conductor_nb.model.params import body_values, scope_problems, untemplated
from conductor_nb.model.types import NestedCheck

ENTRY_NODE = "_input"


def _edge_ends(edge: Any) -> tuple[str, str]:
    if isinstance(edge, Mapping):
        source, target = str(edge.get("source", "")), str(edge.get("target", ""))
    else:
        source, _, target = str(edge).partition("->")
    return source.strip(), target.strip()


def _takes_input(registry: Any, node: Mapping[str, Any]) -> bool:
    if registry is None:
        return True
    node_type = registry.find(str(node.get("type", "")), node.get("version"))
    return node_type is not None and node_type.input("input") is not None


def prepare(
    doc: Mapping[str, Any],
    name: str,
    scope: Iterable[str],
    entry: str | None,
    registry: Any = None,
) -> dict[str, Any]:
    """A runnable copy of the body document (see the module docstring)."""
    body = copy.deepcopy(dict(doc))
    body.setdefault("conductor", 1)
    body.setdefault("id", f"{name}-body")
    own = body.get("params")
    declared = untemplated(own) if isinstance(own, Mapping) else (own or {})
    body["params"] = declared
    if isinstance(declared, dict):
        for key in scope:
            declared.setdefault(key, {"default": None, "description": f"in scope of {name}"})
    nodes = body.get("nodes") or {}
    fed_inputs, has_downstream = set(), set()
    for edge in body.get("edges") or []:
        source, target = _edge_ends(edge)
        has_downstream.add(source.split(".")[0])
        fed_inputs.add(target)
    if entry is not None:
        entries = [
            node_id
            for node_id, node in nodes.items()
            if f"{node_id}.input" not in fed_inputs
            and "input" not in (node.get("params") or {})
            and _takes_input(registry, node)
        ]
        if entries and ENTRY_NODE not in nodes:
            nodes[ENTRY_NODE] = {"type": "pass", "params": {"input": f"{{{{ params.{entry} }}}}"}}
            edges = body.setdefault("edges", []) or []
            body["edges"] = edges + [f"{ENTRY_NODE}.output -> {n}.input" for n in entries]
            has_downstream.add(ENTRY_NODE)
    if not body.get("outputs"):
        sinks = [n for n in nodes if n not in has_downstream]
        if len(sinks) == 1:
            body["outputs"] = {"output": f"{sinks[0]}.output"}
        else:
            body["outputs"] = {s: f"{s}.output" for s in sinks}
    return body


def registry_of(ctx: Any) -> Any:
    run = getattr(ctx, "run", None)
    blueprint = getattr(run, "blueprint", None)
    return getattr(blueprint, "registry", None)


def build(
    ctx: Any, doc: Any, name: str, passed: Mapping[str, Any], entry: str | None
) -> tuple[Any, dict[str, Any]]:
    """A Blueprint for one run of a body document (or a Blueprint), and the param values
    it runs with: the node's scope (``ctx.params``), the body's own, then ``passed``."""
    from conductor_nb.model.blueprint import Blueprint

    if isinstance(doc, Blueprint):
        doc = doc.to_dict()
    if not isinstance(doc, Mapping):
        raise TypeError(
            f"{name}: the body must be a blueprint document (a mapping with nodes and edges), "
            f"got a {type(doc).__name__}"
        )
    own = doc.get("params")
    values = body_values(
        own if isinstance(own, Mapping) else {},
        getattr(ctx, "params", None) or {},
        passed,
        _template_names(ctx),
    )
    registry = registry_of(ctx)
    body = Blueprint.from_dict(prepare(doc, name, values, entry, registry), registry=registry)
    return body, values


def _template_names(ctx: Any) -> dict[str, Any]:
    """``run`` and ``now`` for a body's template defaults (``params`` is the scope)."""
    run = getattr(ctx, "run", None)
    names = templates.base_context({}, getattr(ctx, "run_id", ""), getattr(run, "started_at", None))
    names.pop("params")
    return names


def result_of(outputs: Mapping[str, Any]) -> Any:
    """A body run's result: its only output, or the dict of its outputs."""
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    return dict(outputs)


def nested_check(names: tuple[str, ...]) -> NestedCheck:
    """Validation inside the body params ``names`` of a container node: each body is
    prepared as for a run, with the names in scope where the node is (``outer``), and
    validated with the outer registry; paths are ``<param>.<path inside the body>``."""

    def check(values: Mapping[str, Any], registry: Any, outer: Mapping[str, Any]) -> list[Problem]:
        found: list[Problem] = []
        for name in names:
            doc = values.get(name)
            if not isinstance(doc, Mapping) or not isinstance(doc.get("nodes"), Mapping):
                continue  # the shape itself is check_body's to report
            found += _problems_inside(name, doc, values, registry, outer)
        return found

    return check


def _problems_inside(
    name: str,
    doc: Mapping[str, Any],
    values: Mapping[str, Any],
    registry: Any,
    outer: Mapping[str, Any],
) -> list[Problem]:
    from conductor_nb.model.blueprint import Blueprint
    from conductor_nb.model.validate import validate_blueprint

    given = values.get("params")
    if name == "body":  # loop and parallel pass item, index and input to their body
        passed, entry = ["item", "index", "input"], "item"
    else:  # group passes its params, and its input
        passed, entry = [*(given if isinstance(given, Mapping) else ()), "input"], "input"
    own = doc.get("params")
    found = scope_problems(own, outer, passed) if isinstance(own, Mapping) else []
    try:
        body = Blueprint.from_dict(
            prepare(doc, name, [*outer, *passed], entry, registry),
            registry=registry,
            validate=False,
        )
        found += validate_blueprint(body, is_body=True)
    except BlueprintError as exc:
        found += exc.problems
    return [
        Problem(f"{name}.{p.path}" if p.path else name, p.message, p.hints)
        for p in found
        if not p.path.startswith(f"nodes.{ENTRY_NODE}")
    ]


def check_body(value: Any, required: bool = True) -> list[tuple[str, str]]:
    if value is None:
        return [("body", "needs a body: a sub-blueprint with nodes and edges")] if required else []
    if not isinstance(value, Mapping) or not isinstance(value.get("nodes"), Mapping):
        return [("body", "the body must be a blueprint document: a mapping with 'nodes'")]
    if not value["nodes"]:
        return [("body", "the body has no nodes")]
    return []
