"""Node types, their ports and params, and the registry that names them.

A :class:`NodeType` is a registered kind of node: a name, a version, typed input
and output ports, a params schema and a function (sync or async). Function nodes
are built from a typed Python function (:meth:`NodeType.from_function`): every
argument becomes an input port (required unless it has a default), the return
value becomes the ``output`` port, or several named outputs.

A :class:`Registry` maps names to the versions registered under them. Lookups
without a version get the newest. Loaders (the built-in library, entry-point
plugins) run once, on the first lookup, so nothing happens at import time.
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import numbers
import textwrap
import threading
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conductor_nb.errors import NodeTypeError, Problem
from conductor_nb.model.table import Table, hint_kind


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()
"""Marks "no default": the port or param must get a value."""

PARAM_TYPES = ("any", "str", "int", "float", "bool", "list", "dict", "number", "path", "code")


@dataclass(frozen=True)
class Port:
    """A named input or output of a node type.

    ``many`` inputs take any number of edges and receive a list (in edge order).
    An input with a ``default`` is optional; an input without one is required.
    """

    name: str
    type: str = "any"
    required: bool = False
    default: Any = MISSING
    many: bool = False
    description: str = ""

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.required:
            info["required"] = True
        if self.default is not MISSING:
            info["default"] = self.default
        if self.many:
            info["many"] = True
        if self.description:
            info["description"] = self.description
        return info


@dataclass(frozen=True)
class ParamField:
    """One configuration parameter of a node type (not a port): its type, default, choices."""

    name: str
    type: str = "any"
    default: Any = MISSING
    required: bool = False
    choices: tuple[Any, ...] = ()
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    names: tuple[str, ...] = ()
    """For a sandboxed expression (type ``code``): every name it may read (``item``,
    ``params``...). For a param the node type renders itself: the names it adds to the
    usual template names. Validation refuses any other name, with a did-you-mean. A type
    with a ``language`` param other than ``jinja`` (JavaScript) checks its code itself."""

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.default is not MISSING:
            info["default"] = self.default
        if self.required:
            info["required"] = True
        if self.choices:
            info["choices"] = list(self.choices)
        if self.names:
            info["names"] = list(self.names)
        if self.minimum is not None:
            info["minimum"] = self.minimum
        if self.maximum is not None:
            info["maximum"] = self.maximum
        if self.description:
            info["description"] = self.description
        return info

    def check(self, value: Any) -> str | None:
        """Return why ``value`` does not fit, or None. Templates are checked when rendered."""
        if is_template(value):
            return None
        problem = check_type(self.type, value)
        if problem:
            return problem
        if self.choices and value not in self.choices:
            message = f"expected one of {', '.join(map(repr, self.choices))}, got {value!r}"
            words = [c for c in self.choices if isinstance(c, str)]
            close = difflib.get_close_matches(str(value), words, n=1, cutoff=0.6)
            return message + (f" (did you mean {close[0]!r}?)" if close else "")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"expected a number >= {self.minimum:g}, got {value!r}"
            if self.maximum is not None and value > self.maximum:
                return f"expected a number <= {self.maximum:g}, got {value!r}"
        return None


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


_TYPE_CHECKS: dict[str, tuple[tuple[type, ...], str]] = {
    "str": ((str,), "a string"),
    "path": ((str,), "a path string"),
    "code": ((str,), "a string"),
    "int": ((int,), "an integer"),
    "float": ((int, float), "a number"),
    "number": ((int, float), "a number"),
    "bool": ((bool,), "true or false"),
    "list": ((list, tuple), "a list"),
    "dict": ((dict,), "a mapping"),
}


def check_type(type_name: str, value: Any) -> str | None:
    """Why ``value`` is not of the param type ``type_name`` (None when it is)."""
    if type_name not in _TYPE_CHECKS or value is None:
        return None
    kinds, label = _TYPE_CHECKS[type_name]
    if type_name != "bool" and isinstance(value, bool):
        return f"expected {label}, got {value!r} (a bool)"
    if not isinstance(value, kinds):
        return f"expected {label}, got {value!r} (a {type(value).__name__})"
    return None


_KINDS: dict[str, frozenset[str]] = {
    "list": frozenset({"list", "table"}),  # a table reads as a list of records
    "tuple": frozenset({"list", "table"}),
    "table": frozenset({"list", "table"}),
    "Table": frozenset({"list", "table"}),
    "dict": frozenset({"mapping"}),
    "mapping": frozenset({"mapping"}),
    "str": frozenset({"str"}),
    "int": frozenset({"int"}),
    "float": frozenset({"int", "float"}),
    "number": frozenset({"int", "float"}),
}
_KIND_LABELS = {
    "list": "a list",
    "table": "a table",
    "mapping": "a mapping",
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a bool",
}


def _kind_of(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, numbers.Real):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Table):
        return "table"
    return None  # arrays, frames, objects: duck typing decides


def kind_mismatch(label: str, value: Any) -> str | None:
    """Why ``value`` plainly cannot be a ``label`` port value (``list[dict]``, ``int``), or None.

    Only plain kinds are compared (list, mapping, string, number); unions, ``any`` and
    other objects (arrays, data frames) pass, so duck typing is never refused.
    """
    if value is None or "|" in label or "Optional" in label or "Union" in label:
        return None
    expected = _KINDS.get(label.split("[", 1)[0].strip())
    got = _kind_of(value)
    if expected is None or got is None or got in expected:
        return None
    preview = repr(value)
    preview = preview if len(preview) <= 60 else preview[:57] + "..."
    return f"expected {label}, got {_KIND_LABELS[got]}: {preview}"


class NodeContext:
    """Marker type: a node function parameter annotated ``NodeContext`` receives the run context.

    The engine passes an object with ``run_id``, ``node_id``, ``attempt``, ``logger``,
    ``params`` (the blueprint params) and helpers for nodes that run sub-blueprints.
    """


OutputMode = typing.Literal["single", "mapping"]
NestedCheck = Callable[[Mapping[str, Any], "Registry", Mapping[str, Any]], list[Problem]]
"""``check(node params, registry, outer params)``: the problems inside a node's bodies, where
the outer params map each name in scope to its declaration (a ParamSpec)."""


@dataclass(eq=False)
class NodeType:
    """A registered kind of node. Build one with :func:`conductor_nb.node` or ``from_function``."""

    name: str
    fn: Callable[..., Any]
    version: int = 1
    inputs: tuple[Port, ...] = ()
    outputs: tuple[Port, ...] = (Port("output"),)
    params: tuple[ParamField, ...] = ()
    description: str = ""
    category: str = "function"
    examples: tuple[dict[str, Any], ...] = ()
    concurrency: int | None = None
    context_arg: str | None = None
    output_mode: OutputMode = "single"
    validate_params: Callable[[Mapping[str, Any]], list[tuple[str, str]]] | None = None
    check_nested: NestedCheck | None = None
    """Problems inside sub-blueprint params (loop/parallel/group bodies), with paths from
    the node's params (``body.nodes.e.params.expression``): validation looks inside them
    with the outer blueprint's registry and the params in scope there."""
    source_hash: str = ""
    module: str = ""
    raw_params: tuple[str, ...] = ()
    """Params whose values are not templates to render (sub-blueprint bodies of loop, parallel,
    group): they reach the node unrendered and their own templates are checked by the type."""
    runs_beside_engine: bool = False
    """The node steers the run (``if`` hands SKIP to the engine; ``loop``, ``parallel`` and
    ``group`` run sub-blueprints): it runs on the engine's loop whatever the executor, with
    the live NodeContext (``ctx.run``, ``ctx.run_blueprint``)."""
    side_effects: bool = False
    """Running the node changes the world outside the run (a command, a request, a file
    written): the history commits its success before the run goes on, so a resume after a
    kill does not run it again (see :mod:`conductor_nb.storage.recorder`). Other nodes'
    rows are written in batches."""
    input_forms: Mapping[str, str] = field(default_factory=dict)
    """Inputs whose type hint asks for a table in one form (``records``, ``arrow``, ``pandas``,
    ``polars``): a :class:`~conductor_nb.model.table.Table` arriving there is converted first."""
    _async_of: tuple[Callable[..., Any], bool] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _facts: TypeFacts | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.source_hash:
            self.source_hash = code_hash(self.fn)
        if not self.module:
            self.module = getattr(self.fn, "__module__", "") or ""

    @property
    def is_async(self) -> bool:
        fn = self.fn
        known = self._async_of
        if known is None or known[0] is not fn:  # fn is reassignable: remember per function
            known = self._async_of = (fn, inspect.iscoroutinefunction(fn))
        return known[1]

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def facts(self) -> TypeFacts:
        """Lookups by name over the ports and params, built once per type (and again only
        when ``inputs``, ``outputs`` or ``params`` is given a new tuple)."""
        known = self._facts
        if (
            known is None
            or known.inputs is not self.inputs
            or known.outputs is not self.outputs
            or known.params is not self.params
        ):
            known = self._facts = TypeFacts(self.inputs, self.outputs, self.params)
        return known

    def adapt_inputs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` with tables in the form each input's type hint asks for."""
        if not self.input_forms:
            return kwargs
        from conductor_nb.model.table import adapt

        return {
            k: adapt(v, self.input_forms[k]) if k in self.input_forms else v
            for k, v in kwargs.items()
        }

    def input(self, name: str) -> Port | None:
        return self.facts.inputs_by_name.get(name)

    def output(self, name: str) -> Port | None:
        return self.facts.outputs_by_name.get(name)

    def param(self, name: str) -> ParamField | None:
        return self.facts.params_by_name.get(name)

    @property
    def value_names(self) -> list[str]:
        """Names a node's ``params`` may hold: config params, then input ports."""
        return list(self.facts.value_names)

    def split_outputs(self, value: Any) -> dict[str, Any]:
        """Map a function's return value onto the output ports."""
        names = [p.name for p in self.outputs]
        if self.output_mode == "single":
            result = {names[0]: value}
            if isinstance(value, Mapping):  # structured outputs expose their main fields as ports
                result.update({n: value.get(n) for n in names[1:]})
            return result
        if isinstance(value, Mapping):
            missing = [n for n in names if n not in value]
            if missing:
                raise TypeError(
                    f"node type {self.name!r} declares outputs {names} but the returned mapping "
                    f"lacks {missing} (keys: {sorted(map(str, value))})"
                )
            return {n: value[n] for n in names}
        if isinstance(value, tuple) and len(value) == len(names):
            return dict(zip(names, value, strict=True))
        raise TypeError(
            f"node type {self.name!r} declares outputs {names}: return a dict with those keys "
            f"or a tuple of {len(names)} values, got {type(value).__name__}"
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "category": self.category,
            "description": self.description,
            "inputs": [p.describe() for p in self.inputs],
            "outputs": [p.describe() for p in self.outputs],
            "params": [p.describe() for p in self.params],
            "examples": list(self.examples),
        }

    def params_schema(self) -> dict[str, Any]:
        """A JSON Schema of this type's ``params`` (config params and input values)."""
        props: dict[str, Any] = {}
        required: list[str] = []
        for f in self.params:
            props[f.name] = _json_type(f.type, f.description, f.default, f.choices)
            if f.required:
                required.append(f.name)
        for port in self.inputs:
            props.setdefault(port.name, _json_type(port.type, port.description, port.default, ()))
        schema: dict[str, Any] = {
            "type": "object",
            "properties": props,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        return schema

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        version: int = 1,
        outputs: Sequence[str] | None = None,
        description: str | None = None,
        category: str = "function",
        concurrency: int | None = None,
        side_effects: bool = False,
    ) -> NodeType:
        """Build a node type from a typed function: arguments are inputs, the result the outputs.

        ``side_effects=True``: the function changes the world outside the run (writes a file,
        calls an API); its success is then committed to history before the run goes on."""
        if not callable(fn):
            raise NodeTypeError(f"@node needs a function, got {fn!r}")
        type_name = name or getattr(fn, "__name__", None)
        if not type_name or type_name == "<lambda>":
            raise NodeTypeError("a lambda has no name: pass one, e.g. cnb.node(fn, name='double')")
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError) as exc:
            raise NodeTypeError(f"cannot read the signature of {type_name!r}: {exc}") from None
        hints = _type_hints(fn)
        inputs: list[Port] = []
        forms: dict[str, str] = {}
        context_arg = None
        for param in signature.parameters.values():
            hint = hints.get(param.name, param.annotation)
            if hint is NodeContext or (param.name == "ctx" and hint is inspect.Parameter.empty):
                context_arg = param.name
                continue
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise NodeTypeError(
                    f"node function {type_name!r}: *{param.name} arguments cannot become ports; "
                    "name each input (or take a list and mark the port many)"
                )
            if param.kind is param.POSITIONAL_ONLY:
                raise NodeTypeError(
                    f"node function {type_name!r}: positional-only argument {param.name!r} "
                    "cannot receive a named input"
                )
            has_default = param.default is not param.empty
            form = hint_kind(hint)
            if form is not None:
                forms[param.name] = form
            inputs.append(
                Port(
                    name=param.name,
                    type=type_label(hint),
                    required=not has_default,
                    default=param.default if has_default else MISSING,
                    many=_is_many(hint),
                )
            )
        return_hint = hints.get("return", signature.return_annotation)
        if outputs:
            out_ports = tuple(Port(str(o)) for o in outputs)
            mode: OutputMode = "mapping"
        else:
            out_ports = (Port("output", type=type_label(return_hint)),)
            mode = "single"
        doc = inspect.getdoc(fn) or ""
        return cls(
            name=type_name,
            fn=fn,
            version=version,
            inputs=tuple(inputs),
            outputs=out_ports,
            description=description if description is not None else doc.split("\n\n")[0],
            category=category,
            concurrency=concurrency,
            context_arg=context_arg,
            output_mode=mode,
            input_forms=forms,
            side_effects=side_effects,
        )


def _json_type(
    type_name: str, description: str, default: Any, choices: tuple[Any, ...]
) -> dict[str, Any]:
    mapping = {
        "str": "string",
        "path": "string",
        "code": "string",
        "int": "integer",
        "float": "number",
        "number": "number",
        "bool": "boolean",
        "list": "array",
        "dict": "object",
    }
    out: dict[str, Any] = {}
    if type_name in mapping:
        out["type"] = mapping[type_name]
    if description:
        out["description"] = description
    if default is not MISSING and _jsonable(default):
        out["default"] = default
    if choices:
        out["enum"] = list(choices)
    return out


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        return dict(getattr(fn, "__annotations__", {}) or {})


def type_label(hint: Any) -> str:
    """A short display name for a type hint: ``list[dict]``, ``float``, ``any``."""
    if hint is inspect.Parameter.empty or hint is inspect.Signature.empty or hint is Any:
        return "any"
    if isinstance(hint, str):
        return hint
    if isinstance(hint, type) and not typing.get_args(hint):
        return hint.__name__
    text = repr(hint).replace("typing.", "")
    return text


def _is_many(hint: Any) -> bool:
    return getattr(hint, "__metadata__", None) is not None and "many" in hint.__metadata__


def code_hash(fn: Callable[..., Any]) -> str:
    """A hash of a function's source (or bytecode): changes when the function is redefined."""
    target = inspect.unwrap(fn)
    try:
        text = textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        text = repr((code.co_code, code.co_consts)) if code else repr(target)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TypeFacts:
    """A node type's ports and params by name, for checks that run per node and per edge."""

    __slots__ = (
        "inputs",
        "inputs_by_name",
        "outputs",
        "outputs_by_name",
        "params",
        "params_by_name",
        "required_inputs",
        "required_params",
        "single_inputs",
        "value_names",
    )

    def __init__(
        self, inputs: tuple[Port, ...], outputs: tuple[Port, ...], params: tuple[ParamField, ...]
    ) -> None:
        self.inputs, self.outputs, self.params = inputs, outputs, params
        # the first declaration of a name wins, as the linear lookups it replaces did
        self.inputs_by_name = _by_name(inputs)
        self.outputs_by_name = _by_name(outputs)
        self.params_by_name = _by_name(params)
        self.required_inputs = tuple(p.name for p in inputs if p.required)
        self.required_params = tuple(f for f in params if f.required)
        self.single_inputs = frozenset(p.name for p in inputs if not p.many)
        self.value_names: dict[str, None] = dict.fromkeys(
            [p.name for p in params] + [p.name for p in inputs]
        )  # ordered, and a set: params first, then input ports


def _by_name(items: Sequence[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items:
        found.setdefault(item.name, item)
    return found


Loader = Callable[["Registry"], None]


@dataclass
class Registry:
    """Node types by name and version. ``get`` without a version returns the newest."""

    _types: dict[str, dict[int, NodeType]] = field(default_factory=dict)
    _loaders: list[Loader] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _loading: bool = False

    def add_loader(self, loader: Loader) -> None:
        """Run ``loader(registry)`` on the first lookup (lazy registration of libraries)."""
        self._loaders.append(loader)

    def _load(self) -> None:
        if not self._loaders or self._loading:
            return
        with self._lock:
            self._loading = True
            try:
                while self._loaders:
                    self._loaders.pop(0)(self)
            finally:
                self._loading = False

    def register(self, node_type: NodeType) -> NodeType:
        """Add a type. Registering the same name and version again replaces it (cell re-runs),
        unless the existing one comes from another module: then pick another name."""
        self._load()
        versions = self._types.setdefault(node_type.name, {})
        old = versions.get(node_type.version)
        if old is not None and old.module != node_type.module and not _replaceable(old, node_type):
            raise NodeTypeError(
                f"node type {node_type.name!r} version {node_type.version} is already registered "
                f"by {old.module or 'another module'}; give yours another name, "
                f"e.g. @cnb.node(name={node_type.name + '_' + (node_type.module or 'custom')!r})"
            )
        versions[node_type.version] = node_type
        return node_type

    def unregister(self, name: str, version: int | None = None) -> None:
        self._load()
        if version is None:
            self._types.pop(name, None)
        else:
            self._types.get(name, {}).pop(version, None)

    def find(self, name: str, version: int | None = None) -> NodeType | None:
        if self._loaders:
            self._load()
        versions = self._types.get(name)
        if not versions:
            return None
        if version is not None:
            return versions.get(version)
        if len(versions) == 1:
            for only in versions.values():
                return only
        return versions[max(versions)]

    def get(self, name: str, version: int | None = None) -> NodeType:
        found = self.find(name, version)
        if found is not None:
            return found
        raise NodeTypeError(self.unknown_message(name, version))

    def unknown_message(self, name: str, version: int | None = None) -> str:
        versions = self._types.get(name)
        if versions:
            return (
                f"node type {name!r} has no version {version}; registered versions: "
                f"{', '.join(map(str, sorted(versions)))}"
            )
        close = self.closest(name)
        guess = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        return (
            f"unknown node type {name!r}{guess}; register one with @cnb.node on a function, "
            "or install a package that provides it (entry-point group 'conductor_nb.nodes')"
        )

    def closest(self, name: str, n: int = 3) -> list[str]:
        return difflib.get_close_matches(name, self.names(), n=n, cutoff=0.5)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._types)

    def versions(self, name: str) -> list[int]:
        self._load()
        return sorted(self._types.get(name, {}))

    def __iter__(self) -> Iterator[NodeType]:
        """The newest version of every type, by name."""
        self._load()
        for name in sorted(self._types):
            versions = self._types[name]
            if versions:
                yield versions[max(versions)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None

    def copy(self) -> Registry:
        self._load()
        return Registry({k: dict(v) for k, v in self._types.items()})


def _replaceable(old: NodeType, new: NodeType) -> bool:
    """Notebook cells live in ``__main__``; a redefinition there replaces the old one."""
    return old.category == "function" and new.category == "function"


registry = Registry()
"""The default registry: built-in node types, ``@cnb.node`` functions and plugins."""


class _Skip:
    """Returned on an output port, it skips the nodes that read that port (``if`` branches)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SKIP"

    def __reduce__(self) -> str:
        return "SKIP"


SKIP: Any = _Skip()
