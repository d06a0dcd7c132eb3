"""Reading and writing blueprint files: YAML and JSON through one typed path.

``parse_text`` turns text into plain data plus a map from dotted paths
(``nodes.write.params.path``) to (line, column), so every problem can say where it
is. YAML is composed with PyYAML's safe loader and walked by hand: duplicate
keys are errors (not silent overwrites), ``!!python/...`` tags are refused, and
size and nesting depth are bounded (a clear error, never RecursionError).

``build`` checks the structure with the pydantic model in :mod:`.schema`,
then builds a :class:`Blueprint` and runs the semantic checks of :mod:`.validate`.
Loading never imports, executes or opens anything named in the document.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from conductor_nb.errors import BlueprintError, Problem, ProblemList
from conductor_nb.model import atomiton
from conductor_nb.model.types import Registry

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

B = TypeVar("B", bound="Blueprint")
MAX_BYTES = 20_000_000
MAX_DEPTH = 40
Locations = dict[str, tuple[int, int]]


def join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class _Walker:
    """Turns a composed YAML node tree into Python data, recording where each path is."""

    def __init__(self, problems: ProblemList) -> None:
        self.problems = problems
        self.locations: Locations = {}
        self.constructor = yaml.SafeLoader("")

    def walk(self, node: yaml.Node, path: str, depth: int) -> Any:
        self.locations.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if depth > MAX_DEPTH:
            self._add(path, node, f"nested more than {MAX_DEPTH} levels deep; flatten the value")
            return None
        if node.tag.startswith("tag:yaml.org,2002:python/") or node.tag.startswith("!"):
            self._add(
                path,
                node,
                f"the YAML tag {node.tag!r} is not allowed: blueprints hold "
                "plain data only (strings, numbers, lists, mappings)",
            )
            return None
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, join(path, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            return self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self._add(path, node, f"cannot read this value: {exc}")
            return None

    def _mapping(self, node: yaml.MappingNode, path: str, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self._add(
                    path, key_node, "YAML merge keys ('<<') are not supported; write the keys out"
                )
                continue
            key = self.walk(key_node, path, depth + 1)
            if not isinstance(key, str | int | float | bool) or key is None:
                self._add(path, key_node, f"mapping keys must be plain scalars, got {key!r}")
                continue
            child = join(path, key)
            if key in first_seen:
                self._add(
                    child,
                    key_node,
                    f"duplicate key {key!r} (first defined on line "
                    f"{first_seen[key]}); each key may appear once",
                )
                continue
            first_seen[key] = key_node.start_mark.line + 1
            self.locations[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = self.walk(value_node, child, depth + 1)
        return out

    def _add(self, path: str, node: yaml.Node, message: str) -> None:
        self.problems.add(
            path, message, line=node.start_mark.line + 1, column=node.start_mark.column + 1
        )


def parse_text(text: str, fmt: str = "yaml", *, source: str | None = None) -> tuple[Any, Locations]:
    """Parse YAML or JSON text into plain data and a path -> (line, column) map."""
    if len(text) > MAX_BYTES:
        raise BlueprintError(
            [
                Problem(
                    "",
                    f"the document is {len(text):,} characters; at most {MAX_BYTES:,} are accepted",
                )
            ],
            source=source,
        )
    problems = ProblemList()
    if fmt == "json":
        data = _parse_json(text, problems)
        locations: Locations = {}
    else:
        data, locations = _parse_yaml(text, problems)
    if problems:
        raise BlueprintError(problems.problems, source=source)
    return data, locations


def _parse_yaml(text: str, problems: ProblemList) -> tuple[Any, Locations]:
    walker = _Walker(problems)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.add(
            "",
            f"YAML syntax error: {exc.problem or exc}"
            + (f" ({exc.context})" if exc.context else ""),
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        )
        return None, {}
    except yaml.YAMLError as exc:
        problems.add("", f"YAML error: {exc}")
        return None, {}
    except RecursionError:
        problems.add("", f"the document is nested too deeply (at most {MAX_DEPTH} levels)")
        return None, {}
    if root is None:
        return None, {}
    return walker.walk(root, "", 0), walker.locations


def _parse_json(text: str, problems: ProblemList) -> Any:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                problems.add(key, f"duplicate key {key!r}; each key may appear once")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        problems.add("", f"JSON syntax error: {exc.msg}", line=exc.lineno, column=exc.colno)
    except RecursionError:
        problems.add("", f"the document is nested too deeply (at most {MAX_DEPTH} levels)")
    return None


def format_for(path: str | PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json":
        return "json"
    raise BlueprintError(
        [
            Problem(
                "", f"unknown blueprint file type {suffix or '(none)'!r}; use .yaml, .yml or .json"
            )
        ],
        source=str(path),
    )


def load_path(
    cls: type[B],
    path: str | PathLike[str],
    *,
    registry: Registry | None = None,
    lenient: bool = False,
    path_map: Mapping[str, str] | None = None,
) -> B:
    fmt = format_for(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise BlueprintError(
            [Problem("", f"no such file: {os.fspath(path)}")], source=str(path)
        ) from None
    if len(raw) > MAX_BYTES:
        raise BlueprintError(
            [Problem("", f"the file is {len(raw):,} bytes; at most {MAX_BYTES:,} are accepted")],
            source=str(path),
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BlueprintError(
            [Problem("", f"the file is not UTF-8 text (byte {exc.start})")], source=str(path)
        ) from None
    data, locations = parse_text(text, fmt, source=str(path))
    flow = {"lenient": lenient, "path_map": path_map}
    return build(cls, data, registry=registry, source=str(path), locations=locations, flow=flow)


def build(
    cls: type[B],
    data: Any,
    *,
    registry: Registry | None = None,
    source: str | None = None,
    locations: Mapping[str, tuple[int, int]] | None = None,
    validate: bool = True,
    flow: Mapping[str, Any] | None = None,
) -> B:
    """Check the structure, build the Blueprint, then (optionally) validate it fully.

    An Atomiton flow is converted first (``flow`` holds the conversion's options,
    ``lenient`` and ``path_map``), and a ``ConvertedFlowWarning`` says so.
    """
    from conductor_nb.model.blueprint import Edge, Node
    from conductor_nb.model.params import ParamSpec
    from conductor_nb.model.schema import ParamDoc, check_structure
    from conductor_nb.model.settings import node_form

    locs = dict(locations or {})
    if atomiton.is_atomiton(data):
        data, locs = _from_atomiton(data, locs, source, flow or {})
    doc, problems = check_structure(data)
    name = data.get("id") if isinstance(data, Mapping) and isinstance(data.get("id"), str) else None
    if problems:
        raise BlueprintError(locate(problems, locs), name=name, source=source)
    assert doc is not None
    bp = cls(doc.id, name=doc.name, description=doc.description or "", registry=registry)
    bp.params = {
        k: ParamSpec(v.default, v.type, v.description, v.required)
        if isinstance(v, ParamDoc)
        else ParamSpec.coerce(v)
        for k, v in (doc.params or {}).items()
    }
    for node_id, spec in doc.nodes.items():
        bp.nodes[node_id] = Node(id=node_id, **node_form(spec.model_dump(exclude_unset=True)))
    edge_problems = ProblemList()
    for i, item in enumerate(doc.edges):
        try:
            bp.edges.append(
                Edge.parse(item)
                if isinstance(item, str)
                else Edge(*_split(item.source), *_split(item.target))
            )
        except ValueError as exc:
            edge_problems.add(f"edges[{i}]", str(exc))
    if edge_problems:
        raise BlueprintError(locate(edge_problems.problems, locs), name=doc.id, source=source)
    bp.outputs = dict(doc.outputs or {})
    bp.env = list(dict.fromkeys(doc.env or []))
    bp.source = source
    bp.locations = locs
    if validate:
        found = bp.problems()
        if found:
            raise BlueprintError(found, name=doc.id, source=source)
    return bp


def _from_atomiton(
    data: Any, locs: Locations, source: str | None, options: Mapping[str, Any]
) -> tuple[dict[str, Any], Locations]:
    conversion = atomiton.convert(data, locs, source=source, **options)
    warnings.warn(
        conversion.summary(source), atomiton.ConvertedFlowWarning, stacklevel=_caller_level()
    )
    return conversion.document, conversion.locations


def _caller_level() -> int:
    """The stack level of the first frame outside conductor_nb: the user's load call."""
    import sys

    frame, level = sys._getframe(1), 1
    package = str(Path(__file__).resolve().parents[1])
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _split(endpoint: str) -> tuple[str, str]:
    node, sep, port = endpoint.partition(".")
    if not sep or not node or not port or "." in port:
        raise ValueError(f"expected 'node.port', got {endpoint!r}")
    return node, port


def locate(problems: list[Problem], locations: Mapping[str, tuple[int, int]]) -> list[Problem]:
    """Attach the line of the closest located ancestor path to each problem."""
    out = []
    for p in problems:
        if p.line is not None or not locations:
            out.append(p)
            continue
        path = p.path
        while path and path not in locations:
            path = _parent(path)
        line, column = locations.get(path, (None, None))
        out.append(Problem(p.path, p.message, p.hints, line, column))
    return out


def _parent(path: str) -> str:
    if path.endswith("]"):
        return path[: path.rindex("[")]
    return path.rpartition(".")[0]


class _Dumper(yaml.SafeDumper):
    pass


_OTHER_BREAKS = ("\r", "\x85", "\u2028", "\u2029")
r"""Characters YAML reads as line breaks besides ``\n``: with ``allow_unicode`` PyYAML writes
them as they are in plain, quoted and block scalars, and reading folds them into a space
or a newline. Only a double-quoted scalar escapes them (``\N``, ``\L``, ``\P``)."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if any(c in value for c in _OTHER_BREAKS):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value and len(value) > 40 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list_presenter(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    flow = (
        len(value) <= 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and bool(value)
    )
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_Dumper.add_representer(str, _str_presenter)
_Dumper.add_representer(list, _list_presenter)
_Dumper.add_representer(tuple, _list_presenter)  # type: ignore[arg-type]


def dump_yaml(data: Mapping[str, Any]) -> str:
    return yaml.dump(
        dict(data),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


def dump_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def save_path(bp: Blueprint, path: str | PathLike[str]) -> Path:
    target = Path(path)
    fmt = format_for(target)
    text = dump_yaml(bp.to_dict()) if fmt == "yaml" else dump_json(bp.to_dict())
    atomic_write(target, text.encode("utf-8"))
    bp.source = str(target)
    return target
