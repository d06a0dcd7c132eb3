"""Dotted fields of records (``address.city``), and what to say when one is not there.

``transform`` reads a dotted ``field`` of its input and sorts, groups or dedupes by a
dotted ``key`` of each record. A name that matches nothing is almost always a typo,
and reading it as None would silently give wrong data (a sort that changes nothing,
one group of everything, a dedupe that keeps one record), so the messages here list
the fields that are there and the closest one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

ABSENT: Any = object()
"""What :func:`lookup` returns for a field that is not there (None is a value)."""

_NAMES = {
    "str": "a string",
    "int": "an int",
    "float": "a float",
    "bool": "a bool",
    "list": "a list",
    "tuple": "a list",
    "dict": "a mapping",
    "bytes": "bytes",
    "NoneType": "None",
}


class FieldError(LookupError):
    """A dotted field that the data does not have; the message says what it has."""


def kind(value: Any) -> str:
    """``an int``, ``a string``, ``None``: the kind of ``value`` as it reads in a sentence."""
    if isinstance(value, Mapping):
        return "a mapping"
    name = type(value).__name__
    if name in _NAMES:
        return _NAMES[name]
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def lookup(value: Any, dotted: str) -> Any:
    """``value``'s dotted field, or :data:`ABSENT`."""
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return ABSENT
        value = value[part]
    return value


def _fields(value: Mapping[str, Any]) -> str:
    names = [str(k) for k in value]
    shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
    return shown or "none (it is empty)"


def _close(word: str, names: Iterable[Any]) -> str | None:
    close = difflib.get_close_matches(word, [str(n) for n in names], n=1, cutoff=0.6)
    if close:
        return close[0]
    lowered = {str(n).lower(): str(n) for n in names}
    return lowered.get(word.lower())


def where_missing(value: Any, dotted: str, owner: str) -> str:
    """Why ``value`` (called ``owner``, e.g. "the first record") has no field ``dotted``:
    the part that is missing, the fields that are there and the closest one."""
    parts = dotted.split(".")
    for depth, part in enumerate(parts):
        at = owner if depth == 0 else f"{owner}'s {'.'.join(parts[:depth])!r}"
        if isinstance(value, str):
            return f"{at} is a string, not a mapping"
        if not isinstance(value, Mapping):
            return f"{at} is {kind(value)}, not a mapping"
        if part not in value:
            message = f"fields of {at}: {_fields(value)}"
            close = _close(part, value)
            if close is not None:
                fixed = ".".join([*parts[:depth], close, *parts[depth + 1 :]])
                message += f"; did you mean {fixed!r}?"
            return message
        value = value[part]
    return f"{owner} has it"  # not reached for a missing field


def select(value: Any, dotted: str) -> Any:
    """The input's dotted ``field`` (``transform``'s ``field`` param), or a FieldError."""
    found = lookup(value, dotted)
    if found is not ABSENT:
        return found
    if value is None:
        raise FieldError(
            f"field {dotted!r}: the input is None (nothing connected, or None from "
            "upstream), so it has no fields"
        )
    if isinstance(value, str):
        raise FieldError(
            f"field {dotted!r}: the input is a string, not a mapping; if it is JSON text "
            "(e.g. an http-request body that was not served as JSON), parse it first, e.g. "
            "response: json on the http-request node"
        )
    if isinstance(value, list | tuple):
        raise FieldError(
            f"field {dotted!r}: the input is a list, not a mapping; leave field empty to "
            "work on the list itself"
        )
    if not isinstance(value, Mapping):
        raise FieldError(f"field {dotted!r}: the input is {kind(value)}, not a mapping")
    raise FieldError(
        f"field {dotted!r}: the input has no field {dotted!r}; "
        + where_missing(value, dotted, "the input")
    )


def check_key(items: list[Any], key: str, operation: str) -> None:
    """Fail when no item has ``key``: a typo, which would otherwise sort, group or dedupe
    every item as None. Items that lack it while others have it keep None (see
    ``transform``): optional fields are common in real records."""
    if not items or any(lookup(item, key) is not ABSENT for item in items):
        return
    first = next((item for item in items if isinstance(item, Mapping)), None)
    where = f"{operation} by key {key!r}"
    if first is None:
        verb = "dedupe" if operation == "unique" else operation
        raise FieldError(
            f"{where}: no item has field {key!r}: the items are not records (the first is "
            f"{kind(items[0])}: {items[0]!r:.60}); leave key empty to {verb} by the "
            "items themselves, or give an expression"
        )
    raise FieldError(
        f"{where}: no record has field {key!r}; " + where_missing(first, key, "the first record")
    )
