"""A shell-command child that completed is never run again by a resume, even when its runner
was SIGKILLed between the child's end and the commit of the node's success: the child's
supervisor records its end durably and ``runs resume`` finishes the node from the record."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from conductor_nb.storage import RunHistory
from tests.headless.conftest import run_cli, start_cli

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's"
)

CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path

    work = Path(sys.argv[1])
    (work / "child.pid").write_text(str(os.getpid()))
    with open(work / "effects.txt", "a") as fh:
        fh.write("effect\\n")
    print("the child's output", flush=True)
    while not (work / "held").exists():  # the runner's loop is held before the child ends
        time.sleep(0.02)
""")

HOLD = textwrap.dedent("""
    import asyncio, time
    from pathlib import Path

    import conductor_nb as cnb

    @cnb.node(name="r_hold")
    async def hold(work: str) -> str:
        work = Path(work)
        while not (work / "effects.txt").exists():  # the child's effect has happened
            await asyncio.sleep(0.02)
        (work / "held").touch()
        while not (work / "gate").exists():  # hold the runner's loop: nothing is committed
            time.sleep(0.02)
        return "held"
""")

BP = f"""\
conductor: 1
id: child-records
params:
  work: {{default: "."}}
nodes:
  side:
    type: shell-command
    params: {{program: {json.dumps(sys.executable)}, args: [child.py, "{{{{ params.work }}}}"]}}
  hold: {{type: r_hold, params: {{work: "{{{{ params.work }}}}"}}}}
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, CONDUCTOR_HOME=str(tmp_path / "home"), PYTHONPATH=str(tmp_path))


def _wait_for(found, proc, what: str) -> None:
    deadline = time.monotonic() + 120  # a guard against hanging, not a performance bound
    while not found():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.02)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_child_that_ended_before_its_runner_was_killed_is_not_run_again(tmp_path):
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "r_nodes.py").write_text(HOLD)
    (tmp_path / "bp.yaml").write_text(BP)
    proc = start_cli(
        tmp_path,
        "run",
        "bp.yaml",
        "-q",
        "--import",
        "r_nodes",
        "-p",
        f"work={tmp_path}",
        env=_env(tmp_path),
        start_new_session=True,
    )
    pid_file = tmp_path / "child.pid"
    _wait_for(lambda: pid_file.exists() and pid_file.read_text(), proc, "the child's start")
    tree = psutil.Process(proc.pid).children(recursive=True)  # its supervisor, the child...
    _wait_for(lambda: not _running(int(pid_file.read_text())), proc, "the child's end")
    history = RunHistory(tmp_path / "home")
    run_id = history.runs(1)[0].id
    assert {n.node_id: n.status for n in history.nodes(run_id)}["side"] != "succeeded"
    os.kill(proc.pid, signal.SIGKILL)  # the runner alone, after the effect, before the commit
    proc.communicate(timeout=30)
    _, alive = psutil.wait_procs(tree, 30)
    assert not alive, f"outlived their SIGKILLed runner: {alive}"
    (tmp_path / "gate").touch()

    out = run_cli(
        tmp_path, "runs", "resume", run_id, "--json", "--import", "r_nodes", env=_env(tmp_path)
    )

    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["status"] == "succeeded"
    assert (tmp_path / "effects.txt").read_text().split() == ["effect"]  # once
    history = RunHistory(tmp_path / "home")
    side = {n.node_id: n for n in history.nodes(run_id)}["side"]
    assert side.status == "succeeded"
    assert side.outputs is not None
    assert side.outputs["stdout"] == "the child's output\n"
    assert side.outputs["exit_code"] == 0
    resumed = {n.node_id: n for n in history.nodes(json.loads(out.stdout)["run_id"])}
    assert resumed["side"].outputs == side.outputs  # reused, not run
    assert not any((tmp_path / "home" / "children").rglob("*")), "records left behind"


def test_a_run_leaves_no_completion_records(tmp_path):
    """The runner reads each child's end from its record; once the run has ended, the
    records of nodes that succeeded or failed are gone (only cancelled ones stay)."""
    bp = """\
conductor: 1
id: records-gone
nodes:
  ok: {type: shell-command, params: {program: echo, args: [hi]}}
  bad: {type: shell-command, params: {program: sh, args: [-c, "echo oops >&2; exit 3"]}}
"""
    (tmp_path / "bp.yaml").write_text(bp)
    out = run_cli(tmp_path, "run", "bp.yaml", "--json", env=_env(tmp_path))
    assert out.returncode != 0
    history = RunHistory(tmp_path / "home")
    nodes = {n.node_id: n for n in history.nodes(json.loads(out.stdout)["run_id"])}
    assert nodes["ok"].outputs is not None and nodes["ok"].outputs["stdout"] == "hi\n"
    assert nodes["bad"].status == "failed"
    assert "exited with code 3: oops" in (nodes["bad"].error or "")
    assert not any((tmp_path / "home" / "children").rglob("*"))
