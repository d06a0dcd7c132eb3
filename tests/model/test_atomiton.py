"""Atomiton flows of every shape: recognised, converted (with where each part came from),
validated and run; what cannot be converted is a located problem, or left out when lenient."""

from __future__ import annotations

import json
import warnings

import pytest

import conductor_nb as cnb
from conductor_nb.errors import BlueprintError
from conductor_nb.model.atomiton import ConvertedFlowWarning, FlowConversionError
from tests.model import atomiton_flows as flows

pytest.importorskip("py_mini_racer")

SALES = "name,amount,active\nA,10.5,yes\nB,3,no\nC,4.5,yes\n"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "sales.csv").write_text(SALES)
    return tmp_path


def _load(path, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bp = cnb.load(path, **options)
    said = [w for w in caught if issubclass(w.category, ConvertedFlowWarning)]
    assert len(said) == 1, [str(w.message) for w in caught]
    return bp, str(said[0].message)


def _write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return path


def test_the_current_shape_converts_runs_and_says_so_once(folder):
    path = _write(folder, "greeting.flow.yaml", flows.greeting_current())
    bp, said = _load(path)
    assert "is an Atomiton flow (current shape), converted to a blueprint" in said
    assert bp.id == "6f1c2f0e-1b7a-4a55-9a3e-000000000001"
    assert bp["format"].params["language"] == "javascript"
    assert bp["write"].params["encoding"] == "utf-8"
    assert bp["write"].position == (400, 20)
    assert bp["write"].retries == 1  # the app's group runner retries once
    run = bp.run(history=False)
    assert run.status.value == "succeeded", run.summary()
    text = (folder / "out" / "greeting.txt").read_text()
    assert text.startswith("Hello notebooks\nat 20")  # {{$now}} is an ISO timestamp


def test_the_current_totals_flow_with_a_path_map(folder):
    path = _write(folder, "totals.flow.yaml", flows.totals_current())
    bp, _ = _load(path, path_map={"/data": "./data", "/output": "./output"})
    assert bp["rows"].params["path"] == "data/sales.csv"
    assert bp["sum"].type == "code" and bp["active"].type == "code"
    assert bp["save"].timeout == 20  # settings.runtime.timeout 20000 ms, per node
    assert bp.params["inputPath"].default == "data/sales.csv"
    run = bp.run(history=False)
    assert run.status.value == "succeeded", run.summary()
    totals = json.loads((folder / "output" / "totals.json").read_text())
    assert totals == {"total": 15, "count": 2, "average": 7.5}


def test_absolute_paths_say_how_to_allow_or_remap_them(folder):
    path = _write(folder, "totals.flow.yaml", flows.totals_current())
    bp, said = _load(path)
    assert "nodes[0].parameters.filePath" in said
    assert "--path-map /data=./data" in said and "--file-root" in said
    with pytest.raises(BlueprintError) as refused:  # before anything runs (the path check)
        bp.run(history=False)
    assert "nodes.rows.params.path: path '/data/sales.csv'" in str(refused.value)
    assert "outside the file roots" in str(refused.value)


@pytest.mark.parametrize("endpoint", ["string", "object", "node-port"])
def test_the_data_shape_with_each_kind_of_edge_endpoint(folder, endpoint):
    path = _write(folder, f"totals-{endpoint}.yaml", flows.totals_data_shape(endpoint))
    bp, said = _load(path)
    assert "(data shape)" in said
    assert [bp[n].type for n in ("rows", "active", "sum", "save")] == [
        "spreadsheet",
        "code",
        "code",
        "file-system",
    ]
    assert bp["save"].name == "Save"
    assert [str(e) for e in bp.edges] == [
        "rows.records -> active.input",
        "active.output -> sum.input",
        "sum.output -> save.input",
    ]
    run = bp.run(history=False)
    assert run.status.value == "succeeded", run.summary()
    assert json.loads((folder / "out" / "totals.json").read_text()) == {"total": 15}


def test_the_schema_shape_takes_values_from_data_and_defaults_from_the_schemas(folder):
    bp, said = _load(_write(folder, "totals-schema.yaml", flows.totals_schema_shape()))
    assert "(schema+data shape)" in said
    assert bp["rows"].params == {"path": "data/sales.csv", "headers": True, "delimiter": ","}
    run = bp.run(history=False)
    assert run.status.value == "succeeded", run.summary()
    assert run["sum"].output == {"total": 18}


@pytest.mark.parametrize(("key", "with_data"), [("blueprint", False), ("flow", True)])
def test_wrapped_shapes_with_nodes_keyed_by_id(folder, key, with_data):
    bp, said = _load(_write(folder, "wrapped.yaml", flows.greeting_wrapped(key, with_data)))
    assert f"(wrapped in {key}: shape)" in said
    assert bp.name == "Wrapped greeting"
    assert "format_it.output -> write_it.content" in [str(e) for e in bp.edges]
    run = bp.run(history=False)
    assert run.status.value == "succeeded", run.summary()
    assert (folder / "out" / "wrapped.txt").read_text() == "HELLO world"


def test_a_malformed_flow_from_the_apps_history_gets_a_clear_error(folder):
    path = _write(folder, "broken.yaml", flows.MALFORMED_NODES_UNDER_METADATA)
    with pytest.raises(cnb.BlueprintError) as info:
        cnb.load(path)
    problem = info.value.problems[0]
    assert problem.path == "flow.metadata.nodes"
    assert problem.line == 6
    assert "indented under metadata" in problem.message


UNMAPPABLE = (
    flows.greeting_current()
    .replace(
        "      createDirectories: true\n", '      createDirectories: true\n      chmod: "0600"\n'
    )
    .replace(
        "edges:\n",
        "edges:\n  - {id: e0, source: write, target: format, sourceHandle: error, "
        "targetHandle: input}\n",
    )
)


def test_unmappable_parts_are_located_problems(folder):
    path = _write(folder, "greeting.flow.yaml", UNMAPPABLE)
    with pytest.raises(FlowConversionError) as info:
        cnb.load(path)
    by_path = {p.path: p for p in info.value.problems}
    chmod = by_path["nodes[2].parameters.chmod"]
    assert chmod.line == UNMAPPABLE.splitlines().index('      chmod: "0600"') + 1
    assert "no equivalent" in chmod.message
    assert "error port has no equivalent" in by_path["edges[0]"].message
    assert "--lenient" in str(info.value)


def test_lenient_converts_the_rest_and_lists_what_was_left_out(folder):
    path = _write(folder, "greeting.flow.yaml", UNMAPPABLE)
    bp, said = _load(path, lenient=True)
    assert "left out (2)" in said and "chmod" in said
    assert "chmod" not in bp["write"].params
    assert bp.run(history=False).status.value == "succeeded"


def test_an_unknown_template_name_is_a_problem(folder):
    text = flows.greeting_current().replace("{{$now}}", "{{$workflow.id}}")
    with pytest.raises(FlowConversionError, match=r"\$workflow"):
        cnb.load(_write(folder, "greeting.flow.yaml", text))


def test_validation_problems_of_the_converted_flow_point_at_the_flows_lines(folder):
    text = flows.greeting_current().replace('operation: "write"', 'operation: "shred"')
    path = _write(folder, "greeting.flow.yaml", text)
    with pytest.warns(ConvertedFlowWarning), pytest.raises(cnb.BlueprintError) as info:
        cnb.load(path)
    problem = next(p for p in info.value.problems if p.path.endswith("params.operation"))
    assert problem.line == text.splitlines().index('      operation: "shred"') + 1


def test_a_native_blueprint_is_not_mistaken_for_a_flow(folder):
    path = _write(folder, "bp.yaml", "conductor: 1\nid: x\nnodes: {a: {type: pass}}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cnb.load(path).id == "x"


def test_the_image_flow_lifts_the_loop_into_a_parallel_body_and_runs(folder):
    image = pytest.importorskip("PIL.Image")
    pictures = folder / "pictures"
    (pictures / "in").mkdir(parents=True)
    for i, colour in enumerate(["red", "green", "blue"]):
        image.new("RGB", (1280, 800 + 100 * i), colour).save(pictures / "in" / f"p{i}.png")
    (pictures / "in" / "notes.txt").write_text("not an image")
    image.new("RGBA", (100, 50), (255, 255, 255, 255)).save(pictures / "mark.png")
    path = _write(folder, "thumbs.flow.yaml", flows.images_current())
    bp, said = _load(path, path_map={"/pictures": "./pictures"})
    assert "loop 'each' and parallel 'fan-out' run as one parallel node 'each'" in said
    assert bp["each"].type == "parallel"
    assert bp["each"].params["concurrency"] == 2
    assert bp["each"].params["timeout"] == 30  # 30000 ms per item
    assert set(bp["each"].params["body"]["nodes"]) == {"shrink", "stamp", "keep"}
    run = bp.run(history=False)
    assert run.status.value == "succeeded", run.summary()
    made = sorted(p.name for p in (pictures / "out").iterdir())
    assert made == ["p0.png", "p1.png", "p2.png"]
    for i, name in enumerate(made):
        with image.open(pictures / "out" / name) as done:
            assert done.width <= 320 and done.height <= 240  # fits, keeping the aspect
            assert 240 in done.size or 320 in done.size
            x, y = done.width - 8 - 5, done.height - 8 - 5  # inside the watermark
            assert done.getpixel((x, y))[:3] != done.getpixel((5, 5))[:3]
            plain = image.new("RGB", (1, 1), ["red", "green", "blue"][i]).getpixel((0, 0))
            assert done.getpixel((5, 5))[:3] == plain
