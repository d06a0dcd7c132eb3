"""Headless notebook runs keep the kernel's start-up noise out of the caller's output."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conductor_nb._kernels import QUIET, quiet_kernel

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("papermill")


def write_notebook(path: Path, language: str = "python", name: str = "python3") -> Path:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [
        cell,
        nbformat.v4.new_code_cell("import conductor_nb as cnb\ncnb.record('y', x * 2)"),
    ]
    nb.metadata["kernelspec"] = {"name": name, "display_name": name, "language": language}
    nbformat.write(nb, path)
    return path


def test_only_python_kernels_get_the_quiet_arguments(tmp_path: Path) -> None:
    assert quiet_kernel(write_notebook(tmp_path / "py.ipynb")) == {"extra_arguments": QUIET}
    assert quiet_kernel(write_notebook(tmp_path / "r.ipynb", "R", "ir")) == {}
    assert quiet_kernel(tmp_path / "py.ipynb", kernel_name="ir") == {}
    assert quiet_kernel(tmp_path / "missing.ipynb") == {}


@pytest.mark.notebook
def test_a_notebook_node_run_prints_no_kernel_warning(tmp_path: Path) -> None:
    write_notebook(tmp_path / "child.ipynb")
    script = textwrap.dedent(
        """
        import conductor_nb as cnb
        bp = cnb.Blueprint("nb")
        bp.add("notebook", id="n", path="child.ipynb", parameters={"x": 5})
        run = bp.run(history=False)
        print(run.status.value, run["n"].output["records"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.stdout.strip().splitlines()[-1] == "succeeded {'y': 10}", done.stderr
    assert "without encryption" not in done.stderr
    assert "WARNING" not in done.stderr
