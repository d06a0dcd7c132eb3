"""BlueprintView without a browser: the synced state, run binding and coalescing, editing."""

from __future__ import annotations

import atexit
import builtins
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("anywidget")

import conductor_nb as cnb
from conductor_nb.model.types import NodeType, Registry
from conductor_nb.widgets import (
    BlueprintView,
    ConnectionRefused,
    layout,
    state,
    view_run,
    widget_mimebundle,
)

NO_HISTORY = {"history": False}


def explode(x: int) -> int:
    raise ValueError(f"kaboom {x}")


@pytest.fixture
def reg(registry: Registry) -> Registry:
    registry.register(NodeType.from_function(explode))
    return registry


@pytest.fixture
def chain(reg: Registry) -> cnb.Blueprint:
    bp = cnb.Blueprint("chain", registry=reg)
    bp.add("add", id="a", a=1)
    bp.add("double", id="b")
    bp.add("double", id="c")
    bp.connect("a", "b.x")
    bp.connect("b", "c.x")
    return bp


def view_of(bp: cnb.Blueprint, **options: Any) -> BlueprintView:
    return BlueprintView(bp, run_options=NO_HISTORY, **options)


# ----------------------------------------------------------------- graph state
def test_graph_payload_has_ports_edges_and_layered_positions(
    chain: cnb.Blueprint,
) -> None:
    chain.set_params("b", position=(40, 50))
    graph = view_of(chain).graph
    assert [n["id"] for n in graph["nodes"]] == ["a", "b", "c"]
    assert graph["edges"] == ["a.output -> b.x", "b.output -> c.x"]
    a, b, _c = graph["nodes"]
    ports = graph["types"][a["type"]]
    assert [p["name"] for p in ports["inputs"]] == ["a", "b"]
    assert ports["inputs"][0].get("required") and not ports["inputs"][1].get("required")
    assert [p["name"] for p in graph["types"]["double"]["outputs"]] == ["output"]
    assert "saved" not in a and _c["pos"][0] > a["pos"][0]  # layered left to right
    assert b["pos"] == [40.0, 50.0] and b["saved"]  # where the user put it


def test_graph_payload_is_small_at_1000_nodes(reg: Registry) -> None:
    bp = cnb.Blueprint("big", registry=reg)
    bp.add("add", id="n0", a=1)
    for i in range(1, 1000):
        bp.add("double", id=f"n{i}")
        bp.connect(f"n{(i - 1) // 3}", f"n{i}.x")
    size = len(json.dumps(view_of(bp).graph))
    print(f"graph payload at 1,000 nodes: {size / 1024:.0f} kB")
    assert size < 100_000


def test_a_wide_fan_out_is_wrapped_into_columns(reg: Registry) -> None:
    bp = cnb.Blueprint("fan", registry=reg)
    bp.add("add", id="root", a=1)
    for i in range(300):
        bp.add("double", id=f"n{i}")
        bp.connect("root", f"n{i}.x")
    nodes = {n["id"]: n["pos"] for n in view_of(bp).graph["nodes"]}
    columns = {x for x, _y in (nodes[f"n{i}"] for i in range(300))}
    rows = {y for _x, y in (nodes[f"n{i}"] for i in range(300))}
    assert len(columns) == 300 // layout.WRAP_ROWS + (300 % layout.WRAP_ROWS > 0)
    assert len(rows) <= layout.WRAP_ROWS
    bottom = max(y for _x, y in nodes.values())
    assert 0 < nodes["root"][1] < bottom  # the source sits beside the middle of its fan
    assert nodes["root"][0] < min(columns)


def test_body_nodes_are_summarised_for_folding() -> None:
    bp = cnb.Blueprint("loops")
    body = {
        "nodes": {"up": {"type": "edit-fields"}, "down": {"type": "transform"}},
        "edges": ["up.output -> down.input"],
    }
    bp.add("loop", id="each", items=[1, 2], body=body)
    (node,) = view_of(bp).graph["nodes"]
    body_nodes = node["body"]["nodes"]
    assert [(n["id"], n["type"]) for n in body_nodes] == [
        ("up", "edit-fields"),
        ("down", "transform"),
    ]
    assert node["body"]["edges"] == ["up.output -> down.input"]
    (up, down) = (n["pos"] for n in body_nodes)  # laid out left to right inside the body
    assert up[0] < down[0]
    types = view_of(bp).graph["types"]  # the body's types have their ports, as outer ones do
    assert [p["name"] for p in types["transform"]["inputs"]][:1] == ["input"]


def test_a_body_nodes_run_per_item_is_inspected_read_only() -> None:
    bp = cnb.Blueprint("loops")
    body = {
        "nodes": {
            "times": {"type": "transform", "params": {"expression": "item * 10"}},
            "label": {"type": "transform", "params": {"expression": "item + 1"}},
        },
        "edges": [{"source": "times.output", "target": "label.input"}],
    }
    bp.add("loop", id="each", items=[1, 2, 3], body=body)
    view = view_of(bp)
    assert view.graph["nodes"][0]["body"]["edges"] == ["times.output -> label.input"]
    run = bp.run(history=False)
    view.attach(run)
    assert view.states["each[1].times"]["state"] == "succeeded"  # per-item records go live
    view.selected = "each[1].times"
    insp = view.inspector
    assert (insp["node"], insp["type"], insp["nested"]) == ("each[1].times", "transform", True)
    assert insp["fields"] == []
    assert insp["run"]["outputs"][0]["text"] == "20"
    assert "times in the body of 'each'" in insp["description"]
    view.selected = "each[9].times"  # no such item: nothing to inspect
    assert view.inspector == {}


def test_palette_lists_registered_types(chain: cnb.Blueprint) -> None:
    names = [t["name"] for t in view_of(chain).palette]
    assert {"add", "double", "transform", "concat", "explode"} <= set(names)


def test_python_edits_update_the_graph(chain: cnb.Blueprint) -> None:
    view = view_of(chain)
    chain.add("double", id="d")
    chain.connect("c", "d.x")
    assert [n["id"] for n in view.graph["nodes"]] == ["a", "b", "c", "d"]
    assert len(view.graph["edges"]) == 3
    chain.remove("b")
    assert [n["id"] for n in view.graph["nodes"]] == ["a", "c", "d"]


# ----------------------------------------------------------------- runs
def test_background_run_states_and_progress(chain: cnb.Blueprint) -> None:
    view = view_of(chain)
    run = view.start_run()
    run.wait(30)
    view.wait_actions()
    assert {n: s["state"] for n, s in view.states.items()} == dict.fromkeys("abc", "succeeded")
    assert view.states["a"]["attempts"] == 1
    assert view.states["a"]["duration"] is not None
    assert view.run_info["status"] == "succeeded"
    assert (view.run_info["done"], view.run_info["total"]) == (3, 3)
    assert view.run_info["dashboard"] is None  # the local executor has none (Dask: test_view_dask)
    assert view.error == ""


def test_events_are_coalesced_into_few_trait_updates(reg: Registry) -> None:
    bp = cnb.Blueprint("wide", registry=reg)
    bp.add("add", id="root", a=1)
    for i in range(300):
        bp.add("double", id=f"n{i}")
        bp.connect("root", f"n{i}.x")
    view = view_of(bp)
    updates: list[int] = []
    view.observe(lambda change: updates.append(len(change["new"])), names=["states"])
    run = view.start_run()
    run.wait(60)
    view.wait_actions()
    node_events = [e for e in run.events if hasattr(e, "node_id")]
    assert len(node_events) >= 900  # queued, started, succeeded per node
    assert 1 <= view.flushes * 5 < len(node_events)
    assert len(updates) <= view.flushes + 2  # + attach and the final refresh
    assert all(s["state"] == "succeeded" for s in view.states.values())
    assert len(view.states) == 301


def test_the_page_gets_only_changed_states_and_a_snapshot_on_request(reg: Registry) -> None:
    bp = cnb.Blueprint("wide", registry=reg)
    bp.add("add", id="root", a=1)
    for i in range(300):
        bp.add("double", id=f"n{i}")
        bp.connect("root", f"n{i}.x")
    view = view_of(bp)
    patches: list[dict[str, Any]] = []
    view.observe(lambda change: patches.append(change["new"]), names=["state_patch"])
    run = view.start_run()
    run.wait(60)
    view.wait_actions()
    page: dict[str, Any] = {}
    for patch in patches:  # what the page does with them (js/src/store.js)
        if patch["full"]:
            page = {}
        page.update(patch["nodes"])
    assert page == state.wire_states(view.states)
    assert page["n7"][0] == "succeeded" and page["n7"][1] == 1
    sizes = [len(json.dumps(p)) for p in patches[1:]]
    print(f"{len(sizes)} patches, {sum(sizes) / len(sizes):.0f} bytes on average")
    assert sum(sizes) < 3 * len(json.dumps(state.wire_states(view.states)))  # each node ~3 times
    assert [p["seq"] for p in patches] == sorted(p["seq"] for p in patches)
    view._on_message(view, {"event": "snapshot"}, [])
    assert view.state_patch["full"] and len(view.state_patch["nodes"]) == 301


def test_step_runs_exactly_one_node(chain: cnb.Blueprint) -> None:
    view = view_of(chain)
    view.step()
    view.wait_actions()
    assert [n for n, s in view.states.items() if s["state"] == "succeeded"] == ["a"]
    assert view.run_info["status"] == "paused"
    view.step()
    view.wait_actions()
    assert [n for n, s in view.states.items() if s["state"] == "succeeded"] == ["a", "b"]
    view.stop()
    assert view.run is not None
    view.run.wait(30)
    view.wait_actions()
    assert view.run_info["status"] == "cancelled"
    view.reset()
    assert view.states == {} and view.run is None and view.run_info["status"] == "idle"


def test_breakpoint_pauses_before_the_node(chain: cnb.Blueprint) -> None:
    view = view_of(chain)
    assert view.toggle_breakpoint("b") is True
    run = view.start_run()
    run.wait(30)
    view.wait_actions()
    assert view.run_info["status"] == "paused"
    assert view.run_info["paused_at"] == "b"
    assert view.states["b"]["state"] == "pending"
    svg = view._repr_mimebundle_()[0]["image/svg+xml"]  # type: ignore[index]
    assert 'data-node="b" data-state="paused"' in svg
    view.start_run()  # Run on a paused run resumes it
    run.wait(30)
    view.wait_actions()
    assert view.run_info["status"] == "succeeded"
    assert view.toggle_breakpoint("b") is False
    assert view.breakpoints == []


def test_attaching_to_a_run_paused_at_a_breakpoint_does_not_rearm_it(chain: cnb.Blueprint) -> None:
    """The view's Run starts the run with its breakpoints, then attaches: on a busy machine
    the run can already be paused at one by then, and setting it again re-armed it (the
    run paused there again right after Resume)."""
    view = view_of(chain)
    view.toggle_breakpoint("b")
    run = chain.start(breakpoints=["b"], **NO_HISTORY)
    run.wait(30)
    assert run.paused_at == "b"
    view.attach(run)
    view.resume()
    run.wait(30)
    assert run.status.value == "succeeded"


def test_failed_node_inspector_retry_and_rerun(reg: Registry) -> None:
    bp = cnb.Blueprint("fails", registry=reg)
    bp.add("add", id="a", a=2)
    bp.add("explode", id="boom")
    bp.connect("a", "boom.x")
    view = view_of(bp)
    view.start_run().wait(30)
    view.wait_actions()
    view.selected = "boom"
    record = view.inspector["run"]
    assert record["state"] == "failed"
    assert "ValueError: kaboom 2" in record["error"]
    assert "explode" in record["traceback"]
    assert record["inputs"] == [{"name": "x", "kind": "int", "text": "2"}]
    assert record["inputs_json"].replace(" ", "").replace("\n", "") == '{"x":2}'
    # fix the function, retry from the inspector's button
    reg.register(NodeType.from_function(lambda x: x * 10, name="explode"))
    view._on_message(view, {"event": "retry", "node": "boom"}, [])
    view.wait_actions()
    assert view.states["boom"]["state"] == "succeeded", view.error
    assert view.inspector["run"]["outputs"][0]["text"] == "20"
    view._on_message(view, {"event": "rerun", "node": "boom", "inputs": '{"x": 5}'}, [])
    view.wait_actions()
    assert view.inspector["run"]["outputs"][0]["text"] == "50"
    view._on_message(view, {"event": "rerun", "node": "boom", "inputs": "{not json"}, [])
    assert "not valid JSON" in view.error


def test_view_run_binds_a_finished_run(chain: cnb.Blueprint) -> None:
    run = chain.run(history=False)
    view = view_run(run)
    assert view.run is run
    assert view.states["c"]["state"] == "succeeded"
    assert view.run_info["status"] == "succeeded"


# ----------------------------------------------------------------- editing
def test_connect_accepts_valid_and_refuses_invalid_edges(reg: Registry) -> None:
    bp = cnb.Blueprint("edit", registry=reg)
    bp.add("add", id="a", a=1)
    bp.add("add", id="b", a=1)
    bp.add("double", id="c")
    view = view_of(bp)
    view.connect("a.output", "c.x")
    assert [str(e) for e in bp.edges] == ["a.output -> c.x"]
    with pytest.raises(ConnectionRefused, match="already connected"):
        view.connect("a.output", "c.x")
    with pytest.raises(ConnectionRefused, match=r"cannot connect b.output -> c.x: .*c\.x"):
        view.connect("b.output", "c.x")  # one edge per input port
    view.connect("c.output", "b.b")
    with pytest.raises(ConnectionRefused, match="cycle"):
        view.connect("b.output", "a.b")
    with pytest.raises(ConnectionRefused, match="no input port 'nope'"):
        view.connect("a.output", "c.nope")
    assert len(bp.edges) == 2
    # from the page: the reason lands in the error area
    view._on_message(view, {"event": "connect", "source": "b.output", "target": "c.x"}, [])
    assert "cannot connect b.output -> c.x" in view.error


def test_messages_edit_the_blueprint(reg: Registry) -> None:
    bp = cnb.Blueprint("edit", registry=reg)
    view = view_of(bp)
    msg = view._on_message
    msg(view, {"event": "add", "type": "transform", "x": 100, "y": 50}, [])
    assert list(bp.nodes) == ["transform"] and bp.nodes["transform"].position == (100, 50)
    assert view.selected == "transform"
    assert [f["name"] for f in view.inspector["fields"]] == ["operation", "expression", "input"]
    assert view.inspector["fields"][0]["kind"] == "choice"
    msg(
        view,
        {"event": "set_param", "node": "transform", "name": "operation", "value": "filter"},
        [],
    )
    assert bp.nodes["transform"].params["operation"] == "filter"
    msg(view, {"event": "add", "type": "add"}, [])
    msg(view, {"event": "set_param", "node": "add", "name": "a", "value": "41"}, [])
    assert bp.nodes["add"].params["a"] == 41
    msg(view, {"event": "set_param", "node": "add", "name": "a", "value": "forty"}, [])
    assert "expected an integer, got 'forty'" in view.error
    msg(view, {"event": "set_param", "node": "add", "name": "a", "value": ""}, [])
    assert "a" not in bp.nodes["add"].params
    msg(view, {"event": "move", "node": "add", "x": 12.345, "y": 7}, [])
    assert bp.nodes["add"].position == (12.3, 7.0)
    assert view.graph["nodes"][1]["pos"] == [12.3, 7.0]
    assert view.graph["nodes"][1]["saved"]
    msg(view, {"event": "connect", "source": "add.output", "target": "transform.input"}, [])
    msg(view, {"event": "disconnect", "edge": "add.output -> transform.input"}, [])
    assert bp.edges == []
    msg(view, {"event": "remove", "node": "transform"}, [])
    assert list(bp.nodes) == ["add"] and view.selected == "add"
    msg(view, {"event": "remove", "node": "add"}, [])
    assert view.selected == "" and view.inspector == {}
    msg(view, {"event": "remove", "node": "ghost"}, [])
    assert "no node 'ghost'" in view.error
    msg(view, {"event": "no-such-thing"}, [])
    assert "unknown view message" in view.error


def test_coerce_value() -> None:
    assert state.coerce_value("int", "3") == 3
    assert state.coerce_value("float", "2.5") == 2.5
    assert state.coerce_value("bool", True) is True
    assert state.coerce_value("str", "007") == "007"
    assert state.coerce_value("list", "[1, 2]") == [1, 2]
    assert state.coerce_value("any", "plain words") == "plain words"
    assert state.coerce_value("int", "{{ params.n }}") == "{{ params.n }}"
    assert state.coerce_value("int", "  ") is None


def test_previews_are_truncated() -> None:
    out = state.preview(list(range(10_000)))
    assert out["kind"] == "list" and len(out["text"]) == state.PREVIEW_CHARS
    assert out["text"].endswith("…")


def test_records_preview_as_a_table_with_types_and_first_rows() -> None:
    rows = [{"name": f"p{i}", "age": i, "ok": i % 2 == 0} for i in range(1000)]
    table = state.preview(rows)["table"]
    assert table["rows"] == 1000
    assert table["columns"] == [
        {"name": "name", "type": "str"},
        {"name": "age", "type": "int"},
        {"name": "ok", "type": "bool"},
    ]
    assert len(table["head"]) == state.TABLE_ROWS and table["head"][1] == ["p1", "1", "False"]


def test_dataframes_and_arrow_tables_preview_as_tables() -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"x": range(50), "y": [f"v{i}" for i in range(50)]})
    table = state.preview(frame)["table"]
    assert table["rows"] == 50 and [c["name"] for c in table["columns"]] == ["x", "y"]
    assert table["columns"][0]["type"] == "int64" and table["head"][0] == ["0", "v0"]
    arrow = state.preview(pa.Table.from_pandas(frame))["table"]
    assert arrow["rows"] == 50 and arrow["columns"][0] == {"name": "x", "type": "int64"}
    assert arrow["head"][2] == ["2", "v2"]


def test_nested_json_previews_as_a_clipped_tree_and_long_text_whole() -> None:
    value = {"user": {"name": "Ada", "tags": list(range(80))}, "ok": True}
    tree = state.preview(value)["tree"]
    assert tree["user"]["name"] == "Ada" and tree["ok"] is True
    assert len(tree["user"]["tags"]) == state.TREE_ITEMS + 1  # and a "… more" line
    text = "word " * 500
    assert state.preview(text)["long_text"] == text
    assert "long_text" not in state.preview("short")


# ----------------------------------------------------------------- display
def test_a_large_run_keeps_a_small_legible_overview_picture(reg: Registry) -> None:
    bp = cnb.Blueprint("wide", registry=reg)
    bp.add("add", id="root", a=1)
    for i in range(999):
        bp.add("double" if i != 500 else "explode", id=f"n{i}")
        bp.connect("root", f"n{i}.x")
    view = view_of(bp)
    view.start_run().wait(120)
    svg = view.to_svg()
    print(f"static picture at 1,000 nodes: {len(svg) / 1024:.0f} kB")
    assert len(svg) < 120_000
    assert svg.count('data-state="succeeded"') == 999 and svg.count('data-state="failed"') == 1
    assert "failed: n500" in svg and "1000 nodes" in svg


def test_mimebundle_has_widget_and_static_svg(chain: cnb.Blueprint) -> None:
    view = view_of(chain)
    data, _meta = view._repr_mimebundle_()  # type: ignore[misc]
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["image/svg+xml"].startswith("<svg")
    assert data["image/svg+xml"].count('class="cnb-node"') == 3
    bundle = widget_mimebundle(chain)
    assert bundle is not None and "application/vnd.jupyter.widget-view+json" in bundle


def test_a_successful_edit_clears_an_old_error(reg: Registry) -> None:
    bp = cnb.Blueprint("edit", registry=reg)
    bp.add("add", id="a", a=1)
    bp.add("double", id="b")
    bp.connect("a", "b.x")
    view = view_of(bp)
    msg = view._on_message
    msg(view, {"event": "connect", "source": "a.output", "target": "b.x"}, [])
    assert "already connected" in view.error
    msg(view, {"event": "move", "node": "a", "x": 5, "y": 5}, [])  # any edit that goes through
    assert view.error == ""
    msg(view, {"event": "set_param", "node": "a", "name": "a", "value": "one"}, [])
    assert "expected an integer" in view.error
    msg(view, {"event": "undo"}, [])  # undo and redo are edits too
    assert view.error == "" and view.notice == "undone: move node a"
    msg(view, {"event": "remove", "node": "ghost"}, [])
    assert "no node 'ghost'" in view.error
    msg(view, {"event": "redo"}, [])
    assert view.error == ""
    # a refused edit or a mere selection does not clear it
    msg(view, {"event": "remove", "node": "ghost"}, [])
    view.selected = "b"
    assert "no node 'ghost'" in view.error


def test_repr_counts_nodes_in_words(reg: Registry) -> None:
    bp = cnb.Blueprint("one", registry=reg)
    bp.add("add", id="a", a=1)
    assert repr(view_of(bp)) == "<BlueprintView 'one' (1 node, no run)>"
    bp.add("double", id="b")
    assert repr(view_of(bp)) == "<BlueprintView 'one' (2 nodes, no run)>"
    assert repr(view_of(cnb.Blueprint("empty", registry=reg))) == (
        "<BlueprintView 'empty' (0 nodes, no run)>"
    )


def test_errors_in_callbacks_are_shown(chain: cnb.Blueprint) -> None:
    view = view_of(chain)
    view._on_message(view, {"event": "toggle_breakpoint", "node": "zzz"}, [])
    assert "no node 'zzz'" in view.error
    chain.nodes["a"].params["a"] = "{{ params.missing }}"
    view._on_message(view, {"event": "run"}, [])  # refused before it starts: the reason is shown
    assert view.run is None
    assert view.error.startswith("run: ") and "missing" in view.error


# ----------------------------------------------------------------- %%blueprint
@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real IPython shell with ``%load_ext conductor_nb`` run in it, as a user does.

    Not a kernel: a cell shows the blueprint's repr and SVG picture; the live view (which
    needs ipykernel) is checked in JupyterLab by test_view_browser. The shell is a
    process-wide singleton that touches ``__main__`` and builtins: all is put back after.
    """
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setitem(sys.modules, "__main__", sys.modules["__main__"])
    for name in ("__IPYTHON__", "display"):  # added by the shell; removed again on teardown
        monkeypatch.setitem(vars(builtins), name, None)
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ipython = InteractiveShell.instance(config=config)
    try:
        ipython.run_line_magic("load_ext", "conductor_nb")
        yield ipython
    finally:
        atexit.unregister(ipython.atexit_operations)
        ipython.atexit_operations()
        ipython.cleanup()
        InteractiveShell.clear_instance()


def run_cell(shell: Any, source: str) -> tuple[Any, Any]:
    """Run a cell; its ExecutionResult and what it displayed/printed."""
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = shell.run_cell(source)
    return result, captured


@cnb.node
def cnb_view_test_source() -> int:
    return 1


@cnb.node
def cnb_view_test_plus_one(x: int) -> int:
    return x + 1


YAML = """\
id: magic
nodes:
  one: {type: cnb_view_test_source}
  two: {type: cnb_view_test_plus_one}
edges:
  - one.output -> two.x
"""


def test_load_ext_gives_the_blueprint_cell_magic(shell: Any) -> None:
    assert shell.find_cell_magic("blueprint") is not None
    result, shown = run_cell(shell, "%%blueprint flow\n" + YAML)
    assert result.success, result.error_in_exec
    bp = shell.user_ns["flow"]
    assert isinstance(bp, cnb.Blueprint)
    assert (bp.id, list(bp.nodes), [str(e) for e in bp.edges]) == (
        "magic",
        ["one", "two"],
        ["one.output -> two.x"],
    )
    # the cell shows the blueprint: its repr and its picture
    [output] = shown.outputs
    if "application/vnd.jupyter.widget-view+json" in output.data:
        # ipykernel imported by an earlier test in this process: the live view rides along
        assert output.data["text/plain"].startswith("<BlueprintView 'magic' (2 nodes")
    else:
        assert output.data["text/plain"] == repr(bp)
    svg = output.data["image/svg+xml"]
    assert 'data-node="one"' in svg and 'data-node="two"' in svg
    # the name is bound in the session: the next cell runs it
    ran, _ = run_cell(shell, "flow.run(history=False)['two'].outputs['output']")
    assert ran.success, ran.error_in_exec
    assert ran.result == 2


def test_blueprint_magic_defaults_to_bp_and_can_skip_showing(shell: Any) -> None:
    result, shown = run_cell(shell, "%%blueprint --no-show\n" + YAML)
    assert result.success, result.error_in_exec
    assert isinstance(shell.user_ns["bp"], cnb.Blueprint)
    assert list(shell.user_ns["bp"].nodes) == ["one", "two"]
    assert shown.outputs == []


@pytest.mark.parametrize(
    ("line", "body", "message"),
    [
        ("bad", "id: x\nnodes:\n  a: {type: no_such_type}\n", "unknown node type 'no_such_type'"),
        ("1abc", YAML, "'1abc' is not a Python name"),
        ("one two", YAML, "takes one name"),
    ],
)
def test_blueprint_magic_reports_problems_as_usage_errors(
    shell: Any, line: str, body: str, message: str
) -> None:
    from IPython.core.error import UsageError

    result, captured = run_cell(shell, f"%%blueprint {line}\n{body}")
    assert isinstance(result.error_in_exec, UsageError)
    assert message in str(result.error_in_exec)
    # the user reads the problem, not a traceback, and nothing was bound
    assert "UsageError: " in captured.stderr and message in captured.stderr
    assert "Traceback" not in captured.stderr
    assert not {"bad", "bp", "one"} & set(shell.user_ns)


def test_the_view_reads_state_looks_from_the_one_table(chain: cnb.Blueprint) -> None:
    """Colours and icons reach the front end as a trait; its JS and CSS carry no copy."""
    from conductor_nb.model.states import STATE_STYLES, style_table

    view = BlueprintView(chain)
    assert view.state_styles == style_table()
    assert view.state_styles["cached"]["stroke"] == STATE_STYLES["cached"].stroke
    static = Path(cnb.__file__).parent / "widgets" / "static"
    css = (static / "view.css").read_text().splitlines()
    state_rules = [line for line in css if ".cnb-state-" in line or "data-status=" in line]
    assert state_rules and not [line for line in state_rules if "fill:" in line or "color:" in line]
    assert "state_styles" in (static / "view.js").read_text()
