"""Helpers for the built-in node tests: build and run small blueprints for real, a local
HTTP server, and notebooks written on the fly."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nbformat
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


# ------------------------------------------------------------------ local HTTP server

HTML_404 = (
    b"<!DOCTYPE html>\n<html>\n  <head>\n    <title>404 Not Found</title>\n  </head>\n"
    b"  <body>\n    <h1>Not Found</h1>\n"
    + b"    <p>The requested URL was not found on this server.</p>\n" * 8
    + b"  </body>\n</html>\n"
)


class Handler(BaseHTTPRequestHandler):
    """GET /json... and /get... echo {path, auth}; /text, /redirect (to /text),
    /html-missing (404 HTML); anything else 404 JSON. POST echoes its JSON as {got}."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith(("/json", "/get")):
            echo = {"path": self.path, "auth": self.headers.get("Authorization")}
            self._send(200, json.dumps(echo).encode())
        elif self.path == "/text":
            self._send(200, b"plain", "text/plain")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/text")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/html-missing":
            self._send(404, HTML_404, "text/html; charset=utf-8")
        else:
            self._send(404, b'{"error": "nope"}')

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(201, json.dumps({"got": json.loads(data)}).encode())


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The base URL of a local HTTP server running :class:`Handler` (no network)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# ------------------------------------------------------------------------ notebooks


def write_notebook(path: Path, parameters: str, *cells: str, kernelspec: bool = True) -> Path:
    """A Python 3 notebook at ``path``: a ``parameters``-tagged cell, then ``cells``.

    ``kernelspec=False`` leaves the metadata as ``nbformat.v4.new_notebook()`` makes it:
    no kernelspec and no language.
    """
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(parameters)]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    if kernelspec:
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
    nbformat.write(nb, path)
    return path
