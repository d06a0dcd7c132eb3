"""Plug-in points the upper layers fill in: run history, the result cache, views, reports.

The engine calls these; it never imports storage, widgets or headless code.
``conductor_nb/__init__`` wires the defaults in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor_nb.engine.driver import RunDriver
    from conductor_nb.engine.options import ResultCache
    from conductor_nb.engine.run import Run

run_created: list[Callable[[Run], None]] = []
"""Called with every new top-level run before it starts (history recorders subscribe here)."""

_cache_factory: Callable[[RunDriver], ResultCache] | None = None
_view_factory: Callable[..., Any] | None = None
_report_writer: Callable[[Run, str], str] | None = None


def set_cache_factory(factory: Callable[[RunDriver], ResultCache]) -> None:
    global _cache_factory
    _cache_factory = factory


def default_cache(run: RunDriver) -> ResultCache | None:
    """The result cache for ``run`` (the storage layer decides where it lives)."""
    return _cache_factory(run) if _cache_factory is not None else None


def set_view_factory(factory: Callable[..., Any]) -> None:
    global _view_factory
    _view_factory = factory


def view_factory() -> Callable[..., Any]:
    if _view_factory is None:
        from conductor_nb.errors import MissingExtraError

        raise MissingExtraError("views need the jupyter extra: pip install 'conductor-nb[jupyter]'")
    return _view_factory


def set_report_writer(writer: Callable[[Run, str], str]) -> None:
    global _report_writer
    _report_writer = writer


def report_writer() -> Callable[[Run, str], str]:
    if _report_writer is None:
        from conductor_nb.errors import MissingExtraError

        raise MissingExtraError(
            "no report writer is installed: import conductor_nb.headless (it comes with "
            "conductor_nb unless the package was trimmed)"
        )
    return _report_writer


_blueprint_loader: Callable[[str], Any] | None = None


def set_blueprint_loader(loader: Callable[[str], Any]) -> None:
    """How ``group`` nodes find a stored blueprint by name (the storage layer sets it)."""
    global _blueprint_loader
    _blueprint_loader = loader


def load_blueprint(name: str) -> Any:
    if _blueprint_loader is None:
        from conductor_nb.errors import StoreError

        raise StoreError(f"cannot load blueprint {name!r}: no blueprint store is configured")
    return _blueprint_loader(name)
