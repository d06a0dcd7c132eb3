"""The graph view in a real JupyterLab, driven by Playwright in Debian's chromium.

One JupyterLab server and one page for the module: the notebook is opened and
run once, then each test acts on its views (tests run in file order). Waits are
on DOM states, never on fixed sleeps or timing thresholds. A node that must be
caught mid-run waits on a gate file the test creates when it has seen what it
needs (the kernel's working directory is the notebook's folder).
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
    IDLE_KERNEL,
    jupyter_server,
    kernel_of,
    launch_chromium,
    open_lab_and_run_all,
    run_in_kernel,
    run_new_cell,
    screenshot,
    write_notebook,
)

pytestmark = pytest.mark.browser

nbformat = pytest.importorskip("nbformat")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

DOCS = Path(__file__).resolve().parents[2] / "docs"
SHOTS = Path(os.environ.get("CNB_SHOT_DIR", "/tmp/cnb-shots"))

CELLS = [
    '''import time
from pathlib import Path

import conductor_nb as cnb
from conductor_nb.widgets import BlueprintView

def wait_for_gate(name):
    """Hold the calling node until the test creates the file ``name``."""
    while not Path(name).exists():
        time.sleep(0.05)

@cnb.node
def load() -> list:
    """Three numbers."""
    return [1, 2, 3]

@cnb.node
def double(rows: list, factor: int = 2) -> list:
    """Multiply every row."""
    wait_for_gate("gate-main")
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
v = BlueprintView(bp, height=300, run_options={"history": False})
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
    """@cnb.node
def held(rows: list) -> list:
    wait_for_gate("gate-pause")
    return rows

bp4 = cnb.Blueprint("pausable")
bp4.add(load, id="first"); bp4.add(held, id="held"); bp4.add(total, id="after")
bp4.connect("first", "held.rows"); bp4.connect("held", "after.rows")
v4 = BlueprintView(bp4, height=200, run_options={"history": False})
v4.add_class("v-pause")
display(v4)""",
    """big = cnb.Blueprint("big")
for i in range(25):
    big.add(load, id=f"src{i}")
    for j in range(19):
        big.add(double, id=f"n{i}_{j}")
        big.connect(f"src{i}" if j == 0 else f"n{i}_{j - 1}", f"n{i}_{j}.rows")
v500 = BlueprintView(big, height=300, run_options={"history": False, "concurrency": 32})
v500.add_class("v-big")
display(v500)""",
    "%load_ext conductor_nb",
    """%%blueprint magic_bp
id: from-magic
nodes:
  first: {type: load}
  second: {type: double}
edges:
  - first.output -> second.rows""",
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


def py(page: Any, expr: str) -> str:
    """``print(expr)`` in the kernel; the printed text, stripped."""
    return kernel(page, f"print({expr})").strip()


def node(page: Any, view: str, node_id: str) -> Any:
    return page.locator(f".{view} .cnb-node[data-node='{node_id}']")


def status(page: Any, view: str) -> Any:
    return page.locator(f".{view} .cnb-run-status")


def shot(locator: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    screenshot(locator, SHOTS / name)


@pytest.fixture
def main_gate_open(lab: dict[str, Any]) -> None:
    """v-main's ``double`` waits on this gate; tests after the mid-run check need it open."""
    (lab["root"] / "gate-main").touch()


def test_renders_nodes_edges_and_ports(page: Any) -> None:
    expect(page.locator(".v-main .cnb-node")).to_have_count(4)
    expect(page.locator(".v-main path.cnb-edge")).to_have_count(3)
    expect(page.locator(".v-main .cnb-port-in")).to_have_count(
        5
    )  # rows, factor, rows, value, label
    expect(page.locator(".v-main .cnb-port-out")).to_have_count(4)
    expect(node(page, "v-main", "double").locator(".cnb-node-label")).to_have_text("double")
    expect(status(page, "v-main")).to_have_text("idle")
    expect(page.locator(".v-fail .cnb-node")).to_have_count(2)
    # four nodes wider than the 300 px high view: read by panning, no overview map over them
    expect(page.locator(".v-main .cnb-view")).to_have_attribute("data-draw-ms", re.compile(r"\d"))
    expect(page.locator(".v-main .cnb-view")).not_to_have_class(re.compile("cnb-overview-on"))


def test_background_run_updates_live_while_kernel_idle(
    page: Any, lab: dict[str, Any], tmp_path: Path
) -> None:
    assert not (lab["root"] / "gate-main").exists()
    page.locator(".v-main .cnb-btn-run").click()
    # mid-run, held by the gate: the first node finished, the second runs, the rest wait...
    expect(node(page, "v-main", "load")).to_have_attribute("data-state", "succeeded")
    expect(node(page, "v-main", "double")).to_have_attribute("data-state", "running")
    for later in ("total", "report"):
        expect(node(page, "v-main", later)).to_have_attribute("data-state", "pending")
    expect(status(page, "v-main")).to_have_text("running")
    expect(page.locator(".v-main .cnb-progress-text")).to_contain_text("1/4 nodes · 25%")
    # ...while the kernel is idle (the run lives on the engine thread)
    expect(page.get_by_role("button", name=re.compile(IDLE_KERNEL))).to_be_visible()
    assert kernel_of(lab["url"], "view.ipynb").get("execution_state") == "idle"
    shot(page.locator(".v-main .cnb-view"), "mid-run.png")
    (lab["root"] / "gate-main").touch()
    expect(node(page, "v-main", "report")).to_have_attribute("data-state", "succeeded")
    expect(status(page, "v-main")).to_have_text("succeeded")
    expect(page.locator(".v-main .cnb-progress-text")).to_contain_text("4/4 nodes · 100%")
    expect(page.locator(".v-main path.cnb-edge.cnb-flowed")).to_have_count(3)
    expect(node(page, "v-main", "total").locator(".cnb-node-detail")).to_contain_text("succeeded")


def scale(page: Any, view: str) -> float:
    """The canvas zoom (the view mirrors its viewport as data-viewport="x,y,zoom")."""
    return float(page.locator(f".{view} .cnb-view").get_attribute("data-zoom") or "nan")


def test_zoom_buttons_scale_the_graph(page: Any) -> None:
    view = page.locator(".v-main .cnb-view")
    box = node(page, "v-main", "double").locator(".cnb-node-box")
    fitted = view.get_attribute("data-viewport")
    assert scale(page, "v-main") >= 0.78  # opens readable (labels 13 px at zoom 1: >= 10 px)
    k0, w0 = scale(page, "v-main"), box.bounding_box()["width"]
    page.locator(".v-main .cnb-btn-zoom-in").click()
    expect(view).not_to_have_attribute("data-viewport", fitted or "")
    assert scale(page, "v-main") == pytest.approx(k0 * 1.25, rel=1e-3)
    assert box.bounding_box()["width"] == pytest.approx(w0 * 1.25, rel=0.02)  # drawn bigger
    zoomed_in = view.get_attribute("data-viewport")
    page.locator(".v-main .cnb-btn-zoom-out").click()
    page.locator(".v-main .cnb-btn-zoom-out").click()
    expect(view).not_to_have_attribute("data-viewport", zoomed_in or "")
    assert scale(page, "v-main") == pytest.approx(k0 * 1.25 * 0.8 * 0.8, rel=1e-3)
    assert box.bounding_box()["width"] == pytest.approx(w0 * 0.8, rel=0.02)
    # a Step no longer redraws the view (only the nodes that changed): the same drawing stays,
    # with the zoom the user left
    kept = view.get_attribute("data-viewport")
    view.evaluate("e => { e.dataset.drawing = 'old'; }")
    page.locator(".v-main .cnb-btn-step").click()
    expect(status(page, "v-main")).to_contain_text("paused")
    expect(page.locator(".v-main .cnb-view[data-drawing='old']")).to_have_count(1)
    expect(view).to_have_attribute("data-viewport", kept or "")
    page.locator(".v-main .cnb-btn-fit").click()  # and Fit all shows every node
    expect(view).not_to_have_attribute("data-viewport", kept or "")
    canvas = page.locator(".v-main .cnb-canvas").bounding_box()
    for n in page.locator(".v-main .cnb-node-box").all():
        b = n.bounding_box()
        assert canvas["x"] <= b["x"] and b["x"] + b["width"] <= canvas["x"] + canvas["width"]
        assert canvas["y"] <= b["y"] and b["y"] + b["height"] <= canvas["y"] + canvas["height"]


@pytest.mark.usefixtures("main_gate_open")
def test_step_runs_exactly_one_more_node(page: Any) -> None:
    page.locator(".v-main .cnb-btn-reset").click()
    succeeded = page.locator(".v-main .cnb-node[data-state='succeeded']")
    expect(succeeded).to_have_count(0)
    page.locator(".v-main .cnb-btn-step").click()
    expect(succeeded).to_have_count(1)
    expect(node(page, "v-main", "load")).to_have_attribute("data-state", "succeeded")
    expect(status(page, "v-main")).to_contain_text("paused")
    assert "1 of 4" in kernel(
        page, "print(sum(r.status.value == 'succeeded' for r in v.run.node_runs.values()), 'of', 4)"
    )
    page.locator(".v-main .cnb-btn-step").click()
    expect(succeeded).to_have_count(2)
    expect(node(page, "v-main", "double")).to_have_attribute("data-state", "succeeded")
    expect(status(page, "v-main")).to_contain_text("paused")
    expect(succeeded).to_have_count(2)
    page.locator(".v-main .cnb-btn-stop").click()
    expect(status(page, "v-main")).to_have_text("cancelled")


@pytest.mark.usefixtures("main_gate_open")
def test_breakpoint_pauses_the_run_there(page: Any) -> None:
    page.locator(".v-main .cnb-btn-reset").click()
    expect(status(page, "v-main")).to_have_text("idle")
    node(page, "v-main", "total").locator(".cnb-badge").click()
    expect(node(page, "v-main", "total")).to_have_class(re.compile(r"cnb-has-breakpoint"))
    assert "['total']" in kernel(page, "print(v.breakpoints)")
    page.locator(".v-main .cnb-btn-run").click()
    expect(node(page, "v-main", "total")).to_have_attribute("data-state", "paused")
    expect(status(page, "v-main")).to_have_text("paused")
    expect(page.locator(".v-main .cnb-where")).to_have_text(re.compile(r"paused before total$"))
    expect(node(page, "v-main", "double")).to_have_attribute("data-state", "succeeded")
    expect(node(page, "v-main", "report")).to_have_attribute("data-state", "pending")
    assert "paused total" in kernel(page, "print(v.run.status.value, v.run.paused_at)")
    shot(page.locator(".v-main .cnb-view"), "paused.png")
    if os.environ.get("CNB_UPDATE_DOCS"):
        screenshot(page.locator(".v-main .cnb-view"), DOCS / "screenshot-paused.png")
    page.locator(".v-main .cnb-btn-resume").click()
    expect(node(page, "v-main", "report")).to_have_attribute("data-state", "succeeded")
    expect(status(page, "v-main")).to_have_text("succeeded")


def test_pause_dispatches_nothing_new_until_resume(page: Any, lab: dict[str, Any]) -> None:
    """first -> held -> after, where held waits on a gate: Pause while held runs; held may
    finish but after must not start; Resume runs it."""
    page.locator(".v-pause .cnb-btn-run").click()
    expect(node(page, "v-pause", "held")).to_have_attribute("data-state", "running")
    page.locator(".v-pause .cnb-btn-pause").click()
    expect(status(page, "v-pause")).to_have_text("paused")
    assert py(page, "v4.run.status.value, v4.run['held'].status.value") == "paused running"
    # the running node finishes; the kernel waits until the run settles (paused, nothing
    # running): had `after` been dispatched it would be running or done, not pending
    (lab["root"] / "gate-pause").touch()
    settled = py(
        page, "v4.run.wait(60).status.value, *(r.status.value for r in v4.run.node_runs.values())"
    )
    assert settled == "paused succeeded succeeded pending"  # first, held, after
    expect(node(page, "v-pause", "held")).to_have_attribute("data-state", "succeeded")
    # `after` has not started; the view marks it as the node the run is paused before
    expect(node(page, "v-pause", "after")).to_have_attribute("data-state", "paused")
    expect(status(page, "v-pause")).to_have_text("paused")
    expect(page.locator(".v-pause .cnb-where")).to_have_text(re.compile(r"paused before after$"))
    shot(page.locator(".v-pause .cnb-view"), "paused-by-button.png")
    page.locator(".v-pause .cnb-btn-resume").click()
    expect(node(page, "v-pause", "after")).to_have_attribute("data-state", "succeeded")
    expect(status(page, "v-pause")).to_have_text("succeeded")
    assert py(page, "v4.run.wait(60).status.value, v4.run['after'].outputs") == (
        "succeeded {'output': 6}"
    )


def test_failed_node_error_in_inspector(page: Any) -> None:
    page.locator(".v-fail .cnb-btn-run").click()
    expect(node(page, "v-fail", "boom")).to_have_attribute("data-state", "failed")
    expect(status(page, "v-fail")).to_have_text("failed")
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
    shot(page.locator(".v-fail .cnb-view"), "failed.png")


FIX = """@cnb.node
def explode(rows: list) -> int:
    return sum(rows) * 100

print("FIXED-" + "SENTINEL")"""


def test_retry_after_fixing_the_function_in_a_cell(page: Any) -> None:
    assert py(page, "v2.run.status.value, v2.run['boom'].status.value") == "failed failed"
    run_new_cell(page, FIX, "FIXED-SENTINEL")  # the fix: a new cell redefines the node type
    node(page, "v-fail", "boom").locator(".cnb-node-box").click()
    inspector = page.locator(".v-fail .cnb-inspector")
    expect(inspector.locator(".cnb-insp-title")).to_have_text("boom")
    inspector.locator(".cnb-btn-retry").click()
    expect(node(page, "v-fail", "boom")).to_have_attribute("data-state", "succeeded")
    expect(status(page, "v-fail")).to_have_text("succeeded")
    expect(inspector.locator(".cnb-outputs .cnb-preview[data-name='output']")).to_contain_text(
        "600"
    )
    expect(inspector.locator(".cnb-insp-error")).to_have_count(0)
    # the same run, now succeeded with the new definition; the upstream node did not run again
    assert py(page, "v2.run.wait(60).status.value, v2.run['boom'].outputs") == (
        "succeeded {'output': 600}"
    )
    assert py(page, "v2.run['src'].attempts") == "1"


def test_rerun_with_edited_inputs_from_the_inspector(page: Any) -> None:
    inspector = page.locator(".v-fail .cnb-inspector")
    expect(inspector.locator(".cnb-insp-title")).to_have_text("boom")
    inputs = inspector.locator("textarea.cnb-rerun-inputs")
    expect(inputs).to_have_value(re.compile(r'"rows": \[\s*1,\s*2,\s*3\s*\]'))
    inputs.fill('{"rows": [10, 20]}')
    # while the user types, the run changes (here: src re-run from a cell): the view is drawn
    # again, and what was typed is still there
    page.locator(".v-fail .cnb-view").evaluate("e => { e.dataset.drawing = 'old'; }")
    assert py(page, "v2.run.rerun('src').status.value") == "succeeded"
    expect(page.locator(".v-fail .cnb-view[data-drawing='old']")).to_have_count(0)
    expect(inputs).to_have_value('{"rows": [10, 20]}')
    # the keyboard was in a text field: the new drawing does not hand it to the canvas, where
    # a Backspace meant for the field would delete the selected node
    expect(page.locator(".v-fail .cnb-canvas")).not_to_be_focused()
    inspector.locator(".cnb-btn-rerun").click()
    output = inspector.locator(".cnb-outputs .cnb-preview[data-name='output']")
    expect(output).to_contain_text("3000")
    expect(inspector.locator(".cnb-inputs .cnb-preview[data-name='rows']")).to_contain_text(
        "[10, 20]"
    )
    assert py(page, "v2.run['boom'].outputs, v2.run['boom'].inputs") == (
        "{'output': 3000} {'rows': [10, 20]}"
    )
    assert py(page, "v2.run.status.value, v2.run['src'].outputs") == (
        "succeeded {'output': [1, 2, 3]}"
    )
    shot(page.locator(".v-fail .cnb-view"), "rerun.png")
    # a bad edit is refused with the reason in the view's error area
    inputs.fill("{not json")
    inspector.locator(".cnb-btn-rerun").click()
    expect(page.locator(".v-fail .cnb-error-text")).to_contain_text("not valid JSON")
    page.locator(".v-fail .cnb-error-close").click()
    expect(page.locator(".v-fail .cnb-error")).to_be_hidden()


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


@pytest.mark.usefixtures("main_gate_open")
def test_screenshot_for_readme(page: Any) -> None:
    page.locator(".v-main .cnb-btn-reset").click()
    expect(status(page, "v-main")).to_have_text("idle")
    page.locator(".v-main .cnb-btn-run").click()
    expect(status(page, "v-main")).to_contain_text("paused")  # breakpoint
    page.locator(".v-main .cnb-btn-resume").click()
    expect(status(page, "v-main")).to_have_text("succeeded")
    node(page, "v-main", "double").locator(".cnb-node-box").click()
    expect(page.locator(".v-main .cnb-insp-title")).to_have_text("double")
    expect(page.locator(".v-main .cnb-outputs")).to_contain_text("[2, 4, 6]")
    # the README's pictures are refreshed on request only (CNB_UPDATE_DOCS=1), so a test run
    # never changes tracked files
    target = DOCS if os.environ.get("CNB_UPDATE_DOCS") else SHOTS
    target.mkdir(parents=True, exist_ok=True)
    screenshot(page.locator(".v-main .cnb-view"), target / "screenshot-view.png")
    page.screenshot(path=str(SHOTS / "lab-full.png"), full_page=True)


@pytest.mark.usefixtures("main_gate_open")
def test_a_500_node_blueprint_renders_and_runs_live(page: Any) -> None:
    # the canvas draws only what is in view (it opens readable, on the sources); the
    # overview has every node, and Fit all brings every node into view
    expect(page.locator(".v-big .cnb-overview")).to_have_attribute("data-nodes", "500")
    big = page.locator(".v-big .cnb-node")
    assert big.count() < 500
    page.locator(".v-big .cnb-btn-fit").click()
    expect(big).to_have_count(500)
    expect(page.locator(".v-big path.cnb-edge")).to_have_count(475)
    page.locator(".v-big .cnb-btn-run").click()
    expect(page.locator(".v-big .cnb-progress-text")).to_contain_text(
        "500/500 nodes · 100%", timeout=120_000
    )
    # the run's end re-sends the view's output (its static picture): the notebook draws the
    # 500-node view again, which takes seconds on a loaded machine
    expect(page.locator(".v-big .cnb-node[data-state='succeeded']")).to_have_count(
        500, timeout=60_000
    )
    flushes = int(kernel(page, "print(v500.flushes)").strip())
    assert flushes < 500  # coalesced: far fewer trait updates than the 1,500+ node events
    shot(page.locator(".v-big"), "big.png")


def test_blueprint_cell_magic_shows_its_view(page: Any) -> None:
    """``%load_ext conductor_nb`` then a ``%%blueprint`` cell, in a real kernel: the YAML
    becomes a Blueprint bound to the name, and the cell shows its live view."""
    cell = page.locator(".jp-Notebook .jp-Cell", has_text="%%blueprint magic_bp")
    view = cell.locator(".jp-OutputArea-output .cnb-view")
    expect(view).to_have_count(1)
    expect(view.locator(".cnb-node")).to_have_count(2)
    expect(view.locator(".cnb-node[data-node='first'] .cnb-node-label")).to_have_text("first")
    expect(view.locator("path.cnb-edge")).to_have_count(1)
    assert py(page, "type(magic_bp).__name__, magic_bp.id, list(magic_bp.nodes)") == (
        "Blueprint from-magic ['first', 'second']"
    )


# ------------------------------------------------------------------ toolbar layout
TOOLBAR_LAYOUT = """bar => {
  const box = (e) => e.getBoundingClientRect();
  const groups = [...bar.children].map((g) => ({
    cls: g.className,
    top: Math.round(box(g).top),
    controls: [...g.querySelectorAll("button, select, input")]
      .filter((c) => c.offsetParent !== null)
      .map((c) => ({ top: Math.round(box(c).top), height: Math.round(box(c).height),
                     left: box(c).left, right: box(c).right })),
  }));
  return { scroll: bar.scrollWidth, width: bar.clientWidth, left: box(bar).left,
           right: box(bar).right, groups };
}"""


def size_view(page: Any, view: Any, width: int) -> None:
    """Resize the window until the view (which fills the notebook's width) is ``width`` px."""
    for _ in range(3):  # Lab lays out from the window width: correct, then check
        current = view.bounding_box()["width"]
        if abs(current - width) < 3:
            return
        size = page.viewport_size
        page.set_viewport_size(
            {"width": int(size["width"] + width - current), "height": size["height"]}
        )
        page.wait_for_function(
            "([el, w]) => Math.abs(el.getBoundingClientRect().width - w) < 3",
            arg=[view.element_handle(), width],
        )
    assert abs(view.bounding_box()["width"] - width) < 3


@pytest.mark.parametrize("width", [700, 1200])
def test_toolbar_wraps_by_whole_groups(page: Any, width: int) -> None:
    view = page.locator(".v-main .cnb-view")
    original = dict(page.viewport_size)
    try:
        view.scroll_into_view_if_needed()
        size_view(page, view, width)
        view.scroll_into_view_if_needed()
        layout = page.locator(".v-main .cnb-toolbar").evaluate(TOOLBAR_LAYOUT)
        shot(view, f"toolbar-{width}.png")
    finally:
        page.set_viewport_size(original)
    assert layout["scroll"] <= layout["width"]  # nothing sticks out or scrolls
    heights = set()
    for group in layout["groups"]:
        controls = group["controls"]
        assert controls, group
        # a group stays on one line, and no label breaks inside its button
        assert len({c["top"] for c in controls}) == 1, group
        heights |= {c["height"] for c in controls}
        assert all(layout["left"] <= c["left"] and c["right"] <= layout["right"] for c in controls)
    assert len(heights) == 1, heights  # every control the same height: none wrapped its text
    rows = len({g["top"] for g in layout["groups"]})
    assert rows == (1 if width >= 1200 else 2), layout
