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

import functools
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


# ------------------------------------------------------------- notebooks: papermill's meaning

PAPERMILL_PATHS = ("PAPERMILL_INPUT_PATH", "PAPERMILL_OUTPUT_PATH")
"""What ``--inject-paths`` adds; never "undeclared", whatever the notebook declares."""


def papermill_value(raw: str) -> Any:
    """What papermill makes of ``-p NAME VALUE``: ``True``/``False``/``None``, an int, a
    float, else the text exactly as given (``'"Hello"'`` keeps its quotes)."""
    if raw in ("True", "False"):
        return raw == "True"
    if raw == "None":
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def notebook_value(raw: str, type_name: str) -> tuple[Any, str | None]:
    """A ``-p`` value for a notebook parameter whose default has type ``type_name``, and
    why it does not fit that type (None when it fits).

    papermill's value (:func:`papermill_value`) is used unless the text reads as the
    declared type, which papermill alone would get wrong: ``-p word 7`` for
    ``word = 'a'`` is ``'7'``, ``-p flag yes`` for ``flag = False`` is True, ``-p
    'names=[Ada, Bo]'`` for ``names = []`` is a list (JSON or YAML flow). Anything else
    is papermill's value, with the mismatch said.
    """
    if raw == "None" or (type_name not in _LABELS and type_name not in ("str", "path")):
        return papermill_value(raw), None
    try:
        return parse_value(raw, type_name), None
    except ParamValueError:
        value = papermill_value(raw)
        return value, check_type(type_name, value) or f"expected {_LABELS[type_name]}"


def merge_yaml_sources(
    *, files: Iterable[str] = (), yaml_texts: Iterable[str] = (), base64_texts: Iterable[str] = ()
) -> dict[str, Any]:
    """papermill's ``-b`` (base64 YAML), ``-f`` (YAML/JSON file) and ``-y`` (YAML text)
    values, merged in papermill's order: later sources win. YAML dates stay text, as
    papermill keeps them (its loader does not make dates)."""
    import base64
    import binascii

    merged: dict[str, Any] = {}
    for text in base64_texts:
        try:
            decoded = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ParamValueError(f"-b {text[:40]!r}: not base64-encoded UTF-8 ({exc})") from None
        merged.update(_yaml_mapping(decoded, f"-b {text[:40]!r}"))
    for path in files:
        merged.update(_params_file(path))
    for text in yaml_texts:
        merged.update(_yaml_mapping(text, f"-y {text[:40]!r}"))
    return merged


def _params_file(path: str) -> dict[str, Any]:
    if Path(path).suffix == ".json":
        return load_params_file(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ParamValueError(f"-f {path!r}: cannot read it ({exc.strerror})") from None
    return _yaml_mapping(text, f"-f {path!r}")


def _yaml_mapping(text: str, where: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.load(text, Loader=_no_dates_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ParamValueError(f"{where}: not valid YAML: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamValueError(
            f"{where}: expected a mapping of parameter names to values, got a {type(data).__name__}"
        )
    return {str(k): v for k, v in data.items()}


@functools.cache
def _no_dates_loader() -> type:
    import yaml

    class NoDates(yaml.SafeLoader):
        """SafeLoader that reads ``2026-11-24`` as text, as papermill's loader does."""

    NoDates.yaml_implicit_resolvers = {
        key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return NoDates


def notebook_assignments(
    declared: Mapping[str, str] | None,
    *,
    base: Mapping[str, Any] | None = None,
    assignments: Iterable[str] = (),
    raw: Iterable[tuple[str, str]] = (),
    owner: str = "the notebook",
) -> tuple[dict[str, Any], list[Problem]]:
    """A notebook's parameters, as papermill would inject them, and what is odd about them.

    ``declared`` maps the names the ``parameters`` cell declares to the types of their
    defaults (None: the cell cannot be read, so no name is odd). ``base`` holds the
    ``-b``/``-f``/``-y`` values, ``assignments`` the ``-p NAME=VALUE`` texts (typed by
    :func:`notebook_value`), ``raw`` the ``-r NAME VALUE`` strings, later ones winning as
    in papermill. The problems (an undeclared name, a value that does not fit its
    declared type, a ``-p`` without ``=``) are warnings for the caller, or errors under
    ``--strict``; every value is kept either way.
    """
    known = dict(declared or {})
    listed = ", ".join(sorted(known)) or "none"
    hint = f"declared params (in its `parameters` cell): {listed}"
    values: dict[str, Any] = {}
    problems: list[Problem] = []

    def put(name: str, value: Any, where: str, why: str | None) -> None:
        values[name] = value
        if declared is not None and name not in known and name not in PAPERMILL_PATHS:
            problems.append(_unknown(name, owner, hint, known, where))
        elif why:
            problems.append(Problem(where, f"param {name!r} ({known[name]}): {why}"))

    for name, value in (base or {}).items():
        put(name, value, f"parameter {name}", check_type(known.get(name, "any"), value))
    for text in assignments:
        try:
            name, text_value = split_assignment(text)
        except ParamValueError as exc:
            problems.append(Problem(f"-p {shlex.quote(text)}", str(exc)))
            continue
        value, why = notebook_value(text_value, known.get(name, "any"))
        put(name, value, f"-p {name}={text_value}", why)
    for name, text_value in raw:
        put(
            name,
            text_value,
            f"-r {name} {text_value}",
            check_type(known.get(name, "any"), text_value),
        )
    return values, problems
