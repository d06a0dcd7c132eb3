"""``conductor-nb run --env NAME`` and a blueprint's ``env:`` list expose chosen environment
variables to templates; their values never reach stdout, the report or the history on disk,
and a ``{{ env.NAME }}`` that is not exposed fails validation with the fix."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.headless.conftest import run_cli

SECRET = "tok-9f8e7d6c5b4a"

BP = f"""\
conductor: 1
id: secret-user
nodes:
  use:
    type: shell-command
    params:
      program: {json.dumps(sys.executable)}
      args:
        - -c
        - "import sys; t = sys.argv[1]; print('token=' + t); print('reversed=' + t[::-1])"
        - "{{{{ env.CNB_TOKEN }}}}"
outputs:
  said: use.stdout
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, CONDUCTOR_HOME=str(tmp_path / "home"), **extra)


def _everything_on_disk(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_env_exposes_a_variable_and_masks_it_everywhere(tmp_path):
    (tmp_path / "bp.yaml").write_text(BP)
    env = _env(tmp_path, CNB_TOKEN=SECRET)
    out = run_cli(
        tmp_path, "run", "bp.yaml", "--env", "CNB_TOKEN", "--json", "--report", "r.html", env=env
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = json.loads(out.stdout)
    said = result["outputs"]["said"]
    assert "token=***" in said
    assert f"reversed={SECRET[::-1]}" in said  # the node got the real value
    assert SECRET not in out.stdout + out.stderr
    assert SECRET.encode() not in (tmp_path / "r.html").read_bytes()
    assert (tmp_path / "home").is_dir()
    assert SECRET.encode() not in _everything_on_disk(tmp_path / "home")
    shown = run_cli(tmp_path, "runs", "show", result["run_id"], "--json", env=env)
    assert shown.returncode == 0 and SECRET not in shown.stdout


def test_a_blueprint_env_list_exposes_without_the_flag(tmp_path):
    (tmp_path / "bp.yaml").write_text(BP + "env: [CNB_TOKEN]\n")
    out = run_cli(tmp_path, "run", "bp.yaml", env=_env(tmp_path, CNB_TOKEN=SECRET))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "token=***" in out.stdout and SECRET not in out.stdout + out.stderr


def test_an_env_template_not_exposed_fails_validation_with_the_fix(tmp_path):
    (tmp_path / "bp.yaml").write_text(BP)
    env = _env(tmp_path, CNB_TOKEN=SECRET)
    for command in ("validate", "run"):
        out = run_cli(tmp_path, command, "bp.yaml", env=env)
        assert out.returncode == 2, out.stdout + out.stderr
        text = out.stdout + out.stderr
        assert "nodes.use.params.args" in text
        assert "env.CNB_TOKEN" in text and "--env CNB_TOKEN" in text
    assert run_cli(tmp_path, "validate", "bp.yaml", "--env", "CNB_TOKEN", env=env).returncode == 0
    assert not (tmp_path / "home").exists() or not list((tmp_path / "home").rglob("*.db"))


def test_an_exposed_variable_that_is_not_set_is_a_problem(tmp_path):
    (tmp_path / "bp.yaml").write_text(BP)
    env = {k: v for k, v in _env(tmp_path).items() if k != "CNB_TOKEN"}
    out = run_cli(tmp_path, "run", "bp.yaml", "--env", "CNB_TOKEN", env=env)
    assert out.returncode == 2
    assert "CNB_TOKEN is exposed to templates but not set" in out.stdout + out.stderr
