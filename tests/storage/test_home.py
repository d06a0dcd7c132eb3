"""Where history lives: CONDUCTOR_HOME, else the project root found upward from the
blueprint (``.conductor/``, ``pyproject.toml`` or ``.git``), else the user's data folder."""

from __future__ import annotations

import pytest

import conductor_nb as cnb
from conductor_nb.storage.home import project_root, resolve_home


@pytest.fixture
def no_home(monkeypatch, tmp_path):
    monkeypatch.delenv("CONDUCTOR_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.mark.parametrize("marker", ["pyproject.toml", ".git", ".conductor"])
def test_the_project_root_is_found_upward_by_its_markers(tmp_path, no_home, marker):
    project = tmp_path / "proj"
    deep = project / "a" / "b"
    deep.mkdir(parents=True)
    (project / marker).mkdir() if marker != "pyproject.toml" else (project / marker).touch()
    assert project_root(deep) == project
    assert resolve_home(start=deep) == project / ".conductor"


def test_an_existing_conductor_folder_nearer_wins(tmp_path, no_home):
    (tmp_path / "proj" / "nb" / ".conductor").mkdir(parents=True)
    (tmp_path / "proj" / "pyproject.toml").touch()
    assert resolve_home(start=tmp_path / "proj" / "nb") == tmp_path / "proj" / "nb" / ".conductor"


def test_no_project_means_the_user_data_folder(tmp_path, no_home):
    (tmp_path / "loose").mkdir()
    assert resolve_home(start=tmp_path / "loose") == tmp_path / "xdg" / "conductor-nb"


def test_conductor_home_and_an_explicit_home_come_first(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").touch()
    monkeypatch.setenv("CONDUCTOR_HOME", str(tmp_path / "env-home"))
    assert resolve_home(start=tmp_path) == tmp_path / "env-home"
    assert resolve_home(tmp_path / "given", start=tmp_path) == tmp_path / "given"


def test_a_run_of_a_blueprint_file_records_in_its_project_wherever_it_starts(
    tmp_path, no_home, monkeypatch
):
    project = tmp_path / "proj"
    (project / "flows").mkdir(parents=True)
    (project / "pyproject.toml").touch()
    (project / "flows" / "bp.yaml").write_text(
        "conductor: 1\nid: tiny\nnodes:\n  wait: {type: delay, params: {seconds: 0}}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run = cnb.load(project / "flows" / "bp.yaml").run()
    assert run.status.value == "succeeded"
    assert (project / ".conductor" / "history.db").exists()
    assert not (elsewhere / ".conductor").exists()
    monkeypatch.chdir(project / "flows")
    assert [r.id for r in cnb.runs()] == [run.id]  # the same project finds the same history
