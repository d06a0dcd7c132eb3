"""if, delay, loop, parallel and group, run end to end."""

from __future__ import annotations

import pytest

import conductor_nb as cnb
from conductor_nb.engine import hooks
from tests.nodes.conftest import make

DOUBLE = {
    "nodes": {
        "dbl": {"type": "transform", "params": {"operation": "map", "expression": "item * 2"}}
    }
}


def test_if_runs_only_the_taken_branch(run_bp):
    nodes = {
        "cond": {"type": "if", "params": {"input": 5, "condition": "input > 3"}},
        "yes": {"type": "delay", "params": {"seconds": 0}},
        "no": {"type": "delay", "params": {"seconds": 0}},
    }
    run = run_bp(nodes, ["cond.true -> yes.input", "cond.false -> no.input"])
    assert run.status.value == "succeeded", run.summary()
    assert run["yes"].outputs["output"] == 5
    assert run["no"].status.value == "skipped"
    assert run["cond"].outputs["output"] is True


def test_loop_for_each_collects_results_and_shows_iterations(run_bp):
    run = run_bp({"lp": {"type": "loop", "params": {"items": [1, 2, 3], "body": DOUBLE}}})
    assert run.status.value == "succeeded", run.summary()
    assert run["lp"].outputs["output"] == [2, 4, 6]  # map of one item is one value
    assert {"lp[0].dbl", "lp[2].dbl"} <= set(run.node_runs)


def test_loop_times_and_last_result(run_bp):
    params = {"mode": "times", "times": 3, "collectResults": False, "body": DOUBLE}
    run = run_bp({"lp": {"type": "loop", "params": params}})
    assert run["lp"].outputs["output"] == 4


def test_loop_while_and_its_bound(run_bp):
    body = {
        "nodes": {
            "inc": {
                "type": "transform",
                "params": {
                    "operation": "reduce",
                    "expression": "acc + 1",
                    "initial": "{{ params.item }}",
                },
            }
        }
    }
    # the body reads params.item: declare it on the outer blueprint for validation
    params = {"mode": "while", "condition": "(result or 0) < 3", "body": body, "input": 0}
    run = run_bp({"lp": {"type": "loop", "params": params}}, params={"item": 0})
    assert run.status.value == "succeeded", run.summary()
    assert run["lp"].outputs["output"][-1] == 3
    bounded = run_bp(
        {"lp": {"type": "loop", "params": {**params, "condition": "true", "maxIterations": 5}}},
        params={"item": 0},
    )
    assert bounded.status.value == "failed"
    assert "bound of 5 iterations" in str(bounded["lp"].error)


COUNT_UP = {  # the while body: the last result plus one
    "nodes": {
        "inc": {
            "type": "transform",
            "params": {
                "operation": "reduce",
                "expression": "acc + 1",
                "initial": "{{ params.item }}",
            },
        }
    }
}


def _warnings(run, node_id):
    return [line.text for line in run[node_id].logs if line.level == "WARNING"]


def test_while_loop_on_limit_stop_outputs_what_it_collected_with_a_warning(run_bp):
    params = {"mode": "while", "condition": "true", "body": COUNT_UP, "input": 0}
    stopped = {**params, "maxIterations": 4, "onLimit": "stop"}
    run = run_bp({"lp": {"type": "loop", "params": stopped}}, params={"item": 0})
    assert run.status.value == "succeeded", run.summary()
    assert run["lp"].output == [1, 2, 3, 4]
    assert _warnings(run, "lp") == [
        "stopped after maxIterations=4 iterations, the condition still true (onLimit: stop)\n"
    ]
    assert "lp[4].inc" not in run.node_runs
    last_only = {**stopped, "collectResults": False}
    assert (
        run_bp({"lp": {"type": "loop", "params": last_only}}, params={"item": 0})["lp"].output == 4
    )


def test_while_loop_on_limit_fail_is_the_default(run_bp):
    params = {"mode": "while", "condition": "true", "body": COUNT_UP, "input": 0}
    for on_limit in ({}, {"onLimit": "fail"}):
        looped = {**params, "maxIterations": 3, **on_limit}
        run = run_bp({"lp": {"type": "loop", "params": looped}}, params={"item": 0})
        assert run.status.value == "failed"
        assert "reached its bound of 3 iterations" in str(run["lp"].error)
        assert "onLimit: stop" in str(run["lp"].error)  # the error names the way out
        assert _warnings(run, "lp") == []


def test_for_each_loop_on_limit_stop_runs_the_first_items_only(run_bp):
    params = {"items": [1, 2, 3, 4, 5], "body": DOUBLE, "maxIterations": 3, "onLimit": "stop"}
    run = run_bp({"lp": {"type": "loop", "params": params}})
    assert run.status.value == "succeeded", run.summary()
    assert run["lp"].output == [2, 4, 6]
    assert _warnings(run, "lp") == [
        "stopped after maxIterations=3 iterations, 2 of 5 not run (onLimit: stop)\n"
    ]
    assert "lp[3].dbl" not in run.node_runs
    failed = run_bp({"lp": {"type": "loop", "params": {**params, "onLimit": "fail"}}})
    assert failed.status.value == "failed"
    assert "reached its bound of 3 iterations" in str(failed["lp"].error)
    assert not any(node.startswith("lp[") for node in failed.node_runs)  # failed before running


def test_loop_on_limit_within_the_bound_changes_nothing(run_bp):
    params = {"mode": "times", "times": 2, "body": DOUBLE, "maxIterations": 2, "onLimit": "stop"}
    run = run_bp({"lp": {"type": "loop", "params": params}})
    assert run["lp"].output == [0, 2]
    assert _warnings(run, "lp") == []


def test_loop_on_limit_choices_are_validated():
    doc = {"lp": {"type": "loop", "params": {"items": [1], "body": DOUBLE, "onLimit": "skip"}}}
    with pytest.raises(cnb.BlueprintError, match=r"nodes\.lp\.params\.onLimit: expected one of"):
        make(doc)


SHELL_ECHO = {
    "nodes": {
        "sh": {
            "type": "shell-command",
            "params": {"program": "{{ inputs.input.program }}", "args": "{{ inputs.input.args }}"},
        }
    },
    "outputs": {"out": "sh.stdout"},
}


def _item(code: str) -> dict[str, object]:
    import sys

    return {"program": sys.executable, "args": ["-c", code]}


@pytest.mark.parametrize("maintain", [True, False])
def test_parallel_all_with_order(run_bp, maintain):
    items = [_item(f"print({i})") for i in range(4)]
    params = {"items": items, "concurrency": 2, "maintainOrder": maintain, "body": SHELL_ECHO}
    run = run_bp({"p": {"type": "parallel", "params": params}})
    assert run.status.value == "succeeded", run.summary()
    out = [s.strip() for s in run["p"].outputs["output"]]
    assert sorted(out) == ["0", "1", "2", "3"]
    if maintain:
        assert out == ["0", "1", "2", "3"]


def test_parallel_all_settled_and_fail_fast(run_bp):
    items = [_item("print('ok')"), _item("import sys; sys.exit(1)")]
    settled = run_bp(
        {
            "p": {
                "type": "parallel",
                "params": {"items": items, "strategy": "allSettled", "body": SHELL_ECHO},
            }
        }
    )
    statuses = [r["status"] for r in settled["p"].outputs["output"]]
    assert statuses == ["fulfilled", "rejected"]
    failed = run_bp({"p": {"type": "parallel", "params": {"items": items, "body": SHELL_ECHO}}})
    assert failed.status.value == "failed"
    assert "failed" in str(failed["p"].error)


def test_parallel_race_returns_the_first_success_and_cancels_the_rest(run_bp):
    items = [_item("import time; time.sleep(300)"), _item("print('fast')")]
    params = {"items": items, "strategy": "race", "concurrency": 2, "body": SHELL_ECHO}
    run = run_bp({"p": {"type": "parallel", "params": params}})
    assert run["p"].status.value == "succeeded", run.summary()
    assert run["p"].outputs["output"].strip() == "fast"
    assert run.node_runs["p[0].sh"].status.value == "cancelled"


def test_race_run_status_ignores_cancelled_losers(run_bp):
    items = [_item("import time; time.sleep(300)"), _item("print('fast')")]
    params = {"items": items, "strategy": "race", "concurrency": 2, "body": SHELL_ECHO}
    assert run_bp({"p": {"type": "parallel", "params": params}}).status.value == "succeeded"


def test_parallel_per_item_timeout(run_bp):
    items = [_item("import time; time.sleep(300)")]
    params = {"items": items, "timeout": 1, "strategy": "allSettled", "body": SHELL_ECHO}
    run = run_bp({"p": {"type": "parallel", "params": params}})
    assert "timed out" in run["p"].outputs["output"][0]["error"]


def test_group_embedded_and_stored(run_bp, monkeypatch):
    sub = {
        "params": {"n": {"default": 1}},
        "nodes": {
            "t": {"type": "transform", "params": {"operation": "map", "expression": "item * 10"}}
        },
        "outputs": {"result": "t.output"},
    }
    run = run_bp({"g": {"type": "group", "params": {"input": [1, 2], "blueprint": sub}}})
    assert run.status.value == "succeeded", run.summary()
    assert run["g"].outputs["output"] == {"result": [10, 20]}
    assert run.node_runs["g.t"].status.value == "succeeded"

    stored = cnb.Blueprint.from_dict({"conductor": 1, "id": "stored", **sub})
    monkeypatch.setattr(hooks, "_blueprint_loader", lambda name: stored)
    run = run_bp(
        {"g": {"type": "group", "params": {"input": [3], "name": "stored", "params": {"n": 2}}}}
    )
    assert run["g"].outputs["output"] == {"result": [30]}


def test_body_problems_are_reported_at_validation():
    doc = {
        "conductor": 1,
        "id": "t",
        "nodes": {"lp": {"type": "loop", "params": {"body": {"nodes": {}}}}},
    }
    with pytest.raises(cnb.BlueprintError, match=r"nodes\.lp\.params\.body"):
        cnb.Blueprint.from_dict(doc)
