"""The nodes inside the bodies of container nodes (loop, parallel, group), found without
running anything.

A container node type names the params that hold sub-blueprints (``raw_params``); a
body is a blueprint document (a mapping with ``nodes``) or a Blueprint. Validation's
file-root check reads bodies through :func:`body_nodes`; the Dask executor's up-front
probe of node functions walks them with :func:`body_types`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

NodeEntry = tuple[str, str, "int | None", Mapping[str, Any]]
"""(node id, type name, type version, params as written)."""

MAX_DEPTH = 20  # bodies inside bodies; deeper is a mistake validation reports


def body_nodes(body: Any) -> list[NodeEntry] | None:
    """The nodes of a body param's value (a blueprint document or a Blueprint), or None."""
    nodes = getattr(body, "nodes", None)
    if nodes is not None and not isinstance(body, Mapping):  # a Blueprint
        return [(i, n.type, n.version, n.params) for i, n in nodes.items()]
    if not isinstance(body, Mapping) or not isinstance(body.get("nodes"), Mapping):
        return None  # not a body document: validation says so
    return [
        (str(i), str(n.get("type", "")), n.get("version"), n.get("params") or {})
        for i, n in body["nodes"].items()
        if isinstance(n, Mapping) and isinstance(n.get("params") or {}, Mapping)
    ]


def body_types(
    path: str, node_type: Any, params: Mapping[str, Any], registry: Any, depth: int = 0
) -> Iterator[tuple[str, Any]]:
    """(path, type) of each node inside the bodies held in ``node_type``'s raw params, at
    any depth; a path reads ``each.wrap.twice`` (node ``twice`` in the body of ``wrap``, in
    the body of ``each``). Bodies given at run time (from an input) and node types the
    registry does not know (validation names them) are skipped."""
    if depth > MAX_DEPTH:
        return
    for name in node_type.raw_params:
        for inner_id, type_name, version, inner_params in body_nodes(params.get(name)) or ():
            inner_type = registry.find(type_name, version)
            if inner_type is None:
                continue
            inner_path = f"{path}.{inner_id}"
            yield inner_path, inner_type
            yield from body_types(inner_path, inner_type, inner_params, registry, depth + 1)
