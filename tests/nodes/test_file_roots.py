"""Literal paths of file nodes outside the file roots fail before anything runs; a blueprint
file's relative paths start at its own folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import conductor_nb as cnb
from tests.nodes.conftest import make

OUTSIDE = {
    "write": {
        "type": "file-system",
        "params": {"operation": "write", "path": "out.txt", "content": "x"},
    },
    "read": {"type": "file-system", "params": {"operation": "read", "path": "/etc/hostname"}},
}


def test_a_literal_path_outside_the_roots_fails_before_any_node_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(cnb.BlueprintError) as caught:
        make(OUTSIDE).run(history=False)
    text = str(caught.value)
    assert "nodes.read.params.path" in text
    assert "/etc/hostname" in text and "outside the file roots" in text
    assert "--file-root" in text
    assert not (tmp_path / "out.txt").exists()  # the write before it never ran


def test_the_same_path_inside_a_given_root_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = make(OUTSIDE).run(history=False, settings={"file_roots": [str(tmp_path), "/etc"]})
    assert run.status.value == "succeeded", run.failed_nodes


@pytest.mark.parametrize(
    ("type_name", "params", "name"),
    [
        ("spreadsheet", {"path": "/etc/x.csv"}, "path"),
        ("image", {"path": "/etc/x.png", "operation": "grayscale"}, "path"),
        (
            "file-system",
            {"operation": "copy", "path": "a", "destination": "../../../etc/y"},
            "destination",
        ),
    ],
)
def test_other_file_nodes_and_params_are_checked(tmp_path, monkeypatch, type_name, params, name):
    from conductor_nb.nodes.file_roots import path_problems

    monkeypatch.chdir(tmp_path)
    bp = make({"n": {"type": type_name, "params": params}})
    assert [p.path for p in path_problems(bp, {})] == [f"nodes.n.params.{name}"]


def test_templated_paths_are_left_to_run_time(tmp_path, monkeypatch):
    from conductor_nb.nodes.file_roots import path_problems

    monkeypatch.chdir(tmp_path)
    bp = make(
        {"n": {"type": "file-system", "params": {"operation": "read", "path": "{{ params.p }}"}}},
        params={"p": {"default": "/etc/hostname"}},
    )
    assert path_problems(bp, {}) == []


def test_relative_paths_of_a_blueprint_file_start_at_its_folder(tmp_path, monkeypatch):
    project = tmp_path / "proj"
    (project / "data").mkdir(parents=True)
    (project / "data" / "in.txt").write_text("hello")
    (project / "bp.yaml").write_text(
        "conductor: 1\nid: copy\nnodes:\n"
        "  read: {type: file-system, params: {operation: read, path: data/in.txt}}\n"
        "  write: {type: file-system, params: {operation: write, path: out/copy.txt,"
        " content: '{{ inputs.input.content }}'}}\n"
        "edges: [read.output -> write.input]\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = cnb.load(project / "bp.yaml").run(history=False)
    assert run.status.value == "succeeded", {n: r.error for n, r in run.node_runs.items()}
    assert (project / "out" / "copy.txt").read_text() == "hello"
    assert not (elsewhere / "out").exists()


def test_run_settings_keep_given_roots_and_put_the_folder_first(tmp_path, monkeypatch):
    from conductor_nb.nodes.file_roots import run_settings

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "bp.yaml").write_text("conductor: 1\nid: e\nnodes: {}\n")
    bp = cnb.load(tmp_path / "p" / "bp.yaml")
    assert run_settings(bp, {})["file_roots"] == [str(tmp_path / "p"), str(Path.cwd())]
    assert run_settings(bp, {"file_roots": ["/x"]})["file_roots"] == ["/x"]
    assert "file_roots" not in run_settings(make({}), {})


def test_a_write_removes_the_temp_file_a_killed_writer_left(tmp_path):
    import subprocess
    import sys

    from conductor_nb.nodes.builtin.files import atomic_write

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f".out.txt.{dead.stdout.strip()}.abc123.tmp"
    stale.write_bytes(b"half")
    mine = tmp_path / f".out.txt.{__import__('os').getpid()}.zzz.tmp"  # a live writer's
    mine.write_bytes(b"busy")
    atomic_write(tmp_path / "out.txt", b"whole")
    assert (tmp_path / "out.txt").read_bytes() == b"whole"
    assert not stale.exists() and mine.exists()


def _write(path: str) -> dict[str, Any]:
    return {"type": "file-system", "params": {"operation": "write", "path": path, "content": "x"}}


def test_a_literal_path_outside_the_roots_inside_bodies_fails_before_any_node_runs(
    tmp_path, monkeypatch
):
    """loop, parallel and group bodies (and a body inside a body) run with the same roots:
    their literal paths are checked before the run starts, located like validation's."""
    monkeypatch.chdir(tmp_path)
    bp = make(
        {
            "first": _write("first.txt"),
            "each": {
                "type": "loop",
                "params": {
                    "items": [1, 2],
                    "body": {
                        "nodes": {
                            "ok": _write("in-{{ params.item }}.txt"),
                            "write": _write("/etc/x"),
                        }
                    },
                },
            },
            "fan": {
                "type": "parallel",
                "params": {"items": [1], "body": {"nodes": {"bad": _write("../../outside.txt")}}},
            },
            "grp": {
                "type": "group",
                "params": {
                    "blueprint": {
                        "nodes": {
                            "inner": {
                                "type": "loop",
                                "params": {
                                    "items": [1],
                                    "body": {"nodes": {"deep": _write("/tmp/deep.txt")}},
                                },
                            }
                        }
                    }
                },
            },
        },
        ["first.output -> each.input"],
    )
    with pytest.raises(cnb.BlueprintError) as caught:
        bp.run(history=False)
    paths = [p.path for p in caught.value.problems]
    assert paths == [
        "nodes.each.params.body.nodes.write.params.path",
        "nodes.fan.params.body.nodes.bad.params.path",
        "nodes.grp.params.blueprint.nodes.inner.params.body.nodes.deep.params.path",
    ]
    text = str(caught.value)
    assert "path '/etc/x' of 'write' (file-system) is outside the file roots" in text
    assert "--file-root" in text
    assert not (tmp_path / "first.txt").exists()  # nothing ran
    allowed = {"file_roots": [str(tmp_path), "/etc", "/tmp", str(tmp_path.parent.parent)]}
    from conductor_nb.nodes.file_roots import path_problems

    assert path_problems(bp, allowed) == []


def test_validate_reports_a_path_outside_the_roots_inside_a_body(tmp_path) -> None:
    import subprocess
    import sys

    (tmp_path / "bp.yaml").write_text(
        "conductor: 1\nid: bodies\nnodes:\n"
        "  each:\n    type: loop\n    params:\n      items: [1, 2]\n"
        "      body:\n        nodes:\n"
        "          write: {type: file-system, params: {operation: write, path: /etc/x,"
        " content: hi}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "conductor_nb.headless.cli", "validate", "bp.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "nodes.each.params.body.nodes.write.params.path" in done.stdout
