"""``conductor-nb runs resume ID`` after the blueprint file was fixed, run as real
subprocesses: ``--blueprint FILE`` resumes with the edited file (reusing what is
unchanged), and resuming without it says why the old error came back."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

BROKEN = """
    conductor: 1
    id: fixable
    nodes:
      make: {type: make, params: {n: 4}}
      b: {type: boom}
    edges:
      - make.output -> b.x
    outputs:
      result: b.output
"""

FIXED = """
    conductor: 1
    id: fixable
    nodes:
      make: {type: make, params: {n: 4}}
      b: {type: total}
    edges:
      - make.output -> b.items
    outputs:
      result: b.output
"""


def _failed_run(cli, work: Path) -> str:
    (work / "fixable.yaml").write_text(textwrap.dedent(BROKEN).lstrip())
    ran = cli("run", "fixable.yaml", "--import", "hl_nodes", "--json", "--progress", "none")
    assert ran.returncode == 1, ran.stderr
    (work / "fixable.yaml").write_text(textwrap.dedent(FIXED).lstrip())  # the user's fix
    return str(json.loads(ran.stdout)["run_id"])


def test_resume_with_the_edited_blueprint(cli, work: Path) -> None:
    run_id = _failed_run(cli, work)
    done = cli(
        "runs", "resume", run_id, "--blueprint", "fixable.yaml", "--import", "hl_nodes", "--json"
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded"
    assert result["outputs"] == {"result": 0 + 1 + 2 + 3}
    assert result["nodes"]["make"]["status"] == "cached"  # unchanged: its output is reused
    assert "make | making" not in done.stderr  # ... and its function did not run again
    assert result["hints"] == []


def test_resume_failing_the_same_way_says_the_recorded_blueprint_ran(cli, work: Path) -> None:
    run_id = _failed_run(cli, work)
    done = cli("runs", "resume", run_id, "--import", "hl_nodes", "--progress", "none")
    assert done.returncode == 1
    assert "node 'b' (boom) failed" in done.stdout  # the recorded (broken) blueprint ran
    hint = (
        f"hint: 'b' failed again with the same error: resume runs the blueprint recorded with "
        f"run {run_id}, not the file; if you fixed the file, resume with it: "
        f"conductor-nb runs resume {run_id} --blueprint FILE"
    )
    assert hint in done.stdout.splitlines()
    as_json = cli("runs", "resume", run_id, "--import", "hl_nodes", "--json", "--progress", "none")
    assert any("--blueprint FILE" in h for h in json.loads(as_json.stdout)["hints"])


def test_resume_with_a_missing_blueprint_file_is_a_user_error(cli, work: Path) -> None:
    run_id = _failed_run(cli, work)
    done = cli("runs", "resume", run_id, "--blueprint", "nothere.yaml", "--import", "hl_nodes")
    assert done.returncode == 2
    assert "error: nothere.yaml: no such file" in done.stderr
    assert "Traceback" not in done.stderr
