"""compile_plan: the plan is what the blueprint says now, however it was built or edited.

The compile reuses validation's findings and the shape of the last graph it compiled;
these tests hold it to a plan worked out from scratch (graphlib for the order's
validity, Kahn's algorithm with insertion-order ties for the order itself), on random
DAGs added in any order, after edits between compiles, and with cycles.
"""

from __future__ import annotations

import graphlib
import heapq
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conductor_nb as cnb
from conductor_nb.engine.plan import compile_plan
from conductor_nb.model.types import NodeType, Port, Registry


def _many(items: list | None = None) -> int:
    return len(items or ())


def _pair(a: int = 0, b: int = 0) -> int:
    return a + b


REG = Registry()
REG.register(NodeType.from_function(_pair, name="pair", outputs=["sum", "diff"]))
_m = NodeType.from_function(_many, name="many")
_m.inputs = (Port("items", many=True, default=None),)
REG.register(_m)


def _kahn(bp: cnb.Blueprint) -> list[str]:
    """The order the plan promises: Kahn's algorithm, ties broken by insertion order."""
    index = {nid: i for i, nid in enumerate(bp.nodes)}
    ups = {nid: set(bp.upstream(nid)) for nid in bp.nodes}
    heap = [(index[n], n) for n, u in ups.items() if not u]
    heapq.heapify(heap)
    order = []
    while heap:
        _, nid = heapq.heappop(heap)
        order.append(nid)
        for child in bp.downstream(nid):
            ups[child].discard(nid)
            if not ups[child]:
                heapq.heappush(heap, (index[child], child))
    return order


def _expected(bp: cnb.Blueprint) -> dict[str, tuple]:
    """Each node's sources, upstream, downstream and consumers, from the edges directly."""
    out = {}
    for nid in bp.nodes:
        into = [e for e in bp.edges if e.target == nid]
        out_of = [e for e in bp.edges if e.source == nid]
        sources: dict[str, list] = {}
        for e in into:
            sources.setdefault(e.target_port, []).append((e.source, e.source_port))
        consumers: dict[str, list] = {}
        for e in out_of:
            consumers.setdefault(e.source_port, []).append(e.target)
        out[nid] = (
            {k: tuple(v) for k, v in sources.items()},
            tuple(bp.upstream(nid)),
            tuple(bp.downstream(nid)),
            {k: tuple(v) for k, v in consumers.items()},
        )
    return out


def _assert_plan_is(plan, bp: cnb.Blueprint) -> None:
    order = _kahn(bp)
    assert list(plan.order) == order
    expected = _expected(bp)
    for rank, nid in enumerate(order):
        planned = plan.nodes[nid]
        assert planned.node is bp.nodes[nid] and planned.rank == rank
        assert planned.type is bp.registry.get(bp.nodes[nid].type)
        got = (
            {k: tuple(tuple(s) for s in v) for k, v in planned.sources.items()},
            planned.upstream,
            planned.downstream,
            dict(planned.consumers),
        )
        assert got == expected[nid], nid
    graph = {nid: set(bp.upstream(nid)) for nid in bp.nodes}
    sorter = graphlib.TopologicalSorter(graph)
    sorter.prepare()  # the graph is a DAG, and the plan's order is one of its orders
    seen: set[str] = set()
    for nid in plan.order:
        assert graph[nid] <= seen
        seen.add(nid)


def _random_blueprint(rng: random.Random, size: int, shuffled: bool) -> cnb.Blueprint:
    names = [f"n{i}" for i in range(size)]
    added = names[:]
    if shuffled:
        rng.shuffle(added)  # nodes added in any order: the insertion order is not topological
    bp = cnb.Blueprint("r", registry=REG)
    for nid in added:
        bp.add("many" if rng.random() < 0.7 else "pair", id=nid)
    for i, nid in enumerate(names):
        for up in rng.sample(names[:i], k=min(i, rng.randint(0, 3))):
            port = rng.choice(["sum", "diff"]) if bp.nodes[up].type == "pair" else "output"
            if bp.nodes[nid].type == "many":
                bp.connect(f"{up}.{port}", f"{nid}.items")
            else:
                free = [
                    p
                    for p in ("a", "b")
                    if not any(e.target == nid and e.target_port == p for e in bp.edges)
                ]
                if free:
                    bp.connect(f"{up}.{port}", f"{nid}.{free[0]}")
    return bp


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 40), st.booleans())
def test_the_plan_of_a_random_dag_is_worked_out_from_its_edges(seed, size, shuffled) -> None:
    bp = _random_blueprint(random.Random(seed), size, shuffled)
    _assert_plan_is(compile_plan(bp), bp)
    snapshot = bp.copy()  # what a run compiles: the same Edge objects, its own nodes
    _assert_plan_is(compile_plan(snapshot), snapshot)


def test_edits_between_compiles_are_in_the_next_plan() -> None:
    bp = cnb.Blueprint("e", registry=REG)
    for nid in ("a", "b", "c"):
        bp.add("many", id=nid)
    bp.connect("a", "b.items")
    first = compile_plan(bp)
    bp.connect("c", "a.items")  # c, added last, now comes first
    _assert_plan_is(compile_plan(bp), bp)
    assert list(compile_plan(bp).order) == ["c", "a", "b"]
    bp.edges.remove(bp.edges[0])  # a direct edit, no changed() call
    _assert_plan_is(compile_plan(bp), bp)
    bp.edges.append(cnb.Edge("b", "output", "c", "items"))  # now c must wait for b
    _assert_plan_is(compile_plan(bp), bp)
    assert list(first.order) == ["a", "b", "c"]  # an earlier plan is not changed by later ones


def test_a_cycle_is_refused_by_validation_and_by_an_unvalidated_compile() -> None:
    bp = cnb.Blueprint("c", registry=REG)
    for nid in ("a", "b", "c"):
        bp.add("many", id=nid)
    bp.connect("a", "b.items")
    bp.connect("b", "c.items")
    compile_plan(bp)
    bp.connect("c", "a.items")
    with pytest.raises(cnb.BlueprintError, match="the graph has a cycle: "):
        compile_plan(bp)
    with pytest.raises(ValueError, match="cycle"):
        compile_plan(bp, validate=False)


def test_plan_levels_are_worked_out_when_asked() -> None:
    bp = _random_blueprint(random.Random(3), 30, shuffled=True)
    plan = compile_plan(bp)
    for nid in plan.order:
        ups = plan.nodes[nid].upstream
        assert plan.levels[nid] == (1 + max(plan.levels[u] for u in ups) if ups else 0)
