"""Atomiton flows: the desktop app's documents, converted to blueprints and back.

conductor_nb is the Python take on the Atomiton app's engine, so its users'
flows (``*.flow.yaml`` and every earlier shape, see ``shapes``) load as
blueprints: ``cnb.load()`` and every CLI command recognise a flow by its shape
and convert it in memory (one ``ConvertedFlowWarning`` says so);
``conductor-nb import FLOW -o bp.yaml`` writes the blueprint out, and
``conductor-nb export bp.yaml --to atomiton`` writes the current flow shape back.

The model: ``shapes`` reads any shape into one neutral form; ``mapping``
converts each node's type and params; ``lift`` wires the nodes and lifts what
runs per item into loop bodies; ``export`` goes the other way. Every part that
has no equivalent is a located problem (``nodes[4].parameters.blendMode (line
240)``); with ``lenient`` the rest is converted and the problems are listed in
``Conversion.left_out`` instead of raised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conductor_nb.errors import BlueprintError, Problem, ProblemList
from conductor_nb.model.atomiton import lift, mapping, shapes
from conductor_nb.model.atomiton.shapes import is_atomiton

__all__ = [
    "Conversion",
    "ConvertedFlowWarning",
    "FlowConversionError",
    "convert",
    "is_atomiton",
]

VARIABLE_TYPES = {
    "string": "str",
    "number": "number",
    "integer": "int",
    "boolean": "bool",
    "array": "list",
    "object": "dict",
}


class ConvertedFlowWarning(UserWarning):
    """An Atomiton flow was converted to a blueprint in memory (said once per load)."""


class FlowConversionError(BlueprintError):
    """Parts of an Atomiton flow have no equivalent; ``problems`` locates each."""

    def _message(self) -> str:
        return (
            super()._message().replace(" in blueprint ", " converting Atomiton flow ", 1)
            + "\n  (lenient=True, or --lenient on the command line, converts the rest and "
            "lists what was left out)"
        )


@dataclass
class Conversion:
    """A converted flow: the blueprint document, and what the conversion has to say."""

    document: dict[str, Any]
    locations: dict[str, tuple[int, int]]
    shape: str
    notes: list[str] = field(default_factory=list)
    left_out: list[Problem] = field(default_factory=list)

    def summary(self, source: str | None = None) -> str:
        """The one message a load gives: what was converted, and what to know."""
        what = f"{source} is" if source else "this is"
        lines = [f"{what} an Atomiton flow ({self.shape} shape), converted to a blueprint"]
        lines += [f"  {note}" for note in self.notes]
        if self.left_out:
            lines.append(f"  left out ({len(self.left_out)}):")
            lines += [f"    {p.render()}" for p in self.left_out]
        return "\n".join(lines)


def convert(
    data: Mapping[str, Any],
    locations: Mapping[str, tuple[int, int]] | None = None,
    *,
    lenient: bool = False,
    path_map: Mapping[str, str] | None = None,
    source: str | None = None,
) -> Conversion:
    """The blueprint document for an Atomiton flow; raises BlueprintError listing every
    part that cannot be converted (unless ``lenient``: then they are ``left_out``)."""
    locs = dict(locations or {})
    problems = ProblemList()
    flow = shapes.read(data, problems)
    if flow is None:
        raise BlueprintError(_located(problems.problems, locs), source=source)
    options = mapping.Options(path_map=dict(path_map or {}))
    options.node_timeout = _timeout(flow, problems)
    mapper = mapping.Mapper(problems, options)
    ids = _native_ids(flow.nodes)
    nodes = {}
    for raw in flow.nodes:
        converted = mapper.node(raw, ids[raw.id])
        if converted:
            nodes[converted.id] = converted
    wires = [
        lift.Wire(
            e.path,
            ids.get(e.source, e.source),
            e.source_port,
            ids.get(e.target, e.target),
            e.target_port,
        )
        for e in flow.edges
    ]
    docs, edges, native_paths = lift.lift(nodes, wires, problems, mapper.notes)
    found = _located(problems.problems, locs)
    if found and not lenient:
        raise FlowConversionError(found, name=flow.name or flow.id, source=source)
    document = {
        "conductor": 1,
        "id": _flow_id(flow, source),
        "name": flow.name,
        "description": flow.description,
        "params": _params(flow, mapper),
        "nodes": docs,
        "edges": edges,
        "outputs": {nid: f"{nid}.output" for nid in lift.sinks(docs, edges)},
    }
    document = {k: v for k, v in document.items() if v not in (None, "", {})}
    renamed = [f"node {old!r} is {new!r}" for old, new in ids.items() if old != new]
    if renamed:
        mapper.notes.append("ids made into identifiers: " + ", ".join(renamed))
    native_locs = {path: locs[where] for path, where in native_paths.items() if where in locs}
    return Conversion(document, native_locs, flow.shape, mapper.notes, found if lenient else [])


def _located(problems: list[Problem], locs: Mapping[str, tuple[int, int]]) -> list[Problem]:
    out = []
    for p in problems:
        path = p.path
        while path and path not in locs:
            path = path[: path.rindex("[")] if path.endswith("]") else path.rpartition(".")[0]
        line, column = locs.get(path, (None, None))
        out.append(Problem(p.path, p.message, p.hints, p.line or line, p.column or column))
    return out


def _native_ids(nodes: list[shapes.RawNode]) -> dict[str, str]:
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for raw in nodes:
        new = re.sub(r"[^A-Za-z0-9_-]", "_", raw.id)[:60]
        if not re.match(r"[A-Za-z_]", new):
            new = f"n_{new}"
        base, i = new, 2
        while new in taken:
            new, i = f"{base}_{i}", i + 1
        taken.add(new)
        ids[raw.id] = new
    return ids


def _timeout(flow: shapes.RawFlow, problems: ProblemList) -> float | None:
    runtime = flow.settings.get("runtime")
    if not isinstance(runtime, Mapping) or runtime.get("timeout") is None:
        return None
    ms = runtime["timeout"]
    if not isinstance(ms, int | float) or isinstance(ms, bool) or ms <= 0:
        problems.add(
            f"{flow.settings_path}.runtime.timeout", f"expected milliseconds > 0, got {ms!r}"
        )
        return None
    return ms / 1000  # the app's group runner applies it to every node


def _params(flow: shapes.RawFlow, mapper: mapping.Mapper) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, spec in flow.variables.items():
        key = re.sub(r"\W", "_", str(name))
        if not isinstance(spec, Mapping):
            params[key] = {"default": spec}
            continue
        default = spec.get("defaultValue", spec.get("default"))
        if isinstance(default, str) and default.startswith("/"):
            default = mapper.remap(default)
        entry: dict[str, Any] = {"default": default}
        kind = VARIABLE_TYPES.get(str(spec.get("type")))
        if kind:
            entry["type"] = kind
        if spec.get("description"):
            entry["description"] = str(spec["description"])
        params[key] = entry
    return params


def _flow_id(flow: shapes.RawFlow, source: str | None) -> str:
    for candidate in (flow.id, flow.name, (source or "").rsplit("/", 1)[-1].split(".")[0]):
        if candidate:
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", candidate).strip("-.")[:120]
            if slug:
                return slug
    return "atomiton-flow"
