"""The blueprint document: nodes, edges, params and outputs, and the Python authoring API.

A :class:`Blueprint` is an editable document. It knows nothing about running;
``run``/``start``/``debug``/``view`` are conveniences that hand the document to
the engine and the widgets (imported lazily, inside the methods). Compiling a
document into an immutable plan is the engine's job.

Serialised form (``to_dict``) is the file format of DESIGN.md; ``from_dict``
checks it and raises one :class:`BlueprintError` listing every problem.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from conductor_nb.errors import BlueprintError, NodeTypeError, Problem, problem
from conductor_nb.model.params import ParamSpec
from conductor_nb.model.settings import DEFAULTS, SETTINGS, NodeSettings, non_defaults
from conductor_nb.model.settings import check as check_settings
from conductor_nb.model.types import NodeType, Registry
from conductor_nb.model.types import registry as default_registry

if TYPE_CHECKING:
    from conductor_nb.engine.options import RunKeywords
    from conductor_nb.engine.run import Run

FORMAT_VERSION = 1
ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


def plural(count: int, noun: str) -> str:
    """``1 edge``, ``2 edges``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


@dataclass(repr=False)
class Node(NodeSettings):
    """One use of a node type in a blueprint: its id, type, pinned version and param values,
    and its settings (the fields of :class:`~conductor_nb.model.settings.NodeSettings`)."""

    id: str
    type: str
    version: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.id

    def clone(self) -> Node:
        """A deep copy (fast: runs copy thousands of nodes at every start)."""
        new = object.__new__(Node)
        new.__dict__.update(self.__dict__)
        new.params = copy.deepcopy(self.params) if self.params else {}
        new.retry_on = list(self.retry_on)
        new.resources = dict(self.resources)
        return new

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.version is not None:
            out["version"] = self.version
        settings = non_defaults(self)
        if "name" in settings:
            out["name"] = settings.pop("name")
        if self.params:
            out["params"] = copy.deepcopy(self.params)
        position = settings.pop("position", None)  # written last, as in the format's examples
        out.update({key: _tidy(value) for key, value in settings.items()})
        if position is not None:
            out["position"] = _tidy(position)
        return out

    def __repr__(self) -> str:
        fields = [f"id={self.id!r}", f"type={self.type!r}"]
        fields += [f"params={self.params!r}"] if self.params else []
        fields += [f"{k}={v!r}" for k, v in non_defaults(self).items()]
        return f"Node({', '.join(fields)})"


def _new_node(
    node_id: str, type_name: str, version: int | None, params: dict[str, Any], settings: dict
) -> Node:
    """A Node with checked ``settings``; with none, copied from a default one (a blueprint
    of 10,000 nodes is built in well under a second)."""
    if settings:
        return Node(id=node_id, type=type_name, version=version, params=params, **settings)
    node = object.__new__(Node)
    fields = node.__dict__
    fields.update(_DEFAULT_NODE)
    for name, factory in _FACTORIES:  # the mutable defaults: each node its own
        fields[name] = factory()
    fields.update(id=node_id, type=type_name, version=version, params=params)
    return node


_DEFAULT_NODE = vars(Node(id="", type=""))
_FACTORIES = [
    (f.name, f.default_factory)
    for f in dataclasses.fields(Node)
    if f.default_factory is not dataclasses.MISSING and f.name != "params"
]


def _new_edge(key: tuple[str, str, str, str]) -> Edge:
    """``Edge(*key)`` without the frozen dataclass's four ``object.__setattr__`` calls."""
    edge = object.__new__(Edge)
    edge.__dict__.update(zip(_EDGE_FIELDS, key, strict=True))
    return edge


_EDGE_FIELDS = ("source", "source_port", "target", "target_port")


def _key(edge: Edge) -> tuple[str, str, str, str]:
    return (edge.source, edge.source_port, edge.target, edge.target_port)


def _tidy(value: Any) -> Any:
    """Numbers as people write them (5, not 5.0), inside lists and mappings too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_tidy(v) for v in value]
    if isinstance(value, dict):
        return {k: _tidy(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Edge:
    """``source.source_port -> target.target_port``."""

    source: str
    source_port: str
    target: str
    target_port: str

    def __str__(self) -> str:
        return self._text

    @functools.cached_property
    def _text(self) -> str:  # written once: every run dumps every edge of its blueprint
        return f"{self.source}.{self.source_port} -> {self.target}.{self.target_port}"

    @classmethod
    def parse(cls, text: str) -> Edge:
        """Parse ``"a.out -> b.in"`` (both ports required)."""
        left, sep, right = text.partition("->")
        if not sep:
            raise ValueError(f"expected 'source.port -> target.port', got {text!r}")
        src, tgt = left.strip(), right.strip()
        if src.count(".") != 1 or tgt.count(".") != 1:
            raise ValueError(f"expected 'source.port -> target.port' (one dot each), got {text!r}")
        s_node, s_port = src.split(".")
        t_node, t_port = tgt.split(".")
        return cls(s_node, s_port, t_node, t_port)


ChangeListener = Callable[["Blueprint"], None]


class Blueprint:
    """A workflow document. Build it in Python, or load it from YAML/JSON.

    >>> bp = Blueprint("sales", params={"path": "data.csv"})
    >>> bp.add("spreadsheet", id="load", path="{{ params.path }}")  # doctest: +SKIP
    """

    def __init__(
        self,
        id: str = "blueprint",
        *,
        name: str | None = None,
        description: str = "",
        params: Mapping[str, Any] | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.id = id
        self.name = name or id
        self.description = description
        self.params: dict[str, ParamSpec] = {
            k: ParamSpec.coerce(v) for k, v in (params or {}).items()
        }
        self.nodes: dict[str, Node] = {}
        self.edges: list[Edge] = []
        self._edge_keys: set[tuple[str, str, str, str]] = set()  # the edges, for connect
        self.outputs: dict[str, str] = {}
        self.env: list[str] = []  # environment variables templates may read as env.NAME
        self.registry: Registry = registry if registry is not None else default_registry
        self.source: str | None = None
        self.locations: dict[str, tuple[int, int]] = {}
        self._listeners: list[weakref.ReferenceType[Any] | Callable[[Blueprint], None]] = []

    # ------------------------------------------------------------------ authoring
    def add(
        self,
        type: str | NodeType | Callable[..., Any],
        id: str | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        version: int | None = None,
        **values: Any,
    ) -> Node:
        """Add a node of a registered type (by name), a NodeType, or a plain function.

        Keywords naming node settings (``retries``, ``timeout``, ``enabled``...) are
        settings; every other keyword is a param or an input value.
        """
        node_type = self._resolve_for_add(type, version)
        node_id = id or self._fresh_id(node_type.name)
        if not ID_PATTERN.match(node_id):
            raise BlueprintError(
                [
                    problem(
                        f"nodes.{node_id}",
                        "node ids are identifiers (letters, digits, '_' or '-', "
                        "starting with a letter or '_', at most 64 characters)",
                    )
                ],
                name=self.id,
            )
        if node_id in self.nodes:
            raise BlueprintError(
                [
                    problem(
                        f"nodes.{node_id}",
                        f"a node with id {node_id!r} already exists",
                        f"hint: pass another id, e.g. id={self._fresh_id(node_id)!r}",
                    )
                ],
                name=self.id,
            )
        settings = {k: values.pop(k) for k in list(values) if k in SETTINGS} if values else {}
        node_values = {**values, **params} if params else values
        names = node_type.value_names if node_values else ()
        unknown = [k for k in node_values if k not in names]
        if unknown:
            raise BlueprintError(
                [_unknown_value_problem(node_id, node_type, k) for k in unknown], name=self.id
            )
        checked, problems = check_settings(settings, node_id) if settings else ({}, [])
        if problems:  # checked as a file's would be: the same message for the same mistake
            raise BlueprintError(problems, name=self.id)
        node = _new_node(node_id, node_type.name, version, node_values, checked)
        self.nodes[node_id] = node
        self._changed()
        return node

    def _resolve_for_add(self, type: Any, version: int | None) -> NodeType:
        if isinstance(type, str):
            return self.registry.get(type, version)
        if isinstance(type, NodeType):
            found = self.registry.find(type.name, type.version)
            if found is not type:
                self.registry.register(type)
            return type
        if isinstance(type, str):
            return self.registry.get(type, version)
        if callable(type):
            existing = getattr(type, "__conductor_node__", None)
            if isinstance(existing, NodeType):
                return self._resolve_for_add(existing, version)
            return self.registry.register(NodeType.from_function(type))
        raise NodeTypeError(f"add() takes a node type name, a NodeType or a function; got {type!r}")

    def _fresh_id(self, base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_-]", "_", base) or "node"
        if not re.match(r"[A-Za-z_]", base):
            base = "n_" + base
        if base not in self.nodes:
            return base
        n = 2
        while f"{base}_{n}" in self.nodes:
            n += 1
        return f"{base}_{n}"

    def connect(self, source: str, target: str) -> Edge:
        """Join ``"node.port"`` to ``"node.port"``; ``"node"`` alone means its only port."""
        s_node, s_port = self._endpoint(source, "output")
        t_node, t_port = self._endpoint(target, "input")
        key = (s_node, s_port, t_node, t_port)
        keys = self._edge_keys
        if len(keys) != len(self.edges):  # a plain list users may edit: resync when it changed
            keys = self._edge_keys = {_key(e) for e in self.edges}
        edge = _new_edge(key)
        if key in keys:
            return edge
        self.edges.append(edge)
        keys.add(key)
        self._changed()
        return edge

    def disconnect(self, source: str, target: str) -> None:
        s_node, s_port = self._endpoint(source, "output")
        t_node, t_port = self._endpoint(target, "input")
        edge = Edge(s_node, s_port, t_node, t_port)
        if edge not in self.edges:
            raise BlueprintError([problem("edges", f"no edge {edge}")], name=self.id)
        self.edges.remove(edge)
        self._changed()

    def _endpoint(self, text: str, side: str) -> tuple[str, str]:
        node_id, _, port = text.partition(".")
        node = self.nodes.get(node_id)
        path = f"{'source' if side == 'output' else 'target'} {text!r}"
        if node is None:
            hints = _did_you_mean(node_id, self.nodes)
            raise BlueprintError([problem(path, f"no node {node_id!r}", *hints)], name=self.id)
        node_type = self.registry.get(node.type, node.version)
        facts = node_type.facts
        names = facts.outputs_by_name if side == "output" else facts.inputs_by_name
        if port:
            if port not in names:
                hints = port_hints(node_id, node_type, port, side)
                raise BlueprintError(
                    [problem(path, f"node {node_id!r} has no {side} port {port!r}", *hints)],
                    name=self.id,
                )
            return node_id, port
        chosen = next(iter(names)) if len(names) == 1 else default_port(list(names), side)
        if chosen is None:
            raise BlueprintError(
                [
                    problem(
                        path,
                        f"node {node_id!r} has {len(names)} {side} ports; name one",
                        f"{side} ports: "
                        + (", ".join(f"'{node_id}.{n}'" for n in names) or "none"),
                    )
                ],
                name=self.id,
            )
        return node_id, chosen

    def remove(self, node_id: str) -> Node:
        """Remove a node with its edges and the outputs that read from it."""
        if node_id not in self.nodes:
            raise BlueprintError(
                [
                    problem(
                        f"nodes.{node_id}",
                        f"no node {node_id!r}",
                        *_did_you_mean(node_id, self.nodes),
                    )
                ],
                name=self.id,
            )
        node = self.nodes.pop(node_id)
        self.edges = [e for e in self.edges if node_id not in (e.source, e.target)]
        self.outputs = {k: v for k, v in self.outputs.items() if v.partition(".")[0] != node_id}
        self._changed()
        return node

    def set_params(self, node_id: str, **values: Any) -> None:
        """Update a node's param/input values and settings (``None`` removes a value, and
        puts a setting back to its default). Settings are checked as ``add`` checks them;
        nothing changes unless every value is accepted."""
        node = self.nodes[node_id]
        node_type = self.node_type(node_id)
        unknown = [k for k in values if k not in node_type.value_names and k not in SETTINGS]
        if unknown:
            raise BlueprintError(
                [_unknown_value_problem(node_id, node_type, k) for k in unknown], name=self.id
            )
        given = {k: v for k, v in values.items() if k in SETTINGS and v is not None}
        checked, problems = check_settings(given, node_id) if given else ({}, [])
        if problems:
            raise BlueprintError(problems, name=self.id)
        for key, value in values.items():
            if key in SETTINGS:
                setattr(node, key, checked[key] if key in checked else copy.copy(DEFAULTS[key]))
            elif value is None:
                node.params.pop(key, None)
            else:
                node.params[key] = value
        self._changed()

    def node_type(self, node_id: str) -> NodeType:
        node = self.nodes[node_id]
        return self.registry.get(node.type, node.version)

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    # ----------------------------------------------------------------- listeners
    def on_change(self, callback: ChangeListener) -> Callable[[], None]:
        """Call ``callback(bp)`` after every edit; returns a function that unsubscribes.

        Bound methods are held weakly, so a closed view does not keep itself alive.
        """
        ref: Any = weakref.WeakMethod(callback) if hasattr(callback, "__self__") else callback
        self._listeners.append(ref)
        return lambda: self._listeners.remove(ref) if ref in self._listeners else None

    def _changed(self) -> None:
        if not self._listeners:
            return
        for ref in list(self._listeners):
            fn: Any = ref() if isinstance(ref, weakref.WeakMethod) else ref
            if fn is None:
                self._listeners.remove(ref)
                continue
            fn(self)

    def changed(self) -> None:
        """Tell listeners (views) about edits made directly to ``nodes``/``edges``/``outputs``."""
        self._changed()

    # ------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"conductor": FORMAT_VERSION, "id": self.id}
        if self.name != self.id:
            doc["name"] = self.name
        if self.description:
            doc["description"] = self.description
        if self.params:
            doc["params"] = {k: v.to_dict() for k, v in self.params.items()}
        doc["nodes"] = {nid: node.to_dict() for nid, node in self.nodes.items()}
        doc["edges"] = [str(e) for e in self.edges]
        if self.outputs:
            doc["outputs"] = dict(self.outputs)
        if self.env:
            doc["env"] = list(self.env)
        return doc

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        registry: Registry | None = None,
        source: str | None = None,
        locations: Mapping[str, tuple[int, int]] | None = None,
        validate: bool = True,
    ) -> Blueprint:
        """Build from the file structure; raises BlueprintError listing every problem."""
        from conductor_nb.model.document import build

        return build(
            cls, data, registry=registry, source=source, locations=locations, validate=validate
        )

    @classmethod
    def from_yaml(
        cls, text: str, *, registry: Registry | None = None, source: str | None = None
    ) -> Blueprint:
        from conductor_nb.model.document import parse_text

        data, locations = parse_text(text, "yaml", source=source)
        return cls.from_dict(data, registry=registry, source=source, locations=locations)

    @classmethod
    def from_json(
        cls, text: str, *, registry: Registry | None = None, source: str | None = None
    ) -> Blueprint:
        from conductor_nb.model.document import parse_text

        data, locations = parse_text(text, "json", source=source)
        return cls.from_dict(data, registry=registry, source=source, locations=locations)

    @classmethod
    def load(
        cls,
        path: str | PathLike[str],
        *,
        registry: Registry | None = None,
        lenient: bool = False,
        path_map: Mapping[str, str] | None = None,
    ) -> Blueprint:
        """Load a blueprint file, or an Atomiton flow (converted; ``lenient`` converts what
        it can and warns about the rest, ``path_map`` remaps the flow's absolute paths:
        ``{"/data": "./data"}``)."""
        from conductor_nb.model.document import load_path

        return load_path(cls, path, registry=registry, lenient=lenient, path_map=path_map)

    def to_yaml(self) -> str:
        from conductor_nb.model.document import dump_yaml

        return dump_yaml(self.to_dict())

    def to_json(self) -> str:
        from conductor_nb.model.document import dump_json

        return dump_json(self.to_dict())

    def save(self, path: str | PathLike[str]) -> Path:
        """Write YAML (``.yaml``/``.yml``) or JSON (``.json``) atomically."""
        from conductor_nb.model.document import save_path

        return save_path(self, path)

    def copy(self) -> Blueprint:
        """A deep copy (sharing the registry): edits to one do not touch the other."""
        clone = type(self)(
            self.id, name=self.name, description=self.description, registry=self.registry
        )
        clone.params = {k: dataclasses.replace(v) for k, v in self.params.items()}
        clone.nodes = {k: v.clone() for k, v in self.nodes.items()}
        clone.edges = list(self.edges)
        clone.outputs = dict(self.outputs)
        clone.env = list(self.env)
        clone.source = self.source
        clone.locations = dict(self.locations)
        return clone

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Blueprint):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"<Blueprint {self.id!r}: {plural(len(self.nodes), 'node')}, "
            f"{plural(len(self.edges), 'edge')}"
            + (f", params {sorted(self.params)}" if self.params else "")
            + ">"
        )

    # ---------------------------------------------------------------- validation
    def problems(self) -> list[Problem]:
        """Every problem, located on its file line when the blueprint was loaded from one."""
        from conductor_nb.model.document import locate
        from conductor_nb.model.validate import validate_blueprint

        return locate(validate_blueprint(self), self.locations)

    def validate(self) -> Blueprint:
        """Raise :class:`BlueprintError` listing every problem; return self when valid."""
        found = self.problems()
        if found:
            raise BlueprintError(found, name=self.id, source=self.source)
        return self

    def upstream(self, node_id: str) -> list[str]:
        return list(dict.fromkeys(e.source for e in self.edges if e.target == node_id))

    def downstream(self, node_id: str) -> list[str]:
        return list(dict.fromkeys(e.target for e in self.edges if e.source == node_id))

    # ------------------------------------------------------- running and viewing
    def run(self, params: Mapping[str, Any] | None = None, **options: Unpack[RunKeywords]) -> Run:
        """Run to the end and return the finished Run (works inside a notebook cell too).

        Keywords are run options (``concurrency=8``, ``executor="process"``,
        ``fail_fast=True``, ``cache=False``, ``type_limits={...}``...): see
        :class:`conductor_nb.RunOptions`. A misspelt one is refused by name.
        """
        from conductor_nb.engine.api import run_sync
        from conductor_nb.engine.options import RunOptions

        return run_sync(self, params, RunOptions.from_keywords(options))

    async def arun(
        self, params: Mapping[str, Any] | None = None, **options: Unpack[RunKeywords]
    ) -> Run:
        """The async form of :meth:`run` (``await bp.arun()`` in a cell)."""
        from conductor_nb.engine.api import run_async
        from conductor_nb.engine.options import RunOptions

        return await run_async(self, params, RunOptions.from_keywords(options))

    def start(self, params: Mapping[str, Any] | None = None, **options: Unpack[RunKeywords]) -> Run:
        """Start a run in the background and return its handle at once."""
        from conductor_nb.engine.api import start
        from conductor_nb.engine.options import RunOptions

        return start(self, params, RunOptions.from_keywords(options))

    def debug(self, params: Mapping[str, Any] | None = None, **options: Unpack[RunKeywords]) -> Run:
        """Start a run paused before its first node, for stepping (``breakpoints=[...]``)."""
        from conductor_nb.engine.api import start
        from conductor_nb.engine.options import RunOptions

        return start(self, params, RunOptions.from_keywords({"paused": True, **options}))

    def view(self, **options: Any) -> Any:
        """The graph widget: edit, run and step through this blueprint."""
        from conductor_nb.widgets import BlueprintView

        return BlueprintView(self, **options)

    def to_svg(self, **options: Any) -> str:
        from conductor_nb.model.svg import render_svg

        return render_svg(self, **options)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": repr(self)}
        try:
            bundle["image/svg+xml"] = self.to_svg()
        except Exception as exc:  # a picture must never break display
            bundle["text/plain"] += f"\n(no picture: {exc})"
        widget = _widget_bundle(self)
        if widget:
            bundle.update(widget)
        return bundle


def _widget_bundle(bp: Blueprint) -> dict[str, Any] | None:
    """In a live kernel with the jupyter extra, display the interactive view too."""
    import sys

    if "ipykernel" not in sys.modules:
        return None
    try:
        from conductor_nb.widgets import widget_mimebundle
    except ImportError:
        return None
    return widget_mimebundle(bp)


def default_port(names: Sequence[str], side: str) -> str | None:
    if len(names) == 1:
        return names[0]
    preferred = "output" if side == "output" else "input"
    return preferred if preferred in names else None


def _close(word: str, options: Sequence[str], n: int = 2) -> list[str]:
    import difflib

    return difflib.get_close_matches(word, list(options), n=n, cutoff=0.5)


def port_hints(
    node_id: str, node_type: NodeType, port: str, side: str, suggest: int = 2
) -> list[str]:
    """Hints for a missing port: the node's ports on that side, then up to ``suggest``
    close names written as ``node.port``."""
    names = [p.name for p in (node_type.outputs if side == "output" else node_type.inputs)]
    hints = [
        f"{side} ports of {node_id!r} ({node_type.name}): "
        + (", ".join(map(repr, names)) or "none")
    ]
    if suggest:
        hints += [f"hint: did you mean '{node_id}.{m}'?" for m in _close(port, names, suggest)]
    return hints


def _did_you_mean(word: str, options: Mapping[str, Any] | Sequence[str]) -> list[str]:
    close = _close(word, list(options))
    return [f"hint: did you mean {' or '.join(map(repr, close))}?"] if close else []


def _unknown_value_problem(node_id: str, node_type: NodeType, key: str) -> Problem:
    names = node_type.value_names
    hints = [f"params and inputs of {node_type.name!r}: " + (", ".join(map(repr, names)) or "none")]
    hints += _did_you_mean(key, names)
    return problem(
        f"nodes.{node_id}.params.{key}",
        f"node type {node_type.name!r} has no param or input {key!r}",
        *hints,
    )
