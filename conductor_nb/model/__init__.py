"""The document layer: blueprints, nodes, edges, ports, params, validation and the file format.

Nothing here runs anything: loading and validating a document never imports,
executes or opens what it names.
"""

from conductor_nb.model.blueprint import Blueprint, Edge, Node
from conductor_nb.model.params import ParamSpec
from conductor_nb.model.types import (
    MISSING,
    NodeContext,
    NodeType,
    ParamField,
    Port,
    Registry,
    registry,
)

__all__ = [
    "MISSING",
    "Blueprint",
    "Edge",
    "Node",
    "NodeContext",
    "NodeType",
    "ParamField",
    "ParamSpec",
    "Port",
    "Registry",
    "registry",
]
