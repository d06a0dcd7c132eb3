"""Lazy imports of optional dependencies, failing with the exact install command."""

from __future__ import annotations

import importlib
from types import ModuleType

from conductor_nb.errors import MissingExtraError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or explain which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{feature} needs the {module!r} package, which is not installed.\n"
            f"    fix: pip install 'conductor-nb[{extra}]'"
        ) from exc
