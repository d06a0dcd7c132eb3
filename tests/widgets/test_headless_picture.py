"""In a headless kernel (papermill), a displayed view's static picture is updated when the run
ends, so the saved notebook shows the final node states."""

from __future__ import annotations

import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("papermill")

pytestmark = pytest.mark.notebook

CELLS = [
    """import conductor_nb as cnb
@cnb.node
def double(x: int) -> int:
    return x * 2
bp = cnb.Blueprint("pm")
bp.add(double, id="a", x=2)
bp.add(double, id="b")
bp.connect("a", "b.x")
v = bp.view()
v""",
    "run = v.start_run(); run.wait(); v.wait_actions(); print(run.status.value)",
]


def test_displayed_view_shows_final_states_in_the_saved_notebook(tmp_path, monkeypatch) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nbformat.write(nb, tmp_path / "in.ipynb")
    monkeypatch.chdir(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "papermill", "--log-level", "ERROR", "in.ipynb", "out.ipynb"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    saved = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    (picture,) = [o for o in saved.cells[0].outputs if "image/svg+xml" in o.get("data", {})]
    svg = picture["data"]["image/svg+xml"]
    assert svg.count('data-state="succeeded"') == 2
    assert 'data-state="pending"' not in svg
    assert saved.cells[1].outputs[0]["text"] == "succeeded\n"
