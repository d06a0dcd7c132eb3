"""http-request against a real local server; shell-command with real subprocesses."""

from __future__ import annotations

import base64
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import conductor_nb as cnb
from tests.nodes.conftest import HTML_404


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


def test_a_query_in_the_url_and_the_query_param_are_merged(run_bp, server):
    params = {"url": f"{server}/json?a=1&q=old", "query": {"q": "2", "b": "x"}}
    run = run_bp({"h": {"type": "http-request", "params": params}})
    assert run["h"].outputs["body"]["path"] == "/json?a=1&q=2&b=x"  # the node's query wins


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


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        yield listener.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed on return: connecting is refused


def test_a_connection_failure_names_the_method_and_masked_url(run_bp):
    port = _closed_port()
    url = f"http://ada:hunter2@127.0.0.1:{port}/items?api_key=s3cret&page=2"
    run = run_bp({"h": {"type": "http-request", "params": {"url": url, "method": "POST"}}})
    assert run.status.value == "failed"
    message = str(run["h"].error)
    assert message.startswith("node 'h' (http-request) failed on attempt 1/1: ConnectError: ")
    assert message.endswith(f"(POST http://ada:***@127.0.0.1:{port}/items?api_key=***&page=2)")
    assert "hunter2" not in message
    assert "s3cret" not in message
    assert isinstance(run["h"].error.original, httpx.ConnectError)
    assert isinstance(run["h"].error.original.__cause__, httpx.ConnectError)  # httpx's own


def test_a_timeout_names_the_url_and_the_limit(run_bp, silent_port):
    params = {"url": f"http://127.0.0.1:{silent_port}/slow", "query": {"token": "t0k"}}
    run = run_bp({"h": {"type": "http-request", "params": {**params, "timeout": 0.2}}})
    assert str(run["h"].error).endswith(
        "ReadTimeout: no answer within timeout=0.2s "
        f"(GET http://127.0.0.1:{silent_port}/slow?token=***); raise the node's timeout if "
        "the server is slow"
    )


def test_a_status_failure_masks_secrets_in_its_url(run_bp, server):
    params = {"url": f"{server}/missing", "query": {"access_token": "t0k", "q": "x"}}
    run = run_bp({"h": {"type": "http-request", "params": params}})
    assert f"GET {server}/missing?access_token=***&q=x answered 404 Not Found" in str(
        run["h"].error
    )


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x"])
def test_only_http_schemes(url):
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
import os, subprocess, sys, time, pathlib
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
ready = pathlib.Path(sys.argv[1])
ready.with_suffix(".tmp").write_text(str(child.pid))
os.replace(ready.with_suffix(".tmp"), ready)  # the pid file appears whole, never half-written
time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _poll(condition: Callable[[], bool], within: float = 60.0) -> bool:
    """Whether ``condition`` becomes true before the deadline (checked every 20 ms)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _wait_dead(pid: int) -> bool:
    return _poll(lambda: not _alive(pid))  # SIGKILL is delivered asynchronously


def _tree_run(pid_file: Path, **params: object) -> cnb.Run:
    params = {"program": PY, "args": ["-c", TREE, str(pid_file)], **params}
    doc = {"conductor": 1, "id": "t", "nodes": {"s": {"type": "shell-command", "params": params}}}
    return cnb.Blueprint.from_dict(doc).start(history=False)


def _up_or_over(pid_file: Path, run: cnb.Run) -> Callable[[], bool]:
    """True once the tree has written its pid file, or the run has ended without it."""
    return lambda: pid_file.exists() or run.status.value in ("succeeded", "failed", "cancelled")


@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_cancel_kills_the_whole_process_tree(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    run = _tree_run(pid_file)
    assert _poll(pid_file.exists), "the process tree never came up"  # the gate
    grandchild = int(pid_file.read_text())
    assert _alive(grandchild)
    run.cancel()
    run.wait()
    assert run["s"].status.value == "cancelled"
    assert _wait_dead(grandchild)


@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_timeout_kills_the_whole_process_tree(tmp_path):
    # The timeout counts from the start of the process; on a loaded machine it may fire
    # before the tree has written its pid file, leaving nothing to check. Then try again
    # with a longer timeout rather than read a file that is not there.
    for timeout in (3, 10, 30):
        pid_file = tmp_path / f"grandchild-{timeout}.pid"
        run = _tree_run(pid_file, timeout=timeout)
        assert _poll(_up_or_over(pid_file, run), within=timeout + 60)
        if pid_file.exists():
            break
        run.wait()
    else:
        raise AssertionError("the process tree never came up before its timeout")
    grandchild = int(pid_file.read_text())
    run.wait()
    assert run.status.value == "failed"
    assert run["s"].status.value == "failed"
    assert f"timed out after {timeout}s; its process tree was killed" in str(run["s"].error)
    assert _wait_dead(grandchild)
