"""``conductor-nb run --executor dask``: against a scheduler the test starts (``--scheduler``)
and with a LocalCluster the CLI starts itself. The node types come from a module passed with
``--import``; the workers import it by name, so its folder is on PYTHONPATH for them too."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.headless.conftest import run_cli

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.dask

MODULE = textwrap.dedent("""
    import os

    import conductor_nb as cnb


    @cnb.node(name="dc_make")
    def make(n: int = 4) -> list:
        print("making", n, flush=True)
        return list(range(n))


    @cnb.node(name="dc_square")
    def square(items: list) -> list:
        return [x * x for x in items]


    @cnb.node(name="dc_total")
    def total(items: list) -> int:
        return sum(items)


    @cnb.node(name="dc_where")
    def where(items: list) -> int:
        return os.getpid()
""")

BLUEPRINT = """\
conductor: 1
id: dask-cli
params:
  n: {default: 4, type: int}
nodes:
  make: {type: dc_make, params: {n: "{{ params.n }}"}}
  square: {type: dc_square}
  total: {type: dc_total}
  where: {type: dc_where}
edges:
  - make.output -> square.items
  - square.output -> total.items
  - make.output -> where.items
outputs:
  total: total.output
  squares: square.output
  pid: where.output
"""


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "dask_cli_nodes.py").write_text(MODULE)
    (tmp_path / "bp.yaml").write_text(BLUEPRINT)
    # The CLI imports the node module by name (PYTHONPATH); the workers of the test's
    # cluster too: multiprocessing's spawn gives them this process's sys.path.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), _pp()])))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("CONDUCTOR_HOME", str(tmp_path / ".conductor"))
    return tmp_path


def _pp() -> str:
    return os.environ.get("PYTHONPATH", "")


@pytest.fixture
def cluster(work: Path) -> Iterator[str]:
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as local:
        yield str(local.scheduler_address)


def _run(work: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run the CLI; its completed process and its pid."""
    done = run_cli(work, "run", "bp.yaml", "--import", "dask_cli_nodes", *args, timeout=240)
    return done, done.pid


def test_run_on_a_given_scheduler(work: Path, cluster: str) -> None:
    assert cluster.startswith("tcp://127.0.0.1:")
    out, cli_pid = _run(work, "--executor", "dask", "--scheduler", cluster, "-p", "n=5", "--json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "succeeded"
    assert result["exit_code"] == 0
    assert result["params"] == {"n": 5}
    outputs = result["outputs"]
    assert outputs["total"] == 0 + 1 + 4 + 9 + 16
    assert outputs["squares"] == [0, 1, 4, 9, 16]
    assert set(result["nodes"]) == {"make", "square", "total", "where"}
    assert {n["status"] for n in result["nodes"].values()} == {"succeeded"}
    # the nodes ran in the cluster's worker process, not in the CLI process
    with distributed.Client(cluster) as client:
        worker_pids = set(client.run(os.getpid).values())
    assert outputs["pid"] in worker_pids
    assert outputs["pid"] != cli_pid
    # the node's printed line came back from the worker to the CLI's progress (stderr)
    assert "making 5" in out.stderr


def test_bad_scheduler_without_dask_executor_is_a_usage_error(work: Path) -> None:
    out, _ = _run(work, "--scheduler", "tcp://127.0.0.1:1")
    assert out.returncode == 2
    assert "--scheduler needs --executor dask" in out.stderr


def _json_result(stdout: str) -> dict:
    """The JSON result: stdout holds nothing else."""
    return dict(json.loads(stdout))


def test_dask_without_scheduler_starts_its_own_cluster(work: Path) -> None:
    out, cli_pid = _run(work, "--executor", "dask", "--json", "--progress", "plain")
    assert out.returncode == 0, out.stderr
    result = _json_result(out.stdout)
    assert result["status"] == "succeeded"
    assert result["exit_code"] == 0
    assert result["outputs"]["total"] == 0 + 1 + 4 + 9
    assert result["outputs"]["squares"] == [0, 1, 4, 9]
    # its own LocalCluster runs worker processes: the node did not run in the CLI process
    assert result["outputs"]["pid"] not in (cli_pid, os.getpid())
    assert "making 4" in out.stderr  # captured on the worker, echoed by the progress display


def test_own_cluster_keeps_node_prints_off_stdout(work: Path) -> None:
    out, _ = _run(work, "--executor", "dask", "--json", "--progress", "plain")
    assert out.returncode == 0, out.stderr
    assert "making" not in out.stdout
    assert json.loads(out.stdout)["status"] == "succeeded"


def test_unreachable_scheduler_is_a_quick_user_error(work: Path) -> None:
    """Nothing listens at the address: one error line and a hint, exit 2, well within
    distributed's own 30 s (the run_cli time limit fails the test otherwise)."""
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
        out = run_cli(
            work,
            "run",
            "bp.yaml",
            "--import",
            "dask_cli_nodes",
            "--executor",
            "dask",
            "--scheduler",
            address,
            timeout=20,
        )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0].startswith(f"error: --scheduler {address}: cannot connect"), out.stderr
    assert "is a Dask scheduler running there? start one with `dask scheduler`" in lines[1]
    assert len(lines) == 2 and "Traceback" not in out.stderr
    as_json = run_cli(
        work,
        "run",
        "bp.yaml",
        "--import",
        "dask_cli_nodes",
        "--executor",
        "dask",
        "--scheduler",
        address,
        "--connect-timeout",
        "1",
        "--json",
        timeout=20,
    )
    result = json.loads(as_json.stdout)
    assert result["exit_code"] == 2 and address in result["error"]
    assert "dask scheduler" in result["hints"][0]
