"""Params scoping in bodies (DESIGN.md "Scoping of params in bodies"): a loop, parallel or
group body sees the outer run's params, its own declared params and what the container
passes; validation uses the same scope. Run params the blueprint does not declare are
refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

import conductor_nb as cnb
from conductor_nb.errors import BlueprintError


def scaled_loop(expression: str = "item * params.factor") -> cnb.Blueprint:
    bp = cnb.Blueprint("scaled", params={"factor": {"default": 2, "type": "int"}})
    body = {"nodes": {"e": {"type": "transform", "params": {"expression": expression}}}}
    bp.add("loop", id="l", items=[1, 2, 3], body=body)
    bp.outputs["result"] = "l.output"
    return bp


def test_a_loop_body_reads_the_run_params_in_expressions_and_templates() -> None:
    bp = scaled_loop()
    assert bp.run(history=False).outputs["result"] == [2, 4, 6]
    assert bp.run(params={"factor": 10}, history=False).outputs["result"] == [10, 20, 30]
    templated = cnb.Blueprint("t", params={"suffix": "!"})
    body = {
        "nodes": {
            "f": {"type": "pass", "params": {"input": "{{ params.item }}{{ params.suffix }}"}}
        }
    }
    templated.add("loop", id="l", items=["a", "b"], body=body)
    templated.outputs["out"] = "l.output"
    assert templated.run(params={"suffix": "?"}, history=False).outputs["out"] == ["a?", "b?"]


NESTED = """\
conductor: 1
id: nested
params:
  factor: {default: 2, type: int}
  api: {default: "http://h", type: str}
nodes:
  g:
    type: group
    params:
      params: {base: 100}
      blueprint:
        params:
          endpoint: {default: "{{ params.api }}/v1", type: str}
        nodes:
          p:
            type: parallel
            params:
              items: [1, 2]
              body:
                nodes:
                  l:
                    type: loop
                    params:
                      items: "{{ [params.item, params.item * 10] }}"
                      body:
                        nodes:
                          e:
                            type: transform
                            params: {expression: "item * params.factor + params.base"}
                          f:
                            type: edit-fields
                            params:
                              keepOnlySet: true
                              values: {n: "{{ item }}", url: "{{ params.endpoint }}",
                                       loop_index: "{{ params.index }}"}
                        edges: [e.output -> f.input]
        outputs: {result: p.output}
outputs:
  result: g.output
"""


def test_nested_bodies_chain_the_scopes(tmp_path: Path) -> None:
    """A loop inside a parallel inside a group: the innermost body reads the top run's
    factor, the group's base, the group body's own endpoint (a template over the top run's
    api) and the loop's own index."""
    path = tmp_path / "nested.yaml"
    path.write_text(NESTED)
    run = cnb.load(path).run(params={"factor": 3, "api": "http://api"}, history=False)
    assert run.status == "succeeded", run.failed_nodes
    expected = [
        [{"n": 3 * x + 100, "url": "http://api/v1", "loop_index": i} for i, x in enumerate(pair)]
        for pair in ([1, 10], [2, 20])
    ]
    assert run.outputs["result"] == {"result": expected}


def test_a_body_param_with_a_template_default_is_filled_from_the_outer_run() -> None:
    bp = cnb.Blueprint("outer", params={"api": "http://default"})
    body = {
        "params": {"api": {"default": "{{ params.api }}/v2", "type": "str"}},
        "nodes": {"f": {"type": "pass", "params": {"input": "{{ params.api }}"}}},
    }
    bp.add("group", id="g", blueprint=body)
    bp.outputs["url"] = "g.output"
    run = bp.run(params={"api": "http://given"}, history=False)
    assert run.outputs["url"] == {"output": "http://given/v2"}


def test_own_declarations_shadow_and_undefaulted_ones_inherit() -> None:
    bp = cnb.Blueprint("outer", params={"a": 1, "b": 2})
    body = {
        "params": {"a": {"default": 10}, "b": {"type": "int"}},
        "nodes": {"f": {"type": "pass", "params": {"input": "{{ [params.a, params.b] }}"}}},
    }
    bp.add("group", id="g", blueprint=body)
    bp.outputs["pair"] = "g.output"
    assert bp.run(params={"a": 5, "b": 6}, history=False).outputs["pair"] == {"output": [10, 6]}


def test_conditions_read_params() -> None:
    bp = cnb.Blueprint("cond", params={"limit": {"default": 3, "type": "int"}})
    body = {"nodes": {"e": {"type": "transform", "params": {"expression": "item + 1"}}}}
    bp.add(
        "loop",
        id="count",
        mode="while",
        input=0,
        condition="result < params.limit",
        collectResults=False,
        body=body,
    )
    bp.add("if", id="big", condition="input >= params.limit")
    bp.connect("count", "big")
    bp.outputs["n"] = "count.output"
    bp.outputs["big"] = "big.output"
    run = bp.run(params={"limit": 5}, history=False)
    assert run.outputs == {"n": 5, "big": True}


# ------------------------------------------------------------------------- validation


def test_validation_accepts_every_name_in_scope_and_only_those() -> None:
    """The outer params and item/index/input are valid in a loop or parallel body, in
    expressions, conditions and templates alike; a group passes its params and input,
    not an item."""
    expression = "item * params.factor + params.index + params.input | length"
    assert scaled_loop(expression).problems() == []
    bp = cnb.Blueprint("ok", params={"threshold": 1})
    body = {
        "nodes": {
            "check": {"type": "if", "params": {"condition": "params.item > params.threshold"}},
            "f": {"type": "pass", "params": {"input": "{{ params.index }}{{ params.threshold }}"}},
        }
    }
    bp.add("parallel", id="p", items=[1, 2], body=body)
    assert bp.problems() == []
    bp.add("group", id="g", params={"params": {"index": 0}, "blueprint": body})
    assert [p.path for p in bp.problems()] == [
        "nodes.g.params.blueprint.nodes.check.params.condition"
    ]


BAD_BODY = """\
conductor: 1
id: typo
params:
  factor: {default: 2}
nodes:
  l:
    type: loop
    params:
      items: [1, 2]
      body:
        nodes:
          e:
            type: transform
            params:
              expression: "item * params.facotr"
"""


def test_a_misspelt_param_inside_a_body_is_located_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(BAD_BODY)
    with pytest.raises(BlueprintError) as info:
        cnb.load(path)
    (found,) = info.value.problems
    assert found.path == "nodes.l.params.body.nodes.e.params.expression"
    assert found.line == 15
    assert "params.facotr" in found.message
    assert "hint: did you mean 'factor'?" in found.hints
    assert any("params in scope here: factor, index, input, item" in h for h in found.hints)


@pytest.mark.parametrize(
    ("node", "path", "read"),
    [
        (
            {
                "type": "transform",
                "params": {"operation": "filter", "expression": "item.amount >= params.min_amout"},
            },
            "expression",
            "params.min_amout",
        ),
        ({"type": "transform", "params": {"expression": "itme * 2"}}, "expression", "'itme'"),
        (
            {"type": "if", "params": {"condition": "input > params.min_amout"}},
            "condition",
            "params.min_amout",
        ),
        ({"type": "pass", "params": {"input": "{{ parms.min_amount }}"}}, "input", "'parms'"),
        ({"type": "edit-fields", "params": {"values": {"x": "{{ itme }}"}}}, "values.x", "'itme'"),
    ],
)
def test_names_in_expressions_and_templates_are_checked_before_a_run(
    node: dict, path: str, read: str
) -> None:
    bp = cnb.Blueprint.from_dict(
        {"id": "t", "params": {"min_amount": 10}, "nodes": {"n": node}}, validate=False
    )
    with pytest.raises(BlueprintError) as info:
        bp.run(history=False)
    (found,) = info.value.problems
    assert found.path == f"nodes.n.params.{path}"
    assert read in found.message
    assert any(h.startswith("hint: did you mean") for h in found.hints)


def test_a_template_default_of_a_body_param_is_checked_against_the_outer_scope() -> None:
    bp = cnb.Blueprint("outer", params={"api": "x"})
    body = {
        "params": {"url": {"default": "{{ params.apii }}/v1"}},
        "nodes": {"f": {"type": "pass", "params": {"input": "{{ params.url }}"}}},
    }
    bp.add("group", id="g", blueprint=body)
    (found,) = bp.problems()
    assert found.path == "nodes.g.params.blueprint.params.url.default"
    assert "hint: did you mean 'api'?" in found.hints


# ----------------------------------------------------------------- undeclared run params


def test_an_undeclared_run_param_is_refused_with_a_did_you_mean() -> None:
    bp = scaled_loop()
    with pytest.raises(BlueprintError) as info:
        bp.run(params={"facotr": 2}, history=False)
    (found,) = info.value.problems
    assert found.path == "params.facotr"
    assert "has no param 'facotr'" in found.message
    assert "hint: did you mean 'factor'?" in found.hints
    with pytest.raises(BlueprintError):
        bp.start(params={"facotr": 2}, history=False)
