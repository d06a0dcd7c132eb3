"""How much room the run history takes, and durations as people write them (``7d``).

``conductor-nb runs list`` ends with the history's size on disk (the SQLite
database, its journal, and the value blobs); ``runs prune --older-than 7d``
reads the age with :func:`parse_age`.
"""

from __future__ import annotations

import re
from pathlib import Path

_UNITS = {"s": 1 / 86400, "m": 1 / 1440, "h": 1 / 24, "d": 1.0, "w": 7.0}


def disk_usage(home: Path) -> int:
    """Bytes of every file under the history folder ``home`` (0 when there is none)."""
    if not home.exists():
        return 0
    return sum(p.stat().st_size for p in home.rglob("*") if p.is_file())


def human_size(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


def parse_age(text: str) -> float:
    """``30m``, ``12h``, ``7d``, ``2w`` or a plain number of days, as days."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(text))
    if not match:
        raise ValueError(f"expected an age like 30m, 12h, 7d or 2w (or days), got {text!r}")
    number, unit = match.groups()
    return float(number) * _UNITS[unit or "d"]
