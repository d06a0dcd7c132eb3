"""Where the view puts each node: a layered (Sugiyama) layout from igraph, left to right.

igraph's ``layout_sugiyama`` (C, maintained) assigns layers, orders each layer to
reduce crossings and aligns nodes with their neighbours; it takes about 0.1 s for
1,000 nodes, where the browser-side layout libraries took 4 s (dagre) and 11 s
(elkjs) for the same graph. Layers become columns. A column with more than
``WRAP_ROWS`` nodes (a 300-way fan-out) is wrapped into several columns, and the
other columns are squeezed to the wrapped height, so wide graphs stay compact
instead of becoming a strip thousands of pixels high. Nodes with a saved
``position`` (dragged by the user, or written in the file) keep it.

The sizes here match the front end's drawing (js/src/layout.js).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conductor_nb._extras import require

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

NODE_W = 180
HEAD, PORT_GAP, FOOTER = 30, 18, 16
FOLD_ROW = 20
"""A loop/parallel/group node's row for its fold toggle, under its ports."""
BODY_TYPES = ("loop", "parallel", "group")
"""Node types whose ``body`` param is a blueprint of its own (folded in the view)."""
COL_GAP, ROW_GAP = 70, 24
WRAP_ROWS = 16
MARGIN = 20


@dataclass
class Place:
    x: float
    y: float
    h: float


def node_height(inputs: int, outputs: int, body: bool = False) -> float:
    return HEAD + PORT_GAP * max(1, inputs, outputs) + (FOLD_ROW if body else 0) + FOOTER


def positions(bp: Blueprint) -> dict[str, tuple[float, float]]:
    """Top-left corner of every node of ``bp``, in the view's graph units."""
    heights = {}
    for node_id, node in bp.nodes.items():
        nt = bp.registry.find(node.type, node.version)
        body = node.type in BODY_TYPES
        heights[node_id] = (
            node_height(len(nt.inputs), len(nt.outputs), body) if nt else node_height(1, 1, body)
        )
    edges = [
        (e.source, e.target) for e in bp.edges if e.source in bp.nodes and e.target in bp.nodes
    ]
    places = layered(list(bp.nodes), edges, heights)
    out = {n: (round(p.x, 1), round(p.y, 1)) for n, p in places.items()}
    for node_id, node in bp.nodes.items():
        if node.position is not None:
            out[node_id] = (float(node.position[0]), float(node.position[1]))
    return out


def layered(
    ids: Sequence[str], edges: Sequence[tuple[str, str]], heights: Mapping[str, float]
) -> dict[str, Place]:
    if not ids:
        return {}
    igraph = require("igraph", "jupyter", "the graph view's layout")
    index = {n: i for i, n in enumerate(ids)}
    pairs = sorted({(index[s], index[t]) for s, t in edges if s != t})
    graph = igraph.Graph(n=len(ids), edges=pairs, directed=True)
    coords = graph.layout_sugiyama().coords[: len(ids)]
    pitch = max(heights.values()) + ROW_GAP
    columns: dict[int, list[str]] = defaultdict(list)
    places = {}
    for node_id, (order, layer) in zip(ids, coords, strict=True):
        places[node_id] = Place(x=0.0, y=MARGIN + order * pitch, h=heights[node_id])
        columns[int(layer)].append(node_id)
    _wrap_and_place_columns(columns, places)
    return places


def _wrap_and_place_columns(columns: Mapping[int, list[str]], places: dict[str, Place]) -> None:
    old_bottom = max(p.y + p.h for p in places.values())
    x = float(MARGIN)
    wrapped_bottom = 0.0
    for layer in sorted(columns):
        ids = sorted(columns[layer], key=lambda n: places[n].y)
        if len(ids) <= WRAP_ROWS:
            for n in ids:
                places[n].x = x
            x += NODE_W + COL_GAP
            continue
        cols = -(-len(ids) // WRAP_ROWS)
        rows = -(-len(ids) // cols)
        for i, n in enumerate(ids):
            col, row = divmod(i, rows)
            y = MARGIN if row == 0 else places[ids[i - 1]].y + places[ids[i - 1]].h + ROW_GAP
            places[n].x, places[n].y = x + col * (NODE_W + COL_GAP / 2), y
            wrapped_bottom = max(wrapped_bottom, y + places[n].h)
        x += cols * (NODE_W + COL_GAP / 2) + COL_GAP / 2
    if wrapped_bottom:
        _squeeze(columns, places, old_bottom, wrapped_bottom)


def _squeeze(
    columns: Mapping[int, list[str]], places: dict[str, Place], old_bottom: float, bottom: float
) -> None:
    """Columns laid out against a tall layer's old height are scaled to the wrapped one,
    keeping their order and relative places, never overlapping."""
    scale = min(1.0, (bottom - MARGIN) / max(1.0, old_bottom - MARGIN))
    for layer in columns:
        ids = sorted(columns[layer], key=lambda n: places[n].y)
        if len(ids) > WRAP_ROWS:
            continue
        floor = float(MARGIN)
        for n in ids:
            p = places[n]
            p.y = max(floor, MARGIN + (p.y - MARGIN) * scale)
            floor = p.y + p.h + ROW_GAP
