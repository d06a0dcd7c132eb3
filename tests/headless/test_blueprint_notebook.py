"""Blueprints run through papermill: ``conductor-nb run bp.yaml -o run.ipynb`` and
``cnb.run_notebook("bp.yaml", ...)`` run the blueprint in a real kernel and write its report
notebook; exit codes, result and history are those of a direct run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

import conductor_nb as cnb
from conductor_nb.headless.blueprint_notebook import RESULT_MIME, RUN_FAILED
from tests.headless.conftest import cli_env

pytestmark = pytest.mark.notebook


def _outputs(nb: Any) -> list[dict[str, Any]]:
    return [o for c in nb.cells for o in c.get("outputs", ())]


def _section(nb: Any, node_id: str) -> str:
    cells = nb.cells
    for i, cell in enumerate(cells):
        if cell.cell_type == "markdown" and cell.source.startswith(f"### `{node_id}`"):
            return json.dumps(cells[i + 1].outputs)
    raise AssertionError(f"no section for {node_id}")


def test_blueprint_into_a_report_notebook(cli, work: Path) -> None:
    done = cli(
        "run", "ok.yaml", "-o", "run.ipynb", "--import", "hl_nodes", "-p", "n=5", timeout=240
    )
    assert done.returncode == 0, done.stderr
    direct = cli("run", "ok.yaml", "--import", "hl_nodes", "-p", "n=5", "--progress", "none")
    # the same lines as a direct run (the run id and the duration aside), then the notebook
    first, direct_first = done.stdout.splitlines()[0], direct.stdout.splitlines()[0]
    assert first.split(": ")[1].split(" in ")[0] == direct_first.split(": ")[1].split(" in ")[0]
    assert done.stdout.splitlines()[1:-1] == direct.stdout.splitlines()[1:]
    assert done.stdout.splitlines()[-1] == "notebook: run.ipynb"
    nb = nbformat.read(str(work / "run.ipynb"), as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["parameters"] in tags and ["injected-parameters"] in tags
    assert nb.metadata.papermill.parameters == {"n": 5}
    assert nb.metadata.papermill.input_path == str(work / "ok.yaml")
    pictures = [o for o in _outputs(nb) if "image/svg+xml" in o.get("data", {})]
    assert len(pictures) == 1 and "<svg" in pictures[0]["data"]["image/svg+xml"]
    make = _section(nb, "make")
    assert "succeeded" in make and "making 5" in make  # status and logs
    assert "output=[0, 1, 2, 3, ...]" in make  # its output value
    assert "15.0" in _section(nb, "total")
    result = next(o["data"][RESULT_MIME] for o in _outputs(nb) if RESULT_MIME in o.get("data", {}))
    assert result["status"] == "succeeded" and result["outputs"]["total"] == 15.0
    assert nb.metadata.conductor_nb["run_id"] == result["run_id"]
    runs = cli("runs", "list", "--json")
    assert result["run_id"] in runs.stdout  # recorded in the history like any run


def test_failed_and_invalid_blueprints_exit_as_a_direct_run(cli, work: Path) -> None:
    failed = cli("run", "fail.yaml", "-o", "f.ipynb", "--import", "hl_nodes", "--json")
    assert failed.returncode == 1, failed.stderr
    result = json.loads(failed.stdout)
    assert result["status"] == "failed" and result["exit_code"] == 1
    assert "kaboom" in result["nodes"]["b"]["error"]
    assert result["nodes"]["after"]["status"] == "skipped"
    assert result["notebook"] == "f.ipynb"
    nb = nbformat.read(str(work / "f.ipynb"), as_version=4)
    assert "kaboom" in _section(nb, "b") and "skipped" in _section(nb, "after")
    assert nb.metadata.conductor_nb["kind"] == RUN_FAILED
    invalid = cli("run", "bad.yaml", "-o", "bad.ipynb", "--import", "hl_nodes")
    assert invalid.returncode == 2
    assert "totl" in invalid.stderr and not (work / "bad.ipynb").exists()
    wrong = cli("run", "ok.yaml", "-o", "w.ipynb", "--import", "hl_nodes", "-p", "n=x")
    assert wrong.returncode == 2 and "expected an integer" in wrong.stderr
    direct_only = cli("run", "ok.yaml", "--import", "hl_nodes", "--report-mode")
    assert direct_only.returncode == 2 and "--report-mode" in direct_only.stderr


def test_run_notebook_on_a_blueprint(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(work))
    (work / "plain.yaml").write_text(
        "conductor: 1\nid: plain\nparams:\n  n: {default: 2, type: int}\n"
        "nodes:\n  wait: {type: delay, params: {seconds: 0, input: '{{ params.n }}'}}\n"
        "outputs:\n  n: wait.output\n"
    )
    done = cnb.run_notebook("plain.yaml", "plain.ipynb", parameters={"n": 7})
    assert done.status == "succeeded"
    nb = nbformat.read(str(done.output), as_version=4)
    result = next(o["data"][RESULT_MIME] for o in _outputs(nb) if RESULT_MIME in o.get("data", {}))
    assert result["outputs"] == {"n": 7}
    script = (
        "import hl_nodes, conductor_nb as cnb\n"
        "try:\n"
        "    cnb.run_notebook('fail.yaml', 'fail.ipynb')\n"
        "except cnb.ConductorError as exc:\n"
        "    print(type(exc).__name__, exc.kind, exc.output.name, exc.result['status'])\n"
    )
    failed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=work,
        env=cli_env(work),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert failed.stdout.strip() == f"NotebookError {RUN_FAILED} fail.ipynb failed", failed.stderr


TALKERS = """
import time
import conductor_nb as cnb


@cnb.node
def talk(n: int = 0) -> int:
    for i in range(3):
        print(f"node {n} line {i}", flush=True)
        time.sleep(0.03)
    return n
"""


def test_what_nodes_print_comes_out_in_their_sections_in_order(cli, work: Path) -> None:
    """Eight nodes printing at once (concurrency 4): the run cell shows only the run's
    picture, and each node's section has exactly its own lines, in order. Printed into the
    run cell they came out interleaved, even within a line."""
    (work / "talkers.py").write_text(TALKERS)
    nodes = "".join(f"  t{n}: {{type: talk, params: {{n: {n}}}}}\n" for n in range(8))
    (work / "talk.yaml").write_text(f"conductor: 1\nid: talk\nnodes:\n{nodes}")
    done = cli(
        "run", "talk.yaml", "-o", "talk.ipynb", "--import", "talkers", "--concurrency", "4",
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    nb = nbformat.read(str(work / "talk.ipynb"), as_version=4)
    run_cell = next(c for c in nb.cells if "bp.run(" in c.source)
    assert [o.output_type for o in run_cell.outputs] == ["display_data"]  # the picture only
    for n in range(8):
        section = next(
            o for c in nb.cells if f"show_node(run, 't{n}')" in c.source for o in c.outputs
        )
        logs = section.data["text/plain"].split("logs:\n", 1)[1]
        assert logs == "\n".join(f"node {n} line {i}" for i in range(3))
