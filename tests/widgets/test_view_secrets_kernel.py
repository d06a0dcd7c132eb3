"""Secrets stay out of the browser: a run's ``env`` values are masked in everything the view
sends (inspector inputs, outputs as tables, trees and text, errors, tracebacks, logs).

In a real ipykernel: every message the kernel publishes while the view runs and inspects
each node is read off the iopub channel (what a browser would receive), and none holds the
secret, while the nodes themselves got the real value.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("anywidget")

pytestmark = pytest.mark.notebook

SECRET = "tok-4f9a2c-very-secret"

SETUP = """
import conductor_nb as cnb
from conductor_nb.widgets import BlueprintView

@cnb.node
def fetch(token: str = "") -> list:
    print("calling with", token)
    return [{"user": "ada", "token": token}, {"user": "linus", "token": token}]

@cnb.node
def nested(rows: list) -> dict:
    return {"auth": {"header": "Bearer " + rows[0]["token"]}, "more": [1, [2, 3]]}

@cnb.node
def echo(rows: list) -> str:
    return "the token is " + rows[0]["token"]

@cnb.node
def explode(rows: list) -> int:
    raise ValueError("refused token " + rows[0]["token"])

bp = cnb.Blueprint("secrets")
bp.add(fetch, id="fetch", token="{{ env.CNB_VIEW_SECRET }}")
bp.add(nested, id="nested"); bp.add(echo, id="echo"); bp.add(explode, id="explode")
for target in ("nested", "echo", "explode"):
    bp.connect("fetch", f"{target}.rows")
view = BlueprintView(bp, run_options={"history": False, "env": ["CNB_VIEW_SECRET"]})
"""

INSPECT = """
run = view.start_run()
run.wait(60)
view.wait_actions()
for node_id in ("fetch", "nested", "echo", "explode", ""):
    view.selected = node_id
view.retry("explode")
view.wait_actions()
real = run["echo"].output
print("REAL", real.endswith(os.environ["CNB_VIEW_SECRET"]), run.status.value)
"""


def execute(kc: Any, code: str, timeout: float = 120) -> tuple[str, list[dict[str, Any]]]:
    """Run a cell; return its stdout and every iopub message it caused."""
    msg_id = kc.execute(code)
    out: list[str] = []
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        messages.append(msg)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    kc.get_shell_msg(timeout=timeout)
    return "".join(out), messages


def test_the_view_never_sends_a_secret_to_the_browser(tmp_path: Any) -> None:
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path), env={**os.environ, "CNB_VIEW_SECRET": SECRET})
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        execute(kc, "import os\n" + SETUP)
        out, messages = execute(kc, INSPECT)
        assert "REAL True failed" in out, out  # the nodes read the real value
        comm = [m for m in messages if m["msg_type"].startswith("comm_")]
        sent = json.dumps([m["content"] for m in comm])
        inspected = [
            m["content"]["data"]["state"]["inspector"]
            for m in comm
            if "inspector" in m["content"].get("data", {}).get("state", {})
        ]
        shown = {i["node"]: i for i in inspected if i}
        assert set(shown) == {"fetch", "nested", "echo", "explode"}
        assert SECRET not in sent
        assert "-very-secret" not in sent and "tok-4f9a2c" not in sent
        # masked, not dropped: the values are there with *** in place of the secret
        table = shown["fetch"]["run"]["outputs"][0]["table"]
        assert table["head"][0] == ["ada", "***"]
        assert "calling with ***" in shown["fetch"]["run"]["logs"]
        tree = shown["nested"]["run"]["outputs"][0]["tree"]
        assert tree["auth"]["header"] == "Bearer ***"
        assert shown["echo"]["run"]["outputs"][0]["text"] == "'the token is ***'"
        failed = shown["explode"]["run"]
        assert "refused token ***" in failed["error"]
        assert "***" in failed["traceback"]
        assert '"token": "***"' in failed["inputs_json"]  # the re-run form shows them masked
        print(f"{len(comm)} comm messages, {len(sent) / 1024:.0f} kB, no secret in any")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
