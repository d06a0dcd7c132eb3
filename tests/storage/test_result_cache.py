"""The result cache: hits, misses, and invalidation when a node function's code changes."""

from __future__ import annotations

import conductor_nb as cnb
from conductor_nb.storage import default_history

CALLS: list[int] = []


def _define_square(offset: int) -> object:
    # Two different function bodies under one node type name, as when a cell is edited.
    if offset == 0:

        @cnb.node(name="cache_square")
        def square(x: int) -> int:
            CALLS.append(x)
            return x * x

    else:

        @cnb.node(name="cache_square")
        def square(x: int) -> int:
            CALLS.append(x)
            return x * x + 1

    return square


def _blueprint(x: int = 3) -> cnb.Blueprint:
    bp = cnb.Blueprint("cache-demo", params={"x": x})
    bp.add("cache_square", id="sq", x="{{ params.x }}")
    bp.outputs["y"] = "sq.output"
    return bp


def test_second_run_is_a_cache_hit() -> None:
    CALLS.clear()
    _define_square(0)
    first = _blueprint().run(cache=True)
    assert first.outputs == {"y": 9}
    assert first["sq"].status is cnb.NodeState.SUCCEEDED
    second = _blueprint().run(cache=True)
    assert second.outputs == {"y": 9}
    assert second["sq"].status is cnb.NodeState.CACHED
    assert CALLS == [3]
    assert any(e.kind == "NodeCached" for e in second.events)
    nodes = default_history().nodes(second.id)
    assert nodes[0].status == "cached"
    assert nodes[0].cache_key == first["sq"].cache_key


def test_other_inputs_miss() -> None:
    CALLS.clear()
    _define_square(0)
    _blueprint(3).run(cache=True)
    other = _blueprint(4).run(cache=True)
    assert other["sq"].status is cnb.NodeState.SUCCEEDED
    assert other.outputs == {"y": 16}
    assert CALLS == [3, 4]


def test_redefining_the_function_invalidates() -> None:
    CALLS.clear()
    _define_square(0)
    assert _blueprint().run(cache=True)["sq"].status is cnb.NodeState.SUCCEEDED
    _define_square(1)
    changed = _blueprint().run(cache=True)
    assert changed["sq"].status is cnb.NodeState.SUCCEEDED
    assert changed.outputs == {"y": 10}
    assert CALLS == [3, 3]
    assert _blueprint().run(cache=True)["sq"].status is cnb.NodeState.CACHED


def test_per_node_cache_setting() -> None:
    CALLS.clear()
    _define_square(0)
    bp = cnb.Blueprint("cache-node")
    bp.add("cache_square", id="sq", x=5, cache=True)
    bp.run()
    assert bp.run()["sq"].status is cnb.NodeState.CACHED
    assert CALLS == [5]


def test_without_cache_nothing_is_reused() -> None:
    CALLS.clear()
    _define_square(0)
    _blueprint().run()
    assert _blueprint().run()["sq"].status is cnb.NodeState.SUCCEEDED
    assert CALLS == [3, 3]


def test_clear_forgets_everything() -> None:
    CALLS.clear()
    _define_square(0)
    _blueprint().run(cache=True)
    cache = default_history().cache()
    assert len(cache) == 1
    assert cache.clear() == 1
    assert _blueprint().run(cache=True)["sq"].status is cnb.NodeState.SUCCEEDED


def test_a_run_with_its_own_history_caches_there(tmp_path) -> None:
    from conductor_nb.storage import RunHistory

    CALLS.clear()
    _define_square(0)
    own = tmp_path / "own-history"
    first = _blueprint(5).run(cache=True, history=str(own))
    second = _blueprint(5).run(cache=True, history=str(own))
    assert second["sq"].status is cnb.NodeState.CACHED and CALLS == [5]
    assert RunHistory(own).cache().get(first["sq"].cache_key) is not None
    assert default_history().cache().get(first["sq"].cache_key) is None


def test_nodes_that_render_their_own_params_are_not_served_stale() -> None:
    """edit-fields renders values per record and loop runs a body: neither is keyed by the
    call's values alone, so both run again (a loop body's own nodes are still cached)."""
    bp = cnb.Blueprint("own-templates", params={"greeting": "Hello"})
    bp.add("edit-fields", id="e", input=[{"n": "a"}], values={"g": "{{ params.greeting }}"})
    bp.add("loop", id="l", items=[[1], [2]], body=_body(2))
    assert bp.run(cache=True)["e"].output == [{"n": "a", "g": "Hello"}]
    changed = bp.run(params={"greeting": "Hi"}, cache=True)
    assert changed["e"].output == [{"n": "a", "g": "Hi"}]
    assert changed["e"].status is cnb.NodeState.SUCCEEDED
    assert changed["l"].output == [[2], [4]]
    bp.set_params("l", body=_body(3))
    assert bp.run(cache=True)["l"].output == [[3], [6]]


def _body(factor: int) -> dict:
    node = {"type": "transform", "params": {"operation": "map", "expression": f"item * {factor}"}}
    return {"nodes": {"scale": node}}


def test_run_option_cache_overrides_node_settings_both_ways() -> None:
    CALLS.clear()
    _define_square(0)
    bp = cnb.Blueprint("cache-override")
    bp.add("cache_square", id="sq", x=6, cache=True)
    bp.add("cache_square", id="plain", x=7)
    bp.run()
    assert bp.run()["sq"].status is cnb.NodeState.CACHED  # the node's setting
    fresh = bp.run(cache=False)  # off for every node, even those that ask for it
    assert fresh["sq"].status is cnb.NodeState.SUCCEEDED
    bp.run(cache=True)  # on for every node: now 'plain' is stored too
    assert bp.run(cache=True).counts() == {"cached": 2}
    assert CALLS == [6, 7, 7, 6, 7, 7]
