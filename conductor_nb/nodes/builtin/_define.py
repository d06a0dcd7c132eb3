"""Declaring built-in node types: one call per type, with the conventions they share.

Every built-in has an optional ``input`` port (any data) and an ``output`` port;
type-specific ports come after them. Container types (loop, parallel, group)
hold a sub-blueprint in a *raw* param: it is validated and described like any
other param, but the engine does not render its templates with the outer
node's context, because they belong to the sub-blueprint's own run.

A type may also render some of its ordinary params itself (``edit-fields``
renders ``values`` once per record, with ``item`` and ``index``): ``define(...,
self_rendered=[name])`` has the engine pass them as written, and the type's
``validate`` checks their templates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from conductor_nb.model.types import MISSING, NodeType, OutputMode, ParamField, Port
from conductor_nb.nodes.builtin import _bodies

Validator = Callable[[Mapping[str, Any]], list[tuple[str, str]]]


@dataclass(eq=False)
class BuiltinNodeType(NodeType):
    """A NodeType whose ``raw`` params reach the function unrendered (read via the context)."""

    raw: tuple[ParamField, ...] = ()

    def param(self, name: str) -> ParamField | None:
        found = super().param(name)
        return found or next((p for p in self.raw if p.name == name), None)

    @property
    def value_names(self) -> list[str]:
        return [p.name for p in (*self.params, *self.raw)] + [p.name for p in self.inputs]

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["params"] = [p.describe() for p in (*self.params, *self.raw)]
        return info

    def params_schema(self) -> dict[str, Any]:
        schema = super().params_schema()
        for field in self.raw:
            schema["properties"][field.name] = {"type": "object", "description": field.description}
        return schema


def define(
    name: str,
    fn: Callable[..., Any],
    *,
    category: str,
    description: str,
    inputs: Sequence[Port] = (),
    outputs: Sequence[Port] = (),
    params: Sequence[ParamField] = (),
    raw: Sequence[ParamField] = (),
    self_rendered: Sequence[str] = (),
    example: Mapping[str, Any] | None = None,
    validate: Validator | None = None,
    takes_context: bool = False,
    output_type: str = "any",
    output_mode: OutputMode = "single",
    beside_engine: bool = False,
    side_effects: bool = False,
) -> BuiltinNodeType:
    """A built-in node type with the shared ``input``/``output`` ports.

    ``beside_engine``: the type steers the run and runs on the engine's loop whatever the
    executor; so do types with raw or self-rendered params (they read the live node).
    ``side_effects``: the type changes the world outside the run (see NodeType.side_effects).
    """
    unknown = set(self_rendered) - {p.name for p in params}
    if unknown:
        raise ValueError(f"{name}: self_rendered names no param: {', '.join(sorted(unknown))}")
    ports = (Port("input", default=None, description="any data (optional)"), *inputs)
    outs = (Port("output", type=output_type), *outputs)
    return BuiltinNodeType(
        name=name,
        fn=fn,
        inputs=ports,
        outputs=outs,
        params=tuple(params),
        raw=tuple(raw),
        raw_params=(*(p.name for p in raw), *self_rendered),
        description=description,
        category=category,
        examples=(dict(example),) if example else (),
        context_arg="ctx" if takes_context else None,
        validate_params=validate,
        check_nested=_bodies.nested_check(tuple(p.name for p in raw)) if raw else None,
        output_mode=output_mode,
        runs_beside_engine=beside_engine or bool(raw) or bool(self_rendered),
        side_effects=side_effects,
    )


def param(
    name: str,
    type: str = "any",
    default: Any = MISSING,
    description: str = "",
    *,
    choices: Iterable[Any] = (),
    required: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    names: Iterable[str] = (),
) -> ParamField:
    """A ParamField, shorter to write in tables of params."""
    return ParamField(
        name,
        type,
        default=default,
        required=required,
        choices=tuple(choices),
        description=description,
        minimum=minimum,
        maximum=maximum,
        names=tuple(names),
    )


def raw_value(ctx: Any, name: str, given: Any = None) -> Any:
    """A raw param's value: the one given (a pinned rerun) or the node's unrendered param."""
    if given is not None:
        return given
    node = getattr(ctx, "node", None)
    return getattr(node, "params", {}).get(name)


def is_given_empty(values: Mapping[str, Any], name: str) -> bool:
    """``name`` is given but empty (None or ``""``).

    A required param that is missing altogether is reported by the blueprint validator
    ("required param 'path' ... is missing"); a type's ``validate`` reports only the empty
    value it was given, so each problem is reported once.
    """
    return name in values and values[name] in (None, "")
