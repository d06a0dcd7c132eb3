"""Wiring converted nodes together, and lifting Atomiton loops into bodies.

In the desktop app a ``loop`` (or ``parallel``) sends each item down the main
graph: the nodes after its ``item`` port run once per item. Ours run a body, a
sub-blueprint per item. So the chain after a container's per-item port (everything
downstream of it) is lifted into the container's body; the body's entry nodes get
the item as their input, which is what the edge from ``item`` meant. A ``loop``
whose item goes straight into a ``parallel`` (the app's "process each, N at a
time") becomes one ``parallel`` node with the parallel's settings. A node inside
the chain that also reads a node outside it has no equivalent and is a problem.

Ports: an Atomiton handle names the app's port; ours are chosen by what the
source node gives (a spreadsheet's rows are ``records``, an image node's result
``bytes``, a listing's paths ``files``), so the data that flows is the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from conductor_nb.errors import ProblemList
from conductor_nb.model.atomiton.mapping import Converted

PER_ITEM = {"loop": {"item", "index", "current"}, "parallel": {"output", "item", "results"}}
CONTAINERS = ("loop", "parallel")


@dataclass
class Wire:
    """An edge between converted nodes, before ports are chosen."""

    path: str
    source: str
    handle: str | None
    target: str
    target_handle: str | None


def lift(
    nodes: dict[str, Converted],
    wires: list[Wire],
    problems: ProblemList,
    notes: list[str],
) -> tuple[dict[str, dict[str, Any]], list[str], dict[str, str]]:
    """Native ``nodes`` (id -> document), ``edges`` and a native path -> Atomiton path map."""
    nodes, wires = dict(nodes), list(wires)
    locations: dict[str, str] = {}
    wires = [_whole_listing(nodes, w) for w in wires]
    for container in _containers(nodes, wires):
        if container not in nodes:  # fused into the loop before it
            continue
        _lift_one(nodes, wires, container, problems, notes, locations)
    docs = {nid: _doc(node) for nid, node in nodes.items()}
    for nid, node in nodes.items():
        locations[f"nodes.{nid}"] = node.raw.path
        for param, where in node.paths.items():
            locations[f"nodes.{nid}.params.{param}"] = where
    edges: list[str] = []
    for wire in wires:
        edge = _edge(nodes, wire, problems)
        if edge:
            locations[f"edges[{len(edges)}]"] = wire.path
            edges.append(edge)
    return docs, edges, locations


def _whole_listing(nodes: dict[str, Converted], wire: Wire) -> Wire:
    """A listing's ``files`` port into a loop that itself reads ``.files`` of its input (the
    app's ``iterateOver: files``): the loop gets the whole listing, so it is read once."""
    target = nodes.get(wire.target)
    items = target.params.get("items") if target else None
    if wire.handle in ("files", "entries") and isinstance(items, str) and "inputs.input." in items:
        return Wire(wire.path, wire.source, "output", wire.target, wire.target_handle)
    return wire


def _containers(nodes: dict[str, Converted], wires: list[Wire]) -> list[str]:
    """Containers in upstream-first order, so an outer loop lifts its inner ones with it."""
    order = _topological(nodes, wires)
    return [nid for nid in order if nodes[nid].type in CONTAINERS]


def _topological(nodes: dict[str, Converted], wires: list[Wire]) -> list[str]:
    from graphlib import CycleError, TopologicalSorter

    graph: dict[str, set[str]] = {nid: set() for nid in nodes}
    for w in wires:
        if w.source in nodes and w.target in nodes:
            graph[w.target].add(w.source)
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError:
        return list(nodes)  # validation reports the cycle


def _per_item(node: Converted, wire: Wire) -> bool:
    return wire.source == node.id and (wire.handle or "output") in PER_ITEM[node.type]


def _lift_one(
    nodes: dict[str, Converted],
    wires: list[Wire],
    cid: str,
    problems: ProblemList,
    notes: list[str],
    locations: dict[str, str],
) -> None:
    container = nodes[cid]
    entries = [w for w in wires if _per_item(container, w)]
    fused = _fuse(nodes, wires, container, entries, notes)
    if fused:
        entries = [w for w in wires if _per_item(container, w)]
    body_ids = _downstream(wires, {w.target for w in entries}, nodes)
    body_ids.discard(cid)
    body_nodes = {nid: nodes.pop(nid) for nid in list(nodes) if nid in body_ids}
    inner, outer = [], []
    for w in list(wires):
        if w in entries:
            wires.remove(w)
            if (w.handle or "") == "index":
                problems.add(
                    w.path,
                    "an edge from a loop's index port has no equivalent",
                    "fix: read the iteration as {{ params.index }} in the body",
                )
        elif w.source in body_ids and w.target in body_ids:
            wires.remove(w)
            inner.append(w)
        elif w.target in body_ids:
            problems.add(
                w.path,
                f"node {w.target!r} runs once per item of {container.raw.type} {cid!r} but "
                f"also reads {w.source!r}, outside the loop; that has no equivalent",
                "fix: pass the value in through the loop's input, or read it as a param",
            )
            wires.remove(w)
        elif w.source in body_ids:
            outer.append(w)
    for w in outer:  # the body's results leave through the container's output
        wires[wires.index(w)] = Wire(w.path, cid, "output", w.target, w.target_handle)
    _fix_body(body_nodes, inner)
    inner_docs, inner_edges, inner_locs = lift(body_nodes, inner, problems, notes)
    if not inner_docs:
        inner_docs = {"item": {"type": "pass"}}
    container.params["body"] = {"nodes": inner_docs, "edges": inner_edges}
    for path, where in inner_locs.items():
        locations[f"nodes.{cid}.params.body.{path}"] = where
    if body_nodes:
        notes.append(
            f"{container.raw.path}: {container.raw.type} {cid!r} runs "
            f"{', '.join(repr(n) for n in body_nodes)} once per item (its body)"
        )


def _fuse(
    nodes: dict[str, Converted],
    wires: list[Wire],
    loop: Converted,
    entries: list[Wire],
    notes: list[str],
) -> bool:
    """loop.item -> parallel (and nothing else) becomes one parallel node: the loop's."""
    if loop.type != "loop" or len(entries) != 1:
        return False
    inner = nodes.get(entries[0].target)
    if inner is None or inner.type != "parallel":
        return False
    if any(w.target == inner.id and w is not entries[0] for w in wires):
        return False
    wires.remove(entries[0])
    for i, w in enumerate(wires):
        if w.source == inner.id:
            wires[i] = Wire(w.path, loop.id, "item", w.target, w.target_handle)
    items = loop.params.get("items", "{{ inputs.input }}")
    limit = loop.params.pop("maxIterations", None)
    if isinstance(items, str) and items.startswith("{{") and limit:
        items = "{{ (" + items[2:-2].strip() + ")[:" + str(int(limit)) + "] }}"
    loop.type = "parallel"
    loop.params = {**inner.params, "items": items}
    loop.paths = {**inner.paths, "items": loop.paths.get("items", loop.raw.path)}
    if loop.settings.pop("breakOnError", None) is False:
        loop.params.setdefault("failFast", False)
    for key in ("mode", "collectResults"):
        loop.params.pop(key, None)
    del nodes[inner.id]
    notes.append(
        f"{loop.raw.path}: loop {loop.id!r} and parallel {inner.id!r} run as one parallel "
        f"node {loop.id!r} (concurrency {loop.params.get('concurrency', 4)})"
    )
    return True


def _downstream(wires: list[Wire], start: set[str], nodes: dict[str, Converted]) -> set[str]:
    seen = set(start)
    todo = list(start)
    while todo:
        current = todo.pop()
        for w in wires:
            if w.source == current and w.target not in seen and w.target in nodes:
                seen.add(w.target)
                todo.append(w.target)
    return seen


def _fix_body(body: dict[str, Converted], wires: list[Wire]) -> None:
    """Per-item details: an image read from the item's path, a folder write named after it."""
    fed = {w.target for w in wires}
    images = {nid for nid, n in body.items() if n.type == "image"}
    for nid, node in body.items():
        if node.type == "image" and nid not in fed and not node.params.get("path"):
            node.params["path"] = "{{ inputs.input }}"
        if node.type == "file-system" and node.params.get("operation") == "write":
            path = str(node.params.get("path", ""))
            from_image = any(w.target == nid and w.source in images for w in wires)
            if from_image and path and "{{" not in path and not PurePosixPath(path).suffix:
                node.params["path"] = path.rstrip("/") + "/{{ params.item.split('/')[-1] }}"


def _doc(node: Converted) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": node.type}
    if node.raw.name:
        doc["name"] = node.raw.name
    if node.params:
        doc["params"] = node.params
    for key in ("retries", "retry_delay", "retry_backoff", "timeout"):
        if key in node.settings:
            doc[key] = node.settings[key]
    if node.raw.position:
        doc["position"] = list(node.raw.position)
    return doc


def _edge(nodes: dict[str, Converted], wire: Wire, problems: ProblemList) -> str | None:
    source, target = nodes.get(wire.source), nodes.get(wire.target)
    if source is None or target is None:
        missing = wire.source if source is None else wire.target
        problems.add(wire.path, f"the edge names node {missing!r}, which the flow does not have")
        return None
    if wire.handle == "error":
        problems.add(
            wire.path,
            f"an edge from {wire.source!r}'s error port has no equivalent (a failed node's "
            "downstream is skipped)",
        )
        return None
    return (
        f"{source.id}.{source_port(source, wire.handle)} -> {target.id}.{target_port(target, wire)}"
    )


def source_port(node: Converted, handle: str | None) -> str:
    if node.type == "spreadsheet":
        return "records"
    if node.type == "image":
        return "output" if node.params.get("output_path") else "bytes"
    if node.type == "file-system":
        if handle in ("files", "entries"):
            return "files"
        if handle == "content" or node.params.get("operation", "read") == "read":
            return "content"
    return "output"


def target_port(node: Converted, wire: Wire) -> str:
    if node.type == "file-system" and wire.target_handle == "content":
        return "content"
    return "input"


def sinks(docs: dict[str, dict[str, Any]], edges: Iterable[str]) -> list[str]:
    sources = {e.split("->")[0].strip().split(".")[0] for e in edges}
    return [nid for nid in docs if nid not in sources]
