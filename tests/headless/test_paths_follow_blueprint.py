"""``cd elsewhere && conductor-nb run /proj/flows/bp.yaml``: the blueprint's relative paths
start at its folder, the history is the project's, and the CLI says where it wrote."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.headless.conftest import run_cli

BP = """\
conductor: 1
id: copy
nodes:
  read: {type: file-system, params: {operation: read, path: data/in.txt}}
  write:
    type: file-system
    params: {operation: write, path: out/copy.txt, content: "{{ inputs.input.content }}"}
edges: [read.output -> write.input]
"""


def _project(tmp_path: Path) -> Path:
    flows = tmp_path / "proj" / "flows"
    (flows / "data").mkdir(parents=True)
    (flows / "data" / "in.txt").write_text("hello")
    (flows / "bp.yaml").write_text(BP)
    (tmp_path / "proj" / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (tmp_path / "elsewhere").mkdir()
    return tmp_path / "proj"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CONDUCTOR_HOME"}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    return env


def test_a_run_from_elsewhere_follows_the_blueprint(tmp_path):
    project = _project(tmp_path)
    env = _env(tmp_path)
    bp = str(project / "flows" / "bp.yaml")
    done = run_cli(tmp_path / "elsewhere", "run", bp, "--progress", "plain", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    written = project / "flows" / "out" / "copy.txt"
    assert written.read_text() == "hello"
    assert not (tmp_path / "elsewhere" / "out").exists()
    assert f"wrote: {written}" in done.stderr
    assert f"history: {project / '.conductor'}" in done.stderr
    assert not (tmp_path / "elsewhere" / ".conductor").exists()
    as_json = run_cli(tmp_path / "elsewhere", "run", bp, "--json", env=env)
    result = json.loads(as_json.stdout)  # stdout stays the JSON; the places go to stderr
    assert f"wrote: {written}" in as_json.stderr
    listed = run_cli(project / "flows", "runs", "list", "--json", env=env)
    assert {r["id"] for r in json.loads(listed.stdout)} >= {result["run_id"]}


def test_validate_from_elsewhere_checks_paths_against_the_blueprint_folder(tmp_path):
    project = _project(tmp_path)
    bp = project / "flows" / "bp.yaml"
    assert run_cli(tmp_path / "elsewhere", "validate", str(bp), env=_env(tmp_path)).returncode == 0
    bp.write_text(BP.replace("path: data/in.txt", "path: /etc/hostname"))
    out = run_cli(tmp_path / "elsewhere", "validate", str(bp), env=_env(tmp_path))
    assert out.returncode == 2
    assert "nodes.read.params.path" in out.stdout and "--file-root" in out.stdout
    ok = run_cli(
        tmp_path / "elsewhere", "validate", str(bp), "--file-root", "/etc", env=_env(tmp_path)
    )
    assert ok.returncode == 0, ok.stdout


def test_a_resume_from_elsewhere_still_starts_at_the_blueprint_folder(tmp_path):
    project = _project(tmp_path)
    env = _env(tmp_path)
    flows = project / "flows"
    (flows / "data" / "in.txt").unlink()  # the first run fails reading it
    bp = str(flows / "bp.yaml")
    failed = run_cli(tmp_path / "elsewhere", "run", bp, "--json", env=env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    run_id = json.loads(failed.stdout)["run_id"]
    (flows / "data" / "in.txt").write_text("later")
    home = str(project / ".conductor")  # the project's history, named from outside it
    resumed = run_cli(
        tmp_path / "elsewhere", "runs", "--home", home, "resume", run_id, "--json", env=env
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert (flows / "out" / "copy.txt").read_text() == "later"


def test_resume_from_elsewhere_finds_the_run_or_says_where_it_looked(tmp_path):
    """The run's history is its project's: a resume from another folder finds it through
    --blueprint (the history rule, from the file) or the --home the failed run printed;
    without either it names every history it looked in and how to point at the right one."""
    project = _project(tmp_path)
    (project / "flows" / "data" / "in.txt").unlink()  # the first run fails reading it
    env = _env(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    bp = str(project / "flows" / "bp.yaml")
    failed = run_cli(elsewhere, "run", bp, "--json", env=env)
    assert failed.returncode == 1, failed.stderr
    run_id = json.loads(failed.stdout)["run_id"]
    home = project / ".conductor"
    printed = f"resume: conductor-nb runs resume {run_id} --home {home}"
    assert printed in failed.stderr.splitlines()

    lost = run_cli(elsewhere, "runs", "resume", run_id, env=env)
    assert lost.returncode == 2
    assert f"run {run_id!r} is in none of the run histories looked in: " in lost.stderr
    assert str(tmp_path / "xdg" / "conductor-nb") in lost.stderr  # the user data folder
    assert "--home" in lost.stderr and "--blueprint FILE" in lost.stderr
    assert not (elsewhere / ".conductor").exists()

    (project / "flows" / "data" / "in.txt").write_text("hello")
    found = run_cli(elsewhere, "runs", "resume", run_id, "--blueprint", bp, "--json", env=env)
    assert found.returncode == 0, found.stderr
    assert (project / "flows" / "out" / "copy.txt").read_text() == "hello"
    again = run_cli(elsewhere, "runs", "show", run_id, "--home", str(home), env=env)
    assert again.returncode == 0, again.stderr
    (project / "flows" / "out" / "copy.txt").unlink()
    resumed = run_cli(elsewhere, *printed.split()[2:], env=env)  # the command it printed
    assert resumed.returncode == 0, resumed.stderr
