"""Control nodes: ``if``, ``delay``, ``loop``, ``parallel`` and ``group``.

``if`` evaluates a sandboxed condition and passes its input on the ``true`` or
``false`` port; the other port carries SKIP, so only the taken branch runs.
``loop``, ``parallel`` and ``group`` run sub-blueprints (see ``_bodies``) as
children of the node's run, so each iteration's nodes are visible in the run
record as ``loop[2].inner``.

A body sees the params of the run around it (read-only, so ``-p`` steers nodes
inside bodies), its own declared params, and what the container passes: a
``loop`` or ``parallel`` body reads ``params.item`` (the item; in a while loop,
the last result), ``params.index`` (the iteration, from 0) and ``params.input``
(the container's input); its entry nodes also get the item as their input.
Names a node inside the body defines for itself keep their own meaning:
edit-fields' ``{{ index }}`` is a record's position in that node's input, not
the loop's iteration. Conditions (``if``, a while loop) read ``params`` too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from conductor_nb.model.table import Table
from conductor_nb.model.types import SKIP, Port
from conductor_nb.nodes.builtin import _bodies, _limits
from conductor_nb.nodes.builtin._define import define, is_given_empty, param, raw_value

BODY = param(
    "body",
    "dict",
    None,
    "the sub-blueprint run per item (nodes, edges, outputs); its templates and expressions "
    "read the outer run's params, params.item (the item), params.index (the iteration, from "
    "0) and params.input (this node's input), and nodes with nothing connected get the item "
    "as their input",
)

# ---------------------------------------------------------------------------- if


IF_NAMES = ("input", "value", "params")
LOOP_NAMES = ("index", "result", "item", "input", "params")


def if_node(input: Any = None, condition: str = "", *, ctx: Any = None) -> dict[str, Any]:
    """Pass the input on ``true`` or ``false``; the other branch is skipped."""
    names = {"input": input, "value": input, "params": _params_of(ctx)}
    with _limits.budget(condition, 5.0):
        taken = bool(_limits.evaluate(condition, names))
    return {
        "output": taken,
        "true": input if taken else SKIP,
        "false": SKIP if taken else input,
    }


def _check_condition(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    condition = values.get("condition")
    if is_given_empty(values, "condition"):
        return [("condition", "condition is empty: if needs one, e.g. input.total > 100")]
    if isinstance(condition, str) and "{{" not in condition:
        problem = _limits.check(condition)
        if problem:
            return [("condition", problem)]
    return []


IF = define(
    "if",
    if_node,
    category="control",
    description="Branch on a sandboxed condition over input: the input goes on 'true' or "
    "'false', and the nodes reading the other port are skipped.",
    outputs=[
        Port("true", description="the input, when true"),
        Port("false", description="the input, when false"),
    ],
    params=[
        param(
            "condition",
            "code",
            "",
            "an expression over input (also named value) and params",
            required=True,
            names=IF_NAMES,
        )
    ],
    output_type="bool",
    output_mode="mapping",
    example={"type": "if", "params": {"input": {"total": 150}, "condition": "input.total > 100"}},
    validate=_check_condition,
    takes_context=True,
    beside_engine=True,
)


def _params_of(ctx: Any) -> dict[str, Any]:
    """The run's params as a condition sees them (a copy: expressions cannot change them)."""
    return dict(getattr(ctx, "params", None) or {})


# ------------------------------------------------------------------------- delay


async def delay(input: Any = None, seconds: float = 1.0) -> Any:
    """Wait, then pass the input on unchanged."""
    await asyncio.sleep(max(0.0, float(seconds)))
    return input


DELAY = define(
    "delay",
    delay,
    category="control",
    description="Wait some seconds, then pass the input on (demos, rate limits).",
    params=[param("seconds", "float", 1.0, "how long to wait", minimum=0)],
    example={"type": "delay", "params": {"seconds": 0.5}},
    beside_engine=True,
)

# -------------------------------------------------------------------------- pass


def pass_through(input: Any = None) -> Any:
    """Pass the input on unchanged."""
    return input


PASS = define(
    "pass",
    pass_through,
    category="control",
    description="Pass the input on unchanged (the entry point of loop and parallel bodies).",
    example={"type": "pass", "params": {"input": [1, 2, 3]}},
    beside_engine=True,
)

# -------------------------------------------------------------------------- loop


async def _run_body(ctx: Any, body: Any, prefix: str, passed: dict[str, Any]) -> Any:
    blueprint, values = _bodies.build(ctx, body, ctx.node_id, passed, entry="item")
    return _bodies.result_of(await ctx.run_blueprint(blueprint, params=values, prefix=prefix))


def _too_many(node: str, bound: int) -> RuntimeError:
    return RuntimeError(
        f"{node} reached its bound of {bound} iterations; raise maxIterations if that is "
        "intended, or set onLimit: stop to keep what was collected"
    )


def _at_limit(ctx: Any, on_limit: str, bound: int, why: str) -> None:
    """At maxIterations: fail (onLimit: fail), or log a warning and stop (onLimit: stop)."""
    if on_limit != "stop":
        raise _too_many(ctx.node_id, bound)
    ctx.log(f"stopped after maxIterations={bound} iterations, {why} (onLimit: stop)", "WARNING")


async def loop(
    ctx: Any,
    input: Any = None,
    mode: str = "forEach",
    items: Any = None,
    times: int = 0,
    condition: str = "",
    collectResults: bool = True,
    maxIterations: int = 1000,
    onLimit: str = "fail",
    body: Any = None,
) -> Any:
    """Run the body per item (forEach), n times (times) or while a condition holds (while)."""
    body = raw_value(ctx, "body", body)
    node = ctx.node_id
    results: list[Any] = []
    last: Any = input
    if mode == "while":
        index = 0
        while _holds(condition, index, last, input, ctx):
            if index >= maxIterations:
                _at_limit(ctx, onLimit, maxIterations, "the condition still true")
                break
            passed = {"item": last, "index": index, "input": input}
            last = await _run_body(ctx, body, f"{node}[{index}]", passed)
            results.append(last)
            index += 1
        return results if collectResults else last
    sequence = (
        list(range(times)) if mode == "times" else _as_list(items if items is not None else input)
    )
    if len(sequence) > maxIterations:
        left = f"{len(sequence) - maxIterations} of {len(sequence)} not run"
        _at_limit(ctx, onLimit, maxIterations, left)
        sequence = sequence[:maxIterations]
    for index, item in enumerate(sequence):
        passed = {"item": item, "index": index, "input": input}
        last = await _run_body(ctx, body, f"{node}[{index}]", passed)
        results.append(last)
    return results if collectResults else last


def _holds(condition: str, index: int, last: Any, input: Any, ctx: Any) -> bool:
    with _limits.budget(condition, 5.0):
        names = {
            "index": index,
            "result": last,
            "item": last,
            "input": input,
            "params": _params_of(ctx),
        }
        return bool(_limits.evaluate(condition, names))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | tuple | Table):
        return list(value)  # a table: its records
    if isinstance(value, Mapping):
        return [value]
    raise TypeError(f"expected a list of items, got a {type(value).__name__}")


def _check_loop(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = _bodies.check_body(values.get("body"))
    mode = values.get("mode", "forEach")
    condition = values.get("condition")
    if mode == "while":
        if not condition:
            problems.append(("condition", "a while loop needs a condition over index and result"))
        elif isinstance(condition, str) and (problem := _limits.check(condition)):
            problems.append(("condition", problem))
    if mode == "times" and not values.get("times"):
        problems.append(("times", "a times loop needs times: the number of iterations"))
    return problems


LOOP = define(
    "loop",
    loop,
    category="control",
    description="Run a body sub-blueprint for each item, n times, or while a condition holds; "
    "collect the results. Inside the body, templates and expressions read the outer run's "
    "params, params.item (the item; in a while loop, the last result), params.index (the "
    "iteration, from 0) and params.input (the loop's input); edit-fields' own {{ index }} in "
    "the body is a record's position, not the iteration. Iterations show in the run record "
    "as loop[i].node.",
    inputs=[
        Port("items", type="list", default=None, description="forEach: the items (else the input)")
    ],
    params=[
        param("mode", "str", "forEach", "how to iterate", choices=("forEach", "times", "while")),
        param("times", "int", 0, "times: how many iterations", minimum=0),
        param(
            "condition",
            "code",
            "",
            "while: expression over index, result (also named item), input and params",
            names=LOOP_NAMES,
        ),
        param("collectResults", "bool", True, "output every iteration's result (else the last)"),
        param("maxIterations", "int", 1000, "the most iterations (see onLimit)", minimum=1),
        param(
            "onLimit",
            "str",
            "fail",
            "at maxIterations: fail the node, or stop and output what was collected (a warning "
            "in the node's logs)",
            choices=("fail", "stop"),
        ),
    ],
    raw=[BODY],
    example={
        "type": "loop",
        "params": {
            "mode": "forEach",
            "items": [1, 2, 3],
            "body": {
                "nodes": {
                    "double": {
                        "type": "transform",
                        "params": {"operation": "map", "expression": "item * 2"},
                    }
                }
            },
        },
    },
    validate=_check_loop,
    takes_context=True,
    beside_engine=True,
    side_effects=True,
)

# ---------------------------------------------------------------------- parallel


async def _settle(
    ctx: Any, body: Any, index: int, item: Any, input: Any, limit: float | None
) -> tuple[int, bool, Any]:
    passed = {"item": item, "index": index, "input": input}
    try:
        async with asyncio.timeout(limit):
            return index, True, await _run_body(ctx, body, f"{ctx.node_id}[{index}]", passed)
    except TimeoutError:
        return index, False, TimeoutError(f"item {index} timed out after {limit:g}s")
    except Exception as exc:  # settled as a failure; CancelledError still propagates
        return index, False, exc


def _settled(index: int, ok: bool, value: Any) -> dict[str, Any]:
    if ok:
        return {"index": index, "status": "fulfilled", "value": value}
    return {"index": index, "status": "rejected", "error": f"{type(value).__name__}: {value}"}


async def _gather(
    ctx: Any, items: list[Any], opts: Mapping[str, Any], body: Any, input: Any
) -> tuple[list[tuple[int, bool, Any]], Any]:
    """Run every item (bounded); stop early for race wins and fail-fast failures."""
    gate = asyncio.Semaphore(max(1, opts["concurrency"]))
    done: list[tuple[int, bool, Any]] = []
    stop: Any = None

    async def one(index: int, item: Any) -> tuple[int, bool, Any]:
        async with gate:
            return await _settle(ctx, body, index, item, input, opts["timeout"])

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(i, item)) for i, item in enumerate(items)]
        for next_done in asyncio.as_completed(tasks):
            index, ok, value = await next_done
            done.append((index, ok, value))
            race_won = opts["strategy"] == "race" and ok
            failed_fast = opts["strategy"] == "all" and opts["failFast"] and not ok
            if race_won or failed_fast:
                stop = (index, ok, value)
                for task in tasks:
                    task.cancel()
                break
    return done, stop


async def parallel(
    ctx: Any,
    input: Any = None,
    items: Any = None,
    concurrency: int = 4,
    strategy: str = "all",
    failFast: bool = True,
    timeout: float | None = None,  # noqa: ASYNC109 (a node param: per item, enforced below)
    totalTimeout: float | None = None,
    maintainOrder: bool = True,
    body: Any = None,
) -> Any:
    """Run the body over items concurrently: all, race (first success) or allSettled."""
    body = raw_value(ctx, "body", body)
    sequence = _as_list(items if items is not None else input)
    opts = {
        "concurrency": concurrency,
        "strategy": strategy,
        "failFast": failFast,
        "timeout": timeout,
    }
    try:
        async with asyncio.timeout(totalTimeout):
            done, stop = await _gather(ctx, sequence, opts, body, input)
    except TimeoutError:
        raise TimeoutError(
            f"parallel: not finished within totalTimeout={totalTimeout:g}s"
        ) from None
    if strategy == "race":
        if stop is None:
            errors = "; ".join(f"item {i}: {v}" for i, _, v in sorted(done, key=lambda d: d[0]))
            raise RuntimeError(f"race: every item failed ({errors})")
        return stop[2]
    if maintainOrder:
        done.sort(key=lambda d: d[0])
    if strategy == "allSettled":
        return [_settled(*d) for d in done]
    failures = [(i, v) for i, ok, v in done if not ok]
    if failures:
        first = failures[0][1]
        detail = "; ".join(f"item {i}: {type(v).__name__}: {v}" for i, v in failures)
        raise RuntimeError(f"{len(failures)} of {len(sequence)} items failed: {detail}") from first
    return [value for _, _, value in done]


def _check_parallel(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    return _bodies.check_body(values.get("body"))


PARALLEL = define(
    "parallel",
    parallel,
    category="control",
    description="Run a body sub-blueprint over a list concurrently: strategy all, race or "
    "allSettled; failFast, per-item and total timeouts, results in order or as they finish.",
    inputs=[Port("items", type="list", default=None, description="the items (else the input)")],
    params=[
        param("concurrency", "int", 4, "items running at once", minimum=1),
        param(
            "strategy",
            "str",
            "all",
            "all: every item must succeed; race: the first success; allSettled: a status per item",
            choices=("all", "race", "allSettled"),
        ),
        param("failFast", "bool", True, "all: cancel the rest at the first failure"),
        param("timeout", "float", None, "seconds per item", minimum=0),
        param("totalTimeout", "float", None, "seconds for the whole node", minimum=0),
        param("maintainOrder", "bool", True, "results in item order (else completion order)"),
    ],
    raw=[BODY],
    example={
        "type": "parallel",
        "params": {
            "items": [1, 2, 3],
            "concurrency": 2,
            "body": {
                "nodes": {
                    "wait": {"type": "delay", "params": {"seconds": 0.1}},
                    "square": {
                        "type": "transform",
                        "params": {"operation": "map", "expression": "item * item"},
                    },
                },
                "edges": ["wait.output -> square.input"],
            },
        },
    },
    validate=_check_parallel,
    takes_context=True,
    beside_engine=True,
    side_effects=True,
)

# ------------------------------------------------------------------------- group


async def group(
    ctx: Any,
    input: Any = None,
    name: str = "",
    params: dict[str, Any] | None = None,
    blueprint: Any = None,
) -> dict[str, Any]:
    """Run an embedded or stored sub-blueprint with its own params; output its outputs."""
    doc = raw_value(ctx, "blueprint", blueprint)
    if doc is None:
        if not name:
            raise ValueError("group needs a blueprint (embedded) or a name (stored)")
        doc = ctx.load_blueprint(name)
    passed = dict(params or {})
    if input is not None:
        passed.setdefault("input", input)
    entry = "input" if input is not None else None
    sub, values = _bodies.build(ctx, doc, ctx.node_id, passed, entry=entry)
    return dict(await ctx.run_blueprint(sub, params=values, prefix=ctx.node_id))


def _check_group(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    if values.get("blueprint") is None and not values.get("name"):
        return [("blueprint", "group needs an embedded blueprint or the name of a stored one")]
    if values.get("blueprint") is not None:
        return [("blueprint", m) for _, m in _bodies.check_body(values["blueprint"])]
    return []


GROUP = define(
    "group",
    group,
    category="control",
    description="Run a sub-blueprint (embedded, or stored by name) with its own params; it "
    "also sees the outer run's params; its outputs are this node's output; inner nodes show "
    "as group.inner.",
    params=[
        param("name", "str", "", "a stored blueprint's name (instead of an embedded one)"),
        param("params", "dict", {}, "the sub-blueprint's params (its inputs)"),
    ],
    raw=[param("blueprint", "dict", None, "the embedded sub-blueprint")],
    output_type="dict",
    example={
        "type": "group",
        "params": {
            "params": {"amounts": [120, 80, 300]},
            "blueprint": {
                "params": {"amounts": {"default": []}},
                "nodes": {
                    "total": {
                        "type": "transform",
                        "params": {
                            "operation": "reduce",
                            "expression": "acc + item",
                            "initial": 0,
                            "input": "{{ params.amounts }}",
                        },
                    },
                    "largest": {
                        "type": "transform",
                        "params": {
                            "operation": "sort",
                            "direction": "desc",
                            "input": "{{ params.amounts }}",
                        },
                    },
                },
                "outputs": {"total": "total.output", "largest": "largest.output"},
            },
        },
    },
    validate=_check_group,
    takes_context=True,
    beside_engine=True,
    side_effects=True,
)

NODE_TYPES = [IF, DELAY, PASS, LOOP, PARALLEL, GROUP]
