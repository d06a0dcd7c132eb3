"""Authoring API, (de)serialisation and the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import conductor_nb as cnb
from conductor_nb.model.schema import json_schema


@pytest.fixture
def bp(registry) -> cnb.Blueprint:
    def clean(rows: list[dict], threshold: float = 0.5) -> list[dict]:
        return [r for r in rows if r["score"] >= threshold]

    def stats(rows: list[dict]) -> dict:
        return {"total": sum(r["score"] for r in rows), "count": len(rows)}

    registry.register(cnb.NodeType.from_function(clean))
    registry.register(cnb.NodeType.from_function(stats, outputs=["total", "count"]))
    bp = cnb.Blueprint(
        "sales", description="demo", params={"rows": [{"score": 1}]}, registry=registry
    )
    bp.add("clean", id="clean", rows="{{ params.rows }}", threshold=0.7, retries=2, timeout=5)
    bp.add("stats", id="stats")
    bp.connect("clean", "stats.rows")
    bp.outputs["total"] = "stats.total"
    return bp


def test_add_separates_settings_from_values(bp) -> None:
    node = bp["clean"]
    assert node.params == {"rows": "{{ params.rows }}", "threshold": 0.7}
    assert (node.retries, node.timeout) == (2, 5)


def test_params_keyword_passes_values_named_like_settings(registry) -> None:
    def f(timeout: int) -> int:
        return timeout

    bp = cnb.Blueprint("x", registry=registry)
    node = bp.add(f, params={"timeout": 3}, timeout=9)
    assert node.params == {"timeout": 3} and node.timeout == 9


def test_connect_shorthand_and_errors(bp) -> None:
    assert [str(e) for e in bp.edges] == ["clean.output -> stats.rows"]
    with pytest.raises(cnb.BlueprintError, match="has no input port 'rowz'") as info:
        bp.connect("clean", "stats.rowz")
    assert "did you mean 'stats.rows'" in str(info.value)
    with pytest.raises(cnb.BlueprintError, match="stats' has 2 output ports; name one"):
        bp.connect("stats", "clean.rows")
    with pytest.raises(cnb.BlueprintError, match="no node 'stat'"):
        bp.connect("stat.total", "clean.rows")


def test_add_rejects_unknown_values_and_duplicate_ids(bp) -> None:
    with pytest.raises(cnb.BlueprintError, match="has no param or input 'treshold'") as info:
        bp.add("clean", id="c2", treshold=1)
    assert "did you mean 'threshold'" in str(info.value)
    with pytest.raises(cnb.BlueprintError, match="already exists"):
        bp.add("clean", id="clean")
    with pytest.raises(cnb.NodeTypeError, match="unknown node type 'claen'.*did you mean 'clean'"):
        bp.add("claen")


def test_remove_drops_edges_and_outputs(bp) -> None:
    bp.remove("stats")
    assert bp.edges == [] and bp.outputs == {} and "stats" not in bp


def test_round_trip_yaml_and_json_is_equal_and_byte_stable(bp, tmp_path, registry) -> None:
    for name in ("sales.yaml", "sales.yml", "sales.json"):
        path = tmp_path / name
        bp.save(path)
        first = path.read_bytes()
        loaded = cnb.load(path, registry=registry)
        assert loaded == bp
        loaded.save(path)
        assert path.read_bytes() == first


def test_to_dict_shape(bp) -> None:
    doc = bp.to_dict()
    assert doc["conductor"] == 1
    assert doc["params"]["rows"]["type"] == "list"
    assert doc["nodes"]["clean"] == {
        "type": "clean",
        "params": {"rows": "{{ params.rows }}", "threshold": 0.7},
        "retries": 2,
        "timeout": 5,
    }
    assert doc["edges"] == ["clean.output -> stats.rows"]


def test_on_change_notifies_listeners(bp) -> None:
    seen = []
    unsubscribe = bp.on_change(lambda b: seen.append(len(b)))
    bp.add("clean", id="more", rows=[])
    unsubscribe()
    bp.remove("more")
    assert seen == [3]


def test_validate_returns_self_and_copy_is_independent(bp) -> None:
    assert bp.validate() is bp
    clone = bp.copy()
    clone["clean"].params["threshold"] = 0.1
    assert bp["clean"].params["threshold"] == 0.7


def test_json_schema_describes_the_format(bp, tmp_path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    schema = json_schema()
    assert schema["title"] == "conductor_nb blueprint"
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(json.loads(json.dumps(schema)))
    examples = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))
    assert examples
    for path in examples:  # what users write
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path
    saved = tmp_path / "saved.yaml"
    bp.save(saved)  # what conductor_nb writes
    assert not list(validator.iter_errors(yaml.safe_load(saved.read_text())))
    bad = {"conductor": 1, "id": "x", "nodes": {"a": {"type": "t", "retries": -1}}, "extra": 1}
    messages = [e.message for e in validator.iter_errors(bad)]
    assert any("-1" in m for m in messages) and any("extra" in m for m in messages)


def test_the_real_builtins_cannot_be_shadowed_silently() -> None:
    def transform(x: int) -> int:
        return x

    with pytest.raises(cnb.NodeTypeError, match="already registered"):
        cnb.node(transform)


def test_node_type_from_function_ports() -> None:
    def f(a: int, b: list[str], c: float = 1.0) -> dict:
        return {}

    nt = cnb.NodeType.from_function(f, outputs=["x", "y"])
    assert [(p.name, p.type, p.required) for p in nt.inputs] == [
        ("a", "int", True),
        ("b", "list[str]", True),
        ("c", "float", False),
    ]
    assert [p.name for p in nt.outputs] == ["x", "y"]
    assert nt.split_outputs({"x": 1, "y": 2}) == {"x": 1, "y": 2}
    assert nt.split_outputs((1, 2)) == {"x": 1, "y": 2}
    with pytest.raises(TypeError, match="lacks"):
        nt.split_outputs({"x": 1})


def test_decorator_registers_and_redefinition_replaces() -> None:
    reg = cnb.Registry()

    @cnb.node(registry=reg, version=1)
    def f(x: int) -> int:
        return x

    first = reg.get("f")

    @cnb.node(registry=reg, version=1)
    def f(x: int) -> int:  # noqa: F811 - a notebook cell run twice
        return x + 1

    assert reg.get("f") is not first
    assert reg.get("f").source_hash != first.source_hash

    @cnb.node(registry=reg, name="f", version=2)
    def f2(x: int) -> int:
        return x

    assert reg.versions("f") == [1, 2]
    assert reg.get("f").version == 2 and reg.get("f", 1).fn is f


def test_builtin_types_cannot_be_shadowed_silently(registry) -> None:
    def transform(x: int) -> int:
        return x

    with pytest.raises(cnb.NodeTypeError, match="already registered"):
        registry.register(cnb.NodeType.from_function(transform))


def test_templates_keep_native_types_and_are_sandboxed() -> None:
    from conductor_nb.model.templates import TemplateError, render_value

    ctx = {"params": {"rows": [1, 2]}, "inputs": {}}
    assert render_value("{{ params.rows }}", ctx) == [1, 2]
    assert render_value("n={{ params.rows | length }}", ctx) == "n=2"
    assert render_value({"a": ["{{ params.rows[0] + 1 }}"]}, ctx) == {"a": [2]}
    with pytest.raises(TemplateError, match="sandbox|unsafe"):
        render_value("{{ ().__class__.__mro__ }}", ctx)
    with pytest.raises(TemplateError, match="too large"):
        render_value("{{ 'a' * 1000000000 }}", ctx)
    with pytest.raises(TemplateError, match="range too large"):
        render_value("{{ range(10**9) | list }}", ctx)


def test_expression_errors_speak_of_expressions() -> None:
    from conductor_nb.model.templates import TemplateError, evaluate

    with pytest.raises(TemplateError, match=r"bad expression syntax: unexpected end of expr"):
        evaluate("(item", {"item": 1})


def test_bad_settings_are_refused_when_the_node_is_added() -> None:
    bp = cnb.Blueprint("settings")
    with pytest.raises(cnb.BlueprintError) as info:
        bp.add("pass", id="p", input=1, retries="two", timeout=-1)
    assert info.value.paths == ["nodes.p.retries", "nodes.p.timeout"]
    assert "expected an integer >= 0 and <= 1000, got 'two'" in str(info.value)
    assert not bp.nodes  # nothing half-added
