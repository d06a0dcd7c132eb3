"""Shared fixtures: a private registry of small node types, and an isolated history dir."""

from __future__ import annotations

import pytest

from conductor_nb.model.types import NodeType, ParamField, Port, Registry


def _transform(input: list | None = None, operation: str = "map", expression: str = "item"):
    return input


def _concat(items: list) -> list:
    return [x for item in items for x in item]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Run history and caches go to a temp dir, never into the repository."""
    monkeypatch.setenv("CONDUCTOR_HOME", str(tmp_path_factory.mktemp("conductor-home")))


@pytest.fixture
def registry() -> Registry:
    reg = Registry()

    def double(x: int) -> int:
        return x * 2

    def add(a: int, b: int = 0) -> int:
        return a + b

    reg.register(NodeType.from_function(double))
    reg.register(NodeType.from_function(add))
    reg.register(
        NodeType(
            name="transform",
            fn=_transform,
            inputs=(Port("input"),),
            params=(
                ParamField("operation", "str", "map", choices=("map", "filter", "reduce")),
                ParamField("expression", "str", "item"),
            ),
            category="data",
        )
    )
    reg.register(
        NodeType(
            name="concat",
            fn=_concat,
            inputs=(Port("items", many=True, required=True),),
            category="data",
        )
    )
    return reg
