"""Children die with their runner: SIGKILL the ``conductor-nb run`` process alone (not its
group), then its shell-command child and its process-pool worker must be gone, and a resume
runs the interrupted node's side effect exactly once."""

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
    while not (work / "gate").exists():  # the test opens the gate after the kill
        time.sleep(0.02)
    with open(work / "effects.txt", "a") as fh:
        fh.write("effect\\n")
""")

SHELL_BP = f"""\
conductor: 1
id: orphan-shell
nodes:
  side:
    type: shell-command
    params: {{program: {json.dumps(sys.executable)}, args: [child.py, "{{{{ params.work }}}}"]}}
params:
  work: {{default: "."}}
"""

WORKER_NODES = textwrap.dedent("""
    import os, time
    from pathlib import Path

    import conductor_nb as cnb

    @cnb.node(name="o_side")
    def side(work: str) -> str:
        work = Path(work)
        (work / "child.pid").write_text(str(os.getpid()))
        while not (work / "gate").exists():
            time.sleep(0.02)
        with open(work / "effects.txt", "a") as fh:
            fh.write("effect\\n")
        return "done"
""")

WORKER_BP = """\
conductor: 1
id: orphan-worker
params:
  work: {default: "."}
nodes:
  side: {type: o_side, params: {work: "{{ params.work }}"}}
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, CONDUCTOR_HOME=str(tmp_path / "home"), PYTHONPATH=str(tmp_path))


def _wait_for(path: Path, proc) -> int:
    deadline = time.monotonic() + 120  # a guard against hanging, not a performance bound
    while not path.exists() or not path.read_text():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)
    return int(path.read_text())


def _kill_runner_and_check_child(tmp_path: Path, *args: str) -> str:
    proc = start_cli(
        tmp_path,
        "run",
        "bp.yaml",
        "-q",
        "-p",
        f"work={tmp_path}",
        *args,
        env=_env(tmp_path),
        start_new_session=True,
    )
    child = _wait_for(tmp_path / "child.pid", proc)
    assert child != proc.pid
    os.kill(proc.pid, signal.SIGKILL)  # the runner alone: not its process group
    proc.wait(30)
    proc.communicate()
    try:
        psutil.Process(child).wait(timeout=30)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        psutil.Process(child).kill()
        pytest.fail(f"child {child} outlived its SIGKILLed runner {proc.pid}")
    (tmp_path / "child.pid").unlink()
    (tmp_path / "gate").touch()  # an orphan would now write its effect
    return RunHistory(tmp_path / "home").runs(1)[0].id


def _resume_once(tmp_path: Path, run_id: str, *args: str) -> None:
    out = run_cli(tmp_path, "runs", "resume", run_id, "--json", *args, env=_env(tmp_path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["status"] == "succeeded"
    assert (tmp_path / "effects.txt").read_text().split() == ["effect"]


def test_a_shell_command_child_dies_with_its_sigkilled_runner(tmp_path):
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "bp.yaml").write_text(SHELL_BP)
    run_id = _kill_runner_and_check_child(tmp_path)
    assert not (tmp_path / "effects.txt").exists()
    _resume_once(tmp_path, run_id)


SCRIPT = sys.executable + ' child.py "$1"; echo after'  # sh forks the child, then echoes
GRANDCHILD_BP = f"""\
conductor: 1
id: orphan-grandchild
nodes:
  side:
    type: shell-command
    params:
      program: sh
      args: ["-c", {json.dumps(SCRIPT)}, sh, "{{{{ params.work }}}}"]
params:
  work: {{default: "."}}
"""


def test_what_a_shell_command_started_dies_with_its_sigkilled_runner(tmp_path):
    """``sh -c "python child.py ...; echo after"``: sh forks the child, which the
    parent-death signal (sh's alone) does not reach; the runner's watchdog kills the group."""
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "bp.yaml").write_text(GRANDCHILD_BP)
    run_id = _kill_runner_and_check_child(tmp_path)
    assert not (tmp_path / "effects.txt").exists()
    _resume_once(tmp_path, run_id)


def test_a_process_pool_worker_dies_with_its_sigkilled_runner(tmp_path):
    (tmp_path / "o_nodes.py").write_text(WORKER_NODES)
    (tmp_path / "bp.yaml").write_text(WORKER_BP)
    run_id = _kill_runner_and_check_child(tmp_path, "--import", "o_nodes", "--executor", "process")
    assert not (tmp_path / "effects.txt").exists()
    _resume_once(tmp_path, run_id, "--import", "o_nodes")


KERNEL_CELL = """
import os, time
from pathlib import Path

work = Path(work)
(work / "child.pid").write_text(str(os.getpid()))
while not (work / "gate").exists():
    time.sleep(0.02)
with open(work / "effects.txt", "a") as fh:
    fh.write("effect\\n")
"""

NOTEBOOK_BP = """\
conductor: 1
id: orphan-kernel
params:
  work: {default: "."}
nodes:
  side:
    type: notebook
    params: {path: side.ipynb, parameters: {work: "{{ params.work }}"}}
"""


def test_a_notebook_kernel_dies_with_its_sigkilled_runner(tmp_path):
    pytest.importorskip("papermill")
    from tests.nodes.conftest import write_notebook

    write_notebook(tmp_path / "side.ipynb", "work = '.'", KERNEL_CELL)
    (tmp_path / "bp.yaml").write_text(NOTEBOOK_BP)
    run_id = _kill_runner_and_check_child(tmp_path)
    assert not (tmp_path / "effects.txt").exists()
    _resume_once(tmp_path, run_id)
