"""Every storage test gets its own history folder ($CONDUCTOR_HOME) and working directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def conductor_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "conductor-home"
    monkeypatch.setenv("CONDUCTOR_HOME", str(home))
    monkeypatch.delenv("CONDUCTOR_ALLOW_PICKLE", raising=False)
    monkeypatch.delenv("CONDUCTOR_BLUEPRINTS", raising=False)
    monkeypatch.chdir(tmp_path)
    return home
