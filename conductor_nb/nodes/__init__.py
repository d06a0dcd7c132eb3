"""Node types: the ``@node`` decorator, the built-in library, and plugin loading.

The built-in library and plugins from the ``conductor_nb.nodes`` entry-point
group register into the default registry on its first lookup, not at import.
"""

from __future__ import annotations

from conductor_nb.model.types import registry
from conductor_nb.nodes.decorator import node
from conductor_nb.nodes.plugins import load_builtins, load_entry_points

registry.add_loader(load_builtins)
registry.add_loader(load_entry_points)

__all__ = ["node"]
