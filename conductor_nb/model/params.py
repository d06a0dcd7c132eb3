"""Blueprint params: their declarations, a run's values, and the scope of a body.

A blueprint declares its params (:class:`ParamSpec`: default, type, description,
required). A run gets values for them (:func:`resolve_params`): the given ones,
checked against the declared types, then the defaults; a name the blueprint does
not declare is refused with a did-you-mean, before anything runs.

Scoping (DESIGN.md "Scoping of params in bodies"): a ``loop``, ``parallel`` or
``group`` body runs with :func:`body_values`, which are, later ones winning:

1. the outer run's values (read-only: the body gets a copy), so ``-p`` reaches inside;
2. the body's own declared params: a default that is a template is rendered over
   the outer values and what the container passes (``"{{ params.api }}"``), a
   plain default shadows an outer value of the same name, and a param declared
   without a default takes the outer value of its name;
3. what the container passes: ``item``, ``index`` and ``input`` (loop, parallel),
   or a group's ``params`` and ``input``.

Nested bodies chain: a body's values are the outer scope of the bodies inside it.
Validation checks every body against the same scope (names only, as values are
known at run time), so a misspelt name anywhere is caught before a run starts.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conductor_nb.errors import BlueprintError, Problem, problem
from conductor_nb.model import templates
from conductor_nb.model.types import check_type

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

SPEC_KEYS = frozenset({"default", "type", "description", "required"})


@dataclass
class ParamSpec:
    """A blueprint-level parameter: default value, type name and description."""

    default: Any = None
    type: str = "any"
    description: str = ""
    required: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"default": self.default, "type": self.type}
        if self.description:
            out["description"] = self.description
        if self.required:
            out["required"] = True
        return out

    @classmethod
    def coerce(cls, value: Any) -> ParamSpec:
        """``{"default": .., "type": ..}`` is a spec; any other value is a default."""
        if isinstance(value, ParamSpec):
            return value
        if is_spec(value):
            type_name = value.get("type") or infer_type(value.get("default"))
            return cls(
                value.get("default"),
                str(type_name),
                str(value.get("description", "")),
                bool(value.get("required", False)),
            )
        return cls(default=value, type=infer_type(value))


def is_spec(value: Any) -> bool:
    """Whether a declared value is a spec mapping (``{default: .., type: ..}``), not a default."""
    return (
        isinstance(value, Mapping)
        and bool(value)
        and set(value) <= SPEC_KEYS
        and ("default" in value or "type" in value)
    )


def infer_type(value: Any) -> str:
    for kind, name in (
        (bool, "bool"),
        (int, "int"),
        (float, "float"),
        (str, "str"),
        (list, "list"),
        (dict, "dict"),
    ):
        if isinstance(value, kind):
            return name
    return "any"


def did_you_mean(word: str, options: Iterable[str]) -> list[str]:
    """``["hint: did you mean 'factor'?"]`` when a close name exists, else ``[]``."""
    close = difflib.get_close_matches(word, list(options), n=2, cutoff=0.5)
    return [f"hint: did you mean {' or '.join(map(repr, close))}?"] if close else []


# ------------------------------------------------------------------ a run's values
def resolve_params(bp: Blueprint, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's param values: the given ones (checked against the declared types), then
    defaults. Every problem (unknown, missing, mistyped) is reported at once."""
    given = dict(given or {})
    declared = ", ".join(sorted(bp.params)) or "none"
    problems = [
        problem(
            f"params.{k}",
            f"blueprint {bp.id!r} has no param {k!r}",
            *did_you_mean(k, bp.params),
            f"declared params: {declared}",
        )
        for k in given
        if k not in bp.params
    ]
    values = {}
    for name, spec in bp.params.items():
        if name in given:
            values[name] = given[name]
            mismatch = _type_mismatch(spec.type, given[name])
            if mismatch:
                problems.append(
                    problem(
                        f"params.{name}",
                        f"param {name!r} is declared {spec.type}: {mismatch}",
                        f"fix: pass a value of type {spec.type} (the CLI converts -p text; "
                        "Python does not)",
                    )
                )
        elif spec.required and spec.default is None:
            problems.append(_required(name, spec))
        else:
            values[name] = spec.default
    if problems:
        raise BlueprintError(problems, name=bp.id, source=bp.source)
    return values


def _required(name: str, spec: ParamSpec) -> Problem:
    detail = f" ({spec.description})" if spec.description else ""
    return problem(f"params.{name}", f"param {name!r} is required{detail}")


def _type_mismatch(type_name: str, value: Any) -> str | None:
    if type_name in ("str", "path") and isinstance(value, os.PathLike):
        return None  # a Path for a path param: templates render it as text
    return check_type(type_name, value)


# ------------------------------------------------------------------ bodies
def body_values(
    declared: Mapping[str, Any],
    outer: Mapping[str, Any],
    passed: Mapping[str, Any],
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The values a body run sees (see the module docstring): ``outer`` values, then the
    body's ``declared`` params, then ``passed``. ``context`` holds the other template
    names (``run``, ``now``) for defaults that are templates."""
    visible = {**outer, **passed}
    own: dict[str, Any] = {}
    for name, value in declared.items():
        if name in passed:
            continue
        default = ParamSpec.coerce(value).default
        if templates.has_template(default):
            names = {**(context or {}), "params": visible}
            try:
                own[name] = templates.render_value(default, names)
            except templates.TemplateError as exc:
                raise templates.TemplateError(f"body param {name!r}: {exc}") from None
        elif default is not None or name not in outer:
            own[name] = default
    return {**outer, **own, **passed}


def untemplated(declared: Mapping[str, Any]) -> dict[str, Any]:
    """A body's declarations with template defaults taken out (their values are passed in
    by :func:`body_values`), so the body document checks as a plain blueprint."""
    out: dict[str, Any] = {}
    for name, value in declared.items():
        spec = ParamSpec.coerce(value)
        if templates.has_template(spec.default):
            spec = ParamSpec(None, spec.type, spec.description)
        out[name] = spec.to_dict()
    return out


def scope_problems(
    declared: Mapping[str, Any], outer: Mapping[str, ParamSpec], passed: Iterable[str]
) -> list[Problem]:
    """Template defaults of a body's params that read names the body cannot see
    (paths relative to the body: ``params.api.default``)."""
    visible = {*outer, *passed}
    found = []
    for name, value in declared.items():
        default = ParamSpec.coerce(value).default
        for text in templates.strings_in(default):
            reads = templates.template_reads(text) if templates.has_template(text) else None
            for missing in sorted((reads.params if reads else set()) - visible):
                found.append(
                    problem(
                        f"params.{name}.default",
                        f"the default reads params.{missing}, which the outer run does not have",
                        *did_you_mean(missing, visible),
                        f"params outside this body: {', '.join(sorted(visible)) or 'none'}",
                    )
                )
    return found
