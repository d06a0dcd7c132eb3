"""Engine semantics: ordering, concurrency, retries, timeouts, skips, cancel, events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading

import pytest

import conductor_nb as cnb
from conductor_nb.engine import events as ev


def make(registry, name="bp", **params) -> cnb.Blueprint:
    return cnb.Blueprint(name, registry=registry, params=params)


def fn_node(registry, fn, **kw):
    registry.register(cnb.NodeType.from_function(fn, **kw))
    return fn.__name__


def test_run_in_a_script_returns_outputs(registry) -> None:
    bp = make(registry, n=3)
    bp.add("double", id="a", x="{{ params.n }}")
    bp.add("double", id="b")
    bp.connect("a", "b.x")
    bp.outputs["result"] = "b.output"
    run = bp.run(params={"n": 5}, history=False)
    assert run.status is cnb.RunState.SUCCEEDED
    assert run.outputs == {"result": 20}
    assert run["a"].inputs == {"x": 5} and run["b"].outputs == {"output": 20}
    assert run["b"].duration is not None and run["b"].attempts == 1


def test_unknown_and_bad_params_and_options(registry) -> None:
    bp = make(registry, n=3)
    bp.add("double", id="a", x="{{ params.n }}")
    with pytest.raises(cnb.BlueprintError, match="has no param 'm'"):
        bp.run(params={"m": 1}, history=False)
    with pytest.raises(TypeError, match="unknown run option 'concurency'"):
        bp.run(concurency=2, history=False)


def test_many_input_collects_in_edge_order(registry) -> None:
    bp = make(registry)
    for i, value in enumerate([3, 1, 2]):
        bp.add("add", id=f"v{i}", a=value)
    bp.add("concat", id="c")
    for i in (2, 0, 1):
        bp.connect(f"v{i}", "c.items")
    registry.register(cnb.NodeType.from_function(lambda items: items, name="ident"))
    run = bp.run(history=False)
    assert run["c"].inputs == {"items": [2, 3, 1]}


def test_concurrency_peak_equals_the_limit(registry) -> None:
    active, peak = 0, 0
    gate = asyncio.Event()

    async def work(i: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0)
        if active >= 3:
            gate.set()
        await gate.wait()
        active -= 1
        return i

    fn_node(registry, work)
    bp = make(registry)
    for i in range(10):
        bp.add("work", id=f"w{i}", i=i)
    run = bp.run(concurrency=3, history=False)
    assert run.status is cnb.RunState.SUCCEEDED
    assert peak == 3


def test_per_type_limit(registry) -> None:
    active, peak = 0, 0

    async def limited(i: int) -> int:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        for _ in range(5):
            await asyncio.sleep(0)
        active -= 1
        return i

    fn_node(registry, limited)
    bp = make(registry)
    for i in range(8):
        bp.add("limited", id=f"l{i}", i=i)
    run = bp.run(concurrency=8, type_limits={"limited": 2}, history=False)
    assert run.status is cnb.RunState.SUCCEEDED and peak == 2


def flaky_node(registry, failures: int) -> list[int]:
    """Register 'flaky': it fails ``failures`` times with ConnectionError, then succeeds."""
    calls: list[int] = []

    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) <= failures:
            raise ConnectionError("refused")
        return x

    fn_node(registry, flaky)
    return calls


async def forever(x: int) -> int:
    """A node that runs until it is cancelled."""
    await asyncio.Event().wait()
    return x


def test_retries_then_success_with_events(registry) -> None:
    flaky_node(registry, failures=2)
    bp = make(registry)
    bp.add("flaky", id="f", x=1, retries=2, retry_delay=0)
    run = bp.run(history=False)
    assert run.status is cnb.RunState.SUCCEEDED and run["f"].attempts == 3
    kinds = [e.kind for e in run.events if getattr(e, "node_id", None) == "f"]
    assert kinds == [
        "NodeQueued",
        "NodeStarted",
        "NodeRetrying",
        "NodeStarted",
        "NodeRetrying",
        "NodeStarted",
        "NodeSucceeded",
    ]


def test_failure_skips_downstream_but_independent_branch_goes_on(registry) -> None:
    def boom(x: int) -> int:
        raise ValueError(f"bad value {x}")

    fn_node(registry, boom)
    bp = make(registry)
    bp.add("boom", id="bad", x=1, retries=1)
    bp.add("double", id="after")
    bp.connect("bad", "after.x")
    bp.add("double", id="other", x=2)
    run = bp.run(history=False)
    assert run.status is cnb.RunState.FAILED
    assert run["bad"].status is cnb.NodeState.FAILED
    assert run["after"].status is cnb.NodeState.SKIPPED
    assert run["other"].outputs == {"output": 4}
    error = run["bad"].error
    assert isinstance(error, cnb.NodeExecutionError)
    assert (error.node_id, error.attempt) == ("bad", 2)
    assert "node 'bad' (boom) failed on attempt 2/2: ValueError: bad value 1" in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert "ValueError: bad value 1" in run["bad"].traceback
    with pytest.raises(cnb.NodeExecutionError):
        run.raise_for_status()


def test_retry_on_filters_exception_types(registry) -> None:
    calls = []

    def picky(x: int) -> int:
        calls.append(x)
        raise KeyError("nope")

    fn_node(registry, picky)
    bp = make(registry)
    bp.add("picky", id="p", x=1, retries=3, retry_on=[ConnectionError])
    run = bp.run(history=False)
    assert run.status is cnb.RunState.FAILED and len(calls) == 1


def test_timeout_fails_the_attempt(registry) -> None:
    async def slow(x: int) -> int:
        await asyncio.Event().wait()
        return x

    fn_node(registry, slow)
    bp = make(registry)
    bp.add("slow", id="s", x=1, timeout=0.05, retries=1)
    run = bp.run(history=False)
    assert run["s"].status is cnb.NodeState.FAILED and run["s"].attempts == 2
    assert "timed out after 0.05s" in str(run["s"].error)


def test_disabled_node_is_skipped_with_its_downstream(registry) -> None:
    bp = make(registry)
    bp.add("double", id="a", x=1, enabled=False)
    bp.add("double", id="b")
    bp.connect("a", "b.x")
    run = bp.run(history=False)
    assert run["a"].status is cnb.NodeState.SKIPPED and run["b"].status is cnb.NodeState.SKIPPED
    assert run.status is cnb.RunState.SUCCEEDED


def test_skip_sentinel_skips_only_that_branch(registry) -> None:
    def branch(x: int) -> dict:
        return {"yes": x, "no": cnb.SKIP}

    fn_node(registry, branch, outputs=["yes", "no"])
    bp = make(registry)
    bp.add("branch", id="if", x=2)
    bp.add("double", id="t")
    bp.add("double", id="f")
    bp.connect("if.yes", "t.x")
    bp.connect("if.no", "f.x")
    run = bp.run(history=False)
    assert run["t"].outputs == {"output": 4}
    assert run["f"].status is cnb.NodeState.SKIPPED


def test_fail_fast_cancels_running_nodes(registry) -> None:
    started = threading.Event()

    async def wait_forever(x: int) -> int:
        started.set()
        await asyncio.Event().wait()
        return x

    async def fail_soon(x: int) -> int:
        while not started.is_set():
            await asyncio.sleep(0)
        raise RuntimeError("first failure")

    fn_node(registry, wait_forever)
    fn_node(registry, fail_soon)
    bp = make(registry)
    bp.add("wait_forever", id="w", x=1)
    bp.add("fail_soon", id="f", x=1)
    bp.add("double", id="later")
    bp.connect("w", "later.x")
    run = bp.run(fail_fast=True, history=False)
    assert run.status is cnb.RunState.FAILED  # a node failed; the rest was cancelled for it
    assert run["f"].status is cnb.NodeState.FAILED
    assert run["w"].status is cnb.NodeState.CANCELLED
    assert run["later"].status in (cnb.NodeState.CANCELLED, cnb.NodeState.SKIPPED)


def test_cancel_reaches_running_async_and_sync_nodes(registry) -> None:
    entered = threading.Barrier(3)
    release = threading.Event()

    async def hang_async(x: int) -> int:
        await asyncio.to_thread(entered.wait)
        await asyncio.Event().wait()
        return x

    def hang_sync(x: int) -> int:
        entered.wait()
        release.wait(10)
        return x

    fn_node(registry, hang_async)
    fn_node(registry, hang_sync)
    bp = make(registry)
    bp.add("hang_async", id="a", x=1)
    bp.add("hang_sync", id="s", x=1)
    bp.add("double", id="next")
    bp.connect("a", "next.x")
    run = bp.start(history=False)
    entered.wait(10)
    run.cancel().wait(timeout=10)
    release.set()
    assert run.status is cnb.RunState.CANCELLED
    assert {n: r.status.value for n, r in run.node_runs.items()} == {
        "a": "cancelled",
        "s": "cancelled",
        "next": "cancelled",
    }


def test_events_are_ordered_typed_and_streamable(registry) -> None:
    bp = make(registry)
    bp.add("double", id="a", x=1)
    seen: list[ev.Event] = []
    run = bp.start(history=False, paused=True)
    run.subscribe(seen.append)
    run.resume().wait()
    assert isinstance(run.events[0], ev.RunStarted)
    assert isinstance(run.events[-1], ev.RunFinished)
    assert all(isinstance(e, ev.Event) for e in seen)
    assert [e.kind for e in seen][-1] == "RunFinished"

    async def collect():
        return [e.kind async for e in run.stream()]

    assert asyncio.run(collect()) == [e.kind for e in run.events]


def test_failing_subscriber_is_detached_and_run_goes_on(registry) -> None:
    bp = make(registry)
    bp.add("double", id="a", x=1)
    bp.add("double", id="b", x=2)
    calls = []

    def bad(event):
        calls.append(event)
        raise RuntimeError("subscriber bug")

    run = bp.start(history=False, paused=True)
    run.subscribe(bad)
    run.resume().wait()
    assert run.status is cnb.RunState.SUCCEEDED
    assert len(calls) == 1
    assert "subscriber bug" in run.bus.errors[0]


def test_logs_and_prints_are_captured_per_node(registry, capsys) -> None:
    import logging

    def talk(x: int) -> int:
        print(f"hello from {x}")
        logging.getLogger("user").warning("careful %s", x)
        return x

    async def atalk(x: int) -> int:
        print(f"async {x}")
        return x

    fn_node(registry, talk)
    fn_node(registry, atalk)
    bp = make(registry)
    bp.add("talk", id="t1", x=1)
    bp.add("talk", id="t2", x=2)
    bp.add("atalk", id="a", x=3)
    run = bp.run(history=False)
    assert run["t1"].log_text.startswith("hello from 1\n")
    assert "WARNING user: careful 1" in run["t1"].log_text
    assert "hello from 2" in run["t2"].log_text and "hello from 1" not in run["t2"].log_text
    assert run["a"].log_text == "async 3\n"
    assert "hello from 1" in capsys.readouterr().out  # still visible where users look


def test_template_error_fails_the_node_with_a_clear_message(registry) -> None:
    bp = make(registry, n=1)
    bp.add("double", id="a", x="{{ params.n.missing }}")
    run = bp.run(history=False)
    assert run["a"].status is cnb.NodeState.FAILED
    assert "template error" in str(run["a"].error)


def test_arun_on_the_callers_loop(registry) -> None:
    bp = make(registry)
    bp.add("double", id="a", x=21)

    async def main():
        return await bp.arun(history=False)

    run = asyncio.run(main())
    assert run["a"].output == 42


def test_process_executor_runs_nodes_in_other_processes(registry) -> None:
    import os

    def pid(x: int) -> int:
        return os.getpid()

    fn_node(registry, pid)
    bp = make(registry)
    bp.add("pid", id="p", x=1)
    run = bp.run(executor="process", history=False)
    assert run.status is cnb.RunState.SUCCEEDED
    assert run["p"].output != os.getpid()


def test_process_executor_runs_builtins_that_take_a_context(tmp_path) -> None:
    """transform and file-system read their NodeContext: in a worker it is a snapshot."""
    bp = cnb.Blueprint("proc", params={"xs": [1, 2, 3]})
    bp.add(
        "transform", id="double", input="{{ params.xs }}", operation="map", expression="item * 2"
    )
    bp.add("file-system", id="write", operation="write", path="out/doubled.json")
    bp.connect("double", "write.input")
    run = bp.run(executor="process", history=False, settings={"file_roots": [str(tmp_path)]})
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert run["double"].output == [2, 4, 6]
    assert json.loads((tmp_path / "out" / "doubled.json").read_text()) == [2, 4, 6]


def test_process_executor_brings_prints_and_logs_back(registry) -> None:
    import logging

    def chatty(ctx: cnb.NodeContext, x: int) -> dict:
        print("working on", x)
        logging.getLogger("chatty").warning("half way")
        ctx.log("from the context")
        return {"pid": os.getpid(), "node": ctx.node_id, "params": ctx.params}

    def noisy_failure(x: int) -> int:
        print("about to fail")
        raise ValueError(f"bad {x}")

    fn_node(registry, chatty)
    fn_node(registry, noisy_failure)
    bp = make(registry, tag="t1")
    bp.add("chatty", id="c", x=1)
    bp.add("noisy_failure", id="f", x=2)
    run = bp.run(executor="process", history=False)
    result = run["c"].output
    assert result["pid"] != os.getpid()
    assert result["node"] == "c" and result["params"] == {"tag": "t1"}
    logs = run["c"].log_text
    assert "working on 1" in logs and "half way" in logs and "from the context" in logs
    assert run["f"].status is cnb.NodeState.FAILED
    assert "about to fail" in run["f"].log_text
    assert "ValueError: bad 2" in str(run["f"].error)


def test_a_detached_context_says_what_it_cannot_do(registry) -> None:
    def steering(ctx: cnb.NodeContext) -> int:
        return len(ctx.run.node_runs)

    fn_node(registry, steering)
    bp = make(registry)
    bp.add("steering", id="s")
    run = bp.run(executor="process", history=False)
    assert run["s"].status is cnb.NodeState.FAILED
    message = str(run["s"].error)
    assert "'s' runs in another process" in message and "ctx.run" in message


def test_plan_graph_facts(registry) -> None:
    from conductor_nb.engine.plan import compile_plan

    bp = make(registry)
    bp.add("double", id="a", x=1)
    bp.add("double", id="b")
    bp.add("double", id="c")
    bp.add("add", id="d")
    bp.connect("a", "b.x")
    bp.connect("a", "c.x")
    bp.connect("b", "d.a")
    bp.connect("c", "d.b")
    plan = compile_plan(bp)
    assert plan.order == ("a", "b", "c", "d")
    assert dict(plan.levels) == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert plan.max_parallelism == 2
    assert plan.critical_path({"c": 5}) == ["a", "c", "d"]
    assert plan.descendants("b") == ["d"] and plan.ancestors("d") == ["a", "b", "c"]


def test_coalescer_limits_flushes() -> None:
    from conductor_nb.engine.coalesce import Coalescer

    flushed = []
    co = Coalescer(flushed.append, max_rate=5)

    async def burst():
        for i in range(1000):
            co(ev.NodeStarted("r", node_id=f"n{i % 50}"))
            co(ev.NodeSucceeded("r", node_id=f"n{i % 50}"))
        co(ev.RunFinished("r", status="succeeded"))

    asyncio.run(burst())
    assert len(flushed) <= 3
    final = {}
    for f in flushed:
        final.update(f["nodes"])
    assert len(final) == 50 and set(final.values()) == {"succeeded"}
    assert flushed[-1]["run"]["status"] == "succeeded"


def test_env_secrets_are_off_by_default_and_masked_when_on(registry, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CNB_TEST_TOKEN", "s3cr3t-value")

    def use(token: str) -> str:
        print(f"using {token}")
        raise PermissionError(f"token {token} refused")

    fn_node(registry, use)
    bp = make(registry)
    bp.add("use", id="u", token="{{ env.CNB_TEST_TOKEN }}")
    with pytest.raises(cnb.BlueprintError, match=r"reads env\.CNB_TEST_TOKEN, which this run"):
        bp.run(history=False)  # not exposed: refused before anything runs
    run = bp.run(history=False, env=True)
    assert run["u"].inputs == {"token": "***"}
    assert run["u"].log_text == "using ***\n"
    assert "token *** refused" in str(run["u"].error)
    texts = [str(e) for e in run.events] + [run["u"].traceback, repr(run["u"].error.__cause__)]
    assert not any("s3cr3t-value" in t for t in texts)
    assert "s3cr3t-value" not in capsys.readouterr().out


def test_params_given_in_python_are_checked_against_their_declared_types(registry) -> None:
    from pathlib import Path

    bp = make(registry, n=3, ratio=0.5, path="in.csv")
    bp.add("double", id="a", x="{{ params.n }}")
    ok = bp.run(params={"n": 4, "ratio": 1, "path": Path("other.csv")}, history=False)
    assert ok.status is cnb.RunState.SUCCEEDED  # an int for a float, a Path for a str: fine
    with pytest.raises(cnb.BlueprintError) as info:
        bp.run(params={"n": "90", "ratio": "x"}, history=False)
    assert info.value.paths == ["params.n", "params.ratio"]
    assert "param 'n' is declared int: expected an integer, got '90' (a str)" in str(info.value)


def test_counts_and_summary_cover_the_runs_own_nodes_only() -> None:
    bp = cnb.Blueprint("nested")
    body = {"nodes": {"d": {"type": "transform", "params": {"expression": "item * 2"}}}}
    bp.add("loop", id="each", items=[[1], [2], [3]], body=body)
    bp.add("pass", id="after")
    bp.connect("each", "after.input")
    run = bp.run(history=False)
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert len(run.node_runs) > 2  # the iterations are recorded, by path
    assert run.counts() == {"succeeded": 2}
    assert "(2 succeeded)" in run.summary()


def test_an_edge_value_of_the_wrong_kind_fails_with_the_output_to_use(tmp_path) -> None:
    """DESIGN's own example wires spreadsheet.output (a dict) into a list[dict] input."""
    (tmp_path / "data.csv").write_text("score\n0.9\n0.2\n")

    @cnb.node(name="kind_clean")
    def clean(rows: list[dict], threshold: float = 0.5) -> list[dict]:
        return [r for r in rows if float(r["score"]) >= threshold]

    bp = cnb.Blueprint("sales", params={"path": str(tmp_path / "data.csv")})
    bp.add("spreadsheet", id="load", path="{{ params.path }}")
    bp.add(clean, id="clean", threshold=0.7)
    bp.connect("load.output", "clean.rows")
    run = bp.run(history=False, settings={"file_roots": [str(tmp_path)]})
    message = str(run["clean"].error)
    assert "input 'rows': expected list[dict], got a mapping" in message
    assert "(from load.output); hint: connect load.records (table) instead" in message
    bp.remove("clean")
    bp.add(clean, id="clean", threshold=0.7)
    bp.connect("load.records", "clean.rows")
    assert bp.run(history=False, settings={"file_roots": [str(tmp_path)]}).status.value == (
        "succeeded"
    )


def test_plain_kinds_are_checked_and_duck_typing_is_not(registry) -> None:
    class Rows:
        def __iter__(self):
            return iter([1])

    def total(rows: list, factor: float = 1.0) -> float:
        return sum(rows) * factor

    fn_node(registry, total)
    bp = make(registry)
    bp.add("total", id="bad", rows={"a": 1})
    with pytest.raises(cnb.BlueprintError) as info:
        bp.validate()
    assert info.value.paths == ["nodes.bad.params.rows"]
    assert "expected list, got a mapping: {'a': 1}" in str(info.value)
    ok = make(registry)
    ok.add("total", id="tuple", rows=(1, 2), factor=2)  # a tuple for a list, an int for a float
    ok.add("total", id="duck", rows=Rows())  # any other object: duck typing decides
    run = ok.run(history=False)
    assert run["tuple"].output == 6 and run["duck"].output == 1


def test_a_cancelled_fault_delay_leaves_no_coroutine_behind(registry) -> None:
    import gc
    import warnings

    async def quick(x: int) -> int:
        return x

    fn_node(registry, quick)
    bp = make(registry)
    bp.add("quick", id="slow", x=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = bp.start(faults={"slow": "hang"}, history=False)
        run.cancel().wait(timeout=10)
        del run
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_cancelling_an_await_of_a_background_run_cancels_the_run(registry) -> None:
    fn_node(registry, forever)
    bp = make(registry)
    bp.add("forever", id="f", x=1)
    run = bp.start(history=False)

    async def interrupted_cell() -> None:
        waiter = asyncio.ensure_future(_await(run))  # `await run` in a cell
        await asyncio.sleep(0.3)
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter

    asyncio.run(interrupted_cell())
    run.wait(timeout=10)
    assert run.status is cnb.RunState.CANCELLED
    assert run["f"].status is cnb.NodeState.CANCELLED


async def _await(awaitable):
    return await awaitable


def test_process_workers_outlive_a_run_and_a_dead_worker_is_replaced(registry) -> None:
    def pid(x: int) -> int:
        if x < 0:
            os._exit(3)  # the worker dies: the pool is broken
        return os.getpid()

    fn_node(registry, pid)
    bp = make(registry)
    bp.add("pid", id="p", x=1)
    executor = cnb.ProcessExecutor(max_workers=1)
    try:
        first = bp.run(executor=executor, history=False)["p"].output
        assert bp.run(executor=executor, history=False)["p"].output == first  # same worker
        assert "running" in repr(executor)
        dying = make(registry)
        dying.add("pid", id="p", x=-1)
        assert dying.run(executor=executor, history=False)["p"].status is cnb.NodeState.FAILED
        after = bp.run(executor=executor, history=False)["p"]
        assert after.status is cnb.NodeState.SUCCEEDED and after.output != first
    finally:
        executor.shutdown()
    assert "not started" in repr(executor)


def test_retry_delays_back_off_exponentially(registry) -> None:
    flaky_node(registry, failures=3)
    bp = make(registry)
    bp.add("flaky", id="f", x=1, retries=3, retry_delay=0.01)
    run = bp.run(history=False)
    assert run["f"].output == 1 and run["f"].attempts == 4
    delays = [e.delay for e in run.events if isinstance(e, ev.NodeRetrying)]
    assert delays == pytest.approx([0.01, 0.02, 0.04])


def test_raise_for_status_raises_run_cancelled_for_a_cancelled_run(registry) -> None:
    fn_node(registry, forever)
    bp = make(registry)
    bp.add("forever", id="f", x=1)
    run = bp.start(history=False)
    run.cancel().wait(timeout=10)
    with pytest.raises(cnb.RunCancelled, match=f"run {run.id} was cancelled"):
        run.raise_for_status()


def test_templates_read_run_and_now(registry) -> None:
    import datetime as dt

    def echo(x: object) -> object:
        return x

    fn_node(registry, echo)
    bp = make(registry)
    bp.add("echo", id="rid", x="{{ run.id }}")
    bp.add("echo", id="day", x="{{ run.started_at.strftime('%Y-%m-%d') }}")
    bp.add("echo", id="now", x="{{ now }}")
    run = bp.run(history=False)
    assert run["rid"].output == run.id
    started = dt.datetime.fromtimestamp(run.started_at, dt.UTC)
    assert run["day"].output == started.strftime("%Y-%m-%d")
    assert isinstance(run["now"].output, dt.datetime)
    assert abs(run["now"].output.timestamp() - run.started_at) < 3600


def test_templates_see_every_input_and_errors_name_the_param(registry) -> None:
    def pair(x: object = None, y: object = None) -> list:
        return [x, y]

    fn_node(registry, pair)
    bp = make(registry)
    bp.add("pair", id="given", x="{{ inputs.y * 2 }}", y=4)  # y is a literal, not an edge
    bp.add("pair", id="unset", x="{{ inputs.y is none }}")
    bp.add("pair", id="bad", x="{{ inputs.y.name }}")
    run = bp.run(history=False)
    assert run["given"].output == [8, 4]
    assert run["unset"].output == [True, None]
    message = str(run["bad"].error)
    assert "template error in 'x':" in message and "(inputs not connected: x, y)" in message


def test_bad_run_options_are_refused_by_name(registry) -> None:
    bp = make(registry)
    bp.add("double", id="a", x=1)
    with pytest.raises(ValueError, match=r"concurrency: expected an integer >= 1, got None"):
        bp.run(concurrency=None, history=False)
    with pytest.raises(ValueError, match=r"fault_rate: expected a number between 0 and 1"):
        bp.run(fault_rate=2, history=False)
    with pytest.raises(ValueError, match=r"breakpoints: expected a list of node ids, got 'a'"):
        bp.run(breakpoints="a", history=False)


def test_an_internal_error_in_the_driver_fails_the_run(registry) -> None:
    """Seam: a driver step that raises (an engine bug) must not end as 'succeeded'."""
    from conductor_nb.engine.api import prepare

    bp = make(registry)
    bp.add("double", id="a", x=1)

    async def main():
        run = prepare(bp, None, {"history": False})

        def broken() -> None:
            raise RuntimeError("scheduler bug")

        run._driver._dispatch = broken  # type: ignore[method-assign]
        run._launch()
        return await run

    run = asyncio.run(main())
    assert run.status is cnb.RunState.FAILED
    with pytest.raises(cnb.ConductorError, match="internal error: RuntimeError"):
        run.raise_for_status()
    finished = [e for e in run.events if isinstance(e, ev.RunFinished)]
    assert finished[-1].status == "failed" and "scheduler bug" in finished[-1].error
