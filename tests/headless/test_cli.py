"""The conductor-nb CLI, run as a real subprocess: exit codes, --json, params, interrupts."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.headless.conftest import record_runs, start_cli, wait_for_stderr


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
        ('tags={"a": 1}', "expected a list"),
        ("opts={a: [1", "not valid YAML"),
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


@pytest.mark.parametrize(
    ("flags", "side"),
    [((), "succeeded"), (("--fail-fast",), "cancelled")],
    ids=["independent-branch-goes-on", "fail-fast"],
)
def test_fail_fast_cancels_the_independent_branch(
    work: Path, flags: tuple[str, ...], side: str
) -> None:
    proc = start_cli(work, "run", "fail_fast.yaml", "--import", "hl_nodes", "--json", *flags)
    try:
        wait_for_stderr(proc, "node b failed: ValueError: kaboom")
        (work / "gate").touch()  # side may end only now, after b failed
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    result = json.loads(out)
    assert result["status"] == "failed"  # fail-fast cancels the rest, for a node that failed
    assert result["exit_code"] == 1
    assert result["nodes"]["b"]["status"] == "failed"
    assert result["nodes"]["side"]["status"] == side


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


SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize("name", ["ok.yaml", "fail.yaml"])  # fail.yaml: ids unlike types
def test_export_svg_is_xml_with_every_node(cli, work: Path, name: str) -> None:
    done = cli("export", name, "--to", "svg", "--import", "hl_nodes")
    assert done.returncode == 0, done.stderr
    root = ET.fromstring(done.stdout)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    node_ids = set(yaml.safe_load((work / name).read_text())["nodes"])
    groups = {g.get("data-node"): g for g in root.iter(f"{SVG}g") if g.get("data-node")}
    assert set(groups) == node_ids
    for node_id, group in groups.items():  # each box is labelled with its node's id
        assert node_id in [text.text for text in group.iter(f"{SVG}text")], node_id


def test_export_formats(cli, work: Path) -> None:
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


def test_sigint_cancels_the_run_and_exits_130(cli, work: Path) -> None:
    proc = start_cli(work, "run", "slow.yaml", "--import", "hl_nodes", "--json")
    try:
        wait_for_stderr(proc, "wait | sleeping")  # plain progress: the slow node runs
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
    shown = json.loads(cli("runs", "show", result["run_id"], "--json").stdout)
    assert (shown["status"], shown["exit_code"]) == ("cancelled", 130)  # as `run` exited


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
    assert "history: " in listed.stderr and " on disk in " in listed.stderr
    pruned = cli("runs", "prune", "--keep", "1")
    assert pruned.returncode == 0 and "pruned 1" in pruned.stdout
    assert cli("runs", "prune").returncode == 2
    assert cli("runs", "prune", "--older-than", "7d").stdout.startswith("pruned 0")
    assert cli("runs", "prune", "--older-than", "soon").returncode == 2


def test_cache_options_override_the_node_settings(cli) -> None:
    def statuses(*flags: str) -> dict[str, str]:
        done = cli("run", "cached.yaml", "--import", "hl_nodes", "--json", *flags)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["outputs"]["total"] == 3
        ran = "make | making 3" in done.stderr  # the function itself was called
        assert ran == (result["nodes"]["make"]["status"] == "succeeded")
        return {node_id: node["status"] for node_id, node in result["nodes"].items()}

    # make says `cache: true`, total says nothing
    assert statuses() == {"make": "succeeded", "total": "succeeded"}
    assert statuses() == {"make": "cached", "total": "succeeded"}
    assert statuses("--no-cache") == {"make": "succeeded", "total": "succeeded"}
    assert statuses("--cache") == {"make": "cached", "total": "succeeded"}  # total stored now
    assert statuses("--cache") == {"make": "cached", "total": "cached"}
    assert statuses() == {"make": "cached", "total": "succeeded"}  # back to the settings


def test_run_help_explains_the_cache_options(cli) -> None:
    done = cli("run", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "--cache, --no-cache cache every node's result and reuse it" in text
    assert "--no-cache: run every node afresh (default: each node's `cache` setting)" in text


def _small_pipe() -> tuple[int, int]:
    """A pipe that holds at most 4 KiB, so a longer output cannot all fit in it."""
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        pytest.skip("needs F_SETPIPE_SZ (Linux) to size the pipe")
    read_end, write_end = os.pipe()
    size = fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    if size > 4096:  # pragma: no cover - pages larger than 4 KiB
        os.close(read_end)
        os.close(write_end)
        pytest.skip(f"the pipe holds {size} bytes at least")
    return read_end, write_end


@pytest.mark.parametrize("args", [("schema",), ("runs", "list", "-n", "200")])
def test_a_reader_that_stops_early_ends_the_command_quietly(
    work: Path, args: tuple[str, ...]
) -> None:
    """``conductor-nb schema | head -1``: no BrokenPipeError traceback, exit code 1."""
    if args[0] == "runs":
        record_runs(work, 200)  # about 17 KB of lines; the schema is about 6 KB
    read_end, write_end = _small_pipe()
    proc = start_cli(work, *args, stdout=write_end)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb", buffering=0) as reader:
            first = reader.readline()  # then close it: the rest has nowhere to go
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert first.strip()
    assert proc.returncode == 1  # the output was cut short (0 would mean it all fit)
    assert err == ""
