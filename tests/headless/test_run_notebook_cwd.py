"""``cnb.run_notebook(..., cwd=DIR)`` starts the kernel in DIR without moving the calling
process: papermill's own ``cwd=`` chdirs the whole process while the notebook runs, which
a background run in the same kernel (relative paths) would feel."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import nbformat
import pytest

import conductor_nb as cnb

pytestmark = pytest.mark.notebook

CELL = """import os, pathlib, time
pathlib.Path('started').write_text(os.getcwd())
while not pathlib.Path('release').exists():
    time.sleep(0.02)"""


def test_the_process_stays_where_it_is_while_the_kernel_runs_elsewhere(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(CELL))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, str(tmp_path / "wait.ipynb"))
    seen: list[str] = []

    def watch() -> None:  # a background run's thread, reading a relative path meanwhile
        deadline = time.monotonic() + 120
        while not (sub / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        seen.append(os.getcwd())
        (sub / "release").write_text("")

    here = os.getcwd()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        done = cnb.run_notebook(tmp_path / "wait.ipynb", tmp_path / "out.ipynb", cwd=sub)
    finally:
        (sub / "release").write_text("")
        watcher.join()
    assert done.status == "succeeded"
    assert (sub / "started").read_text() == str(sub)  # the kernel ran in `cwd`
    assert seen == [here]  # while it did, the process (every thread) stayed put


def test_a_missing_cwd_is_named(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nbformat.write(nb, str(tmp_path / "empty.ipynb"))
    with pytest.raises(FileNotFoundError, match="working directory 'nope': no such folder"):
        cnb.run_notebook(tmp_path / "empty.ipynb", tmp_path / "out.ipynb", cwd="nope")
