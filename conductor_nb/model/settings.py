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
import operator
import types
import typing
from collections.abc import Callable, Mapping
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
    checked: dict[str, Any] = {}
    doubtful: dict[str, Any] = {}
    for name, value in values.items():
        value = file_form(value)
        plain = _PLAIN[name](value)
        if plain is _DOUBT:
            doubtful[name] = value
        else:
            checked[name] = plain
    if doubtful:
        from conductor_nb.model.schema import check_settings

        done, problems = check_settings(doubtful, node_id)
        if problems:
            return {}, problems
        checked.update(done)
    return node_form(checked), []


def problems_of(node: NodeSettings, node_id: str) -> list[Problem]:
    """What is wrong with a node's settings (however they were set), by the same check.
    Settings left at their defaults need none, and plain valid values are told apart
    without pydantic, so validating many nodes stays cheap."""
    current = _read_all(node)
    if current == _DEFAULT_VALUES:
        return []
    doubtful = {}
    for name, value, default in zip(SETTINGS, current, _DEFAULT_VALUES, strict=True):
        if value != default:
            value = file_form(value)
            if _PLAIN[name](value) is _DOUBT:
                doubtful[name] = value
    if not doubtful:
        return []
    from conductor_nb.model.schema import check_settings

    return check_settings(doubtful, node_id, dump=False)[1]


# --------------------------------------------------------------- the fast path
# For each setting, a function derived from its declaration that returns the value as the
# pydantic check would (ints become floats where a number is declared), when the value is
# plainly valid, and _DOUBT otherwise. Doubt never refuses: the pydantic model decides, so
# every refusal and its message come from the one check. tests/model/test_settings.py holds
# both to the same answers.

_DOUBT: Any = object()
_read_all = operator.attrgetter(*SETTINGS)
_DEFAULT_VALUES: tuple[Any, ...] = _read_all(NodeSettings())
_MAX_EXACT = 2**53  # larger ints do not all have a float


def _in_bounds(value: float, metadata: Mapping[str, Any]) -> bool:
    ge, gt, le = metadata.get("ge"), metadata.get("gt"), metadata.get("le")
    return (
        (ge is None or value >= ge) and (gt is None or value > gt) and (le is None or value <= le)
    )


def _scalar(hint: Any, metadata: Mapping[str, Any]) -> Callable[[Any], Any]:
    """The plain check of one scalar type (bounds from ``metadata``)."""
    if hint is int:
        return lambda v: v if type(v) is int and _in_bounds(v, metadata) else _DOUBT
    if hint is float:

        def number(v: Any) -> Any:
            kind = type(v)
            if kind is float or (kind is int and -_MAX_EXACT <= v <= _MAX_EXACT):
                return float(v) if _in_bounds(v, metadata) else _DOUBT
            return _DOUBT

        return number
    if hint is bool or hint is str:
        return lambda v: v if type(v) is hint else _DOUBT
    return lambda v: _DOUBT


def _plain_check(hint: Any, metadata: Mapping[str, Any]) -> Callable[[Any], Any]:
    members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    value = next(m for m in members if m is not type(None))
    origin, args = typing.get_origin(value), typing.get_args(value)
    if origin is list:
        item = _scalar(args[0], {})
        whole: Callable[[Any], Any] = lambda v: _items(v, item, None)  # noqa: E731
    elif origin is tuple:
        item = _scalar(args[0], {})
        whole = lambda v: _items(v, item, len(args))  # noqa: E731
    elif origin is dict:
        key, item = _scalar(args[0], {}), _scalar(args[1], {})
        whole = lambda v: _mapping(v, key, item)  # noqa: E731
    else:
        whole = _scalar(value, metadata)
    if type(None) not in members:
        return whole
    return lambda v: None if v is None else whole(v)


def _items(value: Any, item: Callable[[Any], Any], length: int | None) -> Any:
    """A list in file form (a tuple is a list there); ``length``: exactly that many items."""
    if type(value) is not list or (length is not None and len(value) != length):
        return _DOUBT
    out = [item(v) for v in value]
    return _DOUBT if _DOUBT in out else out


def _mapping(value: Any, key: Callable[[Any], Any], item: Callable[[Any], Any]) -> Any:
    if type(value) is not dict:
        return _DOUBT
    out = {key(k): item(v) for k, v in value.items()}
    return _DOUBT if _DOUBT in out or _DOUBT in out.values() else out


_PLAIN: dict[str, Callable[[Any], Any]] = {
    spec.name: _plain_check(typing.get_type_hints(NodeSettings)[spec.name], spec.metadata)
    for spec in dataclasses.fields(NodeSettings)
}
