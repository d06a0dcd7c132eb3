"""Helpers for the built-in node tests: build and run small blueprints for real."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import conductor_nb as cnb


def make(nodes: dict[str, Any], edges: list[str] | None = None, **extra: Any) -> cnb.Blueprint:
    doc = {"conductor": 1, "id": "t", "nodes": nodes, "edges": edges or [], **extra}
    return cnb.Blueprint.from_dict(doc)


@pytest.fixture
def run_bp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., cnb.Run]:
    """Run a blueprint document with tmp_path as the working directory and file root."""
    monkeypatch.chdir(tmp_path)

    def run(nodes: dict[str, Any], edges: list[str] | None = None, **options: Any) -> cnb.Run:
        extra = {k: options.pop(k) for k in ("outputs", "params") if k in options}
        options.setdefault("history", False)
        return make(nodes, edges, **extra).run(**options)

    return run


def one(type_name: str, **params: Any) -> dict[str, Any]:
    """A single-node document."""
    return {"n": {"type": type_name, "params": params}}
