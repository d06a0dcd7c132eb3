"""The graph view in a real JupyterLab, driven by Playwright in Debian's chromium.

One JupyterLab server and one page for the module: the notebook is opened and
run once, then each test acts on its views (tests run in file order). Waits are
on DOM states, never on fixed sleeps or timing thresholds.
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
    launch_chromium,
    open_lab_and_run_all,
    run_in_kernel,
    write_notebook,
)

pytestmark = pytest.mark.browser

nbformat = pytest.importorskip("nbformat")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

DOCS = Path(__file__).resolve().parents[2] / "docs"
SHOTS = Path(os.environ.get("CNB_SHOT_DIR", "/tmp/cnb-shots"))

CELLS = [
    '''import conductor_nb as cnb
from conductor_nb.widgets import BlueprintView

@cnb.node
def load() -> list:
    """Three numbers."""
    return [1, 2, 3]

@cnb.node
def double(rows: list, factor: int = 2) -> list:
    """Multiply every row."""
    return [r * factor for r in rows]

@cnb.node
def total(rows: list) -> int:
    return sum(rows)

@cnb.node
def report(value: int, label: str = "total") -> str:
    print("reporting", value)
    return f"{label}={value}"

bp = cnb.Blueprint("demo")
bp.add(load, id="load"); bp.add(double, id="double"); bp.add(total, id="total")
bp.add(report, id="report")
bp.connect("load", "double.rows"); bp.connect("double", "total.rows")
bp.connect("total", "report.value")
v = BlueprintView(bp, slow_motion=0.6, height=300, run_options={"history": False})
v.add_class("v-main")
display(v)''',
    """@cnb.node
def explode(rows: list) -> int:
    raise ValueError(f"kaboom: cannot use {len(rows)} rows")

bp2 = cnb.Blueprint("fails")
bp2.add(load, id="src"); bp2.add(explode, id="boom"); bp2.connect("src", "boom.rows")
v2 = BlueprintView(bp2, height=220, run_options={"history": False})
v2.add_class("v-fail")
display(v2)""",
    """bp3 = cnb.Blueprint("edit")
bp3.add(load, id="src", position=(20, 40)); bp3.add(total, id="sink", position=(340, 40))
v3 = BlueprintView(bp3, height=220)
v3.add_class("v-edit")
display(v3)""",
    """big = cnb.Blueprint("big")
for i in range(25):
    big.add(load, id=f"src{i}")
    for j in range(19):
        big.add(double, id=f"n{i}_{j}")
        big.connect(f"src{i}" if j == 0 else f"n{i}_{j - 1}", f"n{i}_{j}.rows")
v500 = BlueprintView(big, height=300, run_options={"history": False, "concurrency": 32})
v500.add_class("v-big")
display(v500)""",
    'print("READY-" + "SENTINEL")',
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    root = tmp_path_factory.mktemp("nbroot")
    write_notebook(root / "view.ipynb", CELLS)
    with jupyter_server(
        "jupyterlab",
        root,
        tmp_path_factory.mktemp("jhome"),
        ["--LabApp.expose_app_in_browser=True"],
    ) as url:
        yield {"url": url, "root": root}


@pytest.fixture(scope="module")
def page(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        ctx = launch_chromium(pw, tmp_path_factory.mktemp("chrome-profile"))
        pg = ctx.pages[0] if ctx.pages else ctx.new_page()
        pg.set_default_timeout(60_000)
        open_lab_and_run_all(pg, lab["url"], "view.ipynb", "READY-SENTINEL")
        yield pg
        ctx.close()


def kernel(page: Any, code: str) -> str:
    return run_in_kernel(page, code)


def node(page: Any, view: str, node_id: str) -> Any:
    return page.locator(f".{view} .cnb-node[data-node='{node_id}']")


def test_renders_nodes_edges_and_ports(page: Any) -> None:
    expect(page.locator(".v-main .cnb-node")).to_have_count(4)
    expect(page.locator(".v-main path.cnb-edge")).to_have_count(3)
    expect(page.locator(".v-main .cnb-port-in")).to_have_count(
        5
    )  # rows, factor, rows, value, label
    expect(page.locator(".v-main .cnb-port-out")).to_have_count(4)
    expect(node(page, "v-main", "double").locator(".cnb-node-label")).to_have_text("double")
    expect(page.locator(".v-main .cnb-run-status")).to_have_text("idle")
    expect(page.locator(".v-fail .cnb-node")).to_have_count(2)


def test_background_run_updates_live_while_kernel_idle(page: Any) -> None:
    page.locator(".v-main .cnb-btn-run").click()
    expect(node(page, "v-main", "load")).to_have_attribute("data-state", "succeeded")
    # the first node finished and the last has not: the picture changes during the run...
    assert node(page, "v-main", "report").get_attribute("data-state") != "succeeded"
    expect(page.locator(".v-main .cnb-run-status")).to_have_text("running")
    # ...while the kernel is idle (the run lives on the engine thread)
    expect(page.get_by_role("button", name=re.compile(r"\(ipykernel\) \| Idle"))).to_be_visible()
    expect(node(page, "v-main", "report")).to_have_attribute("data-state", "succeeded")
    expect(page.locator(".v-main .cnb-run-status")).to_have_text("succeeded")
    expect(page.locator(".v-main .cnb-progress-text")).to_contain_text("4/4 nodes · 100%")
    expect(page.locator(".v-main path.cnb-edge.cnb-flowed")).to_have_count(3)
    expect(node(page, "v-main", "total").locator(".cnb-node-detail")).to_contain_text("succeeded")


def test_step_runs_exactly_one_more_node(page: Any) -> None:
    page.locator(".v-main .cnb-btn-reset").click()
    succeeded = page.locator(".v-main .cnb-node[data-state='succeeded']")
    expect(succeeded).to_have_count(0)
    page.locator(".v-main .cnb-btn-step").click()
    expect(succeeded).to_have_count(1)
    expect(node(page, "v-main", "load")).to_have_attribute("data-state", "succeeded")
    expect(page.locator(".v-main .cnb-run-status")).to_contain_text("paused")
    assert "1 of 4" in kernel(
        page, "print(sum(r.status.value == 'succeeded' for r in v.run.node_runs.values()), 'of', 4)"
    )
    page.locator(".v-main .cnb-btn-step").click()
    expect(succeeded).to_have_count(2)
    expect(node(page, "v-main", "double")).to_have_attribute("data-state", "succeeded")
    expect(page.locator(".v-main .cnb-run-status")).to_contain_text("paused")
    expect(succeeded).to_have_count(2)
    page.locator(".v-main .cnb-btn-stop").click()
    expect(page.locator(".v-main .cnb-run-status")).to_have_text("cancelled")


def test_breakpoint_pauses_the_run_there(page: Any) -> None:
    page.locator(".v-main .cnb-btn-reset").click()
    expect(page.locator(".v-main .cnb-run-status")).to_have_text("idle")
    node(page, "v-main", "total").locator(".cnb-badge").click()
    expect(node(page, "v-main", "total")).to_have_class(re.compile(r"cnb-has-breakpoint"))
    assert "['total']" in kernel(page, "print(v.breakpoints)")
    page.locator(".v-main .cnb-btn-run").click()
    expect(node(page, "v-main", "total")).to_have_attribute("data-state", "paused")
    expect(page.locator(".v-main .cnb-run-status")).to_have_text("paused before total")
    expect(node(page, "v-main", "double")).to_have_attribute("data-state", "succeeded")
    expect(node(page, "v-main", "report")).to_have_attribute("data-state", "pending")
    assert "paused total" in kernel(page, "print(v.run.status.value, v.run.paused_at)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".v-main .cnb-view").screenshot(path=str(SHOTS / "paused.png"))
    if os.environ.get("CNB_UPDATE_DOCS"):
        page.locator(".v-main .cnb-view").screenshot(path=str(DOCS / "screenshot-paused.png"))
    page.locator(".v-main .cnb-btn-resume").click()
    expect(node(page, "v-main", "report")).to_have_attribute("data-state", "succeeded")
    expect(page.locator(".v-main .cnb-run-status")).to_have_text("succeeded")


def test_failed_node_error_in_inspector(page: Any) -> None:
    page.locator(".v-fail .cnb-btn-run").click()
    expect(node(page, "v-fail", "boom")).to_have_attribute("data-state", "failed")
    expect(page.locator(".v-fail .cnb-run-status")).to_have_text("failed")
    node(page, "v-fail", "boom").locator(".cnb-node-box").click()
    inspector = page.locator(".v-fail .cnb-inspector")
    expect(inspector.locator(".cnb-insp-title")).to_have_text("boom")
    expect(inspector.locator(".cnb-insp-error-message")).to_contain_text(
        "ValueError: kaboom: cannot use 3 rows"
    )
    expect(inspector.locator(".cnb-traceback")).to_contain_text("explode", use_inner_text=False)
    expect(inspector.locator(".cnb-inputs .cnb-preview[data-name='rows']")).to_contain_text(
        "[1, 2, 3]"
    )
    expect(inspector.locator(".cnb-btn-retry")).to_be_visible()


def _drag(page: Any, source: Any, target: Any) -> None:
    source.scroll_into_view_if_needed()
    a, b = source.bounding_box(), target.bounding_box()
    ax, ay = a["x"] + a["width"] / 2, a["y"] + a["height"] / 2
    bx, by = b["x"] + b["width"] / 2, b["y"] + b["height"] / 2
    page.mouse.move(ax, ay)
    page.mouse.down()
    page.mouse.move((ax + bx) / 2, (ay + by) / 2 + 20, steps=5)
    page.mouse.move(bx, by, steps=5)
    page.mouse.up()


def test_connect_ports_by_dragging(page: Any) -> None:
    expect(page.locator(".v-edit path.cnb-edge")).to_have_count(0)
    out_port = page.locator(".v-edit .cnb-port-out[data-node='src'][data-port='output']")
    in_port = page.locator(".v-edit .cnb-port-in[data-node='sink'][data-port='rows']")
    _drag(page, out_port, in_port)
    expect(page.locator(".v-edit path.cnb-edge")).to_have_count(1)
    assert "['src.output -> sink.rows']" in kernel(page, "print([str(e) for e in bp3.edges])")
    # the same edge again is refused, with the reason in the view's error area
    _drag(page, out_port, in_port)
    expect(page.locator(".v-edit .cnb-error-text")).to_contain_text("already connected")
    expect(page.locator(".v-edit path.cnb-edge")).to_have_count(1)
    page.locator(".v-edit .cnb-error-close").click()
    expect(page.locator(".v-edit .cnb-error")).to_be_hidden()


def test_python_edits_update_the_view(page: Any) -> None:
    kernel(page, "bp3.add(double, id='more', position=(340, 150)); bp3.connect('src', 'more.rows')")
    expect(page.locator(".v-edit .cnb-node")).to_have_count(3)
    expect(page.locator(".v-edit path.cnb-edge")).to_have_count(2)


def test_screenshot_for_readme(page: Any) -> None:
    page.locator(".v-main .cnb-btn-reset").click()
    expect(page.locator(".v-main .cnb-run-status")).to_have_text("idle")
    page.locator(".v-main .cnb-btn-run").click()
    expect(page.locator(".v-main .cnb-run-status")).to_contain_text("paused")  # breakpoint
    page.locator(".v-main .cnb-btn-resume").click()
    expect(page.locator(".v-main .cnb-run-status")).to_have_text("succeeded")
    node(page, "v-main", "double").locator(".cnb-node-box").click()
    expect(page.locator(".v-main .cnb-insp-title")).to_have_text("double")
    expect(page.locator(".v-main .cnb-outputs")).to_contain_text("[2, 4, 6]")
    # the README's pictures are refreshed on request only (CNB_UPDATE_DOCS=1), so a test run
    # never changes tracked files
    target = DOCS if os.environ.get("CNB_UPDATE_DOCS") else SHOTS
    target.mkdir(parents=True, exist_ok=True)
    page.locator(".v-main .cnb-view").screenshot(path=str(target / "screenshot-view.png"))
    page.locator(".v-fail .cnb-view").screenshot(path=str(SHOTS / "failed.png"))
    page.screenshot(path=str(SHOTS / "lab-full.png"), full_page=True)


def test_a_500_node_blueprint_renders_and_runs_live(page: Any) -> None:
    big = page.locator(".v-big .cnb-node")
    expect(big).to_have_count(500)
    expect(page.locator(".v-big path.cnb-edge")).to_have_count(475)
    page.locator(".v-big .cnb-btn-fit").click()
    page.locator(".v-big .cnb-btn-run").click()
    expect(page.locator(".v-big .cnb-progress-text")).to_contain_text(
        "500/500 nodes · 100%", timeout=120_000
    )
    expect(page.locator(".v-big .cnb-node[data-state='succeeded']")).to_have_count(500)
    flushes = int(kernel(page, "print(v500.flushes)").strip())
    assert flushes < 500  # coalesced: far fewer trait updates than the 1,500+ node events
    page.locator(".v-big").screenshot(path=str(SHOTS / "big.png"))
