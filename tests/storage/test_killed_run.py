"""A process SIGKILLed mid-run leaves a readable history; resume finishes the job without
running the nodes that had succeeded again (counted by their side effects in a file)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import conductor_nb as cnb
from conductor_nb.storage import RunHistory

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

SCRIPT = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path

    import conductor_nb as cnb

    work = Path(sys.argv[2])

    def note(what):
        with open(work / "side_effects.txt", "a") as fh:
            fh.write(what + "\\n")

    @cnb.node(name="kill_first")
    def first() -> int:
        note("first")
        return 21

    @cnb.node(name="kill_also")
    def also(v: int) -> int:
        note("also")
        return v + 1

    @cnb.node(name="kill_gate")
    def gate(v: int) -> int:
        note("gate")
        while not (work / "gate").exists():  # the test opens the gate (or kills us)
            time.sleep(0.02)
        return v * 2

    bp = cnb.Blueprint("killed")
    bp.add(first, id="first")
    bp.add(also, id="also")
    bp.add(gate, id="gate")
    bp.add(also, id="after")
    bp.connect("first", "also.v")
    bp.connect("first", "gate.v")
    bp.connect("gate", "after.v")
    bp.outputs["result"] = "after.output"

    if sys.argv[1] == "run":
        bp.run()
    else:
        run = cnb.resume(sys.argv[3])
        print(json.dumps({"id": run.id, "status": run.status.value, "outputs": run.outputs}))
""")

WAIT = 120.0  # generous: only a guard against hanging forever, never a performance bound


def _wait_for_gate(history: RunHistory, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before reaching the gate"
        for record in history.runs(1):
            states = {n.node_id: n.status for n in history.nodes(record.id)}
            if states.get("gate") == "running" and states.get("also") == "succeeded":
                return record.id
        time.sleep(0.05)
    raise AssertionError("the gate node never started")


def test_sigkill_then_resume(tmp_path: Path, conductor_home: Path) -> None:
    script = tmp_path / "pipeline.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "CONDUCTOR_HOME": str(conductor_home)}
    proc = subprocess.Popen(
        [sys.executable, str(script), "run", str(tmp_path)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        run_id = _wait_for_gate(RunHistory(conductor_home), proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    history = RunHistory(conductor_home)  # opening it marks the dead process's run
    record = history.get(run_id)
    assert record.status == "interrupted"
    assert "ended during the run" in (record.error or "")
    states = {n.node_id: n.status for n in history.nodes(run_id)}
    assert states == {
        "first": "succeeded",
        "also": "succeeded",
        "gate": "cancelled",
        "after": "cancelled",  # never started: every node of an ended run is terminal
    }
    side_effects = (tmp_path / "side_effects.txt").read_text().split()
    assert sorted(side_effects) == ["also", "first", "gate"]
    loaded = cnb.load_run(run_id)  # readable without the node functions in this process
    assert loaded.status is cnb.RunState.INTERRUPTED
    assert loaded["first"].outputs == {"output": 21}

    (tmp_path / "gate").touch()
    done = subprocess.run(
        [sys.executable, str(script), "resume", str(tmp_path), run_id],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded"
    assert result["outputs"] == {"result": 43}
    side_effects = (tmp_path / "side_effects.txt").read_text().split()
    assert side_effects.count("first") == 1
    assert side_effects.count("gate") == 2
    assert side_effects.count("also") == 2  # once as 'also' before the kill, once as 'after'
    resumed = RunHistory(conductor_home).get(result["id"])
    assert resumed.resumed_from == run_id
    assert resumed.counts == {"cached": 2, "succeeded": 2}
