"""Property tests: random DAGs round-trip through YAML and JSON; a back edge is a named cycle."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import conductor_nb as cnb
from conductor_nb.model.types import NodeType, Port, Registry


def _join(items: list) -> list:
    return items


REG = Registry()
REG.register(NodeType(name="join", fn=_join, inputs=(Port("items", many=True),)))


@st.composite
def dags(draw):
    n = draw(st.integers(min_value=2, max_value=25))
    bp = cnb.Blueprint("prop", registry=REG, params={"k": draw(st.integers())})
    for i in range(n):
        bp.add("join", id=f"n{i}", retries=draw(st.integers(0, 3)))
    for target in range(1, n):
        sources = draw(st.sets(st.integers(0, target - 1), max_size=3))
        for source in sorted(sources):
            bp.connect(f"n{source}", f"n{target}.items")
    return bp


@settings(max_examples=60, deadline=None)
@given(dags())
def test_random_dags_round_trip(bp) -> None:
    bp.validate()
    again = cnb.Blueprint.from_yaml(bp.to_yaml(), registry=REG)
    assert again == bp and again.to_yaml() == bp.to_yaml()
    assert cnb.Blueprint.from_json(bp.to_json(), registry=REG) == bp


@settings(max_examples=60, deadline=None)
@given(dags(), st.data())
def test_a_back_edge_is_a_cycle_error_naming_it(bp, data) -> None:
    edge = data.draw(st.sampled_from(bp.edges)) if bp.edges else None
    if edge is None:
        return
    bp.connect(f"{edge.target}", f"{edge.source}.items")
    problems = [p for p in bp.problems() if "cycle" in p.message]
    assert len(problems) == 1
    cycle = problems[0].message.split("cycle: ")[1].split(" -> ")
    assert cycle[0] == cycle[-1]
    assert edge.source in cycle and edge.target in cycle
