"""Where run history lives: one rule, so the same project always finds the same history.

1. An explicit folder: the ``home=`` argument (``--home DIR``), else ``$CONDUCTOR_HOME``.
2. Else the project's ``.conductor/`` folder. The project root is found like git
   finds its repository: from the blueprint file's folder (or, with no blueprint
   file, the working directory) upward, the first folder that holds a
   ``.conductor/`` folder, a ``pyproject.toml`` or a ``.git`` (the filesystem root and
   the system's temporary folder itself are never a project: a stray ``/tmp/.conductor``
   must not gather every run under ``/tmp``).
3. Else (no project around) the user's data folder: ``$XDG_DATA_HOME/conductor-nb``
   or ``~/.local/share/conductor-nb`` (``~/Library/Application Support/conductor-nb``
   on macOS, ``%LOCALAPPDATA%\\conductor-nb`` on Windows).
"""

from __future__ import annotations

import os
import sys
import tempfile
from os import PathLike
from pathlib import Path

ENV_HOME = "CONDUCTOR_HOME"
DEFAULT_DIR = ".conductor"
MARKERS = (DEFAULT_DIR, "pyproject.toml", ".git")
APP = "conductor-nb"


def resolve_home(
    home: str | PathLike[str] | None = None, start: str | PathLike[str] | None = None
) -> Path:
    """The history folder by the rule above; ``start`` is where the project search begins
    (a blueprint file's folder; default: the working directory)."""
    if home is not None:
        return Path(home)
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env)
    root = project_root(Path(start) if start is not None else Path.cwd())
    return root / DEFAULT_DIR if root is not None else user_data_dir()


def project_root(start: Path) -> Path | None:
    """The first folder from ``start`` upward that holds a project marker, or None."""
    here = start.resolve()
    ceilings = {Path(here.anchor), Path(tempfile.gettempdir()).resolve()}
    for folder in (here, *here.parents):
        if folder in ceilings:
            continue
        if (folder / DEFAULT_DIR).is_dir():
            return folder
        if any((folder / marker).exists() for marker in MARKERS[1:]):
            return folder
    return None


def user_data_dir() -> Path:
    """The per-user data folder of conductor-nb (what platformdirs answers, without it)."""
    if sys.platform == "win32":  # pragma: no cover
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / APP
    if sys.platform == "darwin":  # pragma: no cover
        return Path.home() / "Library" / "Application Support" / APP
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP
