"""Running the same blueprint again reuses its snapshot and plan, and never a stale one."""

from __future__ import annotations

import conductor_nb as cnb
from conductor_nb.model import snapshot
from conductor_nb.model.params import ParamSpec


def _blueprint(registry: cnb.Registry) -> cnb.Blueprint:
    def scale(x: int, factor: int = 2) -> int:
        return x * factor

    def source(value: int = 1) -> int:
        return value

    registry.register(cnb.NodeType.from_function(scale))
    registry.register(cnb.NodeType.from_function(source))
    bp = cnb.Blueprint("snap", registry=registry)
    bp.add("source", id="src", value=3)
    bp.add("scale", id="out")
    bp.connect("src", "out.x")
    bp.outputs["result"] = "out.output"
    return bp


def test_an_unchanged_blueprint_runs_on_the_same_snapshot_and_plan(registry) -> None:
    bp = _blueprint(registry)
    first = bp.run(history=False)
    second = bp.run(history=False)
    assert first.outputs == second.outputs == {"result": 6}
    assert second.blueprint is first.blueprint  # one copy while the content holds
    assert second.plan is first.plan
    assert first.blueprint is not bp


def test_a_node_edited_in_place_is_seen_by_the_next_run(registry) -> None:
    """No ``bp.changed()`` call: the content itself is compared."""
    bp = _blueprint(registry)
    before = bp.run(history=False)
    bp.nodes["src"].params["value"] = 5  # straight into the node's dict
    after = bp.run(history=False)
    assert after.outputs == {"result": 10}
    assert after.blueprint is not before.blueprint
    assert before.blueprint.nodes["src"].params["value"] == 3  # the old run's copy kept


def test_settings_edges_and_outputs_edited_count_too(registry) -> None:
    bp = _blueprint(registry)
    bp.run(history=False)
    bp.nodes["out"].enabled = False
    assert bp.run(history=False)["out"].status is cnb.NodeState.SKIPPED
    bp.nodes["out"].enabled = True
    bp.add("scale", id="again", factor=10)
    bp.connect("out", "again.x")
    bp.outputs["result"] = "again.output"
    assert bp.run(history=False).outputs == {"result": 60}


def test_a_type_registered_again_compiles_a_new_plan(registry) -> None:
    """A cell run again with a new body of the function: the next run calls the new one."""
    bp = _blueprint(registry)
    old = bp.run(history=False)

    def scale(x: int, factor: int = 2) -> int:
        return x * factor + 1

    registry.register(cnb.NodeType.from_function(scale))
    new = bp.run(history=False)
    assert new.outputs == {"result": 7}
    assert new.plan is not old.plan


def test_a_value_json_cannot_hold_exactly_is_never_reused(registry) -> None:
    class Box:
        def __init__(self, n: int) -> None:
            self.n = n

        def __repr__(self) -> str:
            return "Box()"  # the same text whatever it holds

    def unbox(box: object) -> int:
        return box.n  # type: ignore[attr-defined]

    registry.register(cnb.NodeType.from_function(unbox))
    bp = cnb.Blueprint("boxes", registry=registry)
    box = Box(1)
    bp.add("unbox", id="u", box=box)
    assert bp.run(history=False)["u"].output == 1
    box.n = 2  # the same repr: the document cannot tell
    assert bp.run(history=False)["u"].output == 2


def test_editing_a_runs_copy_leaves_the_next_run_a_fresh_one(registry) -> None:
    bp = _blueprint(registry)
    run = bp.run(history=False)
    run.blueprint.set_params("src", value=100)  # e.g. through a view of that run
    assert snapshot.of(run.blueprint) is None
    again = bp.run(history=False)
    assert again.blueprint is not run.blueprint
    assert again.outputs == {"result": 6}


def test_history_records_the_document_of_the_run(registry, tmp_path) -> None:
    bp = _blueprint(registry)
    first = bp.run(history=tmp_path)
    bp.nodes["src"].params["value"] = 4
    second = bp.run(history=tmp_path)
    kept = cnb.load_run(first.id, home=tmp_path)
    assert kept.blueprint.nodes["src"].params["value"] == 3
    assert cnb.load_run(second.id, home=tmp_path).blueprint.nodes["src"].params["value"] == 4
    records = {r.id: r for r in cnb.runs(home=tmp_path)}
    assert records[first.id].blueprint_hash != records[second.id].blueprint_hash


def test_blueprint_params_edited_count(registry) -> None:
    bp = _blueprint(registry)
    bp.params["start"] = ParamSpec.coerce(3)
    bp.nodes["src"].params["value"] = "{{ params.start }}"
    assert bp.run(history=False).outputs == {"result": 6}
    bp.params["start"].default = 7
    assert bp.run(history=False).outputs == {"result": 14}


def test_a_circular_value_is_copied_every_time(registry) -> None:
    bp = _blueprint(registry)
    loop: list = []
    loop.append(loop)
    bp.nodes["src"].params["value"] = loop  # not JSON at all: never compared by its text
    assert snapshot.take(bp).key is None
    assert snapshot.take(bp) is not snapshot.take(bp)
    assert snapshot.take(bp).text == ""  # the history says it cannot record it
