"""``code``: run a piece of JavaScript on the node's input and output what it returns.

The code runs in the sandbox of :mod:`conductor_nb.nodes.js` (V8 through the
``js`` extra): no files, network or processes, a time limit and a heap cap, values
in and out as JSON. It sees ``input`` (also named ``data``, the name the desktop
app's code nodes use) and ``params`` (the run's params), and is an expression
(``input.length``), a function of the input (``rows => rows.length``) or a function
body that returns (``const n = data.length; return {count: n};``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conductor_nb.nodes import js
from conductor_nb.nodes.builtin._define import define, is_given_empty, param

LANGUAGES = ("javascript",)


def code(
    input: Any = None,
    *,
    ctx: Any = None,
    code: str = "",
    language: str = "javascript",
    time_limit: float = js.DEFAULT_TIME_LIMIT,
    memory_limit: int = js.DEFAULT_MEMORY_LIMIT,
) -> Any:
    """Run ``code`` over ``input`` and return its result."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; languages: {', '.join(LANGUAGES)}")
    params = dict(getattr(ctx, "params", None) or {})
    return js.run_code(
        code,
        input,
        params=params,
        time_limit=time_limit,
        memory_limit=memory_limit,
        label="code (param 'code')",
    )


def check_js(values: Mapping[str, Any], name: str, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """Problems with the JavaScript in param ``name``: the extra is missing, or a syntax error."""
    source = values.get(name)
    if not isinstance(source, str) or "{{" in source:
        return []
    if not js.is_available():
        return [(name, js.missing_extra(f"param {name!r}"))]
    problem = js.check(source, names)
    return [(name, f"JavaScript syntax error: {problem}")] if problem else []


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    if is_given_empty(values, "code"):
        return [("code", "code is empty: write an expression, a function or a function body")]
    return check_js(values, "code", js.CODE_NAMES)


CODE = define(
    "code",
    code,
    category="data",
    description="Run JavaScript on the input in a sandbox (the js extra: no files, network or "
    "processes; time and memory limits; values in and out as JSON). The code sees input (also "
    "named data) and params; it is an expression, a function of the input, or a function body "
    "that returns the output. setTimeout and Promises are refused: return the value itself.",
    params=[
        param("code", "code", "", "the JavaScript", required=True),
        param("language", "str", "javascript", "the code's language", choices=LANGUAGES),
        param("time_limit", "float", js.DEFAULT_TIME_LIMIT, "seconds for the code", minimum=0),
        param(
            "memory_limit",
            "int",
            js.DEFAULT_MEMORY_LIMIT,
            "bytes of JavaScript heap the code may use (its input's size is added)",
            minimum=1_000_000,
        ),
    ],
    example={
        "type": "code",
        "params": {
            "input": [{"amount": "2.5"}, {"amount": "4"}],
            "code": "const total = data.reduce((s, r) => s + parseFloat(r.amount), 0);\n"
            "return {total, count: data.length};",
        },
    },
    validate=_check,
    takes_context=True,
    side_effects=True,
)

NODE_TYPES = [CODE]
