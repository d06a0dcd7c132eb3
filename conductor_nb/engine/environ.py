"""Environment variables exposed to templates (``{{ env.NAME }}``), and the secrets they are.

A run sees no environment by default. It exposes chosen variables by name: the
blueprint's own ``env: [NAME, ...]`` list, plus the run option ``env=[...]``
(``conductor-nb run --env NAME``); ``env=True`` exposes all of ``os.environ``
(Python only). Before anything runs, every ``{{ env.NAME }}`` in the blueprint
(bodies of loops and groups included) must be exposed, and every exposed name
must be set: each miss is a problem located at the node's param, with the fix.

The values of exposed variables are secrets: the run masks them as ``***`` in
what it records and shows (node inputs, outputs as published, logs, errors,
tracebacks); the node functions get the real values. Values shorter than four
characters are not masked (they would garble every other text).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from conductor_nb.errors import Problem, problem
from conductor_nb.model import templates

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

MIN_MASKED = 4

EnvOption = bool | tuple[str, ...]


def exposed(bp: Blueprint, option: bool | Sequence[str]) -> EnvOption:
    """The run's ``env`` option with the blueprint's declared names added: True (all of
    the environment), or the sorted names exposed (empty: none)."""
    if option is True:
        return True
    names = set(getattr(bp, "env", None) or ())
    if option and not isinstance(option, bool):
        names |= {str(n) for n in option}
    return tuple(sorted(names))


def variables(option: EnvOption) -> Mapping[str, str] | None:
    """What ``env`` holds in templates, or None when nothing is exposed (``env`` is then
    undefined, as before)."""
    if option is True:
        return os.environ
    if not option:
        return None
    return {name: os.environ[name] for name in option if name in os.environ}


def secret_values(option: EnvOption, read: set[str]) -> list[str]:
    """The values to mask, longest first: every exposed variable, or with ``env=True`` the
    ones the templates read (``read``)."""
    names = read if option is True else set(option or ())
    values = {os.environ[n] for n in names if len(os.environ.get(n, "")) >= MIN_MASKED}
    return sorted(values, key=len, reverse=True)


def holds(value: Any, secrets: Sequence[str]) -> bool:
    """Whether a (nested) value's strings hold any of ``secrets``."""
    return any(s in text for text in templates.strings_in(value) for s in secrets)


def read_names(params: Mapping[str, Any]) -> set[str]:
    """Names read as ``env.NAME`` by the templates in a node's params (bodies included)."""
    names: set[str] = set()
    for text in templates.strings_in(params):
        if "env" in text:
            names |= templates.referenced_names(text, "env")
    return names


def _reads(bp: Blueprint) -> Iterator[tuple[str, str, str]]:
    """(node id, param key, variable name) for every ``env.NAME`` a template reads."""
    for node_id, node in bp.nodes.items():
        for key, value in node.params.items():
            for name in sorted(read_names({key: value})):
                yield node_id, key, name


def problems(bp: Blueprint, option: bool | Sequence[str]) -> list[Problem]:
    """``{{ env.NAME }}`` not exposed, and exposed names not set in the environment."""
    if option is True:
        return []
    names = set(option or ())
    found = [
        problem(
            f"nodes.{node_id}.params.{key}",
            f"template reads env.{name}, which this run does not expose",
            f"fix: declare it in the blueprint (env: [{name}]), pass --env {name} on the "
            f"command line, or run with env=[{name!r}] in Python",
        )
        for node_id, key, name in _reads(bp)
        if name not in names
    ]
    found += [
        problem(
            "env",
            f"environment variable {name} is exposed to templates but not set",
            f"fix: export {name}=... before the run",
        )
        for name in sorted(names)
        if name not in os.environ
    ]
    return found
