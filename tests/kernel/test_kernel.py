"""The engine in a real ipykernel: sync and async forms, background runs, stepping, interrupt."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
jupyter_client = pytest.importorskip("jupyter_client")

pytestmark = pytest.mark.notebook

SETUP = """
import asyncio, time
import conductor_nb as cnb

@cnb.node
def double(x: int) -> int:
    return x * 2

@cnb.node
async def slow(x: int) -> int:
    open(f"slow-started-{x}", "w").close()  # a gate the test waits for (cwd: a temp dir)
    await asyncio.sleep(30)
    return x

bp = cnb.Blueprint("k")
bp.add(double, id="a", x=4)
bp.add(double, id="b")
bp.connect("a", "b.x")
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(tmp_path_factory.mktemp("kernel")))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    execute(kc, SETUP)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def kernel_cwd(kc) -> str:
    return execute(kc, "import os; print(os.getcwd())")["out"].strip().splitlines()[-1]


def execute(kc, code: str, timeout: float = 60) -> dict:
    """Run a cell; return its status, stdout and error name."""
    msg_id = kc.execute(code)
    out, status, ename = [], None, None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            ename = content["ename"]
        elif kind == "status" and content["execution_state"] == "idle":
            break
    reply = kc.get_shell_msg(timeout=timeout)
    status = reply["content"]["status"]
    return {"status": status, "out": "".join(out), "ename": ename}


def test_sync_run_in_a_cell(kernel) -> None:
    _, kc = kernel
    result = execute(kc, "r = bp.run(); print(r.status.value, r['b'].output)")
    assert result["out"].strip().splitlines()[-1] == "succeeded 16", result


def test_top_level_await_arun(kernel) -> None:
    _, kc = kernel
    result = execute(kc, "r = await bp.arun(); print(r['b'].output)")
    assert result["out"].strip().splitlines()[-1] == "16", result


def test_start_then_await_in_a_later_cell(kernel) -> None:
    _, kc = kernel
    execute(kc, "bg = bp.start()")
    result = execute(kc, "await bg; print(bg.status.value, bg['b'].output)")
    assert result["out"].strip().splitlines()[-1] == "succeeded 16", result


def test_debug_and_step_in_cells(kernel) -> None:
    _, kc = kernel
    execute(kc, "dbg = bp.debug()")
    result = execute(kc, "n = dbg.step(); print(n.node_id, dbg.status.value)")
    assert result["out"].strip().splitlines()[-1] == "a paused", result
    result = execute(kc, "n = await dbg.astep(); print(n.node_id, n.output)")
    assert result["out"].strip().splitlines()[-1] == "b 16", result


@pytest.mark.parametrize("form", ["sync", "await"])
def test_interrupt_cancels_a_long_run_and_the_kernel_lives(kernel, form) -> None:
    km, kc = kernel
    mark = {"sync": 1, "await": 2}[form]
    code = (
        f"lr = cnb.Blueprint('long'); lr.add(slow, id='s', x={mark}); lr.add(double, id='d'); "
        "lr.connect('s', 'd.x')\n"
        "import conductor_nb.engine.hooks as H\n"
        "H.run_created.append(lambda r: globals().__setitem__('last_run', r))\n"
        + ("r2 = lr.run()" if form == "sync" else "r2 = await lr.arun()")
    )
    started_file = Path(kernel_cwd(kc)) / f"slow-started-{mark}"
    msg_id = kc.execute(code)
    deadline = time.monotonic() + 60  # wait until the node is running, then interrupt
    while not started_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started_file.exists(), "the slow node never started"
    started = time.monotonic()
    km.interrupt_kernel()
    ename = None
    while time.monotonic() - started < 20:
        msg = kc.get_iopub_msg(timeout=20)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            ename = msg["content"]["ename"]
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    kc.get_shell_msg(timeout=10)
    # a blocking cell gets KeyboardInterrupt; ipykernel cancels an awaiting cell's task
    assert ename == ("KeyboardInterrupt" if form == "sync" else "CancelledError")
    result = execute(
        kc,
        "H.run_created.pop()\n"
        "print(last_run.status.value, {n: r.status.value for n, r in last_run.node_runs.items()})",
    )
    assert result["out"].strip().splitlines()[-1] == (
        "cancelled {'s': 'cancelled', 'd': 'cancelled'}"
    )
