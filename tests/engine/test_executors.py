"""Executors by name: one registry for the API and the CLI; capabilities with defaults."""

from __future__ import annotations

import os
from typing import Any

import pytest

import conductor_nb as cnb
from conductor_nb.engine.executors import Call, executor_kinds
from conductor_nb.headless.cli import build_parser


class CountingExecutor(cnb.Executor):
    """Runs calls in the engine's thread and counts them: only ``submit`` is written."""

    name = "counting"
    made: list[CountingExecutor] = []

    def __init__(self) -> None:
        self.calls: list[str] = []
        CountingExecutor.made.append(self)

    async def submit(self, call: Call) -> Any:
        self.calls.append(call.node_id)
        return call.fn(**call.kwargs)


@pytest.fixture
def counting():
    CountingExecutor.made.clear()
    cnb.register_executor(
        "counting", lambda **_: CountingExecutor(), "runs calls inline, counting them"
    )
    yield
    from conductor_nb.engine import executors

    executors._kinds.pop("counting", None)


def double(x: int) -> int:
    return x * 2


def chain(registry) -> cnb.Blueprint:
    registry.register(cnb.NodeType.from_function(double, name="twice"))
    bp = cnb.Blueprint("chain", registry=registry)
    bp.add("twice", id="a", x=1)
    bp.add("twice", id="b")
    bp.connect("a", "b.x")
    bp.outputs["out"] = "b.output"
    return bp


def test_a_registered_executor_is_used_by_name(registry, counting) -> None:
    run = chain(registry).run(executor="counting", history=False)
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert run.outputs == {"out": 4}
    [executor] = CountingExecutor.made
    assert executor.calls == ["a", "b"]
    assert executor.dashboard_link is None  # a capability it did not write: the default


def test_the_cli_offers_the_registered_executors(counting) -> None:
    parser = build_parser()
    run_parser = parser._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    [action] = [a for a in run_parser._actions if "--executor" in a.option_strings]
    assert set(action.choices) == set(executor_kinds()) >= {"local", "process", "dask"}
    assert "counting" in action.choices and "runs calls inline" in action.help


def test_unknown_executor_names_and_objects_are_refused(registry) -> None:
    bp = chain(registry)
    with pytest.raises(cnb.UnknownNameError, match="no executor 'proces'; did you mean 'process'"):
        bp.run(executor="proces", history=False)
    with pytest.raises(cnb.RunOptionError, match="executor: expected a name"):
        bp.run(executor=object(), history=False)  # type: ignore[arg-type]


async def in_the_engine(ctx: cnb.NodeContext) -> int:
    return os.getpid() if ctx.run is not None else -1


def test_a_node_type_flagged_beside_engine_runs_on_the_engine(registry) -> None:
    """The flag on the NodeType (not a list of module names) keeps a node on the engine's
    loop, with the live context, whatever the executor."""
    node_type = cnb.NodeType.from_function(in_the_engine, name="steer")
    registry.register(node_type)
    bp = cnb.Blueprint("steering", registry=registry)
    bp.add("steer", id="s")
    away = bp.run(executor="process", history=False)
    assert away["s"].status is cnb.NodeState.FAILED  # a snapshot context has no ctx.run
    assert "runs_beside_engine=True" in str(away["s"].error)
    node_type.runs_beside_engine = True
    here = bp.run(executor="process", history=False)
    assert here["s"].output == os.getpid()
