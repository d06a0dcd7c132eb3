"""The structure of a blueprint file, as pydantic models: checked on load, exported as JSON Schema.

These models check shape and types only (``retries`` is an integer >= 0, ``nodes``
is a mapping of ids...). Meaning (edges name real ports, no cycles, params fit
their node type) is checked by :mod:`.validate` against a registry.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
)

from conductor_nb.errors import Problem
from conductor_nb.model.params import is_spec
from conductor_nb.model.settings import BOUNDS, SETTINGS, NodeSettings, expected

NodeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")]
Endpoint = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*\.[A-Za-z_]\w*$")]
MAX_NODES = 100_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ParamDoc(_Strict):
    """A blueprint parameter: a default with a type and a description."""

    default: Any = None
    type: Literal["any", "str", "int", "float", "bool", "list", "dict", "number", "path"] = "any"
    description: str = ""
    required: bool = False


def _file_type(hint: Any) -> Any:
    """A setting's type as files hold it: a fixed-size tuple is a list of that length."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple and args and Ellipsis not in args:
        return Annotated[list[args[0]], Field(min_length=len(args), max_length=len(args))]  # type: ignore[valid-type]
    return hint


def _setting_field(spec: dataclasses.Field[Any], hint: Any) -> tuple[Any, Any]:
    """One NodeSettings field as a pydantic field: its file type, bounds, default, text."""
    bounds = {key: spec.metadata[key] for key in BOUNDS if key in spec.metadata}
    members = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    value_type = _file_type(next(m for m in members if m is not type(None)))
    if bounds:
        value_type = Annotated[value_type, Field(**bounds)]
    annotation = value_type | None if type(None) in members else value_type
    text = spec.metadata.get("description", "")
    if spec.default_factory is not dataclasses.MISSING:
        return annotation, Field(default_factory=spec.default_factory, description=text)
    return annotation, Field(default=spec.default, description=text)


def _settings_fields() -> dict[str, Any]:
    hints = typing.get_type_hints(NodeSettings)
    return {f.name: _setting_field(f, hints[f.name]) for f in dataclasses.fields(NodeSettings)}


if TYPE_CHECKING:
    SettingsDoc = _Strict
else:
    SettingsDoc = create_model(
        "SettingsDoc",
        __base__=_Strict,
        __doc__="Node settings, made from the one declaration (model.settings.NodeSettings).",
        **_settings_fields(),
    )


class NodeDoc(SettingsDoc):
    """One node: its type, pinned version, param/input values and settings."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    version: Annotated[int, Field(ge=1)] | None = None
    params: dict[str, Any] = Field(default_factory=dict)


class EdgeDoc(_Strict):
    """An edge in long form (the short form is the string ``"a.out -> b.in"``)."""

    source: Endpoint
    target: Endpoint


class BlueprintDoc(_Strict):
    """A conductor_nb blueprint (format version 1)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"$id": "https://conductor-nb/schema/blueprint-1.json"},
    )

    conductor: Literal[1] = 1
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
    name: str | None = None
    description: str | None = None
    params: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]\w*$")], ParamDoc | Any] = (
        Field(default_factory=dict)
    )
    nodes: Annotated[dict[NodeId, NodeDoc], Field(max_length=MAX_NODES)] = Field(
        default_factory=dict
    )
    edges: list[Annotated[str, StringConstraints(pattern=r"->")] | EdgeDoc] = Field(
        default_factory=list
    )
    outputs: dict[str, Endpoint] = Field(default_factory=dict)
    env: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = Field(
        default_factory=list,
        description="environment variables exposed to templates as {{ env.NAME }}; their "
        "values are masked in history, logs and reports",
    )


def json_schema() -> dict[str, Any]:
    schema = BlueprintDoc.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "conductor_nb blueprint"
    return schema


_FRIENDLY = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "extra_forbidden": "unknown field",
    "missing": "required field is missing",
}


def check_structure(data: Any) -> tuple[BlueprintDoc | None, list[Problem]]:
    """Validate the shape of the document; return the model or every structural problem."""
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        return None, [
            Problem("", f"a blueprint is a mapping with 'id' and 'nodes'; this document is {kind}")
        ]
    version = data.get("conductor", 1)
    if isinstance(version, int) and not isinstance(version, bool) and version > 1:
        return None, [
            Problem(
                "conductor",
                f"this file uses format version {version}, but this "
                "conductor_nb reads version 1 only",
                ("fix: upgrade conductor_nb (pip install -U conductor-nb)",),
            )
        ]
    try:
        return BlueprintDoc.model_validate(_sanitise(data)), []
    except ValidationError as exc:
        return None, _one_per_place([_problem(err) for err in exc.errors(include_url=False)])


def _one_per_place(problems: list[Problem]) -> list[Problem]:
    """An edge may be a string or a mapping: pydantic reports both ways of failing at the
    same path; keep the first (the string form's message), not one per union member."""
    seen: set[str] = set()
    kept = []
    for found in problems:
        if found.path.startswith("edges[") and found.path in seen:
            continue
        seen.add(found.path)
        kept.append(found)
    return kept


def _sanitise(data: dict[str, Any]) -> dict[str, Any]:
    """Params may be plain defaults: turn them into ParamDoc mappings before validation."""
    params = data.get("params")
    if isinstance(params, dict):
        fixed = {k: v if is_spec(v) else {"default": v} for k, v in params.items()}
        data = {**data, "params": fixed}
    return data


def check_settings(
    values: Mapping[str, Any], node_id: str, *, dump: bool = True
) -> tuple[dict[str, Any], list[Problem]]:
    """Node settings in file form, checked by the same model as a file's nodes: the
    values as checked (unless ``dump`` is false: validation needs only the problems), or
    every problem, located and worded as on load."""
    try:
        checked = SettingsDoc.model_validate(values)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        return {}, [_problem({**err, "loc": ("nodes", node_id, *err["loc"])}) for err in errors]
    return (checked.model_dump(exclude_unset=True) if dump else {}), []


def _problem(err: Any) -> Problem:
    loc = [
        part
        for part in err["loc"]
        if part not in ("str", "EdgeDoc", "ParamDoc", "function-after[...]")
    ]
    loc = [
        p
        for p in loc
        if not (
            isinstance(p, str)
            and (p.startswith("constrained-str") or p == "Any" or p.startswith("`"))
        )
    ]
    path = ""
    for part in loc:
        path = (
            f"{path}[{part}]"
            if isinstance(part, int)
            else (f"{path}.{part}" if path else str(part))
        )
    kind = err["type"]
    message = _FRIENDLY.get(kind) or err["msg"][0].lower() + err["msg"][1:]
    hints: tuple[str, ...] = ()
    if _is_setting(loc) and kind not in ("missing", "extra_forbidden"):
        message = f"expected {expected(loc[2])}"  # worded from the setting's declaration
    elif kind == "extra_forbidden":
        message = f"unknown field {loc[-1]!r}" if loc else message
        hints = _field_hints(loc)
    elif kind == "string_pattern_mismatch":
        message = _pattern_message(path)
    elif kind in (
        "greater_than_equal",
        "less_than_equal",
        "greater_than",
        "too_short",
        "too_long",
        "literal_error",
    ):
        message = err["msg"][0].lower() + err["msg"][1:]
    if "input" in err and kind not in ("missing", "extra_forbidden"):
        message += f", got {_short(err['input'])}"
    return Problem(path, message, hints)


def _is_setting(loc: list[Any]) -> bool:
    """``nodes.<id>.<setting>`` (not a field inside a setting's list or mapping)."""
    return len(loc) == 3 and loc[0] == "nodes" and loc[2] in SETTINGS


def _field_hints(loc: list[Any]) -> tuple[str, ...]:
    """'did you mean' for a misspelt field of a node, an edge or the document."""
    if not loc or not isinstance(loc[-1], str):
        return ()
    if loc[0] == "nodes" and len(loc) == 3:
        model: type[BaseModel] = NodeDoc
    elif loc[0] == "edges":
        model = EdgeDoc
    elif len(loc) == 1:
        model = BlueprintDoc
    else:
        return ()
    fields = list(model.model_fields)
    close = difflib.get_close_matches(loc[-1], fields, n=1, cutoff=0.6)
    if close:
        return (f"hint: did you mean {close[0]!r}?",)
    return (f"fields here: {', '.join(fields)}",)


def _pattern_message(path: str) -> str:
    if path.startswith("edges"):
        return "expected an edge 'source.port -> target.port'"
    if path.startswith("outputs"):
        return "expected 'node.port'"
    if path.startswith("nodes"):
        return (
            "node ids are identifiers: letters, digits, '_' or '-', starting with a letter "
            "or '_', at most 64 characters"
        )
    return "invalid name"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
