"""Side-effecting nodes are committed to history before the run goes on: a runner SIGKILLed
right after such a node succeeded (quicker than the recorder's batching window) resumes
without running it again; counted by the effect, a line a real child process appends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import conductor_nb as cnb
from conductor_nb.nodes.decorator import node_type_of
from conductor_nb.storage import RunHistory

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path

    import conductor_nb as cnb

    work = Path(sys.argv[2])
    kills = int(sys.argv[3])  # how many runs the 'die' node kills before it lets one pass

    @cnb.node(name="die_at_once")
    def die(v: str) -> str:
        tally = work / "kills.txt"
        done = len(tally.read_text()) if tally.exists() else 0
        if done < kills:
            with open(tally, "a") as fh:
                fh.write("x")
            os.kill(os.getpid(), signal.SIGKILL)  # the runner dies right here
        return v.strip().upper()

    bp = cnb.Blueprint("effects")
    bp.add("shell-command", id="effect", program="sh",
           args=["-c", "echo effect >> " + str(work / "effects.txt") + "; echo done"])
    bp.add(die, id="die")
    bp.connect("effect.stdout", "die.v")
    bp.outputs["result"] = "die.output"

    if sys.argv[1] == "run":
        bp.run()
    else:
        run = cnb.resume(sys.argv[4])
        print(json.dumps({"id": run.id, "status": run.status.value, "outputs": run.outputs}))
""")

WAIT = 120.0  # a guard against hanging only, never a performance bound


def _script(tmp_path: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "pipeline.py"
    script.write_text(SCRIPT)
    return subprocess.run(
        [sys.executable, str(script), *args],
        env={**os.environ, "CONDUCTOR_HOME": str(home)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def _effects(tmp_path: Path) -> list[str]:
    return (tmp_path / "effects.txt").read_text().split()


def test_effect_committed_before_a_kill_runs_once(tmp_path: Path, conductor_home: Path) -> None:
    killed = _script(tmp_path, conductor_home, "run", str(tmp_path), "1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _effects(tmp_path) == ["effect"]
    history = RunHistory(conductor_home)
    run_id = history.runs(1)[0].id
    states = {n.node_id: n.status for n in history.nodes(run_id)}
    assert states == {"effect": "succeeded", "die": "cancelled"}  # written before 'die' ran

    done = _script(tmp_path, conductor_home, "resume", str(tmp_path), "1", run_id)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded"
    assert result["outputs"] == {"result": "DONE"}
    assert _effects(tmp_path) == ["effect"]  # exactly once: the resume reused it


def test_resume_killed_at_once_keeps_reused_outputs(tmp_path: Path, conductor_home: Path) -> None:
    """A resumed run killed before its first batch still hands the outputs it reused on:
    they are written when the run is created."""
    killed = _script(tmp_path, conductor_home, "run", str(tmp_path), "2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    first = RunHistory(conductor_home).runs(1)[0].id
    again = _script(tmp_path, conductor_home, "resume", str(tmp_path), "2", first)
    assert again.returncode == -signal.SIGKILL, again.stderr
    history = RunHistory(conductor_home)
    second = history.runs(1)[0]
    assert second.resumed_from == first
    effect = next(n for n in history.nodes(second.id) if n.node_id == "effect")
    assert effect.status == "cached"
    assert effect.outputs is not None
    assert effect.outputs["stdout"].strip() == "done"

    done = _script(tmp_path, conductor_home, "resume", str(tmp_path), "2", second.id)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["outputs"] == {"result": "DONE"}
    assert _effects(tmp_path) == ["effect"]


def test_types_declare_side_effects() -> None:
    registry = cnb.registry
    effects = {"shell-command", "http-request", "notebook", "file-system", "sql", "image"}
    effects |= {"spreadsheet", "code", "loop", "parallel", "group"}
    pure = {"transform", "edit-fields", "merge", "if", "delay", "pass"}
    for name in effects:
        assert registry.get(name).side_effects, name
    for name in pure:
        assert not registry.get(name).side_effects, name

    @cnb.node(name="writes_a_file", side_effects=True, registry=cnb.Registry())
    def writes(path: str) -> str:
        return path

    @cnb.node(name="adds_one", registry=cnb.Registry())
    def adds(v: int) -> int:
        return v + 1

    declared, undeclared = node_type_of(writes), node_type_of(adds)
    assert declared is not None
    assert declared.side_effects
    assert undeclared is not None
    assert not undeclared.side_effects
