"""The graph view in Notebook 7 (``jupyter notebook``), driven by Playwright in Debian's chromium.

The same checks as in JupyterLab, in the other front end people use: the view renders its
nodes and edges, and a background run started from Python recolours the nodes live while
the kernel is idle. One node waits on a gate file, so the mid-run picture is read without
timing assumptions.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.browser

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("notebook")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

CELLS = [
    '''import time
from pathlib import Path

import conductor_nb as cnb
from conductor_nb.widgets import BlueprintView

GATE = Path("gate")

@cnb.node
def load() -> list:
    """Three numbers."""
    return [1, 2, 3]

@cnb.node
def double(rows: list, factor: int = 2) -> list:
    while not GATE.exists():  # the test opens the gate after reading the mid-run picture
        time.sleep(0.05)
    return [r * factor for r in rows]

@cnb.node
def total(rows: list) -> int:
    return sum(rows)

@cnb.node
def report(value: int, label: str = "total") -> str:
    return f"{label}={value}"

bp = cnb.Blueprint("nb7")
bp.add(load, id="load"); bp.add(double, id="double"); bp.add(total, id="total")
bp.add(report, id="report")
bp.connect("load", "double.rows"); bp.connect("double", "total.rows")
bp.connect("total", "report.value")
v = BlueprintView(bp, height=300, run_options={"history": False})
v.add_class("v-nb7")
display(v)''',
    'print("READY-" + "SENTINEL")',
    'run = v.start_run()\nprint("STARTED-" + "SENTINEL")',
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    root = tmp_path_factory.mktemp("nb7root")
    home = tmp_path_factory.mktemp("nb7home")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nbformat.write(nb, str(root / "view7.ipynb"))
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "cfg"),
        JUPYTER_RUNTIME_DIR=str(home / "rt"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "ws"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    )
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "notebook",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
    ]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(home / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    try:
        t0 = time.monotonic()
        while True:
            assert proc.poll() is None, (home / "server.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                    break
            except Exception:
                assert time.monotonic() - t0 < 90, "jupyter notebook did not start"
                time.sleep(0.2)
        yield {"url": url, "root": root, "log": home / "server.log"}
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def _kernel(url: str, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/api/sessions") as r:
        for s in json.load(r):
            if s["path"] == path and s.get("kernel"):
                return dict(s["kernel"])
    return {}


def _wait_kernel_connected(url: str, path: str, timeout: float = 90) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        k = _kernel(url, path)
        if k.get("execution_state") == "idle" and k.get("connections", 0) >= 1:
            return
        time.sleep(0.2)
    raise TimeoutError("kernel not connected")


@pytest.fixture(scope="module")
def page(server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    profile = tmp_path_factory.mktemp("chrome-profile-nb7")
    with sync_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROME_ARGS,
            viewport={"width": 1300, "height": 1000},
        )
        try:
            pg = ctx.pages[0] if ctx.pages else ctx.new_page()
            pg.set_default_timeout(60_000)
            pg.goto(f"{server['url']}/notebooks/view7.ipynb")
            pg.locator(".jp-Notebook .jp-Cell").first.wait_for()
            _wait_kernel_connected(server["url"], "view7.ipynb")
            yield pg
        finally:
            ctx.close()


def node(page: Any, node_id: str) -> Any:
    return page.locator(f".v-nb7 .cnb-node[data-node='{node_id}']")


def test_view_renders_and_runs_live_in_notebook7(
    page: Any, server: dict[str, Any], tmp_path: Path
) -> None:
    # Notebook 7 is not JupyterLab: its own shell, the same Lumino menus
    assert "/notebooks/" in page.url
    expect(page.locator(".jp-LabShell")).to_have_count(0)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    run_all = page.locator("li.lm-Menu-item[data-command='runmenu:run-all']")
    expect(run_all).to_be_visible()
    run_all.click()
    page.locator(".jp-OutputArea-output", has_text="READY-SENTINEL").wait_for()

    # the view: 4 nodes, 3 edges, idle before the run
    view = page.locator(".v-nb7 .cnb-view")
    expect(view).to_be_visible()
    expect(page.locator(".v-nb7 .cnb-node")).to_have_count(4)
    expect(page.locator(".v-nb7 path.cnb-edge")).to_have_count(3)
    expect(node(page, "double").locator(".cnb-node-label")).to_have_text("double")

    # the last cell started a background run and ended; the run goes on, the gate holds it
    page.locator(".jp-OutputArea-output", has_text="STARTED-SENTINEL").wait_for()
    expect(node(page, "load")).to_have_attribute("data-state", "succeeded")
    expect(node(page, "double")).to_have_attribute("data-state", "running")
    expect(page.locator(".v-nb7 .cnb-run-status")).to_have_text("running")
    for later in ("total", "report"):
        assert node(page, later).get_attribute("data-state") != "succeeded"
    assert _kernel(server["url"], "view7.ipynb").get("execution_state") == "idle"
    view.screenshot(path=str(tmp_path / "nb7-mid-run.png"))

    (server["root"] / "gate").touch()
    for node_id in ("load", "double", "total", "report"):
        expect(node(page, node_id)).to_have_attribute("data-state", "succeeded")
    expect(page.locator(".v-nb7 .cnb-run-status")).to_have_text("succeeded")
    expect(page.locator(".v-nb7 .cnb-progress-text")).to_contain_text("4/4 nodes · 100%")
    expect(page.locator(".v-nb7 path.cnb-edge.cnb-flowed")).to_have_count(3)
    page.screenshot(path=str(tmp_path / "nb7-full.png"))
    view.screenshot(path=str(tmp_path / "nb7-view.png"))
    shots = os.environ.get("CNB_SHOT_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / "notebook7-full.png"))
