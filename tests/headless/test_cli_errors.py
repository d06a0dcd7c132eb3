"""User errors of the CLI, run as real subprocesses: one JSON object on stdout with
``--json`` (exit 2 still), the ``--import`` hint for node types defined in Python, and
messages that name their location once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.headless.conftest import cli_env

CYCLE = """
    conductor: 1
    id: cyc
    nodes:
      a: {type: delay}
      b: {type: delay}
    edges:
      - a.output -> b.input
      - b.output -> a.input
"""

IMPORT_HINT = "hint: node types defined in Python: pass --import MODULE"


def _json(done: subprocess.CompletedProcess[str]) -> dict:
    """stdout holds exactly one JSON document (json.loads refuses anything around it)."""
    return json.loads(done.stdout)


def _save_from_python(work: Path, name: str = "scores.yaml") -> None:
    """A blueprint saved by ``bp.save`` whose node types are ``@cnb.node`` functions."""
    script = textwrap.dedent(f"""
        import conductor_nb as cnb
        from hl_nodes import make, total

        bp = cnb.Blueprint("scores")
        bp.add(make, id="clean", n=4)
        bp.add(total, id="score")
        bp.connect("clean", "score.items")
        bp.save({name!r})
    """)
    subprocess.run(
        [sys.executable, "-c", script], cwd=work, env=cli_env(work), check=True, timeout=60
    )


def test_run_json_prints_an_error_object_for_an_invalid_blueprint(cli, work: Path) -> None:
    (work / "cycle.yaml").write_text(textwrap.dedent(CYCLE).lstrip())
    done = cli("run", "cycle.yaml", "--json")
    assert done.returncode == 2
    result = _json(done)
    assert result["status"] == "error"
    assert result["exit_code"] == 2
    assert "cycle" in result["error"]
    [problem] = result["problems"]
    assert problem["path"] == "edges"
    assert "a -> b -> a" in problem["message"]
    assert problem["line"] == 6
    assert "cycle" in done.stderr  # the message is still on stderr for people
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "nothere.yaml", "--json"], "nothere.yaml: no such file"),
        (["run", "ok.yaml", "--import", "hl_nodes", "-p", "nn=3", "--json"], "no param 'nn'"),
        (["run", "ok.yaml", "--import", "no_such_module_xyz", "--json"], "cannot import"),
        (["run", "--json"], "run needs a FILE"),  # none, and no notebook piped in
        (["run", "ok.yaml", "--executor", "nope", "--json"], "invalid choice"),
        (["runs", "show", "no-such-run", "--json"], "no run 'no-such-run'"),
        (["nodes", "totl", "--import", "hl_nodes", "--json"], "did you mean 'total'"),
    ],
)
def test_every_user_error_with_json_prints_one_json_object(
    cli, args: list[str], expected: str
) -> None:
    done = cli(*args)
    assert done.returncode == 2
    result = _json(done)
    assert result["status"] == "error"
    assert result["exit_code"] == 2
    assert expected in result["error"]
    assert isinstance(result["problems"], list)
    assert "Traceback" not in done.stderr


def test_bad_param_problems_are_listed_in_the_json(cli) -> None:
    done = cli("run", "ok.yaml", "--import", "hl_nodes", "-p", "n=four", "-p", "x", "--json")
    assert done.returncode == 2
    paths = [p["path"] for p in _json(done)["problems"]]
    assert paths == ["-p n=four", "-p x"]  # in command-line order


def test_validate_json(cli, work: Path) -> None:
    (work / "cycle.yaml").write_text(textwrap.dedent(CYCLE).lstrip())
    done = cli(
        "validate", "ok.yaml", "cycle.yaml", "nothere.yaml", "--import", "hl_nodes", "--json"
    )
    assert done.returncode == 2
    result = _json(done)
    assert (result["status"], result["exit_code"]) == ("error", 2)
    ok, cyc, missing = result["files"]
    assert ok == {
        "file": "ok.yaml",
        "status": "ok",
        "blueprint_id": "demo",
        "nodes": 3,
        "edges": 1,
        "problems": [],
    }
    assert cyc["status"] == "error" and cyc["problems"][0]["path"] == "edges"
    assert missing["status"] == "error" and missing["error"] == "no such file"
    fine = cli("validate", "ok.yaml", "--import", "hl_nodes", "--json")
    assert fine.returncode == 0 and _json(fine)["status"] == "ok"


def test_node_types_defined_in_python_get_the_import_hint(cli, work: Path) -> None:
    _save_from_python(work)
    done = cli("run", "scores.yaml")
    assert done.returncode == 2
    assert "unknown node type 'make'" in done.stderr
    assert IMPORT_HINT in done.stderr
    assert "Traceback" not in done.stderr
    as_json = _json(cli("run", "scores.yaml", "--json"))
    assert any(h.startswith("node types defined in Python") for h in as_json["hints"])
    checked = cli("validate", "scores.yaml")
    assert checked.returncode == 2 and IMPORT_HINT in checked.stdout
    ran = cli("run", "scores.yaml", "--import", "hl_nodes", "--progress", "none")
    assert ran.returncode == 0, ran.stderr  # the hint's fix works


def test_the_import_hint_says_what_was_imported_and_is_not_given_for_other_errors(cli) -> None:
    done = cli("run", "bad.yaml", "--import", "hl_nodes")  # 'totl': a typo, not an import
    assert done.returncode == 2
    assert "did you mean 'total'?" in done.stderr
    assert "imported so far: hl_nodes" in done.stderr
    other = cli("run", "ok.yaml", "--import", "hl_nodes", "-p", "nn=1")
    assert other.returncode == 2 and "hint: node types" not in other.stderr


def test_runs_resume_gets_the_import_hint(cli) -> None:
    first = cli("run", "fail.yaml", "--import", "hl_nodes", "--json", "--progress", "none")
    run_id = _json(first)["run_id"]
    done = cli("runs", "resume", run_id)
    assert done.returncode == 2
    assert f"cannot resume run {run_id}" in done.stderr
    assert IMPORT_HINT in done.stderr
    as_json = cli("runs", "resume", run_id, "--json")
    assert as_json.returncode == 2
    result = _json(as_json)
    assert {p["path"] for p in result["problems"]} >= {"nodes.make.type", "nodes.b.type"}
    assert result["hints"]


@pytest.mark.parametrize(
    ("args", "once"),
    [
        (["run", "nothere.yaml"], "nothere.yaml: no such file"),
        (["validate", "nothere.yaml"], "nothere.yaml: no such file"),
        (["run", "ok.yaml", "--import", "hl_nodes", "-p", "n"], "-p n: expected KEY=VALUE"),
        (["run", "ok.yaml", "--import", "hl_nodes", "-p", "a b"], "-p 'a b': expected KEY="),
    ],
)
def test_locations_are_named_once(cli, args: list[str], once: str) -> None:
    done = cli(*args)
    out = done.stdout + done.stderr
    assert done.returncode == 2
    assert once in out
    head = once.split(":")[0]
    assert f"{head}: {head}" not in out
    assert "-p: " not in out


def test_validate_names_the_file_once_for_problems(cli) -> None:
    done = cli("validate", "bad.yaml", "--import", "hl_nodes")
    assert "bad.yaml: 3 problems in blueprint 'broken'\n" in done.stdout
    assert "(bad.yaml)" not in done.stdout
