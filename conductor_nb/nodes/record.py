"""``cnb.record(name, value)``: record a value in a notebook for the ``notebook`` node.

Inside a notebook run by papermill, ``record`` emits a ``display_data`` output
with the mimetype :data:`MIMETYPE` holding ``{"name": ..., "value": ...}`` (the
value as JSON). The output notebook keeps it, and the ``notebook`` node reads
every recorded value back with :func:`read_records`. Outside a kernel it prints
nothing and returns the value, so the same notebook runs as a plain script.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MIMETYPE = "application/vnd.conductor-nb.record+json"


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise TypeError(
            f"cnb.record needs a JSON-serialisable value (str, number, bool, None, list, dict); "
            f"got a {type(value).__name__}"
        ) from None


def record(name: str, value: Any) -> Any:
    """Record ``value`` under ``name`` in the notebook's outputs; returns ``value``."""
    if not isinstance(name, str) or not name:
        raise ValueError("cnb.record needs a non-empty name")
    payload = {"name": name, "value": _jsonable(value)}
    try:
        from IPython.display import display  # imported here: conductor_nb stays Jupyter-free
    except ImportError:  # pragma: no cover - no IPython: nothing to display into
        return value
    display(
        {MIMETYPE: payload, "text/plain": f"recorded {name} = {value!r}"[:500]},
        raw=True,
    )
    return value


def read_records(notebook: Mapping[str, Any]) -> dict[str, Any]:
    """The values recorded in an executed notebook (nbformat dict), later ones winning."""
    found: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) or []:
            data = output.get("data") or {}
            payload = data.get(MIMETYPE)
            if isinstance(payload, str):
                payload = json.loads(payload)
            if isinstance(payload, Mapping) and "name" in payload:
                found[str(payload["name"])] = payload.get("value")
    return found


__all__ = ["MIMETYPE", "read_records", "record"]
