"""The README's Python examples run as written, in order (it is the front door)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_python_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # bp.save("scores.yaml") writes here
    blocks = python_blocks()
    assert len(blocks) >= 2
    names: dict[str, object] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, str(README), "exec"), names)
    run = names["run"]
    assert run.status.value == "succeeded"  # type: ignore[attr-defined]
    assert run.outputs == {"total": 1.1}  # type: ignore[attr-defined]
    assert (tmp_path / "scores.yaml").exists()
