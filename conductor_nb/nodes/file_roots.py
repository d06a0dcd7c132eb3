"""The file roots of a run, and the check that literal paths lie inside them.

File nodes (``file-system``, ``spreadsheet``, ``image``, ``notebook``) confine
every path to the run's file roots (the run setting ``file_roots``). A run of
a blueprint loaded from a file gets that file's folder as its first root, so
relative paths follow the blueprint, not the working directory; the working
directory stays allowed after it. A literal path outside the roots (``/etc/x``)
is a problem found before anything runs, located at the node's param (inside the body
of a ``loop``, ``parallel`` or ``group`` too), with the way to allow another folder;
templated paths are checked when they render.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor_nb.errors import Problem, problem
from conductor_nb.model import templates
from conductor_nb.nodes.builtin.files import PathNotAllowed, allowed_roots, confine
from conductor_nb.nodes.inner import body_nodes

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

CONFINED_TYPES = frozenset({"file-system", "spreadsheet", "image", "notebook"})
"""Node types whose ``path``-typed params are confined to the file roots at run time."""

ROOT_HINT = (
    "fix: allow the folder with --file-root DIR on the command line, or the run option "
    "settings={'file_roots': [...]} in Python"
)


def blueprint_folder(bp: Blueprint) -> Path | None:
    """The folder of the local file ``bp`` was loaded from, or None."""
    source = getattr(bp, "source", None)
    if not source or "://" in str(source):
        return None
    path = Path(str(source)).expanduser()
    return path.resolve().parent if path.suffix else None


def run_settings(bp: Blueprint, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with the default file roots filled in: the blueprint file's folder,
    then the working directory. Roots the caller gave are kept as they are."""
    given = dict(settings)
    folder = blueprint_folder(bp)
    if given.get("file_roots") or folder is None:
        return given
    cwd = Path(os.getcwd()).resolve()
    given["file_roots"] = [str(folder)] + ([str(cwd)] if cwd != folder else [])
    return given


def path_problems(bp: Blueprint, settings: Mapping[str, Any]) -> list[Problem]:
    """Literal paths of file nodes that resolve outside the run's file roots, at the top
    level and inside the bodies of ``loop``, ``parallel`` and ``group`` nodes (a body's
    node runs with the same roots), located as validation locates them:
    ``nodes.each.params.body.nodes.write.params.path``."""
    roots = allowed_roots(settings)
    nodes = ((node_id, node.type, node.version, node.params) for node_id, node in bp.nodes.items())
    return _problems_in(nodes, "", bp.registry, roots)


def _problems_in(
    nodes: Iterable[tuple[str, str, int | None, Mapping[str, Any]]],
    prefix: str,
    registry: Any,
    roots: list[Path],
) -> list[Problem]:
    found = []
    types: dict[tuple[str, int | None], Any] = {}  # one lookup per type, not per node
    for node_id, type_name, version, params in nodes:
        key = (type_name, version)
        if key not in types:
            types[key] = registry.find(type_name, version)
        node_type = types[key]
        if node_type is None:
            continue  # validation names an unknown type
        if node_type.name not in CONFINED_TYPES and not node_type.raw_params:
            continue  # nothing of this node can name a path
        where = f"{prefix}nodes.{node_id}.params"
        if node_type.name in CONFINED_TYPES:
            found += _outside_paths(node_type, params, where, node_id, roots)
        for name in node_type.raw_params:
            inner = body_nodes(params.get(name))
            if inner is not None:
                found += _problems_in(inner, f"{where}.{name}.", registry, roots)
    return found


def _outside_paths(
    node_type: Any, params: Mapping[str, Any], where: str, node_id: str, roots: list[Path]
) -> list[Problem]:
    found = []
    for spec in node_type.params:
        value = params.get(spec.name)
        if spec.type != "path" or not isinstance(value, str) or not value:
            continue
        if templates.has_template(value):
            continue  # checked when it renders
        try:
            confine(value, roots)
        except PathNotAllowed:
            found.append(_outside(where, node_id, node_type.name, spec.name, value, roots))
    return found


def _outside(
    where: str, node_id: str, type_name: str, name: str, value: str, roots: list[Path]
) -> Problem:
    return problem(
        f"{where}.{name}",
        f"path {value!r} of {node_id!r} ({type_name}) is outside the file roots "
        f"({', '.join(map(str, roots))})",
        ROOT_HINT,
    )
