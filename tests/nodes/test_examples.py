"""Every built-in node type's example, as ``conductor-nb nodes TYPE`` shows it, runs as a
real blueprint and gives the result a reader of the example expects."""

from __future__ import annotations

import importlib
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

import conductor_nb as cnb
from conductor_nb.headless.describe import describe_type
from conductor_nb.model.types import NodeType
from conductor_nb.nodes.plugins import BUILTIN_MODULES
from tests.nodes.conftest import write_notebook

BUILTINS: dict[str, NodeType] = {
    t.name: t for m in BUILTIN_MODULES for t in importlib.import_module(m).NODE_TYPES
}


def shown_example(node_type: NodeType) -> dict[str, Any]:
    """The example node as the CLI prints it (the YAML under ``example:``)."""
    text = describe_type(node_type)
    assert "\nexample:\n" in text
    return yaml.safe_load(textwrap.dedent(text.split("\nexample:\n", 1)[1]))


# ------------------------------------------------ what each example needs around it


def _people_csv(tmp: Path, node: dict[str, Any], server: str) -> dict[str, Any]:
    (tmp / "people.csv").write_text("name,age\nAda,36\nLinus,12\n", encoding="utf-8")
    return {}


def _in_png(tmp: Path, node: dict[str, Any], server: str) -> dict[str, Any]:
    Image.new("RGB", (256, 128), (10, 120, 200)).save(tmp / "in.png")
    return {}


def _report_ipynb(tmp: Path, node: dict[str, Any], server: str) -> dict[str, Any]:
    write_notebook(
        tmp / "report.ipynb",
        "day = None\ninput = None",
        "import conductor_nb as cnb\ncnb.record('day', day)",
    )
    return {"day": {"default": "2026-11-24"}}  # the example reads params.day


def _local_url(tmp: Path, node: dict[str, Any], server: str) -> dict[str, Any]:
    url = node["params"]["url"]  # the example's public URL, served locally (no network)
    node["params"]["url"] = server + "/" + url.split("://", 1)[1].split("/", 1)[1]
    return {}


SETUP: dict[str, Callable[[Path, dict[str, Any], str], dict[str, Any]]] = {
    "spreadsheet": _people_csv,
    "image": _in_png,
    "notebook": _report_ipynb,
    "http-request": _local_url,
}


# ------------------------------------------------------------ what each gives back


def _expect(name: str, run: cnb.Run, tmp: Path) -> None:
    n = run["n"]
    checks: dict[str, Callable[[], None]] = {
        "edit-fields": lambda: _eq(
            n.output,
            [
                {"name": "Ada", "greeting": "Hello Ada", "position": 0},
                {"name": "Grace", "greeting": "Hello Grace", "position": 1},
            ],
        ),
        "transform": lambda: _eq(n.output, [{"name": "Ada", "age": 36}]),
        "code": lambda: _eq(n.output, {"total": 6.5, "count": 2}),
        "file-system": lambda: _eq((tmp / "out" / "hello.txt").read_text(), "Hello"),
        "http-request": lambda: _eq(n.outputs["body"], {"path": "/get?q=1", "auth": None}),
        "shell-command": lambda: _eq(n.outputs["stdout"], "hello world\n"),
        "spreadsheet": lambda: _eq(
            n.outputs["records"], [{"name": "Ada", "age": 36}, {"name": "Linus", "age": 12}]
        ),
        "if": lambda: _eq((n.output, n.outputs["true"]), (True, {"total": 150})),
        "delay": lambda: _waited(n, BUILTINS["delay"].examples[0]["params"]["seconds"]),
        "pass": lambda: _eq(n.output, [1, 2, 3]),
        "loop": lambda: _eq(n.output, [2, 4, 6]),
        "parallel": lambda: _eq(n.output, [1, 4, 9]),
        "group": lambda: _eq(n.output, {"total": 500, "largest": [300, 120, 80]}),
        "notebook": lambda: _eq(n.outputs["records"], {"day": "2026-11-24"}),
        "image": lambda: _eq((n.outputs["width"], n.outputs["height"]), (128, 64)),
        "merge": lambda: _eq(
            n.output,
            [
                {"id": 1, "name": "Ada", "total": 30},
                {"id": 1, "name": "Ada", "total": 12},
                {"id": 2, "name": "Grace", "total": None},
            ],
        ),
        "sql": lambda: _eq(
            n.output, [{"region": "north", "total": 30}, {"region": "south", "total": 12}]
        ),
    }
    assert name in checks, f"add the expected result of {name}'s example here"
    checks[name]()


def _eq(found: Any, expected: Any) -> None:
    assert found == expected


def _waited(n: Any, seconds: float) -> None:
    """The example gives no input, so None passes on, after at least the seconds asked for
    (a lower bound only: a busy machine may take longer, never less)."""
    assert n.output is None
    assert n.duration >= seconds * 0.9, (n.started_at, n.finished_at)


def _marks(name: str) -> list[pytest.MarkDecorator]:
    return [pytest.mark.notebook] if name == "notebook" else []


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=_marks(name)) for name in sorted(BUILTINS)]
)
def test_the_example_runs_and_gives_the_obvious_result(name, server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    node = shown_example(BUILTINS[name])
    assert node["type"] == name
    params = SETUP.get(name, lambda *_: {})(tmp_path, node, server)
    doc = {"conductor": 1, "id": f"{name}-example", "params": params, "nodes": {"n": node}}
    run = cnb.Blueprint.from_dict(doc).run(history=False)
    assert run.status.value == "succeeded", run.summary()
    _expect(name, run, tmp_path)


def test_the_shown_example_is_the_node_types_example():
    for node_type in BUILTINS.values():
        assert [shown_example(node_type)] == list(node_type.examples), node_type.name
