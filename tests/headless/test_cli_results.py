"""What the CLI prints at the end of a run and for a recorded one, run as real
subprocesses: one summary line and the declared outputs; ``runs show`` with the outputs,
without the engine's plumbing records, and ``--json`` equal to what ``run --json`` said;
``--file-root`` for paths outside the working directory; YAML lists and mappings in ``-p``."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

GREET = """
    conductor: 1
    id: greet
    params:
      names: {default: [Ada, Bo, Cy, Di, Ed], type: list}
    nodes:
      each:
        type: loop
        params:
          items: "{{ params.names }}"
          body:
            nodes:
              hello: {type: transform, params: {operation: map, expression: "'Hello ' ~ item"}}
      count: {type: total, params: {items: [1, 2]}}
    edges: []
    outputs:
      greeted: each.output
      count: count.output
"""

WRITE = """
    conductor: 1
    id: writer
    params:
      dest: {type: str}
    nodes:
      write:
        type: file-system
        params: {operation: write, path: "{{ params.dest }}", content: hello}
    outputs:
      written: write.output
"""


def _write(work: Path, name: str, text: str) -> None:
    (work / name).write_text(textwrap.dedent(text).lstrip())


def test_successful_run_prints_one_summary_line_then_the_outputs(cli, work: Path) -> None:
    _write(work, "greet.yaml", GREET)
    done = cli("run", "greet.yaml", "--import", "hl_nodes", "--progress", "plain")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"run \S+ of 'greet': succeeded in \S+s \(2 succeeded\)", lines[0])
    assert lines[1:] == [
        "outputs:",
        "  greeted = ['Hello Ada', 'Hello Bo', 'Hello Cy', 'Hello Di', ...]",
        "  count = 3.0",
    ]
    # the progress on stderr leaves the end of the run to that summary line
    assert not re.search(r"^\S+ run \S+ succeeded in", done.stderr, re.MULTILINE)
    assert "node each started" in done.stderr


def test_runs_show_prints_outputs_and_hides_internal_records(cli, work: Path) -> None:
    _write(work, "greet.yaml", GREET)
    ran = cli("run", "greet.yaml", "--import", "hl_nodes", "--json", "--progress", "none")
    run_id = json.loads(ran.stdout)["run_id"]
    shown = cli("runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "_input" not in shown.stdout
    assert "    each[0].hello" in shown.stdout  # the nested records people wrote stay
    lines = shown.stdout.splitlines()
    assert lines[-3] == "outputs:"
    assert sorted(lines[-2:]) == [
        "  count = 3.0",
        "  greeted = ['Hello Ada', 'Hello Bo', 'Hello Cy', 'Hello Di', ...]",
    ]
    everything = cli("runs", "show", run_id, "--all")
    assert "    each[0]._input" in everything.stdout
    assert (
        "each[0]._input"
        in json.loads(cli("runs", "show", run_id, "--all", "--json").stdout)["nodes"]
    )


TIMINGS = ("duration", "started_at", "finished_at")


def _without_timings(result: dict[str, Any]) -> dict[str, Any]:
    """The result less its clock readings: the engine stamps a run or node and the event
    the history records with separate readings, a few microseconds apart."""
    nodes = {
        node_id: {k: v for k, v in node.items() if k not in TIMINGS}
        for node_id, node in result["nodes"].items()
    }
    return {**{k: v for k, v in result.items() if k not in TIMINGS}, "nodes": nodes}


def test_runs_show_json_is_what_run_json_said(cli, work: Path) -> None:
    _write(work, "greet.yaml", GREET)
    for args in (
        ("fail.yaml", "--import", "hl_nodes"),
        ("greet.yaml", "--import", "hl_nodes"),
    ):
        ran = cli("run", *args, "--json", "--progress", "none")
        live = json.loads(ran.stdout)
        shown = cli("runs", "show", live["run_id"], "--json")
        assert shown.returncode == 0, shown.stderr
        recorded = json.loads(shown.stdout)
        assert _without_timings(recorded) == _without_timings(live)
        assert recorded["exit_code"] == ran.returncode
    assert live["nodes"].keys() == {
        "each",
        "each[0].hello",
        "each[1].hello",
        "each[2].hello",
        "each[3].hello",
        "each[4].hello",
        "count",
    }


def test_failed_run_error_type_and_exit_code_in_runs_show(cli) -> None:
    ran = cli("run", "fail.yaml", "--import", "hl_nodes", "--json", "--progress", "none")
    assert ran.returncode == 1
    shown = json.loads(cli("runs", "show", json.loads(ran.stdout)["run_id"], "--json").stdout)
    assert shown["exit_code"] == 1
    assert shown["nodes"]["b"]["error_type"] == "ValueError"
    assert (
        shown["nodes"]["b"]["error"] == "node 'b' (boom) failed on attempt 1/1: ValueError: kaboom"
    )


def test_file_root_lets_a_run_write_outside_the_working_directory(cli, work: Path) -> None:
    _write(work, "write.yaml", WRITE)
    outside = work.parent / f"{work.name}-outside"
    outside.mkdir()
    target = outside / "out.txt"
    refused = cli("run", "write.yaml", "-p", f"dest={target}", "--progress", "none")
    assert refused.returncode == 1
    assert "PathNotAllowed" in refused.stdout
    hint = "hint: on the command line, allow another folder with --file-root DIR (repeatable"
    assert hint in refused.stdout
    assert not target.exists()
    as_json = cli("run", "write.yaml", "-p", f"dest={target}", "--json", "--progress", "none")
    assert any("--file-root DIR" in h for h in json.loads(as_json.stdout)["hints"])
    run_id = json.loads(as_json.stdout)["run_id"]
    assert hint in cli("runs", "show", run_id).stdout  # the recorded run says it too
    allowed = cli(
        "run",
        "write.yaml",
        "-p",
        f"dest={target}",
        "--file-root",
        str(outside),
        "--progress",
        "none",
    )
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert target.read_text() == "hello"
    assert "  written = {'path': " in allowed.stdout
    relative = cli("run", "write.yaml", "-p", "dest=here.txt", "--file-root", str(outside))
    assert relative.returncode == 0
    assert (work / "here.txt").read_text() == "hello"  # relative paths still start in the cwd


def test_list_and_dict_params_take_yaml_flow_syntax(cli) -> None:
    done = cli(
        "run",
        "ok.yaml",
        "--import",
        "hl_nodes",
        "-p",
        "tags=[x, y]",
        "-p",
        "opts={a: 1}",
        "--json",
        "--progress",
        "none",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["params"]["tags"] == ["x", "y"]
    assert json.loads(done.stdout)["params"]["opts"] == {"a": 1}
    bad = cli("run", "ok.yaml", "--import", "hl_nodes", "-p", "tags=[x, y", "-p", "opts=3")
    assert bad.returncode == 2
    assert "param 'tags' (list): expected a list, got '[x, y' (not valid YAML" in bad.stderr
    assert "e.g. -p 'tags=[a, b, 3]' (YAML flow syntax, or JSON)" in bad.stderr
    assert "param 'opts' (dict): expected a mapping, got '3'" in bad.stderr
    assert "e.g. -p 'opts={key: value, n: 2}'" in bad.stderr
    assert "Traceback" not in bad.stderr
