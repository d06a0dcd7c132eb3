"""The tutorial notebooks run top to bottom in a real kernel, with small parameters.

Each notebook ends with a cell that asserts its own key results and prints
``<name> OK``; these tests run every notebook in ``notebooks/`` with papermill,
twice in a row in the same temporary working directory (as a learner runs "Run
All" again), and without ``CONDUCTOR_HOME`` (the notebook puts its run history in
its own folder). After each run they check a few outputs of the executed
notebook, that both runs printed the same final line, and that the notebook
wrote nothing but its own ``cnb-tutorial/<name>/`` folder, which the
repository's ``.gitignore`` ignores wherever a notebook is run from. Fast tests
check that the committed notebooks carry no outputs and have a ``parameters``
cell with a ``workdir`` in that folder.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NOTEBOOK_NAMES = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
TUTORIAL_DIR = "cnb-tutorial"
"""The one folder (beside the working directory) that the notebooks write into."""

PARAMETERS: dict[str, dict[str, Any]] = {
    "01-quickstart": {"n": 6, "threshold": 3},
    "02-building-blueprints": {"words": ["fig", "banana", "kiwi", "cherry"], "min_length": 5},
    "03-debugging": {"size": 4},
    "04-built-in-nodes": {"rows": 5},
    "05-headless": {"day": "2026-11-24"},
    "06-custom-nodes": {"scale": 3},
    "07-scaling-out": {"items": 6, "workers": 1},
    "08-data-at-real-size": {"rows": 3000},
    "09-atomiton-flows": {"rows": 6},
}
"""Small parameters per notebook (names must exist in the notebook's parameters cell)."""

EXPECTED_TEXT: dict[str, list[str]] = {
    "01-quickstart": ["quickstart OK: {'total': 15, 'kept': [4, 5, 6]}"],
    "02-building-blueprints": ["building-blueprints OK", "2 problems in blueprint 'words'"],
    "03-debugging": ["debugging OK"],
    "04-built-in-nodes": ["built-in-nodes OK"],
    "05-headless": ["headless OK"],
    "06-custom-nodes": ["custom-nodes OK"],
    "07-scaling-out": [
        "scaling-out OK" if importlib.util.find_spec("distributed") else "scaling-out skipped"
    ],
    "08-data-at-real-size": ["data-at-real-size OK", "<Table "],
    "09-atomiton-flows": ["atomiton-flows OK", "is an Atomiton flow (current shape)"],
}
"""Text that must appear in the executed notebook's outputs."""

EXPECTED_PICTURES: dict[str, list[str]] = {
    "03-debugging": ["sensors: paused", "relay: paused", "relay: cancelled"],
}
"""Titles of static pictures that must appear in the outputs (snapshots that later
updates of a live view do not overwrite)."""


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _output_text(nb: dict[str, Any]) -> str:
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream":
                parts.append("".join(out["text"]))
            elif out["output_type"] in ("execute_result", "display_data"):
                parts.append("".join(out["data"].get("text/plain", "")))
            elif out["output_type"] == "error":
                parts.append(f"{out['ename']}: {out['evalue']}")
    return "\n".join(parts)


def _pictures(nb: dict[str, Any]) -> list[str]:
    return [
        "".join(out["data"]["image/svg+xml"])
        for cell in nb["cells"]
        for out in cell.get("outputs", [])
        if "image/svg+xml" in out.get("data", {})
    ]


def test_every_notebook_has_parameters_and_checks() -> None:
    assert NOTEBOOK_NAMES, f"no notebooks in {NOTEBOOKS}"
    assert set(NOTEBOOK_NAMES) <= set(PARAMETERS), "give new notebooks small PARAMETERS"
    assert NOTEBOOK_NAMES[0] == "01-quickstart"


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_committed_notebook_is_clean(name: str) -> None:
    nb = _read(NOTEBOOKS / f"{name}.ipynb")
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{name}: expected one 'parameters'-tagged cell"
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell.get("outputs") == [], f"{name} cell {index}: strip outputs before committing"
        assert cell.get("execution_count") is None, f"{name} cell {index}: has an execution count"
    for key in PARAMETERS.get(name, {}):
        assert f"{key} =" in "".join(tagged[0]["source"]), f"{name}: no parameter {key!r}"
    workdir = f'workdir = "{TUTORIAL_DIR}/{name}"'
    assert workdir in "".join(tagged[0]["source"]), f"{name}: parameters need {workdir}"


def test_gitignore_covers_the_tutorial_folder() -> None:
    patterns = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert f"{TUTORIAL_DIR}/" in patterns, "a cnb-tutorial/ anywhere in the tree is ignored"


RUNS = 2
"""Each notebook runs this many times in a row in the same folder: later runs must
give the same results as the first."""


def _execute(name: str, work: Path, output: Path) -> dict[str, Any]:
    papermill = pytest.importorskip("papermill")
    try:
        papermill.execute_notebook(
            str(NOTEBOOKS / f"{name}.ipynb"),
            str(output),
            parameters=PARAMETERS.get(name, {}),
            cwd=str(work),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=240,
        )
    except papermill.PapermillExecutionError as exc:
        pytest.fail(f"{name} failed in cell {exc.cell_index}: {exc.ename}: {exc.evalue}")
    return _read(output)


def _check_outputs(name: str, nb: dict[str, Any]) -> str:
    """Check one executed notebook; return the last line its outputs printed."""
    text = _output_text(nb)
    for expected in EXPECTED_TEXT.get(name, []):
        assert expected in text, f"{name}: {expected!r} not in the outputs"
    pictures = _pictures(nb)
    assert pictures, f"{name}: no SVG picture of a blueprint or run in the outputs"
    for title in EXPECTED_PICTURES.get(name, []):
        assert any(f">{title}</text>" in svg for svg in pictures), f"{name}: no {title!r} picture"
    injected = nb["metadata"]["papermill"]["parameters"]
    assert injected == PARAMETERS.get(name, {})
    return text.strip().splitlines()[-1]


@pytest.mark.notebook
@pytest.mark.timeout(600)  # two runs of a notebook that starts kernels of its own
@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_runs_twice(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.delenv("CONDUCTOR_HOME", raising=False)
    monkeypatch.chdir(work)
    before = sorted(NOTEBOOKS.iterdir())
    last_lines = []
    for attempt in range(1, RUNS + 1):
        nb = _execute(name, work, tmp_path / f"{name}.out{attempt}.ipynb")
        last_lines.append(_check_outputs(name, nb))
        assert sorted(NOTEBOOKS.iterdir()) == before, "the notebook wrote into notebooks/"
        assert sorted(p.name for p in work.iterdir()) == [TUTORIAL_DIR], "wrote elsewhere"
        assert sorted(p.name for p in (work / TUTORIAL_DIR).iterdir()) == [name]
        assert (work / TUTORIAL_DIR / name / ".conductor").is_dir(), "the history is elsewhere"
    assert len(set(last_lines)) == 1, f"{name}: runs ended differently: {last_lines}"
