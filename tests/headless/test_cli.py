"""The conductor-nb CLI, run as a real subprocess: exit codes, --json, params, interrupts."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.headless.conftest import CLI, cli_env


def test_run_succeeds_with_typed_params_and_json(cli, work: Path) -> None:
    done = cli(
        "run",
        "ok.yaml",
        "--import",
        "hl_nodes",
        "-p",
        "n=4",
        "-p",
        "factor=2",
        "-p",
        "flag=yes",
        "-p",
        'tags=["a", 1]',
        "-p",
        'opts={"k": {"x": 1}}',
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout holds only the JSON: node prints are kept off it
    assert result["status"] == "succeeded"
    assert result["exit_code"] == 0
    assert result["run_id"]
    assert result["blueprint_id"] == "demo"
    assert result["outputs"]["total"] == 12.0
    assert result["outputs"]["echo"] == {
        "value": None,
        "flag": True,
        "tags": ["a", 1],
        "opts": {"k": {"x": 1}},
    }
    assert result["params"] == {
        "n": 4,
        "factor": 2.0,
        "flag": True,
        "tags": ["a", 1],
        "opts": {"k": {"x": 1}},
    }
    assert set(result["nodes"]) == {"make", "total", "echo"}
    node = result["nodes"]["make"]
    assert node["status"] == "succeeded"
    assert node["error"] is None
    assert node["attempts"] == 1
    assert isinstance(node["duration"], float)
    # not a terminal: plain line-per-event progress on stderr, with node logs
    assert "node make started" in done.stderr
    assert "make | making 4" in done.stderr
    assert "run " in done.stderr and "succeeded" in done.stderr


def test_params_file_and_override(cli, work: Path) -> None:
    (work / "p.yaml").write_text("n: 2\nfactor: 10\n")
    done = cli(
        "run",
        "ok.yaml",
        "--import",
        "hl_nodes",
        "--params-file",
        "p.yaml",
        "-p",
        "n=3",
        "--json",
        "--progress",
        "none",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"]["total"] == 30


@pytest.mark.parametrize(
    ("assignment", "expected"),
    [
        ("n=four", "-p n=four: param 'n' (int): expected an integer, got 'four'"),
        ("factor=x1", "expected a number, got 'x1'"),
        ("flag=maybe", "expected true or false, got 'maybe'"),
        ('tags={"a": 1}', "expected a JSON list"),
        ("opts=[1", "not valid JSON"),
        ("nn=3", "blueprint 'demo' has no param 'nn'"),
        ("novalue", "expected KEY=VALUE"),
    ],
)
def test_bad_param_values_exit_2_without_traceback(cli, assignment: str, expected: str) -> None:
    done = cli("run", "ok.yaml", "--import", "hl_nodes", "-p", assignment)
    assert done.returncode == 2
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_unknown_param_suggests_the_close_name(cli) -> None:
    done = cli("run", "ok.yaml", "--import", "hl_nodes", "-p", "facter=2")
    assert done.returncode == 2
    assert "did you mean 'factor'?" in done.stderr


def test_failing_node_exits_1_and_reports_it(cli) -> None:
    done = cli("run", "fail.yaml", "--import", "hl_nodes", "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["status"] == "failed"
    assert result["exit_code"] == 1
    nodes = result["nodes"]
    assert nodes["b"]["status"] == "failed"
    assert nodes["b"]["error_type"] == "ValueError"
    assert "kaboom" in nodes["b"]["error"]
    assert nodes["after"]["status"] == "skipped"
    assert nodes["side"]["status"] == "succeeded"  # independent branches go on
    assert "node b failed: ValueError: kaboom" in done.stderr


def test_fail_fast_still_exits_1(cli) -> None:
    done = cli(
        "run", "fail.yaml", "--import", "hl_nodes", "--fail-fast", "--json", "--concurrency", "1"
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["nodes"]["b"]["status"] == "failed"


def test_invalid_blueprint_exits_2_with_every_problem(cli) -> None:
    done = cli("run", "bad.yaml", "--import", "hl_nodes")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "unknown node type 'totl'" in done.stderr
    assert "edges[1]" in done.stderr
    assert "line" in done.stderr


def test_validate_lists_problems_with_locations(cli) -> None:
    done = cli("validate", "ok.yaml", "bad.yaml", "--import", "hl_nodes")
    assert done.returncode == 2
    assert "ok.yaml: ok (3 nodes, 1 edge)" in done.stdout  # singular and plural right
    assert "bad.yaml:" in done.stdout
    assert "nodes.b" in done.stdout and "did you mean 'total'" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    assert cli("validate", "ok.yaml", "--import", "hl_nodes").returncode == 0


def test_usage_errors_exit_2(cli) -> None:
    assert cli("run", "nothere.yaml").returncode == 2
    assert cli("run", "ok.yaml", "--import", "no_such_module_xyz").returncode == 2
    done = cli("run", "ok.yaml", "--import", "hl_nodes", "--timeout", "3")
    assert done.returncode == 2
    assert "notebooks" in done.stderr
    assert cli("run").returncode == 2  # argparse: missing FILE
    assert cli("run", "ok.yaml", "--executor", "nope").returncode == 2


def test_schema_prints_json_schema(cli) -> None:
    done = cli("schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert "properties" in schema and "nodes" in schema["properties"]


def test_nodes_lists_and_describes(cli) -> None:
    done = cli("nodes", "--import", "hl_nodes")
    assert done.returncode == 0
    lines = {line.split()[0]: line for line in done.stdout.splitlines()}
    assert "total" in lines and "make" in lines
    one = cli("nodes", "total", "--import", "hl_nodes")
    assert one.returncode == 0
    assert "inputs:" in one.stdout
    assert "factor: float (default 1.0)" in one.stdout
    assert "example:" in one.stdout and "type: total" in one.stdout
    missing = cli("nodes", "totl", "--import", "hl_nodes")
    assert missing.returncode == 2
    assert "did you mean 'total'" in missing.stderr


def test_export_formats(cli, work: Path) -> None:
    svg = cli("export", "ok.yaml", "--to", "svg", "--import", "hl_nodes")
    assert svg.returncode == 0 and svg.stdout.lstrip().startswith("<svg")
    as_json = cli("export", "ok.yaml", "--to", "json", "--import", "hl_nodes")
    assert json.loads(as_json.stdout)["id"] == "demo"
    as_yaml = cli("export", "ok.yaml", "--to", "yaml", "--import", "hl_nodes", "-o", "x.yaml")
    assert as_yaml.returncode == 0
    assert "id: demo" in (work / "x.yaml").read_text()
    nb = cli("export", "ok.yaml", "--to", "notebook", "--import", "hl_nodes")
    assert nb.returncode == 0
    notebook = json.loads((work / "ok.ipynb").read_text())
    params_cell = notebook["cells"][1]
    assert params_cell["metadata"]["tags"] == ["parameters"]
    assert "n = 3" in params_cell["source"] and "factor = 1.5" in params_cell["source"]


def test_report_written(cli, work: Path) -> None:
    done = cli("run", "retry.yaml", "--import", "hl_nodes", "--report", "out/report.html")
    assert done.returncode == 1
    html = (work / "out" / "report.html").read_text()
    assert "<svg" in html and "Timeline" in html
    assert "kaboom" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in html


def test_sigint_cancels_the_run_and_exits_130(work: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "run", "slow.yaml", "--import", "hl_nodes", "--json"],
        cwd=work,
        env=cli_env(work),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # plain progress: wait until the slow node runs
            seen.append(line)
            if "wait | sleeping" in line:
                break
        else:
            pytest.fail("the slow node never started: " + "".join(seen))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    result = json.loads(out)
    assert result["status"] == "cancelled"
    assert result["nodes"]["make"]["status"] == "succeeded"
    assert result["nodes"]["wait"]["status"] == "cancelled"
    assert result["nodes"]["after"]["status"] == "cancelled"
    assert "node wait cancelled" in err
    assert "Traceback" not in err


def test_runs_list_show_resume_prune(cli) -> None:
    first = cli("run", "fail.yaml", "--import", "hl_nodes", "--json", "--progress", "none")
    run_id = json.loads(first.stdout)["run_id"]
    listed = cli("runs", "list", "--json")
    assert listed.returncode == 0
    rows = json.loads(listed.stdout)
    assert rows[0]["id"] == run_id and rows[0]["status"] == "failed"
    shown = cli("runs", "show", run_id)
    assert shown.returncode == 0
    assert "kaboom" in shown.stdout and "side" in shown.stdout
    resumed = cli("runs", "resume", run_id, "--import", "hl_nodes", "--json", "--progress", "none")
    assert resumed.returncode == 1  # boom still fails
    result = json.loads(resumed.stdout)
    assert result["nodes"]["make"]["status"] == "cached"  # what succeeded is reused
    assert cli("runs", "show", "no-such-run").returncode == 2
    pruned = cli("runs", "prune", "--keep", "1")
    assert pruned.returncode == 0 and "pruned 1" in pruned.stdout
    assert cli("runs", "prune").returncode == 2
