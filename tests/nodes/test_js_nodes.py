"""JavaScript in nodes: the ``code`` node, ``transform`` with ``language: javascript``,
the V8 sandbox's refusals (escapes, endless loops, huge allocations) and the missing extra."""

from __future__ import annotations

import sys
import time

import pytest

import conductor_nb as cnb
from conductor_nb.nodes import js

pytest.importorskip("py_mini_racer")


def _run_one(node_type: str, **values):
    bp = cnb.Blueprint("js")
    bp.add(node_type, id="n", **values)
    return bp.run(history=False)


def test_transform_map_filter_sort_reduce_in_javascript():
    bp = cnb.Blueprint("js")
    people = [
        {"name": "Ada", "age": 36},
        {"name": "Linus", "age": 12},
        {"name": "Grace", "age": 45},
    ]
    bp.add("transform", id="adults", input=people, operation="filter",
           expression="item => item.age >= 18", language="javascript")  # fmt: skip
    bp.add("transform", id="names", operation="map", language="javascript",
           expression="`${item.name} (${index})`")  # fmt: skip
    bp.add("transform", id="oldest", operation="sort", direction="desc", language="javascript",
           expression="item.age", input=people)  # fmt: skip
    bp.add("transform", id="total", operation="reduce", initial=0, language="javascript",
           expression="(acc, item) => acc + item.age", input=people)  # fmt: skip
    bp.connect("adults", "names.input")
    run = bp.run(history=False)
    assert run.status.value == "succeeded", run.summary()
    assert run["names"].output == ["Ada (0)", "Grace (1)"]
    assert [p["name"] for p in run["oldest"].output] == ["Grace", "Ada", "Linus"]
    assert run["total"].output == 93


def test_transform_javascript_sees_params_and_returns_one_value_for_one_record():
    bp = cnb.Blueprint("js", params={"suffix": "!"})
    bp.add("transform", id="n", input={"word": "hi"}, operation="map", language="javascript",
           expression="item.word + params.suffix")  # fmt: skip
    run = bp.run(history=False)
    assert run["n"].output == "hi!"


def test_code_node_forms_expression_function_and_body():
    rows = [{"amount": "2.5"}, {"amount": 4}, {}]
    body = (
        "// totals\nconst total = data.reduce((s, r) => s + parseFloat(r.amount || 0), 0);\n"
        "return {total, count: data.length};"
    )
    assert _run_one("code", input=rows, code=body)["n"].output == {"total": 6.5, "count": 3}
    assert _run_one("code", input=rows, code="input.length")["n"].output == 3
    assert _run_one("code", input=[1, 2], code="xs => xs.map(x => x * 10)")["n"].output == [10, 20]
    assert _run_one("code", input=None, code="undefined")["n"].output is None


def test_console_output_lands_in_the_node_logs():
    run = _run_one("code", input=[1], code="console.log('seen', {a: 1}); return 1")
    assert [line.text for line in run["n"].logs] == ['seen {"a":1}\n']


def test_a_thrown_error_names_the_item_and_the_error():
    run = _run_one("transform", input=[{"a": {"b": 1}}, {}], operation="map",
                   language="javascript", expression="item.a.b")  # fmt: skip
    error = str(run["n"].error)
    assert "operation map" in error and "on item 1" in error and "TypeError" in error


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("require('fs').readFileSync('/etc/passwd')", "require is not defined"),
        ("process.exit(1)", "process is not defined"),
        ("fetch('http://127.0.0.1:1/')", "fetch is not defined"),
        ("new XMLHttpRequest()", "XMLHttpRequest is not defined"),
        ("this.constructor.constructor('return process')().env", "process is not defined"),
        ("setTimeout(() => 1, 10)", "setTimeout is not available"),
        ("import('fs')", "returned a Promise"),
        ("async () => 1", "returned a Promise"),
    ],
)
def test_sandbox_escapes_are_refused(source, says):
    with pytest.raises(js.JsError, match=says):
        js.run_code(source, {"a": 1})


def test_an_endless_loop_stops_at_the_time_limit():
    started = time.monotonic()
    run = _run_one("code", input=None, code="while (true) {}", time_limit=0.5)
    assert run.status.value == "failed"
    assert "time limit of 0.5 s" in str(run["n"].error)
    assert time.monotonic() - started < 30


def test_a_huge_allocation_stops_at_the_memory_limit():
    source = "const a = []; while (true) a.push(new Array(1e6).fill(1));"
    run = _run_one("code", input=None, code=source, memory_limit=64_000_000, time_limit=60)
    assert run.status.value == "failed"
    assert "ran out of memory" in str(run["n"].error)


def test_each_run_gets_a_fresh_context():
    js.run_code("globalThis.leak = 42", None)
    assert js.run_code("typeof leak", None) == "undefined"


def test_validation_reports_a_syntax_error_with_its_place():
    bp = cnb.Blueprint("js")
    bp.add("code", id="broken", code="const x = ;\nreturn x")
    with pytest.raises(cnb.BlueprintError) as info:
        bp.validate()
    problem = info.value.problems[0]
    assert problem.path == "nodes.broken.params.code"
    assert "SyntaxError" in problem.message


def test_without_the_extra_validation_names_the_node_and_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "py_mini_racer", None)  # import fails as if not installed
    bp = cnb.Blueprint("js")
    bp.add("transform", id="shout", input=["a"], expression="item.toUpperCase()",
           language="javascript")  # fmt: skip
    with pytest.raises(cnb.BlueprintError) as info:
        bp.validate()
    text = str(info.value)
    assert "nodes.shout.params.expression" in text
    assert "pip install 'conductor-nb[js]'" in text


def test_many_javascript_nodes_at_once_take_turns_safely():
    bp = cnb.Blueprint("js")
    for i in range(12):
        bp.add("transform", id=f"t{i}", input=list(range(50)), operation="map",
               language="javascript", expression=f"item => item * {i}")  # fmt: skip
        bp.add("code", id=f"c{i}", input=list(range(i)), code="input.length")
    run = bp.run(history=False, concurrency=12)
    assert run.status.value == "succeeded", run.summary()
    assert [run[f"t{i}"].output[3] for i in range(12)] == [3 * i for i in range(12)]
    assert [run[f"c{i}"].output for i in range(12)] == list(range(12))


async def _from_a_running_loop():
    bp = cnb.Blueprint("js")
    bp.add("code", id="n", input=[1, 2, 3], code="data.reduce((a, b) => a + b, 0)")
    bp.validate()  # compiles the code: mini-racer refuses that on a thread with a running loop
    return await bp.arun(history=False)


def test_validation_and_runs_work_inside_a_running_event_loop():
    import asyncio

    run = asyncio.run(_from_a_running_loop())
    assert run["n"].output == 6
