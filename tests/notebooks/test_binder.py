"""binder/ is complete: a fresh virtualenv set up the way repo2docker would runs the quickstart.

repo2docker installs ``binder/requirements.txt``, then runs ``binder/postBuild`` from
the repository root. This test does the same in a new virtualenv (the pip commands
of postBuild, read from the file, with the pip cache allowed so reruns are quick),
then runs ``notebooks/01-quickstart.ipynb`` with that virtualenv's papermill and
kernel. A missing dependency of any notebook-facing extra fails here, not on Binder.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"


def _pip_commands(post_build: str) -> list[list[str]]:
    """The ``pip install`` commands of postBuild, as argument lists after ``pip``."""
    commands = []
    for line in post_build.splitlines():
        line = line.strip()
        match = re.match(r"^(?:python3? -m )?pip3? (install .*)$", line)
        if match:
            args = [a for a in shlex.split(match.group(1)) if a != "--no-cache-dir"]
            commands.append(args)
    return commands


def test_binder_files_are_what_repo2docker_reads() -> None:
    assert (BINDER / "requirements.txt").is_file()
    assert re.fullmatch(r"python-3\.\d+", (BINDER / "runtime.txt").read_text().strip())
    post_build = BINDER / "postBuild"
    text = post_build.read_text()
    assert text.startswith("#!/bin/bash\n")
    assert "set -e" in text.split("\n", 3)[-1] or "set -euo pipefail" in text
    assert os.access(post_build, os.X_OK), "postBuild must be executable"
    commands = _pip_commands(text)
    assert commands, "postBuild installs nothing with pip"
    assert any("-e" in c and any(a.startswith(".[") for a in c) for c in commands), commands
    extras = next(a for c in commands for a in c if a.startswith(".["))
    for extra in ("jupyter", "papermill", "dask", "spreadsheet", "image", "data"):
        assert extra in extras, f"postBuild does not install the {extra!r} extra"


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.mark.notebook
@pytest.mark.timeout(1200)
def test_fresh_binder_environment_runs_the_quickstart(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    bindir = venv / "bin"
    python = str(bindir / "python")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTER", "PYTHON", "VIRTUAL_ENV", "CONDA"))
    }
    env.update(
        PATH=f"{bindir}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
        CONDUCTOR_HOME=str(tmp_path / "conductor-home"),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    pip = [python, "-m", "pip"]
    _run([*pip, "install", "-q", "-r", str(BINDER / "requirements.txt")], cwd=ROOT, env=env)
    for args in _pip_commands((BINDER / "postBuild").read_text()):
        _run([*pip, *args, "-q"], cwd=ROOT, env=env)

    probe = _run(
        [
            python,
            "-c",
            "import json, conductor_nb, anywidget, ipywidgets, papermill, distributed, PIL,"
            " openpyxl; print(json.dumps(conductor_nb.__file__))",
        ],
        cwd=tmp_path,
        env=env,
    )
    assert Path(json.loads(probe.stdout)).is_relative_to(ROOT), "not the editable checkout"
    _run([str(bindir / "jupyter"), "lab", "--version"], cwd=tmp_path, env=env)

    work = tmp_path / "work"
    work.mkdir()
    output = tmp_path / "quickstart.out.ipynb"
    _run(
        [
            str(bindir / "papermill"),
            str(ROOT / "notebooks" / "01-quickstart.ipynb"),
            str(output),
            "-k",
            "python3",
            "--cwd",
            str(work),
            "-p",
            "n",
            "6",
            "-p",
            "threshold",
            "3",
            "--no-progress-bar",
        ],
        cwd=work,
        env=env,
    )
    nb = json.loads(output.read_text(encoding="utf-8"))
    texts = [
        "".join(out.get("text", ""))
        for cell in nb["cells"]
        for out in cell.get("outputs", [])
        if out["output_type"] == "stream"
    ]
    assert any("quickstart OK: {'total': 15, 'kept': [4, 5, 6]}" in t for t in texts), texts
