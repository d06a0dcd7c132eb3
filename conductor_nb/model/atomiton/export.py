"""A blueprint in the Atomiton app's current flow shape (``export --to atomiton``).

The reverse of ``mapping`` and ``lift``: our types and params get the app's names
back (``spreadsheet.path`` -> ``filePath``, seconds -> milliseconds), a JavaScript
``transform`` keeps its function as ``transformFunction``, a ``code`` node becomes
the app's ``transform`` with ``code``, and a loop or parallel with a body becomes the
app's ``loop`` (plus a ``parallel`` for ours) followed by the body's nodes, fed from
its ``item`` port. A node or param the app has no word for is a problem, raised
together (``BlueprintError``), so a round trip never loses anything quietly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from conductor_nb.errors import BlueprintError, ProblemList

_ITEMS = re.compile(r"^\{\{\s*(?:\(\s*)?inputs\.input\.(\w+)\s*(?:\)\s*\[:(\d+)\])?\s*\}\}$")
_REVERSE = {
    "spreadsheet": {"path": "filePath", "headers": "hasHeaders", "skipEmpty": "skipEmptyLines"},
    "file-system": {"path": "filePath"},
    "image": {"overlay": "watermarkPath", "keepAspect": "maintainAspectRatio"},
    "parallel": {"maintainOrder": "preserveOrder"},
    "loop": {"mode": "loopType", "times": "count"},
}
_SUPPORTED = {"edit-fields", "transform", "code", "spreadsheet", "file-system", "image"}
_SUPPORTED |= {"loop", "parallel", "http-request", "shell-command", "pass"}


def to_flow(bp: Any) -> dict[str, Any]:
    """The current Atomiton flow document for blueprint ``bp``."""
    problems = ProblemList()
    out = _Flow(problems)
    for node in bp.nodes.values():
        out.node(node.id, node.type, dict(node.params), node.name, node.position, node.timeout)
    for edge in bp.edges:
        out.edge(edge.source, edge.source_port, edge.target, edge.target_port)
    if problems:
        raise BlueprintError(problems.problems, name=bp.id, source=bp.source)
    flow: dict[str, Any] = {
        "id": bp.id,
        "name": bp.name or bp.id,
        "description": bp.description or "",
        "type": "group",
        "version": "1.0.0",
        "metadata": {"source": "conductor_nb"},
        "nodes": out.nodes,
        "edges": out.edges,
    }
    if bp.params:
        flow["variables"] = {
            name: {"type": _variable_type(spec.type), "defaultValue": spec.default}
            | ({"description": spec.description} if spec.description else {})
            for name, spec in bp.params.items()
        }
    timeouts = {n.timeout for n in bp.nodes.values()}
    if len(timeouts) == 1 and None not in timeouts:
        flow["settings"] = {"runtime": {"timeout": round(next(iter(timeouts)) * 1000)}}
    return flow


def _variable_type(kind: str) -> str:
    reverse = {"str": "string", "int": "number", "float": "number", "number": "number"}
    reverse |= {"bool": "boolean", "list": "array", "dict": "object", "path": "string"}
    return reverse.get(kind, "any")


class _Flow:
    def __init__(self, problems: ProblemList) -> None:
        self.problems = problems
        self.nodes: list[dict[str, Any]] = []
        self.edges: list[dict[str, Any]] = []
        self.exits: dict[str, str] = {}  # container id -> the app's node its results leave

    def node(
        self,
        nid: str,
        kind: str,
        params: dict[str, Any],
        name: str | None,
        position: Any,
        timeout: float | None,
        where: str = "nodes",
    ) -> None:
        path = f"{where}.{nid}"
        if kind not in _SUPPORTED:
            self.problems.add(f"{path}.type", f"node type {kind!r} has no Atomiton equivalent")
            return
        body = params.pop("body", None)
        app_type, values = self._params(path, kind, params)
        self._add(nid, app_type, name, values, position)
        if body is None:
            return
        self._body(nid, kind, app_type, values, body, position, path)

    def _params(self, path: str, kind: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        names = _REVERSE.get(kind, {})
        if kind == "image" and params.get("path") == "{{ inputs.input }}":
            del params["path"]  # the item's path, as import lifts it: implied by the edge
        values = {names.get(k, k): v for k, v in params.items()}
        if kind == "code":
            values = {"code": values.pop("code", "")} | {
                k: v for k, v in values.items() if k not in ("language",)
            }
            return "transform", values
        if kind == "transform":
            if values.pop("language", "jinja") != "javascript" and values.get("expression"):
                self.problems.add(
                    f"{path}.params.expression",
                    "a Jinja expression has no Atomiton equivalent (the app runs JavaScript)",
                    "fix: write it as JavaScript with language: javascript",
                )
            if "expression" in values:
                values["transformFunction"] = values.pop("expression")
        for key in ("timeout", "totalTimeout"):
            if isinstance(values.get(key), int | float) and kind in ("parallel", "http-request"):
                values["globalTimeout" if key == "totalTimeout" else key] = values.pop(key) * 1000
        if kind == "pass":
            return "edit-fields", {"values": {}, "keepOnlySet": False}
        return kind, values

    def _body(
        self,
        nid: str,
        kind: str,
        app_type: str,
        values: dict[str, Any],
        body: Any,
        position: Any,
        path: str,
    ) -> None:
        items = values.pop("items", None)
        feeder = nid
        if isinstance(items, str) and (match := _ITEMS.match(items.strip())):
            values["iterateOver"] = match.group(1)
            if match.group(2):
                values["maxIterations"] = int(match.group(2))
        if kind == "parallel":  # the app's "each item, N at a time": a loop, then a parallel
            loop_values = {
                k: values.pop(k) for k in ("iterateOver", "maxIterations") if k in values
            }
            self.nodes[-1]["type"] = "loop"
            self.nodes[-1]["parameters"] = loop_values
            feeder = f"{nid}-parallel"
            self._add(feeder, "parallel", None, values, _shifted(position))
            self.edges.append(_edge(len(self.edges), nid, "item", feeder, "input"))
        self.exits[nid] = nid
        if not isinstance(body, Mapping):
            return
        inner = body.get("nodes") or {}
        fed = set()
        for inner_id, spec in inner.items():
            if not isinstance(spec, Mapping):
                continue
            self.node(
                inner_id,
                str(spec.get("type")),
                dict(spec.get("params") or {}),
                spec.get("name"),
                spec.get("position"),
                spec.get("timeout"),
                f"{path}.params.body.nodes",
            )
        for text in body.get("edges") or []:
            source, _, target = str(text).partition("->")
            s_node, _, s_port = source.strip().partition(".")
            t_node, _, t_port = target.strip().partition(".")
            fed.add(t_node)
            self.edge(s_node, s_port, t_node, t_port)
        port = "output" if kind == "parallel" else "item"
        for inner_id in inner:
            if inner_id not in fed:
                self.edges.append(_edge(len(self.edges), feeder, port, inner_id, "input"))

    def _add(self, nid: str, app_type: str, name: Any, values: dict[str, Any], pos: Any) -> None:
        x, y = (pos or (0, 0))[:2]
        self.nodes.append(
            {
                "id": nid,
                "type": app_type,
                "name": name or nid,
                "version": "1.0.0",
                "inputPorts": [
                    {"id": "input", "name": "Input", "type": "input", "dataType": "any"}
                ],
                "outputPorts": _outputs(app_type),
                "parameters": values,
                "position": {"x": x, "y": y},
            }
        )

    def edge(self, source: str, source_port: str, target: str, target_port: str) -> None:
        handle = "complete" if source in self.exits else "output"
        target_handle = "content" if target_port == "content" else "input"
        self.edges.append(_edge(len(self.edges), source, handle, target, target_handle))


def _edge(i: int, source: str, handle: str, target: str, target_handle: str) -> dict[str, Any]:
    return {
        "id": f"edge-{i + 1}",
        "source": source,
        "target": target,
        "sourceHandle": handle,
        "targetHandle": target_handle,
    }


def _outputs(app_type: str) -> list[dict[str, Any]]:
    names = ("item", "index", "complete") if app_type == "loop" else ("output",)
    return [{"id": n, "name": n.title(), "type": "output", "dataType": "any"} for n in names]


def _shifted(position: Any) -> tuple[float, float]:
    x, y = (position or (0, 0))[:2]
    return (x + 100, y)
