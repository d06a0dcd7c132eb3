"""Sandboxed JavaScript for ``transform`` (``language: javascript``) and ``code`` nodes.

The engine is V8 embedded through ``mini-racer`` (the ``js`` extra, imported
lazily). The model:

- **One fresh context per node run**, made on the module's one JavaScript thread
  (mini-racer's V8 crashed when used from several threads), so JavaScript nodes take
  turns. Nothing a run's code defines survives into another run; a context costs
  ~20 ms (the first in a process ~0.5 s, V8 starting).
- **The sandbox is the context itself.** A bare V8 context has no ``require``,
  ``process``, ``fetch``, ``XMLHttpRequest``, file system or sockets, so code can only
  compute on the values it is given. ``import()`` has no module loader behind it.
- **Values cross as JSON**, both ways: the input goes in as JSON text, the result
  comes back through ``JSON.stringify`` (``undefined`` becomes None; bytes and other
  non-JSON Python values go in as their ``str``).
- **Limits**: one deadline for the whole node (``time_limit`` seconds, every call
  gets what is left) and a cap on the V8 heap (``memory_limit`` bytes). An infinite
  loop or a runaway allocation fails the node with :class:`JsLimitError`.
- **Synchronous only**: ``setTimeout``, ``setInterval``, ``setImmediate`` and
  ``queueMicrotask`` throw (a node's result is its return value, there is no event
  loop to wait on), and a Promise result (an ``async`` function) is refused.
- ``console.log``/``info``/``warn``/``error`` are collected and printed after the
  call, so they land in the node's logs.

Source forms (the same for both node types): an expression (``item.age >= 18``), a
function (``item => item.age >= 18``, ``function (item, index) {...}``), which is then
called (with ``item, index`` per item, ``acc, item, index`` for reduce, ``input`` for
a code node), or a function body with ``return`` statements (``const t = ...; return
t;``). Every name listed for the use is in scope as a variable.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from conductor_nb._extras import require

T = TypeVar("T")
DEFAULT_TIME_LIMIT = 5.0
DEFAULT_MEMORY_LIMIT = 256_000_000
INSTALL = "pip install 'conductor-nb[js]'"

ITEM_NAMES = ("item", "index", "acc", "items", "params")
CODE_NAMES = ("input", "data", "params")

_PRELUDE = r"""
(function () {
  const refuse = (name) => function () {
    throw new Error(name + " is not available in conductor_nb's JavaScript sandbox: node " +
      "code runs synchronously and returns its result");
  };
  for (const name of ["setTimeout", "setInterval", "setImmediate", "queueMicrotask",
                      "clearTimeout", "clearInterval"]) {
    globalThis[name] = refuse(name);
  }
  const logs = [];
  const show = (v) => typeof v === "string" ? v : (() => {
    try { return JSON.stringify(v); } catch (e) { return String(v); } })();
  const log = (level) => (...args) => { logs.push(level + args.map(show).join(" ")); };
  globalThis.console = {log: log(""), info: log(""), debug: log(""),
                        warn: log("warning: "), error: log("error: ")};
  globalThis.__cnb_logs = () => JSON.stringify(logs.splice(0));
  globalThis.__cnb_compile = function (src, names) {
    try {
      return new Function(...names, "return (" + src + "\n);");
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
      try {
        return new Function(...names, src);
      } catch (e2) {
        throw /\breturn\b/.test(src) ? e2 : e;  // say what is wrong with the form meant
      }
    }
  };
  const describe = (e) => (e && e.name ? e.name + ": " + e.message : "thrown: " + show(e));
  const isPromise = (v) => v !== null && typeof v === "object" && typeof v.then === "function";
  const out = (value) => {
    if (isPromise(value)) throw new Error("the code returned a Promise (an async function?); " +
      "node code must return its result synchronously");
    const text = JSON.stringify(value === undefined ? null : value);
    return text === undefined ? "null" : text;
  };
  // per-item results (map, filter, keys) or one accumulator (reduce), in one call
  globalThis.__cnb_each = function (fn, mode, payload) {
    const {items, params, initial} = JSON.parse(payload);
    const call = (item, index, acc) => {
      let v = fn(item, index, acc, items, params);
      if (typeof v === "function") v = mode === "reduce" ? v(acc, item, index) : v(item, index);
      if (isPromise(v)) throw new Error("the code returned a Promise; return the value itself");
      return v;
    };
    let index = 0;
    try {
      if (mode === "reduce") {
        let acc = initial;
        for (; index < items.length; index++) acc = call(items[index], index, acc);
        return JSON.stringify({value: out(acc)});
      }
      const values = new Array(items.length);
      for (; index < items.length; index++) {
        const v = call(items[index], index, undefined);
        values[index] = mode === "filter" ? !!v : (v === undefined ? null : v);
      }
      return JSON.stringify({value: out(values)});
    } catch (e) {
      return JSON.stringify({error: describe(e), index: index});
    }
  };
  globalThis.__cnb_code = function (fn, payload) {
    const {input, params} = JSON.parse(payload);
    try {
      let v = fn(input, input, params);
      if (typeof v === "function") v = v(input);
      return JSON.stringify({value: out(v)});
    } catch (e) {
      return JSON.stringify({error: describe(e)});
    }
  };
})();
"""


class JsError(RuntimeError):
    """JavaScript code failed: a syntax error, a thrown error, or a value it cannot return."""


class JsLimitError(JsError):
    """JavaScript code ran past its time or memory limit."""


def is_available() -> bool:
    """Whether the ``js`` extra (mini-racer) is installed."""
    try:
        import py_mini_racer  # noqa: F401
    except ImportError:
        return False
    return True


def missing_extra(what: str) -> str:
    """The validation message for JavaScript without the extra."""
    return (
        f"{what} is JavaScript, which runs in an embedded V8 sandbox from the 'js' extra "
        f"(mini-racer), not installed here; fix: {INSTALL}"
    )


def _jsonable(value: Any) -> str:
    def fallback(v: Any) -> Any:
        if isinstance(v, Mapping):
            return dict(v)
        if isinstance(v, Sequence) and not isinstance(v, str | bytes | bytearray):
            return list(v)  # a table value reads as its records
        for attr in ("to_pylist", "tolist"):  # Arrow tables, numpy arrays
            if callable(getattr(v, attr, None)):
                return getattr(v, attr)()
        if isinstance(v, bytes | bytearray):
            return v.decode("utf-8", "replace")
        if isinstance(v, set | frozenset | tuple):
            return list(v)
        return str(v)

    return json.dumps(value, default=fallback, allow_nan=False)


class Sandbox:
    """One V8 context with the prelude, a deadline and a heap cap; close it when done."""

    def __init__(
        self,
        time_limit: float = DEFAULT_TIME_LIMIT,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        *,
        label: str = "JavaScript",
    ) -> None:
        racer = require("py_mini_racer", "js", "JavaScript in a node")
        self._racer = racer
        self.label = label
        self.time_limit = float(time_limit)
        self.memory_limit = int(memory_limit)
        self.deadline = time.monotonic() + self.time_limit
        self.logs: list[str] = []  # console output, printed by the caller (the node's thread)
        self.ctx = racer.MiniRacer()
        self._eval(_PRELUDE)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.ctx.close()

    def _eval(self, source: str) -> Any:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self._timeout()
        racer = self._racer
        try:
            return self.ctx.eval(source, timeout_sec=left, max_memory=self.memory_limit)
        except racer.JSTimeoutException:
            raise self._timeout() from None
        except racer.JSOOMException:
            raise JsLimitError(
                f"{self.label} ran out of memory (the limit is {self.memory_limit:,} bytes of "
                "V8 heap); process less data per node, or raise memory_limit"
            ) from None
        except racer.JSEvalException as exc:
            raise JsError(f"{self.label}: {_first_lines(str(exc))}") from None

    def _timeout(self) -> JsLimitError:
        return JsLimitError(
            f"{self.label} ran longer than its time limit of {self.time_limit:g} s (an "
            "endless loop?); raise time_limit if the work is really that long"
        )

    def compile(self, source: str, names: Sequence[str]) -> str:
        """Compile ``source`` into a function of ``names``; returns its global name."""
        self._eval(
            f"globalThis.__cnb_fn = __cnb_compile({json.dumps(source)}, {json.dumps(list(names))})"
        )
        return "__cnb_fn"

    def call(self, expression: str) -> Any:
        """Evaluate a prelude call that answers ``{value}`` or ``{error}`` as JSON text."""
        try:
            answer = json.loads(str(self._eval(expression)))
        finally:
            self._collect_logs()
        if "error" in answer:
            where = f" on item {answer['index']}" if "index" in answer else ""
            raise JsError(f"{self.label} failed{where}: {answer['error']}")
        return json.loads(answer["value"])

    def _collect_logs(self) -> None:
        try:
            self.logs += json.loads(str(self.ctx.eval("__cnb_logs()", timeout_sec=1)))
        except Exception:  # a context that hit its heap cap cannot answer; nothing to show
            return


_workers: ThreadPoolExecutor | None = None
_workers_lock = threading.Lock()


def _on_js_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` on this module's own thread, and wait for it.

    All V8 work happens on one long-lived thread: mini-racer 0.14 crashed the process
    when contexts were made on two threads (even one after the other), and it refuses a
    call with a timeout from a thread whose event loop is running (``await bp.arun()``
    in a notebook). So JavaScript nodes take turns; each one's time limit starts when
    its turn does. What the code printed is printed here, in the node's own thread, so
    the node's log capture sees it.
    """
    global _workers
    with _workers_lock:
        if _workers is None:
            _workers = ThreadPoolExecutor(1, thread_name_prefix="conductor-js")
    logs: list[str] = []
    try:
        return _workers.submit(fn, *args, logs=logs, **kwargs).result()
    finally:
        for line in logs:  # here, so that the node's log capture sees them
            print(line)


def each(*args: Any, **kwargs: Any) -> Any:
    """Run a source over every item (see :func:`_each`) on a JavaScript thread."""
    return _on_js_thread(_each, *args, **kwargs)


def _each(
    source: str,
    mode: str,
    items: Sequence[Any],
    *,
    params: Mapping[str, Any] | None = None,
    initial: Any = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    label: str = "JavaScript",
    logs: list[str] | None = None,
) -> Any:
    """Run ``source`` over every item in one call.

    ``mode`` ``map`` (or ``key``) gives the list of per-item values, ``filter`` a list of
    booleans, ``reduce`` the final accumulator (starting at ``initial``).
    """
    payload = _jsonable({"items": list(items), "params": dict(params or {}), "initial": initial})
    with Sandbox(time_limit, _heap(memory_limit, payload), label=label) as box:
        try:
            fn = box.compile(source, ITEM_NAMES)
            return box.call(f"__cnb_each({fn}, {json.dumps(mode)}, {json.dumps(payload)})")
        finally:
            (logs if logs is not None else []).extend(box.logs)


def run_code(*args: Any, **kwargs: Any) -> Any:
    """Run a code node's source (see :func:`_run_code`) on a JavaScript thread."""
    return _on_js_thread(_run_code, *args, **kwargs)


def _run_code(
    source: str,
    input: Any,
    *,
    params: Mapping[str, Any] | None = None,
    time_limit: float = DEFAULT_TIME_LIMIT,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    label: str = "JavaScript",
    logs: list[str] | None = None,
) -> Any:
    """Run a code node's ``source`` with ``input`` (also named ``data``) and ``params``."""
    payload = _jsonable({"input": input, "params": dict(params or {})})
    with Sandbox(time_limit, _heap(memory_limit, payload), label=label) as box:
        try:
            fn = box.compile(source, CODE_NAMES)
            return box.call(f"__cnb_code({fn}, {json.dumps(payload)})")
        finally:
            (logs if logs is not None else []).extend(box.logs)


def _heap(memory_limit: int, payload: str) -> int:
    """The heap cap: the limit for what the code makes, plus room for its parsed input."""
    return int(memory_limit) + 8 * len(payload)


def check(source: str, names: Sequence[str] = ITEM_NAMES) -> str | None:
    """Why ``source`` does not compile (None if it does); compiles only, runs nothing.

    Needs the extra: callers check :func:`is_available` first.
    """
    return _on_js_thread(_check, source, names)


def _check(source: str, names: Sequence[str], logs: list[str] | None = None) -> str | None:
    try:
        with Sandbox(time_limit=5.0, label="the code") as box:
            box.compile(source, names)
    except JsLimitError:
        return "the code took too long to compile"
    except JsError as exc:
        return str(exc).removeprefix("the code: ")
    return None


def _first_lines(text: str) -> str:
    """V8's message without its stack trace: the error line and the source excerpt."""
    lines = [line for line in text.splitlines() if line.strip()]
    error = next((line for line in lines if "Error" in line and not line.startswith(" ")), "")
    return re.sub(r"^(undefined|<anonymous>):\d+: ", "", error or (lines[0] if lines else text))


class ItemEvaluator:
    """A transform's JavaScript over a list, run in one sandbox call.

    Per-item values (map, filter, and the keys of sort, group and unique) are computed
    when it is made, so calling it with ``(item, index)`` only looks them up; reduce
    runs whole in JavaScript through :meth:`reduce`.
    """

    def __init__(
        self,
        source: str,
        operation: str,
        items: Sequence[Any],
        *,
        params: Mapping[str, Any] | None = None,
        time_limit: float = DEFAULT_TIME_LIMIT,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        self.source, self.items, self.params = source, list(items), dict(params or {})
        self.time_limit, self.memory_limit = time_limit, memory_limit
        self.label = f"JavaScript (param 'expression', operation {operation})"
        self.values: list[Any] = []
        if operation != "reduce":
            mode = "filter" if operation == "filter" else "map"
            self.values = each(source, mode, self.items, params=self.params, **self._limits())

    def __call__(self, item: Any, index: int, **names: Any) -> Any:
        return self.values[index]

    def reduce(self, initial: Any) -> Any:
        return each(
            self.source,
            "reduce",
            self.items,
            params=self.params,
            initial=initial,
            **self._limits(),
        )

    def _limits(self) -> dict[str, Any]:
        return {
            "time_limit": self.time_limit,
            "memory_limit": self.memory_limit,
            "label": self.label,
        }
