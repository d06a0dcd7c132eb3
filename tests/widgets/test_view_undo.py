"""Undo/redo of edits made in the graph view, without a browser.

Edits are sent as the page sends them (``_on_message``), so the tests cover the same path
as a click; the outcome is always read from the Python blueprint (``to_dict`` compares the
whole document, order included).
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("anywidget")

import conductor_nb as cnb
from conductor_nb.model.types import Registry
from conductor_nb.widgets import BlueprintView, HistoryError
from conductor_nb.widgets.edits import LIMIT, History


@pytest.fixture
def bp(registry: Registry) -> cnb.Blueprint:
    """a -> b -> c and a loose d; b with params and settings, and an output reading b."""
    bp = cnb.Blueprint("undo", registry=registry)
    bp.add("add", id="a", a=1, position=(10, 20))
    bp.add("double", id="b", x=3, retries=2, timeout=5, name="Bee", position=(200, 20))
    bp.add("double", id="c")
    bp.add("double", id="d")
    bp.connect("a", "b.x")
    bp.connect("b", "c.x")
    bp.outputs["result"] = "b.output"
    return bp


def send(view: BlueprintView, **msg: Any) -> None:
    view._on_message(view, msg, [])
    assert view.error == "", view.error


def undo(view: BlueprintView) -> None:
    send(view, event="undo")


def redo(view: BlueprintView) -> None:
    send(view, event="redo")


EDITS = {
    "add": {"event": "add", "type": "double", "x": 40, "y": 300},
    "delete": {"event": "remove", "node": "b"},
    "move": {"event": "move", "node": "c", "x": 400.04, "y": 90},
    "connect": {"event": "connect", "source": "c.output", "target": "d.x"},
    "disconnect": {"event": "disconnect", "edge": "b.output -> c.x"},
    "set a param": {"event": "set_param", "node": "a", "name": "a", "value": "41"},
    "give a value": {"event": "set_param", "node": "a", "name": "b", "value": "7"},
    "clear a value": {"event": "set_param", "node": "a", "name": "a", "value": ""},
}


@pytest.mark.parametrize("msg", EDITS.values(), ids=EDITS.keys())
def test_undo_gives_back_the_same_document_and_redo_the_edited_one(
    bp: cnb.Blueprint, msg: dict[str, Any]
) -> None:
    view = BlueprintView(bp)
    before = bp.to_dict()
    send(view, **msg)
    after = bp.to_dict()
    assert after != before
    assert view.undo_state["undo_steps"] == 1
    undo(view)
    assert bp.to_dict() == before
    assert (view.undo_state["undo_steps"], view.undo_state["redo_steps"]) == (0, 1)
    redo(view)
    assert bp.to_dict() == after
    assert (view.undo_state["undo_steps"], view.undo_state["redo_steps"]) == (1, 0)


def test_undo_of_a_delete_restores_params_settings_position_edges_and_outputs(
    bp: cnb.Blueprint,
) -> None:
    view = BlueprintView(bp)
    send(view, event="remove", node="b")
    assert "b" not in bp.nodes and bp.edges == [] and bp.outputs == {}
    assert view.notice == "deleted node b"
    assert view.undo_state["undo"] == "delete node b"
    undo(view)
    b = bp.nodes["b"]
    assert (b.params, b.retries, b.timeout, b.name, b.position) == (
        {"x": 3},
        2,
        5,
        "Bee",
        (200, 20),
    )
    assert [str(e) for e in bp.edges] == ["a.output -> b.x", "b.output -> c.x"]
    assert bp.outputs == {"result": "b.output"}
    assert list(bp.nodes) == ["a", "b", "c", "d"]
    # the view shows it back, selected, and says what happened
    assert [n["id"] for n in view.graph["nodes"]] == ["a", "b", "c", "d"]
    assert len(view.graph["edges"]) == 2
    assert view.selected == "b" and view.inspector["node"] == "b"
    assert view.notice == "undone: delete node b"
    assert view.undo_state["redo"] == "delete node b"
    redo(view)
    assert "b" not in bp.nodes and view.selected == ""
    assert view.notice == "redone: delete node b"


def test_a_many_port_gets_its_edges_back_in_order(registry: Registry) -> None:
    bp = cnb.Blueprint("many", registry=registry)
    for name in "xyz":
        bp.add("add", id=name, a=1)
    bp.add("concat", id="cat")
    for name in "xyz":
        bp.connect(name, "cat.items")
    view = BlueprintView(bp)
    before = bp.to_dict()
    send(view, event="remove", node="y")  # the middle one of three inputs to cat.items
    undo(view)
    assert bp.to_dict() == before
    assert [e.source for e in bp.edges] == ["x", "y", "z"]


def test_a_run_of_edits_undoes_to_the_start_and_redoes_to_the_end(bp: cnb.Blueprint) -> None:
    view = BlueprintView(bp)
    start = bp.to_dict()
    for msg in EDITS.values():
        view._on_message(view, msg, [])  # some refer to nodes that an earlier edit removed
    view.error = ""
    end = bp.to_dict()
    steps = view.undo_state["undo_steps"]
    assert steps >= 6
    for _ in range(steps):
        undo(view)
    assert bp.to_dict() == start
    assert view.history.can_undo is False
    for _ in range(steps):
        redo(view)
    assert bp.to_dict() == end
    assert view.history.can_redo is False


def test_nothing_to_undo_or_redo_is_not_an_error(bp: cnb.Blueprint) -> None:
    view = BlueprintView(bp)
    assert view.undo() is None and view.redo() is None
    assert view.undo_state == {"undo": "", "redo": "", "undo_steps": 0, "redo_steps": 0}
    undo(view)
    redo(view)


def test_edits_that_change_nothing_are_not_steps(bp: cnb.Blueprint) -> None:
    view = BlueprintView(bp)
    send(view, event="move", node="a", x=10, y=20)
    send(view, event="set_param", node="a", name="a", value="1")
    send(view, event="set_param", node="a", name="b", value="")
    assert view.history.can_undo is False


def test_a_new_edit_clears_redo(bp: cnb.Blueprint) -> None:
    view = BlueprintView(bp)
    send(view, event="move", node="a", x=0, y=0)
    undo(view)
    assert view.history.can_redo
    send(view, event="move", node="c", x=5, y=5)
    assert not view.history.can_redo
    assert view.undo_state["undo"] == "move node c"


def test_an_edit_from_python_clears_redo_and_keeps_undo(bp: cnb.Blueprint) -> None:
    """The documented rule: edits not made in the view are not undoable there and clear redo."""
    view = BlueprintView(bp)
    send(view, event="move", node="a", x=0, y=0)
    send(view, event="move", node="c", x=5, y=5)
    undo(view)
    assert view.undo_state["redo_steps"] == 1
    bp.add("double", id="from_python")  # a cell
    assert view.undo_state["redo_steps"] == 0 and view.undo_state["undo_steps"] == 1
    undo(view)  # the view's own earlier move is still undoable...
    assert bp.nodes["a"].position == (10, 20)
    assert "from_python" in bp.nodes  # ...and the Python edit is not touched
    assert view.undo() is None


def test_another_view_of_the_same_blueprint_is_an_outside_editor(bp: cnb.Blueprint) -> None:
    one, two = BlueprintView(bp), BlueprintView(bp)
    send(one, event="move", node="a", x=0, y=0)
    undo(one)
    assert one.history.can_redo
    send(two, event="move", node="c", x=1, y=1)
    assert not one.history.can_redo
    assert two.undo_state["undo"] == "move node c"


def test_a_step_that_no_longer_applies_is_refused_whole_and_dropped(bp: cnb.Blueprint) -> None:
    view = BlueprintView(bp)
    send(view, event="remove", node="b")
    # from Python: something else now feeds c.x, which takes one edge
    bp.connect("a", "c.x")
    before = bp.to_dict()
    view._on_message(view, {"event": "undo"}, [])
    assert "cannot undo 'delete node b'" in view.error
    assert "c.x" in view.error and "dropped from the history" in view.error
    assert "Traceback" not in view.error
    assert bp.to_dict() == before  # not half restored: no node b without its edges
    assert view.undo_state["undo_steps"] == 0
    # from Python, the refusal is an exception with the same message
    view.error = ""
    send(view, event="move", node="a", x=0, y=0)
    bp.remove("a")
    with pytest.raises(HistoryError, match="cannot undo 'move node a': node 'a' is no longer"):
        view.undo()


def test_undo_does_not_overwrite_an_output_renamed_from_python(bp: cnb.Blueprint) -> None:
    view = BlueprintView(bp)
    send(view, event="remove", node="b")
    bp.outputs["result"] = "c.output"  # a cell reuses the name
    view._on_message(view, {"event": "undo"}, [])
    assert "output 'result' now reads 'c.output'" in view.error
    assert "b" not in bp.nodes and bp.outputs == {"result": "c.output"}


def _move(node_id: str) -> Any:
    from conductor_nb.widgets.edits import NodeMoved

    return NodeMoved(node_id, (0.0, 0.0), (1.0, 1.0))


def test_history_is_bounded(bp: cnb.Blueprint) -> None:
    view = BlueprintView(bp)
    for i in range(LIMIT + 20):
        send(view, event="move", node="a", x=i, y=0)
    assert view.undo_state["undo_steps"] == LIMIT
    while view.undo() is not None:
        pass
    assert bp.nodes["a"].position == (19.0, 0.0)  # the 20 oldest steps fell off


def test_history_stacks_on_their_own() -> None:
    history = History(limit=2)
    for i in range(3):
        history.record(_move(str(i)))
    assert history.summary() == {
        "undo": "move node 2",
        "redo": "",
        "undo_steps": 2,
        "redo_steps": 0,
    }
    history.outside_edit()
    assert history.can_undo
    history.clear()
    assert not history.can_undo and not history.can_redo
    assert repr(history) == "<History 0 to undo, 0 to redo>"
