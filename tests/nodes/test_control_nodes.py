"""if, delay, loop, parallel and group, run end to end."""

from __future__ import annotations

import copy

import pytest

import conductor_nb as cnb
from conductor_nb.model.types import registry
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


def test_delay_waits_then_passes_its_input_on_unchanged(run_bp):
    value = {"a": [1, 2.5, None], "b": {"c": "d"}}
    nodes = {
        "src": {"type": "pass", "params": {"input": value}},
        "d": {"type": "delay", "params": {"seconds": 0.3}},
    }
    run = run_bp(nodes, ["src.output -> d.input"])
    assert run.status.value == "succeeded", run.summary()
    assert run["d"].output == value
    # the node's record shows it waited: a lower bound only, a busy machine may take longer
    record = run["d"]
    assert record.finished_at - record.started_at >= 0.3 * 0.9


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


BROKEN = "import sys; sys.stderr.write('branch 1 broke'); sys.exit(3)"
SLOW = "import time; time.sleep(300)"  # ends only if it is cancelled


def _status(run, node_run):
    """The status of an inner node run (None if it was never created)."""
    found = run.node_runs.get(node_run)
    return None if found is None else found.status.value


def test_parallel_all_settled_reports_every_branch(run_bp):
    # one at a time, so branch 2 starts only after branch 1 has failed
    items = [_item("print('ok')"), _item(BROKEN), _item("print('also ok')")]
    params = {"items": items, "strategy": "allSettled", "concurrency": 1, "body": SHELL_ECHO}
    run = run_bp({"p": {"type": "parallel", "params": params}})
    assert run["p"].status.value == "succeeded", run.summary()
    settled = run["p"].outputs["output"]
    assert [{k: v for k, v in s.items() if k != "error"} for s in settled] == [
        {"index": 0, "status": "fulfilled", "value": "ok\n"},
        {"index": 1, "status": "rejected"},
        {"index": 2, "status": "fulfilled", "value": "also ok\n"},
    ]
    error = settled[1]["error"]
    assert "p[1].sh" in error and "exited with code 3: branch 1 broke" in error
    assert _status(run, "p[1].sh") == "failed"
    assert _status(run, "p[2].sh") == "succeeded"  # a failure stops nothing


def test_parallel_fail_fast_cancels_the_other_branches(run_bp):
    # branch 0 runs until cancelled; branch 1 fails; branch 2 waits for a free slot
    items = [_item(SLOW), _item(BROKEN), _item("print('late')")]
    params = {"items": items, "concurrency": 2, "body": SHELL_ECHO}
    run = run_bp({"p": {"type": "parallel", "params": params}})
    assert run.status.value == "failed"
    assert run["p"].status.value == "failed"
    message = str(run["p"].error)
    assert "1 of 3 items failed: item 1:" in message  # the failing branch, by index
    assert "'p[1].sh' failed" in message  # and by inner node
    assert "exited with code 3: branch 1 broke" in message  # with its original message
    assert _status(run, "p[1].sh") == "failed"
    assert _status(run, "p[0].sh") == "cancelled"  # the running branch was stopped
    # the waiting branch never got to run its program (cancelled, skipped or never begun)
    assert _status(run, "p[2].sh") in (None, "cancelled", "skipped")


def test_parallel_without_fail_fast_runs_every_branch_then_fails(run_bp):
    items = [_item(BROKEN), _item("print('late')")]
    params = {"items": items, "concurrency": 1, "failFast": False, "body": SHELL_ECHO}
    run = run_bp({"p": {"type": "parallel", "params": params}})
    assert run["p"].status.value == "failed"
    assert "1 of 2 items failed: item 0:" in str(run["p"].error)
    assert _status(run, "p[1].sh") == "succeeded"
    assert run.node_runs["p[1].sh"].outputs["stdout"] == "late\n"


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


GROUP_BODY = {
    "params": {"n": {"default": 1}},
    "nodes": {
        "t": {"type": "transform", "params": {"operation": "map", "expression": "item * 10"}},
        "pn": {"type": "pass", "params": {"input": "{{ params.n }}"}},
    },
    "outputs": {"result": "t.output", "n": "pn.output"},
}


def test_group_embedded(run_bp):
    run = run_bp({"g": {"type": "group", "params": {"input": [1, 2], "blueprint": GROUP_BODY}}})
    assert run.status.value == "succeeded", run.summary()
    assert run["g"].outputs["output"] == {"result": [10, 20], "n": 1}
    assert run.node_runs["g.t"].status.value == "succeeded"


def test_group_runs_a_stored_blueprint_by_name(run_bp, tmp_path, monkeypatch):
    # the real path: a blueprint saved in a folder store, the default store pointed at it
    # ($CONDUCTOR_BLUEPRINTS), and the group node loading it through engine.hooks
    monkeypatch.setenv("CONDUCTOR_BLUEPRINTS", str(tmp_path / "saved"))
    store = cnb.BlueprintStore(tmp_path / "saved")
    first = {"conductor": 1, "id": "scaled", **GROUP_BODY}
    assert store.save(cnb.Blueprint.from_dict(first)) == 1
    second = copy.deepcopy(first)
    second["nodes"]["t"]["params"]["expression"] = "item * 100"
    assert store.save(cnb.Blueprint.from_dict(second)) == 2  # the current version

    node = {"type": "group", "params": {"input": [3], "name": "scaled", "params": {"n": 2}}}
    run = run_bp({"g": node})
    assert run.status.value == "succeeded", run.summary()
    assert run["g"].outputs["output"] == {"result": [300], "n": 2}
    assert run.node_runs["g.t"].status.value == "succeeded"

    missing = run_bp({"g": {"type": "group", "params": {"name": "absent"}}})
    assert missing.status.value == "failed"
    assert f"no blueprint 'absent' in {tmp_path / 'saved'} (stored: scaled)" in str(
        missing["g"].error
    )


def test_group_default_store_is_blueprints_in_the_working_directory(run_bp, tmp_path, monkeypatch):
    monkeypatch.delenv("CONDUCTOR_BLUEPRINTS", raising=False)
    cnb.BlueprintStore(tmp_path / "blueprints").save(
        cnb.Blueprint.from_dict({"conductor": 1, "id": "tens", **GROUP_BODY})
    )
    run = run_bp({"g": {"type": "group", "params": {"input": [4], "name": "tens"}}})
    assert run.status.value == "succeeded", run.summary()  # run_bp works in tmp_path
    assert run["g"].outputs["output"] == {"result": [40], "n": 1}


def test_body_problems_are_reported_at_validation():
    doc = {
        "conductor": 1,
        "id": "t",
        "nodes": {"lp": {"type": "loop", "params": {"body": {"nodes": {}}}}},
    }
    with pytest.raises(cnb.BlueprintError, match=r"nodes\.lp\.params\.body"):
        cnb.Blueprint.from_dict(doc)


def test_a_loop_body_reads_the_iteration_and_its_own_per_record_index(run_bp):
    values = {
        "iteration": "{{ params.index }}",  # the loop's
        "position": "{{ index }}",  # edit-fields' own: the record's place in its input
        "batches": "{{ params.input | length }}",
        "label": "{{ params.index }}.{{ index }} {{ item.n }} of {{ params.item | length }}",
    }
    body = {"nodes": {"tag": {"type": "edit-fields", "params": {"values": values}}}}
    batches = [[{"n": "a"}, {"n": "b"}], [{"n": "c"}]]
    run = run_bp({"lp": {"type": "loop", "params": {"input": batches, "body": body}}})
    assert run.status.value == "succeeded", run.summary()
    assert run["lp"].output == [
        [
            {"n": "a", "iteration": 0, "position": 0, "batches": 2, "label": "0.0 a of 2"},
            {"n": "b", "iteration": 0, "position": 1, "batches": 2, "label": "0.1 b of 2"},
        ],
        [{"n": "c", "iteration": 1, "position": 0, "batches": 2, "label": "1.0 c of 1"}],
    ]


def test_the_loop_and_edit_fields_docs_say_which_index_is_which():
    loop = registry.get("loop").describe()
    body = next(p for p in loop["params"] if p["name"] == "body")
    for text in (loop["description"], body["description"]):
        assert "params.item" in text
        assert "params.index (the iteration, from 0)" in text
        assert "params.input" in text
    assert "edit-fields' own {{ index }} in the body is a record's position" in loop["description"]
    edit = registry.get("edit-fields").describe()
    values = next(p for p in edit["params"] if p["name"] == "values")
    for text in (edit["description"], values["description"]):
        assert "position in this node's input" in text
        assert "params.index" in text
