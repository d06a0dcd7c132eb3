"""Validation looks inside loop, parallel and group bodies, with the outer registry."""

from __future__ import annotations

from pathlib import Path

import pytest

import conductor_nb as cnb

BAD = """\
conductor: 1
id: nested
params:
  k: {default: 1}
nodes:
  each:
    type: loop
    params:
      items: [1, 2]
      body:
        nodes:
          label:
            type: edit-feelds
          scale:
            type: transform
            params: {operation: mapp, expression: "item * {{ params.index }}"}
  grp:
    type: group
    params:
      params: {k: "{{ params.k }}"}
      blueprint:
        nodes:
          x: {type: pass, params: {input: "{{ params.k }} {{ params.nope }}"}}
"""


def test_problems_inside_bodies_are_reported_by_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "nested.yaml"
    path.write_text(BAD)
    with pytest.raises(cnb.BlueprintError) as info:
        cnb.load(path)
    by_path = {p.path: p for p in info.value.problems}
    assert set(by_path) == {
        "nodes.each.params.body.nodes.label.type",
        "nodes.each.params.body.nodes.scale.params.operation",
        "nodes.grp.params.blueprint.nodes.x.params.input",
    }
    assert (
        "did you mean 'edit-fields'?" in by_path["nodes.each.params.body.nodes.label.type"].message
    )
    assert by_path["nodes.each.params.body.nodes.label.type"].line == 13
    assert "params.nope" in by_path["nodes.grp.params.blueprint.nodes.x.params.input"].message
    # what bodies may read is not a problem: params.index (loop), params.k (group's params)


def test_valid_bodies_still_run() -> None:
    bp = cnb.Blueprint("ok")
    body = {"nodes": {"t": {"type": "transform", "params": {"expression": "item * 2"}}}}
    bp.add("loop", id="each", items=[1, 2], body=body)
    assert bp.validate() is bp
    assert bp.run(history=False)["each"].output == [2, 4]
