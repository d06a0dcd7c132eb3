"""``http-request`` bodies against a real local server: a mapping or list in ``body`` goes
as JSON, ``form`` as an HTML form, and two bodies at once are refused at validation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

import conductor_nb as cnb
from tests.nodes.conftest import one


def make(nodes: dict) -> cnb.Blueprint:
    return cnb.Blueprint.from_dict({"conductor": 1, "id": "t", "nodes": nodes}, validate=False)


class Echo(BaseHTTPRequestHandler):
    """POST answers {content_type, raw}: what arrived, as it arrived."""

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps(
            {"content_type": self.headers.get("Content-Type"), "raw": raw.decode()}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/post"
    httpd.shutdown()
    httpd.server_close()


def _sent(run_bp, url: str, **params) -> dict:
    run = run_bp(one("http-request", url=url, method="POST", **params))
    assert run.status.value == "succeeded", run["n"].error
    return run["n"].outputs["body"]


@pytest.mark.parametrize("value", [{"a": 1, "b": [1, 2]}, [1, "two", None]])
def test_a_mapping_or_list_in_body_is_sent_as_json(run_bp, echo, value):
    got = _sent(run_bp, echo, body=value)
    assert got["content_type"] == "application/json"
    assert json.loads(got["raw"]) == value


def test_a_templated_mapping_body_from_params_is_json_too(run_bp, echo):
    got = _sent(run_bp, echo, body={"who": "{{ 'x' ~ 1 }}", "n": "{{ 2 + 3 }}"})
    assert json.loads(got["raw"]) == {"who": "x1", "n": 5}


def test_text_and_bytes_bodies_go_as_they_are(run_bp, echo):
    assert _sent(run_bp, echo, body="a=1&b=2")["raw"] == "a=1&b=2"


def test_form_is_sent_url_encoded(run_bp, echo):
    got = _sent(run_bp, echo, form={"name": "Ada Lovelace", "tags": ["a", "b"], "n": 3})
    assert got["content_type"] == "application/x-www-form-urlencoded"
    assert parse_qs(got["raw"]) == {"name": ["Ada Lovelace"], "tags": ["a", "b"], "n": ["3"]}


def test_two_bodies_are_refused_at_validation_naming_the_params():
    bp = make(one("http-request", url="http://127.0.0.1:1/", json={"a": 1}, form={"b": 2}))
    with pytest.raises(cnb.BlueprintError) as caught:
        bp.validate()
    assert "nodes.n.params.form" in str(caught.value)
    assert "json and form" in str(caught.value)


def test_a_form_that_is_not_a_mapping_is_refused_at_validation():
    problems = make(one("http-request", url="http://127.0.0.1:1/", form=[1, 2])).problems()
    assert any(p.path == "nodes.n.params.form" for p in problems)
