"""Loading node libraries: the built-in catalogue and ``conductor_nb.nodes`` entry points."""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from conductor_nb.model.types import Registry

log = logging.getLogger("conductor_nb.nodes")

BUILTIN_MODULES = (
    "conductor_nb.nodes.builtin.data",
    "conductor_nb.nodes.builtin.code",
    "conductor_nb.nodes.builtin.files",
    "conductor_nb.nodes.builtin.http",
    "conductor_nb.nodes.builtin.shell",
    "conductor_nb.nodes.builtin.spreadsheet",
    "conductor_nb.nodes.builtin.merge",
    "conductor_nb.nodes.builtin.sql",
    "conductor_nb.nodes.builtin.control",
    "conductor_nb.nodes.builtin.notebook",
    "conductor_nb.nodes.builtin.image",
)


def load_builtins(registry: Registry) -> None:
    for name in BUILTIN_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # not written yet / removed: the others still load
                continue
            raise
        for node_type in getattr(module, "NODE_TYPES", ()):
            registry.register(node_type)


def load_entry_points(registry: Registry) -> None:
    """Each entry point is a module (its @node functions register themselves) or a
    callable taking the registry. A broken plugin is logged, never fatal."""
    for ep in entry_points(group="conductor_nb.nodes"):
        try:
            loaded = ep.load()
            if callable(loaded):
                loaded(registry)
        except Exception:
            log.exception("could not load node plugin %r (%s)", ep.name, ep.value)
