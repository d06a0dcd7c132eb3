"""http-request against a real local server; shell-command with real subprocesses."""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

HTML_404 = (
    b"<!DOCTYPE html>\n<html>\n  <head>\n    <title>404 Not Found</title>\n  </head>\n"
    b"  <body>\n    <h1>Not Found</h1>\n"
    + b"    <p>The requested URL was not found on this server.</p>\n" * 8
    + b"  </body>\n</html>\n"
)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/json"):
            self._send(
                200,
                json.dumps({"path": self.path, "auth": self.headers.get("Authorization")}).encode(),
            )
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
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_get_json_with_query_and_bearer_auth(run_bp, server):
    params = {
        "url": f"{server}/json",
        "query": {"q": "1"},
        "auth": {"type": "bearer", "token": "t0k"},
    }
    run = run_bp({"h": {"type": "http-request", "params": params}})
    assert run.status.value == "succeeded", run.summary()
    assert run["h"].outputs["status"] == 200
    assert run["h"].outputs["body"] == {"path": "/json?q=1", "auth": "Bearer t0k"}


def test_basic_auth_and_post_json(run_bp, server):
    nodes = {
        "p": {
            "type": "http-request",
            "params": {"url": f"{server}/x", "method": "POST", "json": {"a": 1}},
        },
        "g": {
            "type": "http-request",
            "params": {
                "url": f"{server}/json",
                "auth": {"type": "basic", "username": "u", "password": "p"},
            },
        },
    }
    run = run_bp(nodes)
    assert run["p"].outputs["status"] == 201
    assert run["p"].outputs["body"] == {"got": {"a": 1}}
    expected = "Basic " + base64.b64encode(b"u:p").decode()
    assert run["g"].outputs["body"]["auth"] == expected


def test_text_body_and_redirects(run_bp, server):
    run = run_bp({"h": {"type": "http-request", "params": {"url": f"{server}/redirect"}}})
    assert run["h"].outputs["body"] == "plain"


def test_non_2xx_fails_unless_allowed(run_bp, server):
    failed = run_bp({"h": {"type": "http-request", "params": {"url": f"{server}/missing"}}})
    assert failed.status.value == "failed"
    assert "404" in str(failed["h"].error)
    allowed = run_bp(
        {"h": {"type": "http-request", "params": {"url": f"{server}/missing", "allowErrors": True}}}
    )
    assert allowed["h"].outputs["status"] == 404
    assert allowed["h"].outputs["body"] == {"error": "nope"}


def test_a_failing_html_response_is_one_line_with_a_short_preview(run_bp, server):
    run = run_bp({"h": {"type": "http-request", "params": {"url": f"{server}/html-missing"}}})
    assert run.status.value == "failed"
    error = run["h"].error
    message = str(error)
    assert "\n" not in message
    assert "answered 404 Not Found: <!DOCTYPE html> <html> <head> <title>404 Not Found" in message
    assert "...; set allowErrors: true" in message  # cut, and the way out is still named
    assert len(message) < 400
    # the whole response is on the original exception, and its body in the node's logs
    response = error.original.response
    assert response["status"] == 404
    assert response["body"] == HTML_404.decode()
    assert response["headers"]["content-type"].startswith("text/html")
    assert HTML_404.decode().strip() in run["h"].log_text


def test_a_short_error_body_is_shown_whole(run_bp, server):
    run = run_bp({"h": {"type": "http-request", "params": {"url": f"{server}/missing"}}})
    assert str(run["h"].error).endswith(
        'answered 404 Not Found: {"error": "nope"}; set allowErrors: true to pass non-2xx '
        "responses on"
    )


def test_http_preview_collapses_whitespace_and_cuts():
    from conductor_nb.nodes.builtin.http import preview

    assert preview("a\n\n  b\tc ") == "a b c"
    long = preview("word " * 100)
    assert len(long) == 200
    assert long.endswith("...")


def test_http_status_failure_pickles_with_its_response():
    import pickle

    from conductor_nb.nodes.builtin.http import HTTPStatusFailure

    error = pickle.loads(pickle.dumps(HTTPStatusFailure("GET x answered 500", {"status": 500})))
    assert str(error) == "GET x answered 500"
    assert error.response == {"status": 500}


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x"])
def test_only_http_schemes(url):
    import conductor_nb as cnb

    doc = {
        "conductor": 1,
        "id": "t",
        "nodes": {"h": {"type": "http-request", "params": {"url": url}}},
    }
    with pytest.raises(cnb.BlueprintError, match="only http"):
        cnb.Blueprint.from_dict(doc)


# ----------------------------------------------------------------- shell-command

PY = sys.executable


def test_shell_captures_output_with_stdin_env_cwd(run_bp, tmp_path):
    code = "import os, sys; print(sys.stdin.read().upper(), os.environ['CNB_X'], os.getcwd())"
    params = {
        "program": PY,
        "args": ["-c", code],
        "stdin": "hi",
        "env": {"CNB_X": "42"},
        "cwd": str(tmp_path),
    }
    run = run_bp({"s": {"type": "shell-command", "params": params}})
    assert run.status.value == "succeeded", run.summary()
    assert run["s"].outputs["stdout"].split() == ["HI", "42", str(tmp_path)]
    assert run["s"].outputs["exit_code"] == 0


def test_shell_args_are_not_interpreted_by_a_shell(run_bp, tmp_path):
    params = {
        "program": PY,
        "args": ["-c", "import sys; print(sys.argv[1])", "$(touch pwned); `id`"],
    }
    run = run_bp({"s": {"type": "shell-command", "params": params}})
    assert run["s"].outputs["stdout"].strip() == "$(touch pwned); `id`"
    assert not (tmp_path / "pwned").exists()


def test_nonzero_exit_fails_unless_allowed(run_bp):
    args = ["-c", "import sys; sys.stderr.write('bad thing'); sys.exit(3)"]
    run = run_bp({"s": {"type": "shell-command", "params": {"program": PY, "args": args}}})
    assert run.status.value == "failed"
    assert "code 3" in str(run["s"].error)
    assert "bad thing" in str(run["s"].error)
    ok = run_bp(
        {
            "s": {
                "type": "shell-command",
                "params": {"program": PY, "args": args, "allowFailure": True},
            }
        }
    )
    assert ok["s"].outputs["exit_code"] == 3


ECHO_STDIN = ["-c", "import sys; sys.stdout.write(repr(sys.stdin.buffer.read()))"]


def _stdin_run(run_bp, stdin, upstream=None):
    """Run a program that echoes its stdin; the stdin value comes from an upstream node
    through ``{{ inputs.input }}`` when ``upstream`` is given."""
    nodes = {"s": {"type": "shell-command", "params": {"program": PY, "args": ECHO_STDIN}}}
    edges = []
    if upstream is not None:
        nodes["src"] = {"type": "pass", "params": {"input": upstream}}
        edges = ["src.output -> s.input"]
    if stdin is not None:
        nodes["s"]["params"]["stdin"] = stdin
    run = run_bp(nodes, edges)
    assert run.status.value == "succeeded", run.summary()
    return run["s"].outputs["stdout"]


@pytest.mark.parametrize(
    ("upstream", "sent"),
    [
        ({"a": 1, "b": [1, 2]}, b'{"a": 1, "b": [1, 2]}'),  # dicts and lists as JSON text
        ([1, "two"], b'[1, "two"]'),
        ("caf\u00e9", "caf\u00e9".encode()),  # text as it is (utf-8)
        (5, b"5"),  # other scalars as str()
        (2.5, b"2.5"),
    ],
)
def test_shell_stdin_from_an_input_of_any_type(run_bp, upstream, sent):
    assert _stdin_run(run_bp, "{{ inputs.input }}", upstream) == repr(sent)


def test_shell_stdin_literals_bytes_and_none(run_bp):
    assert _stdin_run(run_bp, 42) == repr(b"42")
    assert _stdin_run(run_bp, b"\x00raw") == repr(b"\x00raw")
    assert _stdin_run(run_bp, None) == repr(b"")  # no stdin: the program reads end-of-file


def test_shell_args_and_env_of_the_wrong_shape_fail_clearly(run_bp):
    nodes = {
        "src": {"type": "pass", "params": {"input": "-l"}},
        "s": {"type": "shell-command", "params": {"program": PY, "args": "{{ inputs.input }}"}},
    }
    run = run_bp(nodes, ["src.output -> s.input"])
    assert run.status.value == "failed"
    message = str(run["s"].error)
    assert "TypeError: args must be a list" in message
    assert "a str ('-l')" in message
    nodes["s"]["params"] = {"program": PY, "args": ["-c", "pass"], "env": "{{ inputs.input }}"}
    run = run_bp(nodes, ["src.output -> s.input"])
    assert "TypeError: env must be a mapping" in str(run["s"].error)


TREE = """
import subprocess, sys, time, pathlib
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
pathlib.Path(sys.argv[1]).write_text(str(child.pid))
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _wait_dead(pid: int) -> bool:
    for _ in range(200):  # SIGKILL is delivered asynchronously: allow it to land
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _wait_for_file(path: Path) -> int:
    for _ in range(400):
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError("the child process never started")


@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_cancel_kills_the_whole_process_tree(run_bp, tmp_path):
    import conductor_nb as cnb

    pid_file = tmp_path / "grandchild.pid"
    doc = {
        "conductor": 1,
        "id": "t",
        "nodes": {
            "s": {
                "type": "shell-command",
                "params": {"program": PY, "args": ["-c", TREE, str(pid_file)]},
            }
        },
    }
    run = cnb.Blueprint.from_dict(doc).start(history=False)
    grandchild = _wait_for_file(pid_file)  # the gate: the tree is fully up
    assert _alive(grandchild)
    run.cancel()
    run.wait()
    assert run["s"].status.value == "cancelled"
    assert _wait_dead(grandchild)


@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_timeout_kills_the_whole_process_tree(run_bp, tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    params = {"program": PY, "args": ["-c", TREE, str(pid_file)], "timeout": 3}
    run = run_bp({"s": {"type": "shell-command", "params": params}})
    assert run.status.value == "failed"
    assert "timed out" in str(run["s"].error)
    assert _wait_dead(int(pid_file.read_text()))
