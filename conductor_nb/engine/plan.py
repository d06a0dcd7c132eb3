"""A compiled, immutable plan of a validated blueprint, and the graph facts views need.

The plan pins every node's type, lists each input's sources in edge order and
fixes a stable topological order (Kahn's algorithm, ties broken by the order
nodes were added), which is the order stepping follows.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import heapq
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from conductor_nb.errors import BlueprintError
from conductor_nb.model.types import NodeType, Registry

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint, Edge, Node
    from conductor_nb.model.snapshot import Snapshot
    from conductor_nb.model.validate import Checked


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
    outputs: Mapping[str, Source]
    registry: Registry | None = field(default=None, compare=False, repr=False)
    """The blueprint's registry: the types of nodes inside loop, parallel and group bodies
    are looked up there when they run (an executor probes them up front)."""

    @functools.cached_property
    def levels(self) -> Mapping[str, int]:
        """Each node's topological level: 0 for a node nothing feeds, else one more than
        its deepest upstream node (worked out when first asked: runs do not need it)."""
        levels: dict[str, int] = {}
        nodes = self.nodes
        for nid in self.order:
            levels[nid] = 1 + max([levels[u] for u in nodes[nid].upstream], default=-1)
        return MappingProxyType(levels)

    def __len__(self) -> int:
        return len(self.order)

    @functools.cached_property
    def side_effect_nodes(self) -> frozenset[str]:
        """Nodes whose type declares side effects (the history commits each one's success
        before the run goes on)."""
        return frozenset(nid for nid, p in self.nodes.items() if p.type.side_effects)

    @functools.cached_property
    def caching_nodes(self) -> frozenset[str]:
        """Nodes whose ``cache`` setting asks for the result cache."""
        return frozenset(nid for nid, p in self.nodes.items() if p.node.cache)

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

    Built for 10,000-node blueprints: validation's findings are reused (each node's
    type; whether the order nodes were added in is already topological, which the
    usual way of building makes it), one pass over the edges fills per-node lists,
    and each output (node, port) becomes one shared Source.
    """
    with gc_paused():
        if not validate:
            return _compile(bp, None)
        from conductor_nb.model.document import locate
        from conductor_nb.model.validate import check

        checked = check(bp)
        if checked.problems:
            found = locate(checked.problems, bp.locations)
            raise BlueprintError(found, name=bp.id, source=bp.source)
        return _compile(bp, checked)


def plan_of(snap: Snapshot) -> Plan:
    """The validated plan of a run snapshot, compiled once per snapshot: running the same
    blueprint again reuses it while every node type it resolved is still the one its
    registry gives (a type registered again, e.g. a cell run again, compiles anew)."""
    known: tuple[Plan, dict[tuple[str, int | None], NodeType]] | None = snap.memo.get("plan")
    if known is not None:
        plan, types = known
        registry = snap.blueprint.registry
        if all(registry.find(name, version) is t for (name, version), t in types.items()):
            return plan
    plan = compile_plan(snap.blueprint)
    types = {(p.node.type, p.node.version): p.type for p in plan.nodes.values()}
    snap.memo["plan"] = (plan, types)
    return plan


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


def _compile(bp: Blueprint, checked: Checked | None) -> Plan:
    nodes = bp.nodes
    shape = _shape_of(bp, checked)
    types = _types_of(bp, checked)
    make = tuple.__new__
    planned = {}
    for nid, wiring in shape.wiring.items():
        planned[nid] = make(PlannedNode, (nid, nodes[nid], types[nid], *wiring))
    outputs = {name: Source(*endpoint.split(".", 1)) for name, endpoint in bp.outputs.items()}
    return Plan(
        bp.id, MappingProxyType(planned), shape.order, MappingProxyType(outputs), bp.registry
    )


class _Shape(NamedTuple):
    """What a plan knows from the node ids and the edges alone."""

    ids: tuple[str, ...]
    edges: tuple[Edge, ...]
    order: tuple[str, ...]
    wiring: dict[str, tuple[Any, ...]]
    """In plan order, each node's rank, sources, upstream, downstream and consumers: the
    PlannedNode fields after id, node and type. Shared by every plan of this shape, so
    never changed."""


_last_shape: list[_Shape] = []
"""The shape compiled last. Running a blueprint again (a snapshot of it shares its Edge
objects) or a loop body again finds its shape here: comparing ids and edges costs a
pointer comparison each, a tenth of working the shape out."""


def _shape_of(bp: Blueprint, checked: Checked | None) -> _Shape:
    ids, edges = tuple(bp.nodes), tuple(bp.edges)
    known = _last_shape[0] if _last_shape else None
    if known is not None and known.ids == ids and known.edges == edges:
        return known
    shape = _work_out_shape(ids, edges, checked.in_order if checked is not None else None)
    _last_shape[:] = [shape]
    return shape


def _work_out_shape(ids: tuple[str, ...], edges: tuple[Edge, ...], in_order: bool | None) -> _Shape:
    """One pass over the edges into per-node lists; each output (node, port) becomes one
    Source, shared by every input it feeds."""
    sources: dict[str, dict[str, Any]] = {}
    consumers: dict[str, dict[str, Any]] = {}
    upstream: dict[str, list[str]] = {}
    downstream: dict[str, list[str]] = {}
    shared: dict[tuple[str, str], Source] = {}
    make_source = tuple.__new__
    for edge in edges:
        source, target, port = edge.source, edge.target, edge.source_port
        key = (source, port)
        src = shared.get(key)
        if src is None:
            src = shared[key] = make_source(Source, key)
        by_port = sources.get(target)
        if by_port is None:
            sources[target] = {edge.target_port: [src]}
        else:
            feeding = by_port.get(edge.target_port)
            if feeding is None:
                by_port[edge.target_port] = [src]
            else:
                feeding.append(src)
        readers = consumers.get(source)
        if readers is None:
            consumers[source] = {port: [target]}
        else:
            reading = readers.get(port)
            if reading is None:
                readers[port] = [target]
            else:
                reading.append(target)
        ups = upstream.get(target)
        if ups is None:
            upstream[target] = [source]
        else:
            ups.append(source)
        downs = downstream.get(source)
        if downs is None:
            downstream[source] = [target]
        else:
            downs.append(target)
    ups_of = {nid: _unique(items) for nid, items in upstream.items()}
    downs_of = {nid: _unique(items) for nid, items in downstream.items()}
    if in_order is None:
        in_order = _in_order(ids, edges)
    # Kahn's order with ties broken by insertion is the insertion order when that is one
    order = ids if in_order else tuple(_stable_order(list(ids), ups_of, downs_of))
    wiring = {}
    for rank, nid in enumerate(order):
        by_port, readers = sources.get(nid), consumers.get(nid)
        if by_port is not None:
            for port, items in by_port.items():
                by_port[port] = tuple(items)
        if readers is not None:
            for port, items in readers.items():
                readers[port] = tuple(items)
        wiring[nid] = (
            rank,
            _EMPTY if by_port is None else by_port,
            ups_of.get(nid, ()),
            downs_of.get(nid, ()),
            _EMPTY if readers is None else readers,
        )
    return _Shape(ids, edges, order, wiring)


def _in_order(ids: tuple[str, ...], edges: tuple[Edge, ...]) -> bool:
    """Whether every edge runs from a node added earlier to one added later."""
    index = {nid: i for i, nid in enumerate(ids)}
    last = len(ids)
    return all(index.get(e.source, last) < index.get(e.target, -1) for e in edges)


def _types_of(bp: Blueprint, checked: Checked | None) -> Mapping[str, NodeType]:
    """Each node's type: validation's, or resolved now (once per type and version)."""
    if checked is not None:
        return checked.types
    resolved: dict[tuple[str, int | None], NodeType] = {}
    types = {}
    for nid, node in bp.nodes.items():
        key = (node.type, node.version)
        node_type = resolved.get(key)
        if node_type is None:
            node_type = resolved[key] = bp.registry.get(node.type, node.version)
        types[nid] = node_type
    return types


_EMPTY: Mapping[str, tuple[Any, ...]] = MappingProxyType({})


def _unique(items: list[str]) -> tuple[str, ...]:
    """The items in first-seen order without repeats (two edges between the same nodes)."""
    return tuple(items) if len(items) < 2 else tuple(dict.fromkeys(items))


def _stable_order(
    ids: list[str],
    upstream: Mapping[str, tuple[str, ...]],
    downstream: Mapping[str, tuple[str, ...]],
) -> list[str]:
    index = {nid: i for i, nid in enumerate(ids)}
    indegree = {nid: len(upstream.get(nid, ())) for nid in ids}
    heap = [(index[nid], nid) for nid in ids if indegree[nid] == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, nid = heapq.heappop(heap)
        order.append(nid)
        for child in downstream.get(nid, ()):
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(heap, (index[child], child))
    if len(order) != len(ids):  # validation rejects cycles; this guards unvalidated plans
        raise ValueError("the graph has a cycle")
    return order
