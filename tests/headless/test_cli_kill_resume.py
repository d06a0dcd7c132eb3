"""A SIGKILLed ``conductor-nb run`` followed by ``conductor-nb runs resume``: the run completes
without running the nodes that had succeeded again (counted by their side effects)."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time
from pathlib import Path

import pytest

from conductor_nb.storage import RunHistory
from tests.headless.conftest import run_cli, start_cli

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

MODULE = textwrap.dedent("""
    import os, time
    from pathlib import Path

    import conductor_nb as cnb

    WORK = Path(os.environ["KILL_WORK"])

    def note(what):
        with open(WORK / "side_effects.txt", "a") as fh:
            fh.write(what + "\\n")

    @cnb.node(name="k_first")
    def first() -> int:
        note("first")
        return 21

    @cnb.node(name="k_gate")
    def gate(v: int) -> int:
        note("gate")
        while not (WORK / "gate").exists():  # the test opens the gate (or kills us)
            time.sleep(0.02)
        return v * 2
""")

BLUEPRINT = """\
conductor: 1
id: killed-cli
nodes:
  first: {type: k_first}
  gate: {type: k_gate}
edges:
  - first.output -> gate.v
outputs:
  result: gate.output
"""


def test_sigkilled_cli_run_then_runs_resume(tmp_path: Path) -> None:
    (tmp_path / "kill_nodes.py").write_text(MODULE)
    (tmp_path / "bp.yaml").write_text(BLUEPRINT)
    home = tmp_path / "home"
    env = dict(
        os.environ, KILL_WORK=str(tmp_path), CONDUCTOR_HOME=str(home), PYTHONPATH=str(tmp_path)
    )
    proc = start_cli(tmp_path, "run", "bp.yaml", "--import", "kill_nodes", "-q", env=env)
    history = RunHistory(home)
    run_id = None
    deadline = time.monotonic() + 120  # a guard against hanging, not a performance bound
    while run_id is None and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for record in history.runs(1):
            states = {n.node_id: n.status for n in history.nodes(record.id)}
            if states.get("gate") == "running":
                run_id = record.id
        time.sleep(0.05)
    assert run_id is not None, "the gate node never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert RunHistory(home).get(run_id).status == "interrupted"

    (tmp_path / "gate").touch()
    out = run_cli(
        tmp_path, "runs", "resume", run_id, "--import", "kill_nodes", "--json", env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "succeeded"
    assert result["outputs"] == {"result": 42}
    effects = (tmp_path / "side_effects.txt").read_text().split()
    assert effects.count("first") == 1  # succeeded before the kill: reused, never run again
    assert effects.count("gate") == 2  # interrupted once, completed on resume
