"""Every shape of an Atomiton flow document, read into one neutral form.

The desktop app's flow files changed shape several times (facts from the app's
public git history, Sep-Oct 2025):

- ``current``: ``*.flow.yaml`` since the ``templates/flows`` rename (eb6b25bb,
  4de149c0, 1c1fd775, aa0cbf81): ``nodes`` is a list of ``{id, type, name,
  version, metadata, inputPorts, outputPorts, parameters, position}``; edges are
  ``{id, source, target, sourceHandle, targetHandle}``; ``variables`` and
  ``settings.runtime.timeout`` (ms) at the top.
- ``data``: nodes ``{id, type, position, data}`` (3a27b626, 18fcf840, 69e6d077,
  4040af02, a3e9f4da, b7dc4d0d, 46a33430), with edge endpoints that are ids
  (``source: csv-source``), ``{nodeId, portId}`` or ``{node, port}``.
- ``schema+data``: ``parameters`` holds the UI's field schemas (``{type, default,
  control}``) and ``data`` the values (36eef507, a6434c4a, 57ae38d4, 59800996).
- ``wrapped``: ``blueprint:`` (fbab7d9d) or ``flow:`` (ab565f5d, with ``data:``)
  around ``metadata`` and ``nodes`` keyed by id.

Two of the app's own files (4daf1513, e37d9b86) are malformed: their ``nodes`` sit
indented under ``metadata``. They get an error that says so, with the line.

Reading never maps types or params (see ``mapping``); it only finds, for every
node, its id, type, name, params and position, and, for every edge, its two
ends, each with the document path it came from, so later problems can say where.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conductor_nb.errors import ProblemList

NODE_INFO_KEYS = {"id", "type", "name", "version", "metadata", "inputPorts", "outputPorts"}
NODE_INFO_KEYS |= {"category", "position", "parameters", "data", "settings", "label"}
FLOW_INFO_KEYS = {"id", "name", "description", "type", "version", "category", "metadata"}
FLOW_INFO_KEYS |= {"nodes", "edges", "variables", "settings"}
DATA_INFO_KEYS = {"customLabel", "lastModified", "label"}


@dataclass
class RawNode:
    """One node as the flow wrote it: ``path`` is where (``nodes[2]``, ``flow.nodes.x``)."""

    id: str
    type: str
    path: str
    params: dict[str, Any]
    param_paths: dict[str, str]
    name: str | None = None
    position: tuple[float, float] | None = None
    output_ports: list[str] = field(default_factory=list)


@dataclass
class RawEdge:
    path: str
    source: str
    source_port: str | None
    target: str
    target_port: str | None


@dataclass
class RawFlow:
    shape: str
    id: str | None
    name: str | None
    description: str | None
    nodes: list[RawNode]
    edges: list[RawEdge]
    variables: dict[str, Any]
    variables_path: str
    settings: dict[str, Any]
    settings_path: str


def is_atomiton(data: Any) -> bool:
    """Whether ``data`` is an Atomiton flow rather than a conductor_nb blueprint.

    Blueprints key their nodes by id (a mapping); every Atomiton shape either lists
    its nodes or wraps the document in ``flow:``/``blueprint:``.
    """
    if not isinstance(data, Mapping) or "conductor" in data:
        return False
    if isinstance(data.get("nodes"), list):
        return True
    wrapped = data.get("flow", data.get("blueprint"))
    return len(data) == 1 and isinstance(wrapped, Mapping)


def read(data: Mapping[str, Any], problems: ProblemList) -> RawFlow | None:
    """The neutral form of any shape; None (with problems) when it is not readable."""
    for key in ("flow", "blueprint"):
        if key in data and "nodes" not in data:
            return _read_wrapped(data[key], key, problems)
    return _read_listed(data, problems)


def _read_listed(data: Mapping[str, Any], problems: ProblemList) -> RawFlow | None:
    nodes = [n for i, raw in enumerate(data["nodes"]) if (n := _node(raw, f"nodes[{i}]", problems))]
    edges = _edges(data.get("edges"), "edges", problems)
    shape = "current"
    if any(_has_schemas(raw) for raw in data["nodes"] if isinstance(raw, Mapping)):
        shape = "schema+data"
    elif any(isinstance(r, Mapping) and "data" in r for r in data["nodes"]):
        shape = "data"
    return RawFlow(
        shape=shape,
        id=_text(data.get("id")),
        name=_text(data.get("name")),
        description=_text(data.get("description")),
        nodes=nodes,
        edges=edges,
        variables=dict(data.get("variables") or {}),
        variables_path="variables",
        settings=dict(data.get("settings") or {}),
        settings_path="settings",
    )


def _read_wrapped(doc: Any, key: str, problems: ProblemList) -> RawFlow | None:
    if not isinstance(doc, Mapping):
        problems.add(key, f"expected a mapping with metadata, nodes and edges, got {doc!r:.40}")
        return None
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {}
    body, where = (
        (doc["data"], f"{key}.data") if isinstance(doc.get("data"), Mapping) else (doc, key)
    )
    if "nodes" not in body:
        if isinstance(meta, Mapping) and "nodes" in meta:
            problems.add(
                f"{key}.metadata.nodes",
                "the nodes are indented under metadata, so the flow has no nodes; this "
                "file is malformed (the app's history has such files)",
                f"fix: indent 'nodes:' to the level of 'metadata:' (under '{key}:')",
            )
        else:
            problems.add(key, f"no nodes: expected {key}.nodes (a mapping of node id -> node)")
        return None
    raw_nodes = body["nodes"]
    if not isinstance(raw_nodes, Mapping):
        problems.add(f"{where}.nodes", "expected a mapping of node id -> node")
        return None
    nodes = []
    for node_id, raw in raw_nodes.items():
        if isinstance(raw, Mapping):
            raw = {"id": node_id, **raw}
        node = _node(raw, f"{where}.nodes.{node_id}", problems)
        if node:
            nodes.append(node)
    edges_at = f"{where}.edges" if "edges" in body else f"{key}.edges"
    edges = _edges(body.get("edges", doc.get("edges")), edges_at, problems)
    return RawFlow(
        shape=f"wrapped in {key}:",
        id=_text(meta.get("id")) if isinstance(meta, Mapping) else None,
        name=_text(meta.get("name")) if isinstance(meta, Mapping) else None,
        description=_text(meta.get("description")) if isinstance(meta, Mapping) else None,
        nodes=nodes,
        edges=edges,
        variables=dict(body.get("variables") or doc.get("variables") or {}),
        variables_path=f"{key}.variables",
        settings=dict(doc.get("settings") or {}),
        settings_path=f"{key}.settings",
    )


def _has_schemas(raw: Mapping[str, Any]) -> bool:
    params = raw.get("parameters")
    return (
        isinstance(params, Mapping)
        and bool(params)
        and "data" in raw
        and all(_is_field_schema(v) for v in params.values())
    )


def _is_field_schema(value: Any) -> bool:
    return (
        isinstance(value, Mapping) and "type" in value and bool({"control", "default"} & set(value))
    )


def _node(raw: Any, path: str, problems: ProblemList) -> RawNode | None:
    if not isinstance(raw, Mapping):
        problems.add(path, f"expected a node (a mapping with id and type), got {raw!r:.40}")
        return None
    node_id, node_type = raw.get("id"), raw.get("type")
    if not isinstance(node_id, str | int) or node_id == "":
        problems.add(f"{path}.id", "every node needs an id")
        return None
    if not isinstance(node_type, str) or not node_type:
        problems.add(f"{path}.type", f"node {node_id!r} has no type")
        return None
    params, param_paths = _params(raw, path)
    name, data = raw.get("name"), raw.get("data")
    if not name and isinstance(data, Mapping):
        name = data.get("customLabel") or data.get("label")
    return RawNode(
        id=str(node_id),
        type=node_type,
        path=path,
        params=params,
        param_paths=param_paths,
        name=name if isinstance(name, str) else None,
        position=_position(raw.get("position")),
        output_ports=[
            str(p.get("id")) for p in raw.get("outputPorts") or [] if isinstance(p, Mapping)
        ],
    )


def _params(raw: Mapping[str, Any], path: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Values from ``parameters`` (values), or ``data`` (values) with schema defaults."""
    params: dict[str, Any] = {}
    paths: dict[str, str] = {}
    declared = raw.get("parameters")
    data = raw.get("data")
    if isinstance(declared, Mapping):
        for key, value in declared.items():
            if isinstance(data, Mapping) and _is_field_schema(value):
                if "default" in value:  # the app's default, used when data leaves it out
                    params[key], paths[key] = value["default"], f"{path}.parameters.{key}"
            else:
                params[key], paths[key] = value, f"{path}.parameters.{key}"
    if isinstance(data, Mapping):
        for key, value in data.items():
            if key not in DATA_INFO_KEYS:
                params[key], paths[key] = value, f"{path}.data.{key}"
    return params, paths


def _edges(raw: Any, path: str, problems: ProblemList) -> list[RawEdge]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(path, "expected a list of edges")
        return []
    edges = []
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            problems.add(where, f"expected an edge (source, target), got {item!r:.40}")
            continue
        source = _end(item.get("source"), item.get("sourceHandle"))
        target = _end(item.get("target"), item.get("targetHandle"))
        if source is None or target is None:
            which = "source" if source is None else "target"
            problems.add(
                f"{where}.{which}",
                f"cannot read the edge's {which}: expected a node id, {{nodeId, portId}} "
                f"or {{node, port}}, got {item.get(which)!r:.60}",
            )
            continue
        edges.append(RawEdge(where, source[0], source[1], target[0], target[1]))
    return edges


def _end(value: Any, handle: Any) -> tuple[str, str | None] | None:
    port = str(handle) if isinstance(handle, str) and handle else None
    if isinstance(value, str | int) and value != "":
        return str(value), port
    if isinstance(value, Mapping):
        node = value.get("nodeId", value.get("node"))
        inner = value.get("portId", value.get("port"))
        if isinstance(node, str | int) and node != "":
            return str(node), str(inner) if inner else port
    return None


def _position(value: Any) -> tuple[float, float] | None:
    if isinstance(value, Mapping):
        x, y = value.get("x"), value.get("y")
        if isinstance(x, int | float) and isinstance(y, int | float):
            return float(x), float(y)
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
