"""``%%blueprint NAME``: YAML in a cell becomes a Blueprint bound to NAME, and is shown.

::

    %load_ext conductor_nb

    %%blueprint bp
    id: hello
    nodes:
      load: {type: spreadsheet, params: {path: people.csv}}
"""

from __future__ import annotations

from typing import Any

from conductor_nb.errors import ConductorError


def register(ipython: Any) -> None:
    """Register the cell magic on an IPython shell (``%load_ext conductor_nb`` calls this)."""

    def blueprint(line: str, cell: str) -> None:
        blueprint_magic(ipython, line, cell)

    blueprint.__doc__ = blueprint_magic.__doc__
    ipython.register_magic_function(blueprint, magic_kind="cell", magic_name="blueprint")


def blueprint_magic(ipython: Any, line: str, cell: str) -> Any:
    """%%blueprint [NAME] [--no-show]: parse the cell as a blueprint (YAML or JSON), bind it
    to NAME in the user namespace (default ``bp``) and show its view."""
    from IPython.core.error import UsageError
    from IPython.display import display

    from conductor_nb.model.blueprint import Blueprint

    words = line.split()
    show = "--no-show" not in words
    names = [w for w in words if not w.startswith("--")]
    if len(names) > 1:
        raise UsageError(f"%%blueprint takes one name, got {' '.join(names)!r}")
    name = names[0] if names else "bp"
    if not name.isidentifier():
        raise UsageError(f"%%blueprint: {name!r} is not a Python name")
    try:
        bp = Blueprint.from_yaml(cell, source=f"%%blueprint {name}")
    except ConductorError as exc:
        raise UsageError(str(exc)) from None
    ipython.user_ns[name] = bp
    if show:
        display(bp)
    return bp
