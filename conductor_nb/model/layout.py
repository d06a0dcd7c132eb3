"""Layered layout of a blueprint graph, shared by the static SVG and the widget.

Nodes with a ``position`` keep it; the others are placed by longest-path layer
(left to right) and, within a layer, ordered by the mean row of their parents
(one barycentre sweep), which keeps most edges short and uncrossed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

NODE_W = 170
NODE_H_MIN = 56
PORT_GAP = 18
COL_GAP = 80
ROW_GAP = 34


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float


def levels(nodes: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Longest-path layer of each node (sources are layer 0). Cycles are broken arbitrarily."""
    parents: dict[str, list[str]] = defaultdict(list)
    children: dict[str, list[str]] = defaultdict(list)
    for s, t in edges:
        parents[t].append(s)
        children[s].append(t)
    indegree = {n: len(set(parents[n])) for n in nodes}
    level = {n: 0 for n in nodes}
    frontier = [n for n in nodes if indegree[n] == 0]
    seen: set[str] = set()
    while frontier:
        nxt = []
        for n in frontier:
            seen.add(n)
            for c in dict.fromkeys(children[n]):
                level[c] = max(level[c], level[n] + 1)
                indegree[c] -= 1
                if indegree[c] == 0:
                    nxt.append(c)
        frontier = nxt
    return level


STATUS_LINE = 16
"""Room under the ports for the state/duration line, so it never overlaps port labels."""


def node_height(n_in: int, n_out: int) -> float:
    return max(NODE_H_MIN, 30 + PORT_GAP * max(n_in, n_out) + STATUS_LINE)


def layout(bp: Blueprint) -> dict[str, Box]:
    ids = list(bp.nodes)
    pairs = [
        (e.source, e.target) for e in bp.edges if e.source in bp.nodes and e.target in bp.nodes
    ]
    lvl = levels(ids, pairs)
    heights = {}
    for nid in ids:
        nt = bp.registry.find(bp.nodes[nid].type, bp.nodes[nid].version)
        heights[nid] = node_height(len(nt.inputs), len(nt.outputs)) if nt else NODE_H_MIN
    columns: dict[int, list[str]] = defaultdict(list)
    for nid in ids:
        columns[lvl[nid]].append(nid)
    parents: dict[str, list[str]] = defaultdict(list)
    for s, t in pairs:
        parents[t].append(s)
    row: dict[str, float] = {}
    for col in sorted(columns):
        members = columns[col]
        if col > 0:
            members.sort(
                key=lambda n: sum(row.get(p, 0) for p in parents[n]) / max(1, len(parents[n]))
            )
        for i, nid in enumerate(members):
            row[nid] = i
    boxes: dict[str, Box] = {}
    for col, members in columns.items():
        y = 20.0
        for nid in members:
            node = bp.nodes[nid]
            if node.position is not None:
                boxes[nid] = Box(
                    float(node.position[0]), float(node.position[1]), NODE_W, heights[nid]
                )
            else:
                boxes[nid] = Box(20.0 + col * (NODE_W + COL_GAP), y, NODE_W, heights[nid])
            y += heights[nid] + ROW_GAP
    return boxes


def port_y(box: Box, index: int) -> float:
    return box.y + 30 + PORT_GAP * index + PORT_GAP / 2 - 4
