"""Atomiton node types and params -> conductor_nb node types and params.

Every param of every node ends in exactly one of three places: mapped to a param
or setting of ours (renamed, converted: milliseconds become seconds, ``utf8``
becomes ``utf-8``, ``{{$now}}`` becomes ``{{ now.isoformat() }}``), accounted for
as information with no effect here (the UI's ``inputType``, the ports' data types),
or a located problem ("nodes[4].parameters.blendMode: no equivalent"). Nothing is
dropped silently.

Types: ``csv-reader``/``csvReader`` -> ``spreadsheet``; ``fileSystem`` ->
``file-system``; ``image-composite``/``imageComposite`` -> ``image``; a
``transform`` with ``transformFunction`` stays a ``transform`` whose expression is
JavaScript (``language: javascript``); a ``transform`` with a whole-input
``expression`` or ``code`` (``return data.filter(...)``) and a ``code`` node
become our ``code`` node. ``loop`` and ``parallel`` are mapped here and given
their bodies by ``lift``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from conductor_nb.errors import ProblemList
from conductor_nb.model.atomiton.shapes import RawNode

CAMEL = {
    "csvReader": "csv-reader",
    "fileSystem": "file-system",
    "imageComposite": "image-composite",
    "editFields": "edit-fields",
    "httpRequest": "http-request",
    "shellCommand": "shell-command",
}
PATH_PARAMS = ("path", "overlay", "output_path", "destination", "cwd")
_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}", re.S)
_DOLLAR = re.compile(r"\$([A-Za-z_]\w*)")
_BARE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
OUR_NAMES = {"params", "inputs", "now", "run", "item", "index", "env"}


@dataclass
class Options:
    path_map: dict[str, str] = field(default_factory=dict)
    node_timeout: float | None = None  # seconds, from settings.runtime.timeout
    retries: int = 1  # the app's group runner: 1 retry by default


@dataclass
class Converted:
    """One node, converted: the native id, type, params, settings, and where each came from."""

    raw: RawNode
    id: str
    kind: str  # the Atomiton type, canonical (csv-reader, file-system, ...)
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)  # native param -> Atomiton path
    settings: dict[str, Any] = field(default_factory=dict)
    left: dict[str, Any] = field(default_factory=dict)  # Atomiton params not yet handled

    def has(self, key: str) -> bool:
        return key in self.left

    def take(self, key: str, default: Any = None) -> Any:
        return self.left.pop(key, default)

    def put(self, native: str, value: Any, source: str | None = None) -> None:
        self.params[native] = value
        where = self.raw.param_paths.get(source or native)
        if where:
            self.paths[native] = where

    def move(self, key: str, native: str | None = None, conv: Callable[[Any], Any] | None = None):
        if key in self.left:
            value = self.left.pop(key)
            self.put(native or key, conv(value) if conv else value, key)

    def ignore(self, *keys: str) -> None:
        for key in keys:
            self.left.pop(key, None)

    def where(self, key: str) -> str:
        return self.raw.param_paths.get(key, f"{self.raw.path}.parameters.{key}")


class Mapper:
    """Maps one node at a time, collecting located problems and notes."""

    def __init__(self, problems: ProblemList, options: Options) -> None:
        self.problems = problems
        self.options = options
        self.notes: list[str] = []

    def node(self, raw: RawNode, native_id: str) -> Converted | None:
        kind = CAMEL.get(raw.type, raw.type)
        handler = _HANDLERS.get(kind)
        if handler is None:
            known = ", ".join(sorted(_HANDLERS))
            self.problems.add(
                f"{raw.path}.type",
                f"node {raw.id!r} has type {raw.type!r}, which has no conductor_nb equivalent",
                f"Atomiton types converted: {known}",
            )
            return None
        node = Converted(raw, native_id, kind, kind, left=dict(raw.params))
        handler(self, node)
        for key in list(node.left):
            self.problems.add(
                node.where(key),
                f"{kind} param {key!r} has no equivalent in conductor_nb's "
                f"{node.type} node (value {node.left[key]!r:.60})",
            )
        self._paths(node)
        if self.options.node_timeout and "timeout" not in node.settings:
            node.settings["timeout"] = self.options.node_timeout
        node.settings.setdefault("retries", self.options.retries)
        return node

    # ------------------------------------------------------------------ helpers

    def template(self, node: Converted, key: str, value: Any, *, records: bool = False) -> Any:
        """``{{$now}}``, ``{{$input}}``, ``{{$json.x}}``, ``{{$vars.x}}`` in our names."""
        if isinstance(value, Mapping):
            return {
                k: self.template(node, f"{key}.{k}", v, records=records) for k, v in value.items()
            }
        if isinstance(value, list):
            return [
                self.template(node, f"{key}[{i}]", v, records=records) for i, v in enumerate(value)
            ]
        if not isinstance(value, str) or "{{" not in value:
            return value

        def one(match: re.Match[str]) -> str:
            return "{{ " + self._expression(node, key, match.group(1), records) + " }}"

        return _TEMPLATE.sub(one, value)

    def _expression(self, node: Converted, key: str, inner: str, records: bool) -> str:
        def name(match: re.Match[str]) -> str:
            word = match.group(1)
            if word == "now":
                return "now.isoformat()"
            if word == "input":
                return "inputs.input"
            if word == "json":
                return "item" if records else "inputs.input"
            if word in ("vars", "variables", "params"):
                return "params"
            self.problems.add(
                node.where(key.split(".")[0].split("[")[0]),
                f"the template name ${word} in {inner!r} has no equivalent",
                "names converted: $now, $input, $json, $vars (and $variables, $params)",
            )
            return word

        converted = _DOLLAR.sub(name, inner)
        if records and _BARE.fullmatch(converted) and converted.split(".")[0] not in OUR_NAMES:
            return f"item.{converted}"  # the app renders edit-fields values over the record
        return converted

    def _paths(self, node: Converted) -> None:
        for key in PATH_PARAMS:
            value = node.params.get(key)
            if isinstance(value, str) and value:
                node.params[key] = self.remap(value)
                if PurePosixPath(node.params[key]).is_absolute():
                    self.notes.append(
                        f"{node.paths.get(key, node.raw.path)}: absolute path {value!r}: it must "
                        "lie inside the file roots (--file-root DIR, or settings={'file_roots': "
                        f"[...]}}), or be remapped (--path-map {_top(value)}=./{_top(value)[1:]})"
                    )

    def remap(self, path: str) -> str:
        for prefix, replacement in sorted(
            self.options.path_map.items(), key=lambda kv: -len(kv[0])
        ):
            prefix = prefix.rstrip("/") or "/"
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                rest = path[len(prefix) :].lstrip("/")
                return str(PurePosixPath(replacement) / rest) if rest else replacement
        return path


def _top(path: str) -> str:
    parts = PurePosixPath(path).parts
    return "/" + parts[1] if len(parts) > 1 else path


def seconds(ms: Any) -> Any:
    """The app's milliseconds as our seconds."""
    return ms / 1000 if isinstance(ms, int | float) and not isinstance(ms, bool) else ms


def _encoding(value: Any) -> Any:
    return {"utf8": "utf-8", "utf16": "utf-16", "ascii": "ascii"}.get(value, value)


# ---------------------------------------------------------------------- types


def _edit_fields(m: Mapper, n: Converted) -> None:
    if n.has("values"):
        n.put("values", m.template(n, "values", n.take("values"), records=True), "values")
    n.move("keepOnlySet")


def _transform(m: Mapper, n: Converted) -> None:
    if not n.has("transformFunction") and (n.has("expression") or n.has("code")):
        _code(m, n)  # JavaScript over the whole input (return data.filter(...)): a code node
        return
    n.ignore("inputType", "outputType", "data")
    operation = n.take("operation", "map")
    n.put("operation", operation, "operation")
    function = n.take("transformFunction")
    if function is None and operation in ("map", "filter", "reduce"):
        function = "item => item"  # the app's default
    if function is not None:
        if operation == "reduce":  # the app calls the function with one {acc, item, index}
            function = f"(acc, item, index) => ({str(function).strip()})({{acc, item, index}})"
        n.put("expression", function, "transformFunction")
        n.put("language", "javascript")
    n.move("sortKey", "key")
    n.move("groupKey", "key")
    n.move("sortDirection", "direction")
    n.move("flattenDepth", "depth")
    n.move("limitCount", "count")
    n.move("skipCount", "count")
    n.move("sliceStart", "start")
    n.move("sliceEnd", "end")
    n.move("reduceInitial", "initial", _initial)


def _initial(value: Any) -> Any:
    import json

    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _code(m: Mapper, n: Converted) -> None:
    n.type = "code"
    key = next(k for k in ("code", "expression", "transformFunction") if n.has(k))
    source = str(n.take(key))
    name = n.take("inputParams")
    if isinstance(name, str) and name.strip() and name.strip() not in ("data", "input"):
        source = f"const {name.strip()} = input;\n{source}"
    if n.take("async") is True:
        m.problems.add(
            n.where("async"),
            "async code has no equivalent: code runs synchronously and returns its result",
        )
    n.put("code", source, key)
    n.ignore("inputType", "outputType", "returnType", "language", "operation", "timeout")


def _spreadsheet(m: Mapper, n: Converted) -> None:
    n.type = "spreadsheet"
    n.move("filePath", "path")
    n.move("path")
    n.move("hasHeaders", "headers")
    n.move("delimiter")
    n.move("encoding", conv=_encoding)
    n.move("sheetName", "sheet")
    n.move("sheetIndex", "sheet")
    n.move("range")
    n.move("skipEmptyLines", "skipEmpty")
    n.move("operation")
    if n.has("format") and n.left["format"] in ("csv", "xlsx"):
        n.move("format")


def _file_system(m: Mapper, n: Converted) -> None:
    n.type = "file-system"
    n.move("operation")
    n.move("filePath", "path")
    n.move("path")
    if n.has("content"):
        n.put("content", m.template(n, "content", n.take("content")), "content")
    n.move("encoding", conv=_encoding)
    n.move("createDirectories")
    n.move("createDirectory", "createDirectories")
    n.move("overwrite")
    n.move("recursive")
    n.move("pattern")
    for key in ("destination", "targetPath", "newPath"):
        n.move(key, "destination")
    n.ignore("includeStats")  # our entries always carry type and size


def _image(m: Mapper, n: Converted) -> None:
    n.type = "image"
    operation = n.take("operation", "resize")
    if operation == "watermark":
        n.move("watermarkPath", "overlay")
        n.move("position")
        n.move("opacity")
        n.move("scale")
        n.move("margin")
    elif operation in ("overlay", "composite", "merge", "blend") and n.has("images"):
        images = n.left["images"]
        if isinstance(images, list) and len(images) == 2:
            n.take("images")
            n.put("path", images[0], "images")
            n.put("overlay", images[1], "images")
            operation = "blend" if operation == "blend" else "watermark"
            n.move("position")
            n.move("opacity")
            n.params.setdefault("scale", 1.0)
    n.put("operation", operation, "operation")
    n.move("path")  # a flow exported by conductor_nb names the image it reads
    n.move("width")
    n.move("height")
    n.move("maintainAspectRatio", "keepAspect")
    n.move("quality")
    n.move("format", conv=lambda f: str(f).upper())
    n.move("output", "output_path")
    if n.has("fit") and n.left["fit"] in ("contain", "inside", "fill"):
        n.put("keepAspect", n.take("fit") != "fill", "fit")
    if operation not in OUR_IMAGE_OPERATIONS:
        m.problems.add(
            n.where("operation"),
            f"image operation {operation!r} has no equivalent",
            f"operations of conductor_nb's image node: {', '.join(OUR_IMAGE_OPERATIONS)}",
        )


OUR_IMAGE_OPERATIONS = (
    "resize",
    "convert",
    "composite",
    "blend",
    "grayscale",
    "blur",
    "sharpen",
    "quality",
    "watermark",
)


def _loop(m: Mapper, n: Converted) -> None:
    n.type = "loop"
    mode = n.take("loopType", "forEach")
    n.put("mode", mode, "loopType")
    n.move("count", "times")
    n.move("maxIterations")
    n.move("collectResults")
    n.move("array", "items")
    if n.has("iterateOver"):
        field_name = n.take("iterateOver")
        n.put("items", "{{ inputs.input." + str(field_name) + " }}", "iterateOver")
    if n.has("breakOnError"):
        n.settings["breakOnError"] = n.take("breakOnError")
    if n.has("condition"):
        m.problems.add(
            n.where("condition"),
            "a while loop's JavaScript condition has no equivalent (loop conditions are "
            "expressions in conductor_nb's template language)",
            "fix: rewrite it as a template expression over index, result and input",
        )
        n.take("condition")


def _parallel(m: Mapper, n: Converted) -> None:
    n.type = "parallel"
    n.move("concurrency")
    n.move("strategy")
    n.move("failFast")
    n.move("preserveOrder", "maintainOrder")
    n.move("maintainOrder")
    n.move("timeout", "timeout", seconds)
    n.move("operationTimeout", "timeout", seconds)
    n.move("globalTimeout", "totalTimeout", seconds)


def _http(m: Mapper, n: Converted) -> None:
    n.type = "http-request"
    for key in ("url", "method", "headers", "body", "query"):
        if n.has(key):
            n.put(key, m.template(n, key, n.take(key)), key)
    n.move("timeout", conv=seconds)


def _shell(m: Mapper, n: Converted) -> None:
    n.type = "shell-command"
    n.move("program")
    if n.has("args"):
        n.put("args", m.template(n, "args", n.take("args")), "args")
    n.move("stdin")
    n.move("cwd")
    n.move("env")
    n.move("timeout", conv=seconds)
    if n.left.get("captureOutput", True) is True:
        n.ignore("captureOutput")  # output is always captured


_HANDLERS: dict[str, Callable[[Mapper, Converted], None]] = {
    "edit-fields": _edit_fields,
    "transform": _transform,
    "code": _code,
    "spreadsheet": _spreadsheet,
    "csv-reader": _spreadsheet,
    "file-system": _file_system,
    "image": _image,
    "image-composite": _image,
    "loop": _loop,
    "parallel": _parallel,
    "http-request": _http,
    "shell-command": _shell,
}
