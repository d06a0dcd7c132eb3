"""Node settings, declared once: how the engine treats a node, not what it computes.

:class:`NodeSettings` is the one declaration of every setting: its name, type,
default, bounds and description. Everything else is derived from it, so the
places that handle settings cannot disagree:

- :class:`~conductor_nb.model.blueprint.Node` inherits its fields;
- :data:`SETTINGS`: the keywords of ``Blueprint.add`` (and node keys in files) that
  are settings, not param values;
- the file form (:func:`file_form`: a position is a list in files, a tuple on a Node;
  exception classes in ``retry_on`` are written by name);
- the pydantic model that checks settings (``schema.SettingsDoc``, part of
  ``schema.NodeDoc``): loading a file, ``Blueprint.add``, ``Blueprint.set_params``
  (the view's edits go through it) and validation all use it, so one mistake gets one
  message, wherever it is made;
- the JSON Schema of ``conductor-nb schema``, bounds and descriptions included.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from conductor_nb.errors import Problem

BOUNDS = ("ge", "gt", "le")
"""Metadata keys of a setting's bounds (pydantic's names: >=, >, <=)."""


def about(
    description: str, *, ge: float | None = None, gt: float | None = None, le: float | None = None
) -> dict[str, Any]:
    """A setting's metadata: what it does, and its bounds (``ge`` >=, ``gt`` >, ``le`` <=)."""
    bounds = {"ge": ge, "gt": gt, "le": le}
    return {"description": description, **{k: v for k, v in bounds.items() if v is not None}}


@dataclass(kw_only=True)
class NodeSettings:
    """The settings of one node (see the module docstring)."""

    retries: int = field(default=0, metadata=about("retries after a failed attempt", ge=0, le=1000))
    retry_delay: float = field(
        default=0.0, metadata=about("seconds to wait before the first retry", ge=0)
    )
    retry_backoff: float = field(
        default=2.0,
        metadata=about("each retry waits this many times longer than the one before", ge=1),
    )
    retry_on: list[str] = field(
        default_factory=list,
        metadata=about("names of the exceptions that are retried (none listed: any exception)"),
    )
    timeout: float | None = field(
        default=None, metadata=about("seconds an attempt may take (none: no limit)", gt=0)
    )
    enabled: bool = field(
        default=True, metadata=about("a disabled node is skipped, and so is what reads from it")
    )
    cache: bool = field(
        default=False,
        metadata=about(
            "reuse the result when type, version, params, inputs and code are unchanged"
        ),
    )
    position: tuple[float, float] | None = field(
        default=None, metadata=about("where the view draws the node: x, y")
    )
    name: str | None = field(
        default=None, metadata=about("the name shown for the node (else its id)")
    )
    resources: dict[str, float] = field(
        default_factory=dict, metadata=about("what an attempt needs from a worker (Dask resources)")
    )


SETTINGS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(NodeSettings))
"""Keywords of ``Blueprint.add`` (and node keys in files) that are node settings, not values."""

DEFAULTS: Mapping[str, Any] = {k: getattr(NodeSettings(), k) for k in SETTINGS}


_LABELS: dict[Any, tuple[str, str]] = {
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    bool: ("true or false", "true or false"),
    str: ("a string", "strings"),
}


@functools.cache
def expected(name: str) -> str:
    """What setting ``name`` takes, from its declaration: ``an integer >= 0 and <= 1000``."""
    spec = next(f for f in dataclasses.fields(NodeSettings) if f.name == name)
    hint = typing.get_type_hints(NodeSettings)[name]
    members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    value = next(m for m in members if m is not type(None))
    bounds = [f"{op} {spec.metadata[key]:g}" for key, op in _OPS.items() if key in spec.metadata]
    text = " ".join([_label(value), " and ".join(bounds)]).rstrip()
    return text + (" or null" if type(None) in members else "")


_OPS = {"ge": ">=", "gt": ">", "le": "<="}


def _label(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return f"a list of {_LABELS[args[0]][1]}"
    if origin is tuple:
        return f"a list of {len(args)} {_LABELS[args[0]][1]}"
    if origin is dict:
        return f"a mapping of {_LABELS[args[0]][1]} to {_LABELS[args[1]][1]}"
    return _LABELS[hint][0]


def file_form(value: Any) -> Any:
    """A setting value as a file holds it: tuples become lists, exception classes their
    names (``retry_on=[TimeoutError]``); anything else is left for the check to judge."""
    if isinstance(value, type) and issubclass(value, BaseException):
        builtin = value.__module__ == "builtins"
        return value.__name__ if builtin else f"{value.__module__}.{value.__name__}"
    if isinstance(value, tuple | list):
        return [file_form(v) for v in value]
    return value


def node_form(values: Mapping[str, Any]) -> dict[str, Any]:
    """Checked settings in file form, as a Node holds them (a position is a tuple)."""
    out = dict(values)
    if out.get("position") is not None:
        out["position"] = tuple(out["position"])
    return out


def non_defaults(node: NodeSettings) -> dict[str, Any]:
    """The node's settings that differ from their defaults, in file form."""
    fields = vars(node)  # plain attribute reads: validation calls this for every node
    return {k: file_form(fields[k]) for k, default in DEFAULTS.items() if fields[k] != default}


def check(values: Mapping[str, Any], node_id: str) -> tuple[dict[str, Any], list[Problem]]:
    """Check settings given in Python (``bp.add``, ``set_params``) as a file's would be:
    the checked values in node form, or every problem (located ``nodes.<id>.<setting>``)."""
    from conductor_nb.model.schema import check_settings

    checked, problems = check_settings({k: file_form(v) for k, v in values.items()}, node_id)
    return node_form(checked), problems


def problems_of(node: NodeSettings, node_id: str) -> list[Problem]:
    """What is wrong with a node's settings (however they were set), by the same check.
    Settings left at their defaults need none, and settings already found valid on
    another node are not checked again, so validating many nodes stays cheap."""
    changed = non_defaults(node)
    if not changed:
        return []
    key = _frozen(changed)
    if key is not None and key in _VALID:
        return []
    from conductor_nb.model.schema import check_settings

    found = check_settings(changed, node_id, dump=False)[1]
    if not found and key is not None and len(_VALID) < 4096:
        _VALID.add(key)
    return found


_VALID: set[Any] = set()
"""Settings (as :func:`_frozen` keys) that passed the check."""


def _frozen(changed: Mapping[str, Any]) -> Any:
    """A hashable key that tells apart what the check tells apart (``True`` is not ``1``),
    for settings holding plain scalars; None (no key) when one holds a list or mapping."""
    key = []
    for name, value in changed.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            return None
        key.append((name, type(value), value))
    return tuple(key)
