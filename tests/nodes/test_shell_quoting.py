"""Templates spliced into a shell script: refused unquoted, safe through ``shquote``."""

from __future__ import annotations

import shutil
import sys

import pytest

import conductor_nb as cnb


def make(nodes: dict, params: dict | None = None) -> cnb.Blueprint:
    """The document as a Blueprint, not validated yet (the tests look at its problems)."""
    doc = {"conductor": 1, "id": "t", "nodes": nodes, "params": params or {}}
    return cnb.Blueprint.from_dict(doc, validate=False)


SH = shutil.which("sh")
needs_sh = pytest.mark.skipif(SH is None, reason="no sh on this machine")


def _script_bp(script: str, program: str = "sh") -> cnb.Blueprint:
    nodes = {
        "say": {"type": "shell-command", "params": {"program": program, "args": ["-c", script]}}
    }
    return make(nodes, params={"name": {"default": "world"}})


@pytest.mark.parametrize("program", ["sh", "/bin/bash", "zsh", "dash"])
def test_an_unquoted_template_in_a_shell_script_is_refused_naming_node_arg_and_filter(program):
    with pytest.raises(cnb.BlueprintError) as caught:
        _script_bp("echo {{ params.name }}", program).validate()
    text = str(caught.value)
    assert "nodes.say.params.args[1]" in text
    assert "params.name" in text
    assert "{{ params.name | shquote }}" in text


def test_a_combined_flag_like_ec_is_a_script_too():
    nodes = {
        "s": {
            "type": "shell-command",
            "params": {"program": "bash", "args": ["-ec", "ls {{ params.name }}"]},
        }
    }
    problems = make(nodes, params={"name": {"default": "x"}}).problems()
    assert [p.path for p in problems] == ["nodes.s.params.args[1]"]


def test_long_options_before_c_are_skipped():
    nodes = {
        "s": {
            "type": "shell-command",
            "params": {"program": "bash", "args": ["--norc", "-c", "ls {{ params.name }}"]},
        }
    }
    problems = make(nodes, params={"name": {"default": "x"}}).problems()
    assert [p.path for p in problems] == ["nodes.s.params.args[2]"]


def test_python_c_wants_tojson_or_an_argument():
    problems = _script_bp("print('{{ params.name }}')", "python3").problems()
    assert len(problems) == 1
    assert "tojson" in problems[0].message and "sys.argv[1]" in problems[0].message
    assert not _script_bp("print({{ params.name | tojson }})", "python3").problems()


def test_quoted_templates_and_arguments_after_the_script_pass():
    assert not _script_bp("echo {{ params.name | shquote }}").problems()
    assert not _script_bp("{% if params.name %}echo yes{% endif %}").problems()
    nodes = {
        "s": {
            "type": "shell-command",
            "params": {"program": "sh", "args": ["-c", 'echo "$1"', "sh", "{{ params.name }}"]},
        }
    }
    assert not make(nodes, params={"name": {"default": "x"}}).problems()
    nodes = {
        "s": {"type": "shell-command", "params": {"program": "echo", "args": ["{{ params.name }}"]}}
    }
    assert not make(nodes, params={"name": {"default": "x"}}).problems()


def test_shquote_quotes_any_value():
    from conductor_nb.model.templates import render_string

    assert render_string("{{ v | shquote }}", {"v": "a b'c"}) == "'a b'\"'\"'c'"
    assert render_string("{{ v | shquote }}", {"v": 3}) == "3"


@needs_sh
def test_the_cli_refuses_the_unquoted_script_and_runs_the_quoted_one_safely(tmp_path):
    import subprocess

    evil = "x && touch PWNED"
    bp = tmp_path / "bp.yaml"
    for script in ("echo {{ params.name }}", "echo {{ params.name | shquote }}"):
        bp.write_text(
            "conductor: 1\nid: say\nparams:\n  name: {default: world}\nnodes:\n"
            "  say:\n    type: shell-command\n"
            f"    params: {{program: sh, args: ['-c', '{script}']}}\n"
            "outputs:\n  said: say.stdout\n"
        )
        cli = [sys.executable, "-m", "conductor_nb.headless.cli"]
        env = {**__import__("os").environ, "CONDUCTOR_HOME": str(tmp_path / "home")}
        checked = subprocess.run(
            [*cli, "validate", str(bp)], cwd=tmp_path, capture_output=True, text=True, env=env
        )
        ran = subprocess.run(
            [*cli, "run", str(bp), "-p", f"name={evil}", "--json"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if "shquote }}" in script:
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert ran.returncode == 0, ran.stdout + ran.stderr
            assert evil in ran.stdout
        else:
            assert checked.returncode == 2
            assert "nodes.say.params.args[1]" in checked.stdout
            assert "shquote" in checked.stdout
            assert ran.returncode == 2
        assert not (tmp_path / "PWNED").exists()
