"""Every built-in node type's example, as ``conductor-nb nodes TYPE`` shows it, runs as a
real blueprint and gives the result a reader of the example expects."""

from __future__ import annotations

import importlib
import json
import textwrap
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nbformat
import pytest
import yaml
from PIL import Image

import conductor_nb as cnb
from conductor_nb.headless.describe import describe_type
from conductor_nb.model.types import NodeType
from conductor_nb.nodes.plugins import BUILTIN_MODULES

BUILTINS: dict[str, NodeType] = {
    t.name: t for m in BUILTIN_MODULES for t in importlib.import_module(m).NODE_TYPES
}


def shown_example(node_type: NodeType) -> dict[str, Any]:
    """The example node as the CLI prints it (the YAML under ``example:``)."""
    text = describe_type(node_type)
    assert "\nexample:\n" in text
    return yaml.safe_load(textwrap.dedent(text.split("\nexample:\n", 1)[1]))


class _Echo(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# ------------------------------------------------ what each example needs around it


def _people_csv(tmp: Path, node: dict[str, Any], server: str) -> dict[str, Any]:
    (tmp / "people.csv").write_text("name,age\nAda,36\nLinus,12\n", encoding="utf-8")
    return {}


def _in_png(tmp: Path, node: dict[str, Any], server: str) -> dict[str, Any]:
    Image.new("RGB", (256, 128), (10, 120, 200)).save(tmp / "in.png")
    return {}


def _report_ipynb(tmp: Path, node: dict[str, Any], server: str) -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("day = None\ninput = None")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.cells.append(nbformat.v4.new_code_cell("import conductor_nb as cnb\ncnb.record('day', day)"))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp / "report.ipynb")
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
        "file-system": lambda: _eq((tmp / "out" / "hello.txt").read_text(), "Hello"),
        "http-request": lambda: _eq(n.outputs["body"], {"path": "/get?q=1"}),
        "shell-command": lambda: _eq(n.outputs["stdout"], "hello world\n"),
        "spreadsheet": lambda: _eq(
            n.outputs["records"], [{"name": "Ada", "age": 36}, {"name": "Linus", "age": 12}]
        ),
        "if": lambda: _eq((n.output, n.outputs["true"]), (True, {"total": 150})),
        "delay": lambda: _eq(n.status.value, "succeeded"),
        "pass": lambda: _eq(n.output, [1, 2, 3]),
        "loop": lambda: _eq(n.output, [2, 4, 6]),
        "parallel": lambda: _eq(n.output, [1, 4, 9]),
        "group": lambda: _eq(n.output, {"total": 500, "largest": [300, 120, 80]}),
        "notebook": lambda: _eq(n.outputs["records"], {"day": "2026-11-24"}),
        "image": lambda: _eq((n.outputs["width"], n.outputs["height"]), (128, 64)),
    }
    assert name in checks, f"add the expected result of {name}'s example here"
    checks[name]()


def _eq(found: Any, expected: Any) -> None:
    assert found == expected


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
