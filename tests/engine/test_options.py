"""Run options: typed, checked by name, and holding inside loop/parallel/group bodies."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

import conductor_nb as cnb
from conductor_nb.engine.options import OPTION_NAMES, DebugOptions, RunKeywords, RunOptions
from conductor_nb.errors import RunOptionError, UnknownNameError, UnknownOptionError


class Gauge:
    """Counts the calls running at once; each call holds long enough to overlap others."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.calls = 0

    async def hold(self) -> None:
        self.active += 1
        self.calls += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0.02)
        finally:
            self.active -= 1


GAUGE = Gauge()


@cnb.node(name="options_work")
async def options_work(input: int | None = None) -> int | None:
    await GAUGE.hold()
    return input


@pytest.fixture
def gauge() -> Gauge:
    GAUGE.__init__()  # type: ignore[misc]
    return GAUGE


WORK_BODY = {"nodes": {"w": {"type": "options_work"}}}


def parallel_bp(items: int = 6, body: dict | None = None) -> cnb.Blueprint:
    doc = {
        "conductor": 1,
        "id": "par",
        "nodes": {
            "p": {
                "type": "parallel",
                "params": {
                    "items": list(range(items)),
                    "concurrency": items,
                    "body": body or WORK_BODY,
                },
            }
        },
    }
    return cnb.Blueprint.from_dict(doc)


# ----------------------------------------------------------- limits inside bodies


def test_type_limits_hold_inside_a_parallel_body(gauge) -> None:
    run = parallel_bp().run(type_limits={"options_work": 1}, history=False)
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert run["p"].output == list(range(6))
    assert gauge.calls == 6 and gauge.peak == 1


def test_without_limits_the_body_nodes_do_overlap(gauge) -> None:
    """The control for the test above: the gauge sees overlap when nothing limits it."""
    run = parallel_bp().run(history=False)
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert gauge.peak == 6


def test_concurrency_holds_across_bodies(gauge) -> None:
    run = parallel_bp().run(concurrency=2, history=False)
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert gauge.calls == 6 and gauge.peak == 2


def test_concurrency_one_with_nested_containers_does_not_deadlock(gauge) -> None:
    """The container lends its slot to its body while it waits: concurrency=1 still runs
    a parallel inside a parallel (and a per-type limit on the container type too)."""
    inner = {
        "nodes": {
            "q": {
                "type": "parallel",
                "params": {"items": [1, 2], "concurrency": 2, "body": WORK_BODY},
            }
        }
    }
    for options in ({"concurrency": 1}, {"type_limits": {"parallel": 1}}):
        gauge.__init__()  # type: ignore[misc]
        run = parallel_bp(items=3, body=inner).run(history=False, **options)
        assert run.status is cnb.RunState.SUCCEEDED, run.summary()
        assert gauge.calls == 6
        if "concurrency" in options:
            assert gauge.peak == 1


@cnb.node(name="options_square")
def options_square(input: int) -> int:
    GAUGE.calls += 1
    return input * input


def test_the_result_cache_holds_inside_bodies(gauge) -> None:
    body = {"nodes": {"sq": {"type": "options_square", "cache": True}}}
    doc = {
        "conductor": 1,
        "id": "cached-loop",
        "nodes": {"lp": {"type": "loop", "params": {"items": [2, 3], "body": body}}},
    }
    first = cnb.Blueprint.from_dict(doc).run()
    assert first.status is cnb.RunState.SUCCEEDED, first.summary()
    assert first["lp"].output == [4, 9] and gauge.calls == 2
    second = cnb.Blueprint.from_dict(doc).run()
    assert second["lp"].output == [4, 9]
    assert gauge.calls == 2  # both iterations came from the cache
    assert second["lp[0].sq"].status is cnb.NodeState.CACHED
    assert cnb.Blueprint.from_dict(doc).run(cache=False)["lp"].output == [4, 9]
    assert gauge.calls == 4  # cache=False reaches the body too


def test_file_roots_hold_inside_bodies(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path / "..")
    target = tmp_path / "out"
    body = {
        "nodes": {
            "write": {
                "type": "file-system",
                "params": {
                    "operation": "write",
                    "path": f"{target}/{{{{ params.index }}}}.txt",
                    "content": "{{ params.item }}",
                },
            }
        }
    }
    doc = {
        "conductor": 1,
        "id": "writes",
        "nodes": {"lp": {"type": "loop", "params": {"items": ["a", "b"], "body": body}}},
    }
    refused = cnb.Blueprint.from_dict(doc).run(history=False, settings={"file_roots": ["/nope"]})
    assert refused.status is cnb.RunState.FAILED
    assert "file_roots" in str(refused["lp"].error)
    run = cnb.Blueprint.from_dict(doc).run(history=False, settings={"file_roots": [str(tmp_path)]})
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert (target / "1.txt").read_text() == "b"


# --------------------------------------------------------------- the typed options


def test_options_are_typed_frozen_and_derived_for_bodies() -> None:
    options = RunOptions.from_keywords(
        {"concurrency": 3, "type_limits": {"w": 1}, "slow_motion": 0.5, "breakpoints": ["a"]}
    )
    assert options.debug == DebugOptions(slow_motion=0.5)
    assert options.breakpoints == ("a",)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.concurrency = 4  # type: ignore[misc]
    body = options.for_body(executor=cnb.LocalExecutor(), result_cache=None)
    assert (body.concurrency, dict(body.type_limits), body.debug) == (3, {"w": 1}, options.debug)
    assert (body.breakpoints, body.paused, body.history) == ((), False, False)


def test_run_keywords_name_every_option() -> None:
    assert sorted(RunKeywords.__annotations__) == sorted(OPTION_NAMES)
    assert "run_id" not in OPTION_NAMES and "completed" not in OPTION_NAMES  # internals


def test_an_unknown_option_is_refused_with_did_you_mean() -> None:
    bp = cnb.Blueprint("x")
    bp.add("delay", id="a", seconds=0)
    with pytest.raises(
        UnknownOptionError, match="unknown run option 'concurency'; did you mean 'concurrency'"
    ) as caught:
        bp.run(concurency=2, history=False)  # type: ignore[call-arg]
    assert isinstance(caught.value, cnb.ConductorError) and isinstance(caught.value, TypeError)
    with pytest.raises(UnknownOptionError, match="'run_id'"):
        bp.run(run_id="mine", history=False)  # type: ignore[call-arg]
    with pytest.raises(RunOptionError, match="type_limits: limits must be integers >= 1"):
        bp.run(type_limits={"delay": 0}, history=False)


# ------------------------------------------------------------ names in the family


def test_unknown_names_are_conductor_errors_with_did_you_mean() -> None:
    bp = cnb.Blueprint("names")
    bp.add("delay", id="first", seconds=0)
    bp.add("delay", id="second", seconds=0)
    bp.connect("first", "second.input")
    with pytest.raises(UnknownNameError, match="did you mean 'first'") as caught:
        bp.debug(breakpoints=["frist"], history=False)
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, cnb.ConductorError)
    assert "breakpoints: blueprint 'names' has no node 'frist'" in str(caught.value)
    run = bp.run(history=False)
    attempts = {
        "run[...]": lambda: run["secnd"],
        "retry": lambda: run.retry("secnd"),
        "rerun": lambda: run.rerun("secnd"),
        "run_to": lambda: run.run_to("secnd"),
        "add_breakpoint": lambda: run.add_breakpoint("secnd"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(UnknownNameError, match="no node 'secnd'; did you mean 'second'"):
            attempt()
        print(what, "ok")
    with pytest.raises(UnknownNameError, match="has no input 'secnds'; did you mean 'seconds'"):
        run.rerun("second", inputs={"secnds": 1})
