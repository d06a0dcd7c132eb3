"""Command-line parameters: ``-p key=value`` typed by what the blueprint (or notebook) declares.

A value is parsed by its declared type: ``int``, ``float``/``number``, ``bool``
(true/false, yes/no, on/off, 1/0); ``list`` and ``dict`` as JSON or in YAML flow
syntax, as in blueprints and params files (``-p 'names=[Ada, Bo]'``,
``-p 'opts={depth: 2}'``); ``str``, ``path`` and ``code`` are taken verbatim. An undeclared
type (``any``) is read as JSON when it parses (a ``[...]`` or ``{...}`` as YAML flow)
and as a string otherwise, so ``-p x=3`` is 3 and ``-p x=abc`` is ``'abc'``.
``--params-file`` gives a YAML or JSON mapping whose values are already typed;
``-p`` overrides it. Every bad value is collected and reported at once, located as
``-p NAME=VALUE``, with an example for lists and mappings.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from conductor_nb.errors import BlueprintError, Problem
from conductor_nb.model.types import check_type

_TRUE = {"true", "yes", "on", "1", "y", "t"}
_FALSE = {"false", "no", "off", "0", "n", "f"}
_LABELS = {
    "int": "an integer",
    "float": "a number",
    "number": "a number",
    "bool": "true or false",
    "list": "a list",
    "dict": "a mapping",
}
_EXAMPLES = {"list": "-p '{name}=[a, b, 3]'", "dict": "-p '{name}={{key: value, n: 2}}'"}


class ParamValueError(ValueError):
    """One ``-p`` value that does not fit its declared type."""


def split_assignment(text: str) -> tuple[str, str]:
    """``"key=value"`` -> ``("key", "value")``; the value may contain ``=``. The error
    message says what is wrong, not where: the caller locates it (``-p TEXT``)."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ParamValueError("expected KEY=VALUE, e.g. -p date=2026-11-24")
    return key, value


def parse_value(raw: str, type_name: str) -> Any:
    """Parse ``raw`` as the param type ``type_name``; ParamValueError says why it does not fit."""
    if type_name in ("str", "path", "code"):
        return raw
    if type_name == "bool":
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ParamValueError(f"expected true or false, got {raw!r}")
    if type_name == "int":
        try:
            return int(raw.strip())
        except ValueError:
            raise ParamValueError(f"expected an integer, got {raw!r}") from None
    if type_name in ("float", "number"):
        return _number(raw, type_name)
    if type_name in ("list", "dict"):
        return _yaml_of_kind(raw, type_name)
    return _loose(raw)


def _number(raw: str, type_name: str) -> float | int:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if isinstance(value, int) and not isinstance(value, bool) and type_name == "number":
        return value
    try:
        return float(raw.strip())
    except ValueError:
        raise ParamValueError(f"expected a number, got {raw!r}") from None


def _yaml_of_kind(raw: str, type_name: str) -> Any:
    """A list or mapping written as JSON or, failing that, in YAML flow syntax."""
    import yaml

    try:
        value = json.loads(raw)
    except ValueError:
        pass
    else:
        if not check_type(type_name, value):
            return value
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        why = getattr(exc, "problem", None) or type(exc).__name__
        raise ParamValueError(
            f"expected {_LABELS[type_name]}, got {raw!r} (not valid YAML: {why})"
        ) from None
    if check_type(type_name, value):
        raise ParamValueError(f"expected {_LABELS[type_name]}, got {raw!r}")
    return value


def _loose(raw: str) -> Any:
    """Untyped: JSON when it parses (numbers, true/false, null, lists...), else the string."""
    if raw in ("True", "False"):
        return raw == "True"
    if raw == "None":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        pass
    if raw.strip()[:1] in ("[", "{"):
        import yaml

        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            return raw
        if isinstance(value, list | dict):
            return value
    return raw


def load_params_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON mapping of param values (``--params-file``)."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamValueError(
            f"--params-file {str(path)!r}: cannot read it ({exc.strerror})"
        ) from None
    try:
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ParamValueError(
            f"--params-file {str(path)!r}: not valid YAML/JSON: {first}"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamValueError(
            f"--params-file {str(path)!r}: expected a mapping of param names to values, "
            f"got a {type(data).__name__}"
        )
    return {str(k): v for k, v in data.items()}


def typed_params(
    assignments: Iterable[str],
    declared: Mapping[str, str],
    *,
    base: Mapping[str, Any] | None = None,
    owner: str = "the blueprint",
    strict: bool = True,
    declared_in: str = "",
) -> dict[str, Any]:
    """Merge ``base`` (a params file) and ``-p`` assignments, typed by ``declared`` types.

    With ``strict``, names that are not declared are problems too, with a hint listing
    the declared ones (``declared_in`` says where they are declared). Raises
    :class:`BlueprintError` listing every problem.
    """
    values: dict[str, Any] = dict(base or {})
    problems: list[Problem] = []
    listed = ", ".join(sorted(declared)) or "none"
    known = f"declared params{f' ({declared_in})' if declared_in else ''}: {listed}"
    for name, value in list(values.items()):
        if strict and name not in declared:
            problems.append(_unknown(name, owner, known, declared, "--params-file"))
            continue
        why = check_type(declared.get(name, "any"), value)
        if why:
            problems.append(Problem(f"--params-file: {name}", why))
    for text in assignments:
        try:
            name, raw = split_assignment(text)
        except ParamValueError as exc:
            problems.append(Problem(f"-p {shlex.quote(text)}", str(exc)))
            continue
        if strict and name not in declared:
            problems.append(_unknown(name, owner, known, declared, f"-p {name}"))
            continue
        type_name = declared.get(name, "any")
        try:
            values[name] = parse_value(raw, type_name)
        except ParamValueError as exc:
            example = _EXAMPLES.get(type_name)
            hints = (
                (f"e.g. {example.format(name=name)} (YAML flow syntax, or JSON)",)
                if example
                else ()
            )
            problems.append(
                Problem(f"-p {name}={raw}", f"param {name!r} ({type_name}): {exc}", hints)
            )
    if problems:
        raise BlueprintError(problems)
    return values


def _unknown(name: str, owner: str, known: str, declared: Mapping[str, str], where: str) -> Problem:
    import difflib

    hints = [known]
    close = difflib.get_close_matches(name, list(declared), n=1)
    if close:
        hints.insert(0, f"did you mean {close[0]!r}?")
    return Problem(where, f"{owner} has no param {name!r}", tuple(hints))
