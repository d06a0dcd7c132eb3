"""Sandboxed ``{{ templates }}`` in param values, and the expression language of ``transform``.

Jinja2's :class:`ImmutableSandboxedEnvironment` renders them: no imports, no file
access, no attribute access to Python internals (``__class__``, ``mro``...), no
mutation of the values passed in. A value that is exactly one ``{{ expr }}``
keeps its native type (a list stays a list); anything else renders to a string.

Names: ``params`` (blueprint params), ``inputs`` (the node's inputs), ``run``
(``id``, ``started_at``), ``now`` (a datetime), and ``env`` only when the run
enables it. Syntax is checked at validation time; rendering happens just
before the node runs.
"""

from __future__ import annotations

import datetime as _dt
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)
MAX_STRING = 10_000_000
MAX_RANGE = 100_000


class TemplateError(Exception):
    """A template failed to parse or render; the message says where in the template."""


class _Sandbox(ImmutableSandboxedEnvironment):
    """The sandbox, with a bounded ``range`` and a cap on string/list repetition."""

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator in ("*", "**") and _too_big(operator, left, right):
            raise SecurityError(f"expression result would be too large ({operator})")
        return super().call_binop(context, operator, left, right)


def _too_big(operator: str, left: Any, right: Any) -> bool:
    if operator == "**":
        return isinstance(right, int) and isinstance(left, int) and abs(right) > 10_000
    sized, count = (left, right) if isinstance(right, int) else (right, left)
    if isinstance(sized, str | list | tuple) and isinstance(count, int):
        return len(sized) * count > MAX_STRING
    return False


def _safe_range(*args: int) -> range:
    r = range(*args)
    if len(r) > MAX_RANGE:
        raise SecurityError(f"range too large ({len(r)} items; at most {MAX_RANGE})")
    return r


@lru_cache(maxsize=1)
def environment() -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.intercepted_binops = frozenset({"*", "**"})
    env.globals = {"range": _safe_range, "dict": dict}  # no lipsum/cycler/joiner/namespace
    env.filters["shquote"] = shquote
    return env


def shquote(value: Any) -> str:
    """``value`` as one shell word: ``{{ params.name | shquote }}`` inside an ``sh -c``
    script can never run as code, whatever the param holds."""
    return shlex.quote(value if isinstance(value, str) else str(value))


def unfiltered_expressions(text: str, allowed: frozenset[str]) -> list[str]:
    """The ``{{ expr }}`` of a template whose outermost filter is none of ``allowed``
    (described by the names it reads, for messages). Only ``{{ }}`` splices text into
    the script; ``{% if %}`` choosing between literal texts is safe."""
    try:
        tree = environment().parse(text)
    except TemplateSyntaxError:
        return []
    found = []
    for output in tree.find_all(nodes.Output):
        for expr in output.nodes:
            if isinstance(expr, nodes.TemplateData):
                continue
            if isinstance(expr, nodes.Filter) and expr.name in allowed:
                continue
            found.append(_source_of(expr))
    return found


def _source_of(expr: nodes.Node) -> str:
    """A short description of an expression: its names, dotted (``params.name``)."""
    if isinstance(expr, nodes.Getattr):
        return f"{_source_of(expr.node)}.{expr.attr}"
    if isinstance(expr, nodes.Name):
        return expr.name
    if isinstance(expr, nodes.Filter):
        return f"{_source_of(expr.node) if expr.node else '...'} | {expr.name}"
    return "{{ ... }}"


@lru_cache(maxsize=4096)  # validation asks again for every node holding it
def check_syntax(text: str) -> str | None:
    """Why ``text`` is not a valid template (with the line inside it), or None."""
    try:
        environment().parse(text)
    except TemplateSyntaxError as exc:
        where = f" (template line {exc.lineno})" if text.count("\n") else ""
        return f"bad template syntax{where}: {exc.message}"
    return None


def referenced_params(text: str) -> set[str]:
    """Blueprint param names a template reads as ``params.name`` or ``params['name']``."""
    return referenced_names(text, "params")


def referenced_names(text: str, root: str) -> set[str]:
    """Names a template reads from ``root`` (``root.name`` or ``root['name']``)."""
    return set(_referenced(text, root))


@lru_cache(maxsize=4096)  # validation asks again for every node holding it
def _referenced(text: str, root: str) -> frozenset[str]:
    try:
        tree = environment().parse(text)
    except TemplateSyntaxError:
        return frozenset()
    return frozenset(_reads(tree, root))


TEMPLATE_NAMES = ("params", "inputs", "run", "now", "env")
"""The names every template sees (``env`` only when the run enables it)."""


@dataclass(frozen=True)
class Reads:
    """What a template or an expression reads: its free names, and ``params.<name>``s."""

    names: frozenset[str]
    params: frozenset[str]


@lru_cache(maxsize=4096)  # validation asks again for every node holding it
def template_reads(text: str) -> Reads | None:
    """The free names (not set inside the template, not globals) and params a template
    reads; None when it does not parse."""
    return template_facts(text)[1]


@lru_cache(maxsize=4096)
def template_facts(text: str) -> tuple[str | None, Reads | None]:
    """What validation asks of a template, from one parse: why its syntax is wrong (as
    :func:`check_syntax` says it), or what it reads (as :func:`template_reads`)."""
    try:
        tree = environment().parse(text)
    except TemplateSyntaxError as exc:
        where = f" (template line {exc.lineno})" if text.count("\n") else ""
        return f"bad template syntax{where}: {exc.message}", None
    return None, Reads(frozenset(_free_names(tree)), frozenset(_reads(tree, "params")))


_BINDS = (
    nodes.For,
    nodes.Assign,
    nodes.AssignBlock,
    nodes.Macro,
    nodes.CallBlock,
    nodes.FilterBlock,
    nodes.With,
    nodes.Import,
    nodes.FromImport,
    nodes.Scope,
    nodes.OverlayScope,
)


def _free_names(tree: nodes.Template) -> set[str]:
    """The names a template reads from its context. Most templates bind no name of their
    own ({% set %}, {% for %}, macros...): their free names are the names they load, less
    the globals (a walk of the tree). Others get Jinja's own analysis, which generates
    the template's code and costs ten times as much."""
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}  # type: ignore[attr-defined]
    if "self" in names or any(True for _ in tree.find_all(_BINDS)):
        return set(meta.find_undeclared_variables(tree))
    return names - set(environment().globals)


@lru_cache(maxsize=4096)  # validation asks again for every node holding it
def expression_reads(expr: str) -> Reads | None:
    """The names and params a sandboxed expression (``transform``, ``if``) reads; None when
    it does not parse. An expression cannot bind names, so every name it uses is free."""
    env = environment()
    try:
        parser = Parser(env, expr, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            return None
    except TemplateSyntaxError:
        return None
    names = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load"}
    return Reads(frozenset(names - set(env.globals)), frozenset(_reads(tree, "params")))


def _reads(tree: nodes.Node, root: str) -> set[str]:
    names = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node  # type: ignore[attr-defined]
        if not (isinstance(target, nodes.Name) and target.name == root):
            continue
        if isinstance(node, nodes.Getattr):
            names.add(node.attr)
        elif isinstance(node, nodes.Getitem):
            key = node.arg
            if isinstance(key, nodes.Const) and isinstance(key.value, str):
                names.add(key.value)
    return names


def strings_in(value: Any) -> list[str]:
    """Every string inside a nested value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings_in(v)]
    return []


def has_template(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return "{{" in value or "{%" in value
    if kind is dict and not value:  # most nodes' params: checked for every node of every run
        return False
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(has_template(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_template(v) for v in value)
    return False


@lru_cache(maxsize=4096)
def _compiled_expression(expr: str) -> Any:
    return environment().compile_expression(expr, undefined_to_none=False)


@lru_cache(maxsize=4096)
def _compiled_template(text: str) -> Any:
    return environment().from_string(text)


def render_string(text: str, context: Mapping[str, Any]) -> Any:
    """Render one string; a lone ``{{ expr }}`` keeps the native type of ``expr``."""
    if "{{" not in text and "{%" not in text:
        return text
    try:
        match = _SINGLE.match(text)
        if match and "{{" not in match["expr"] and "{%" not in match["expr"]:
            return _defined(_compiled_expression(match["expr"].strip())(**context))
        return _compiled_template(text).render(**context)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"bad template syntax: {exc.message}") from None
    except UndefinedError as exc:
        raise TemplateError(
            f"{exc.message} (names available: {', '.join(sorted(context))})"
        ) from None
    except SecurityError as exc:
        raise TemplateError(f"refused by the sandbox: {exc}") from None
    except Exception as exc:
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None


def _defined(value: Any) -> Any:
    """A lone expression may evaluate to Undefined without raising: raise now, clearly."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return value


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template inside a (nested) value."""
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, Mapping):
        return {k: render_value(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(v, context) for v in value]
    return value


def expression_syntax(exc: TemplateSyntaxError) -> str:
    """Jinja's parser speaks of templates; an expression's error should not."""
    message = (exc.message or "").replace("end of template", "end of expression")
    return f"bad expression syntax: {message}"


def evaluate(expr: str, names: Mapping[str, Any]) -> Any:
    """Evaluate one sandboxed expression (``transform``'s per-item language)."""
    try:
        return _defined(_compiled_expression(expr)(**names))
    except TemplateSyntaxError as exc:
        raise TemplateError(expression_syntax(exc)) from None
    except UndefinedError as exc:
        raise TemplateError(
            f"{exc.message} (names available: {', '.join(sorted(names))})"
        ) from None
    except SecurityError as exc:
        raise TemplateError(f"refused by the sandbox: {exc}") from None


def base_context(
    params: Mapping[str, Any],
    run_id: str = "",
    started_at: Any = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "params": dict(params),
        "run": {"id": run_id, "started_at": started_at},
        "now": _dt.datetime.now(_dt.UTC),
    }
    if env is not None:
        ctx["env"] = dict(env)
    return ctx
