"""``-p`` steers nodes inside loop bodies, and an undeclared ``-p`` name stops the run
before anything runs (exit 2, with a did-you-mean)."""

from __future__ import annotations

import json
from pathlib import Path

SCALED = """\
conductor: 1
id: scaled
params:
  factor: {default: 2, type: int}
nodes:
  l:
    type: loop
    params:
      items: [1, 2, 3]
      body:
        nodes:
          e: {type: transform, params: {expression: "item * params.factor"}}
          f:
            type: edit-fields
            params: {keepOnlySet: true, values: {v: "{{ item }}-{{ params.factor }}"}}
        edges: [e.output -> f.input]
outputs:
  result: l.output
"""


def test_p_reaches_nodes_inside_a_loop_body(cli, work: Path) -> None:
    (work / "scaled.yaml").write_text(SCALED)
    done = cli("run", "scaled.yaml", "-p", "factor=5", "--json", "--no-history")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"]["result"] == [{"v": f"{n}-5"} for n in (5, 10, 15)]


def test_an_undeclared_p_name_is_refused_before_anything_runs(cli, work: Path) -> None:
    (work / "scaled.yaml").write_text(SCALED)
    done = cli("run", "scaled.yaml", "-p", "facotr=5")
    assert done.returncode == 2
    assert "has no param 'facotr'" in done.stderr
    assert "did you mean 'factor'?" in done.stderr
    assert "started" not in done.stderr
