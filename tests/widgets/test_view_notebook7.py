"""The graph view in Notebook 7 (``jupyter notebook``), driven by Playwright in Debian's chromium.

The same checks as in JupyterLab, in the other front end people use: the view renders its
nodes and edges, and a background run started from Python recolours the nodes live while
the kernel is idle. One node waits on a gate file, so the mid-run picture is read without
timing assumptions.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import (
    CHROMIUM,
    jupyter_server,
    kernel_of,
    launch_chromium,
    screenshot,
    wait_kernel_connected,
    write_notebook,
)

pytestmark = pytest.mark.browser

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("notebook")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    root = tmp_path_factory.mktemp("nb7root")
    home = tmp_path_factory.mktemp("nb7home")
    write_notebook(root / "view7.ipynb", CELLS)
    with jupyter_server("notebook", root, home) as url:
        yield {"url": url, "root": root, "log": home / "server.log"}


@pytest.fixture(scope="module")
def page(server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        ctx = launch_chromium(pw, tmp_path_factory.mktemp("chrome-profile-nb7"), width=1300)
        try:
            pg = ctx.pages[0] if ctx.pages else ctx.new_page()
            pg.set_default_timeout(60_000)
            pg.goto(f"{server['url']}/notebooks/view7.ipynb")
            pg.locator(".jp-Notebook .jp-Cell").first.wait_for()
            wait_kernel_connected(server["url"], "view7.ipynb")
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
    assert kernel_of(server["url"], "view7.ipynb").get("execution_state") == "idle"
    screenshot(view, tmp_path / "nb7-mid-run.png")

    (server["root"] / "gate").touch()
    for node_id in ("load", "double", "total", "report"):
        expect(node(page, node_id)).to_have_attribute("data-state", "succeeded")
    expect(page.locator(".v-nb7 .cnb-run-status")).to_have_text("succeeded")
    expect(page.locator(".v-nb7 .cnb-progress-text")).to_contain_text("4/4 nodes · 100%")
    expect(page.locator(".v-nb7 path.cnb-edge.cnb-flowed")).to_have_count(3)
    page.screenshot(path=str(tmp_path / "nb7-full.png"))
    screenshot(view, tmp_path / "nb7-view.png")
    shots = os.environ.get("CNB_SHOT_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(shots) / "notebook7-full.png"))
