"""A compiled, immutable plan of a validated blueprint, and the graph facts views need.

The plan pins every node's type, lists each input's sources in edge order and
fixes a stable topological order (Kahn's algorithm, ties broken by the order
nodes were added), which is the order stepping follows.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from conductor_nb.model.types import NodeType

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint, Node


class Source(NamedTuple):
    """One output feeding an input: ``node.port``."""

    node: str
    port: str


class PlannedNode(NamedTuple):
    """One node of a plan (a NamedTuple: immutable and cheap to build by the thousand)."""

    id: str
    node: Node
    type: NodeType
    rank: int  # position in the stable topological order
    sources: Mapping[str, tuple[Source, ...]]  # input port -> feeding outputs, in edge order
    upstream: tuple[str, ...]
    downstream: tuple[str, ...]
    consumers: Mapping[str, tuple[str, ...]]  # output port -> nodes reading it


@dataclass(frozen=True)
class Plan:
    blueprint_id: str
    nodes: Mapping[str, PlannedNode]
    order: tuple[str, ...]
    levels: Mapping[str, int]
    outputs: Mapping[str, Source]
    _weights: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.order)

    @property
    def max_parallelism(self) -> int:
        """The widest topological level: how many nodes can run at once at most."""
        counts: dict[int, int] = defaultdict(int)
        for level in self.levels.values():
            counts[level] += 1
        return max(counts.values(), default=0)

    def critical_path(self, weights: Mapping[str, float] | None = None) -> list[str]:
        """The heaviest chain of nodes (weights: expected seconds per node, default 1)."""
        w = weights or {}
        best: dict[str, float] = {}
        prev: dict[str, str | None] = {}
        for node_id in self.order:
            planned = self.nodes[node_id]
            parent = max(planned.upstream, key=lambda u: best[u], default=None)
            best[node_id] = w.get(node_id, 1.0) + (best[parent] if parent else 0.0)
            prev[node_id] = parent
        if not best:
            return []
        node: str | None = max(best, key=lambda n: best[n])
        path = []
        while node is not None:
            path.append(node)
            node = prev[node]
        return path[::-1]

    def descendants(self, node_id: str) -> list[str]:
        """Every node downstream of ``node_id``, in plan order."""
        seen: set[str] = set()
        stack = list(self.nodes[node_id].downstream)
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.nodes[current].downstream)
        return [n for n in self.order if n in seen]

    def ancestors(self, node_id: str) -> list[str]:
        seen: set[str] = set()
        stack = list(self.nodes[node_id].upstream)
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.nodes[current].upstream)
        return [n for n in self.order if n in seen]


def compile_plan(bp: Blueprint, *, validate: bool = True) -> Plan:
    """Validate ``bp`` and freeze it into a plan (types resolved now, not at run time).

    Built for 10,000-node blueprints: one pass over the edges into per-node lists,
    deduplicated only where a node has several, and no per-node wrapper objects.
    """
    with gc_paused():
        return _compile(bp, validate)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a plan or a run is prepared.

    Preparing allocates a few objects per node and frees none of them, the worst
    case for the collector: at 10,000 nodes its passes over the whole heap took
    half of the preparation. Nothing is lost by waiting: the pass runs after.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _compile(bp: Blueprint, validate: bool) -> Plan:
    if validate:
        bp.validate()
    ids = list(bp.nodes)
    sources: dict[str, dict[str, list[Source]]] = {}
    consumers: dict[str, dict[str, list[str]]] = {}
    upstream: dict[str, list[str]] = {nid: [] for nid in ids}
    downstream: dict[str, list[str]] = {nid: [] for nid in ids}
    for edge in bp.edges:
        source, target = edge.source, edge.target
        by_port = sources.get(target)
        if by_port is None:
            by_port = sources[target] = {}
        feeding = by_port.get(edge.target_port)
        if feeding is None:
            by_port[edge.target_port] = [Source(source, edge.source_port)]
        else:
            feeding.append(Source(source, edge.source_port))
        consumers.setdefault(source, {}).setdefault(edge.source_port, []).append(target)
        upstream[target].append(source)
        downstream[source].append(target)
    ups = {nid: _unique(upstream[nid]) for nid in ids}
    downs = {nid: _unique(downstream[nid]) for nid in ids}
    order = _stable_order(ids, ups, downs)
    levels: dict[str, int] = {}
    for nid in order:
        levels[nid] = 1 + max([levels[u] for u in ups[nid]], default=-1)
    types: dict[tuple[str, int | None], NodeType] = {}  # resolve each (type, version) once
    planned = {}
    nodes = bp.nodes
    for position, nid in enumerate(order):
        node = nodes[nid]
        key = (node.type, node.version)
        node_type = types.get(key)
        if node_type is None:
            node_type = types[key] = bp.registry.get(node.type, node.version)
        planned[nid] = PlannedNode(
            nid,
            node,
            node_type,
            position,
            _freeze(sources.get(nid)),
            ups[nid],
            downs[nid],
            _freeze(consumers.get(nid)),
        )
    outputs = {name: Source(*endpoint.split(".", 1)) for name, endpoint in bp.outputs.items()}
    return Plan(
        bp.id,
        MappingProxyType(planned),
        tuple(order),
        MappingProxyType(levels),
        MappingProxyType(outputs),
    )


_EMPTY: Mapping[str, tuple[Any, ...]] = MappingProxyType({})


def _unique(items: list[str]) -> tuple[str, ...]:
    """The items in first-seen order without repeats (two edges between the same nodes)."""
    return tuple(items) if len(items) < 2 else tuple(dict.fromkeys(items))


def _freeze(by_port: dict[str, list[Any]] | None) -> Mapping[str, tuple[Any, ...]]:
    if not by_port:
        return _EMPTY
    return {k: tuple(v) for k, v in by_port.items()}


def _stable_order(
    ids: list[str],
    upstream: Mapping[str, tuple[str, ...]],
    downstream: Mapping[str, tuple[str, ...]],
) -> list[str]:
    index = {nid: i for i, nid in enumerate(ids)}
    indegree = {nid: len(upstream[nid]) for nid in ids}
    heap = [(index[nid], nid) for nid in ids if indegree[nid] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, nid = heapq.heappop(heap)
        order.append(nid)
        for child in downstream[nid]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(heap, (index[child], child))
    if len(order) != len(ids):  # validation rejects cycles; this guards unvalidated plans
        raise ValueError("the graph has a cycle")
    return order
