"""The view at the sizes users bring (6, 30, 300, 1,000 nodes) in a real JupyterLab.

Prints the issue-16 figures (never timing thresholds): label size on screen at the opening
zoom in a 676x480 graph area, draw time, bytes to the browser per live update and per
1,000-node run, Step and Pause answer times while a run is active, and the view's overhead
on a 1,000-node run of 10 ms nodes (against the same run without a view, in the same kernel).
It asserts what users rely on: labels readable at the opening zoom, Fit all shows everything,
find jumps to a node, a paused run names and marks its node. Screenshots go to CNB_SHOT_DIR.
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
    run_new_cell,
    screenshot,
    write_notebook,
)

pytestmark = pytest.mark.browser

nbformat = pytest.importorskip("nbformat")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

SHOTS = Path(os.environ.get("CNB_SHOT_DIR", "/tmp/cnb-shots"))
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
SIZES = (6, 30, 300, 1000)

CELLS = [
    '''import time
from pathlib import Path
import conductor_nb as cnb
from conductor_nb.widgets import BlueprintView

SLOW_MS = 0  # the screenshots' runs set this: nodes then take that long

@cnb.node
def work(rows: list = (), ms: int = 10) -> list:
    """Sleep ms milliseconds, pass the rows on."""
    time.sleep(max(ms, SLOW_MS) / 1000)
    return list(rows)[:3]

def layered(n, width):
    """n nodes in layers of `width`, each reading one node of the layer before."""
    bp = cnb.Blueprint(f"scale-{n}")
    for i in range(n):
        bp.add(work, id=f"step_{i}", ms=10)
        if i >= width:
            source = (i // width - 1) * width + (i * 7) % width
            bp.connect(f"step_{source}", f"step_{i}.rows")
    return bp

def timed_plain(n):
    """Seconds for a run of the n-node blueprint without a view (same options as the view)."""
    t = time.perf_counter()
    views[n].blueprint.run(history=False)
    return time.perf_counter() - t

def timed_view(n):
    """Seconds for the same run started from its view, until the view has shown the end."""
    t = time.perf_counter()
    views[n].start_run().wait(300)
    views[n].wait_actions()
    return time.perf_counter() - t

fold_bp = cnb.Blueprint("fold")
fold_bp.add("loop", id="each", items=[1, 2, 3, 4, 5], body={
    "nodes": {"times": {"type": "transform", "params": {"expression": "item * 10"}},
              "label": {"type": "transform", "params": {"expression": "item + 1"}}},
    "edges": ["times.output -> label.input"]})
fold_bp.add(work, id="after", ms=10)
fold_bp.connect("each", "after.rows")
fold = BlueprintView(fold_bp, height=420, run_options={"history": False})
fold.add_class("v-fold")
display(fold)

views = {}
for n, width in ((6, 2), (30, 4), (300, 12), (1000, 30)):
    v = BlueprintView(layered(n, width), height=480, run_options={"history": False})
    v.add_class(f"v-n{n}")
    views[n] = v
    display(v)
print("READY-" + "SENTINEL")''',
]

DELETE_LAST_CELL = """() => { const app = window.jupyterapp, nb = app.shell.currentWidget.content;
    nb.activeCellIndex = nb.widgets.length - 1;
    return app.commands.execute('notebook:delete-cell'); }"""

AREA = """.cnb-view .cnb-canvas { width: 676px !important; flex: none !important; }"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    root = tmp_path_factory.mktemp("nbroot")
    write_notebook(root / "scale.ipynb", CELLS)
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
        pg.set_default_timeout(300_000)  # a 1,000-node view on a loaded 2-core machine
        frames: list[tuple[int, bool]] = []
        pg.on("pageerror", lambda exc: print(f"page error: {exc}"))
        pg.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(_frame(f))))
        pg.add_init_script(f"addEventListener('DOMContentLoaded', () => {{ const s = "
                           f"document.createElement('style'); s.textContent = {AREA!r}; "
                           f"document.head.appendChild(s); }});")  # fmt: skip
        open_lab_and_run_all(pg, lab["url"], "scale.ipynb", "READY-SENTINEL")
        pg.frames_received = frames  # type: ignore[attr-defined]
        yield pg
        ctx.close()


def _frame(frame: Any) -> tuple[int, bool]:
    """A websocket frame's size, and whether it is a live update (a state patch)."""
    data = frame if isinstance(frame, bytes) else str(frame).encode()
    return len(data), b'"state_patch"' in data


def py(page: Any, expr: str) -> str:
    return run_in_kernel(page, f"print({expr})").strip()


def view(page: Any, n: int) -> Any:
    return page.locator(f".v-n{n} .cnb-view")


def label_px(page: Any, n: int) -> float:
    """Height on screen of the first visible node label's font: font-size x zoom."""
    return float(
        view(page, n).evaluate(
            """v => { const l = v.querySelector('.react-flow__node .cnb-node-label');
                      const px = parseFloat(getComputedStyle(l).fontSize);
                      return px * parseFloat(v.dataset.zoom); }"""
        )
    )


def test_labels_are_readable_at_the_opening_zoom_at_every_size(page: Any) -> None:
    for n in SIZES:
        v = view(page, n)
        v.scroll_into_view_if_needed()
        expect(v).to_have_attribute("data-draw-ms", re.compile(r"\d+"))
        area = page.locator(f".v-n{n} .cnb-canvas").bounding_box()
        px = label_px(page, n)
        print(
            f"{n:>5} nodes: labels {px:.1f} px at zoom {v.get_attribute('data-zoom')}, "
            f"drawn in {v.get_attribute('data-draw-ms')} ms, graph area "
            f"{area['width']:.0f}x{area['height']:.0f}"
        )
        assert px >= 10, (n, px)
        # the overview map is on wherever the graph opens larger than the canvas (30 nodes too)
        fitted = n == 6
        assert ("cnb-overview-on" in (v.get_attribute("class") or "")) != fitted, n
    # the views above were drawn at once (each one's time holds the others' work): the
    # 1,000-node view drawn again on its own, in a new cell, is the figure to read
    run_new_cell(page, "display(views[1000]); print('AGAIN-' + 'SENTINEL')", "AGAIN-SENTINEL")
    again = page.locator(".v-n1000 .cnb-view").last
    expect(again).to_have_attribute("data-draw-ms", re.compile(r"\d+"))
    print(f" 1000 nodes drawn on their own in {again.get_attribute('data-draw-ms')} ms")
    page.evaluate(DELETE_LAST_CELL)
    shot = SHOTS / "scale-300-open.png"
    SHOTS.mkdir(parents=True, exist_ok=True)
    screenshot(view(page, 300), shot)


def test_fit_all_shows_every_node_and_find_jumps_to_one(page: Any) -> None:
    v = view(page, 300)
    v.scroll_into_view_if_needed()
    page.locator(".v-n300 .cnb-btn-fit").click()
    zoom = float(v.get_attribute("data-zoom") or 0)
    assert zoom < 0.9  # 300 nodes do not fit at a readable zoom in 676x480...
    assert "cnb-zoom-low" in (v.get_attribute("class") or "")  # ...so labels grow, colours stay
    screenshot(v, SHOTS / "scale-300-fit.png")
    find = page.locator(".v-n300 .cnb-find")
    find.fill("step_287")
    expect(page.locator(".v-n300 .cnb-find-count")).to_have_text("1/1")
    expect(page.locator(".v-n300 .cnb-insp-title")).to_have_text("step_287")
    expect(page.locator(".v-n300 .cnb-node[data-node='step_287']")).to_be_in_viewport()
    # (the jump is animated: wait for the zoom it ends at)
    page.wait_for_function(
        "() => Number(document.querySelector('.v-n300 .cnb-view').dataset.zoom) >= 0.9",
        timeout=10_000,
    )
    # a node at the graph's top-left corner is shown with the graph filling the canvas, not
    # centred under an empty band (the graph is larger than the canvas both ways)
    find.fill("step_0")
    expect(page.locator(".v-n300 .cnb-node[data-node='step_0']")).to_be_in_viewport()
    corner = py(page, "*(min(n['pos'][i] for n in views[300].graph['nodes']) for i in (0, 1))")
    x0, y0 = (float(t) for t in corner.split())
    # (the jump is animated: wait for the viewport it ends at)
    page.wait_for_function(
        """([x0, y0]) => { const v = document.querySelector('.v-n300 .cnb-view');
            const [x, y, k] = v.dataset.viewport.split(',').map(Number);
            return x + x0 * k <= 24.5 && y + y0 * k <= 24.5; }""",
        arg=[x0, y0],
        timeout=10_000,
    )


def test_far_out_labels_are_whole_or_gone(page: Any) -> None:
    """Zoomed out, a label is shown whole (down to 9 px) rather than cut to "st…"; where the
    box holds no more than that, labels go and the coloured boxes stay."""
    v = view(page, 300)
    v.scroll_into_view_if_needed()
    page.locator(".v-n300 .cnb-btn-fit").click()
    expect(v).to_have_class(re.compile("cnb-zoom-specks"))
    label = page.locator(".v-n300 .react-flow__node .cnb-node-label").first
    expect(label).to_be_hidden()
    while float(v.get_attribute("data-zoom") or 1) < 0.3:  # to the zoom a hand reaches
        page.locator(".v-n300 .cnb-btn-zoom-in").click()
    k = float(v.get_attribute("data-zoom") or "nan")
    assert 0.3 <= k < 0.55, k
    expect(v).not_to_have_class(re.compile("cnb-zoom-specks"))
    cut = v.evaluate(
        """v => [...v.querySelectorAll('.react-flow__node .cnb-node-label')]
              .filter(l => l.scrollWidth > l.clientWidth)
              .map(l => `${l.textContent}: ${l.scrollWidth} px in ${l.clientWidth}`)"""
    )
    px = label_px(page, 300)
    print(f"zoom {k:.2f}: labels {px:.1f} px on screen, {len(cut)} cut")
    assert not cut, cut
    assert px >= 9, px
    screenshot(v, SHOTS / "scale-300-far.png")


def _answer_ms(page: Any, n: int, button: str, status: str = "") -> float:
    """Click a toolbar button; ms until the page shows the answer: the run's ``status`` when
    given, else the first node whose state changes (on the canvas or in the overview)."""
    return float(
        view(page, n).evaluate(
            """(v, [button, status]) => new Promise(resolve => {
                const t0 = performance.now();
                const obs = new MutationObserver(() => {
                    if (status && v.dataset.status !== status) return;
                    obs.disconnect(); resolve(performance.now() - t0); });
                obs.observe(v, {subtree: true, attributes: true,
                                attributeFilter: status ? ['data-status']
                                                        : ['data-state', 'data-paused']});
                v.querySelector(button).click();
            })""",
            [button, status],
        )
    )


def test_step_and_pause_answer_and_a_paused_run_says_where(page: Any) -> None:
    v = view(page, 300)
    step_ms = _answer_ms(page, 300, ".cnb-btn-step")
    expect(page.locator(".v-n300 .cnb-where")).to_contain_text("paused before")
    # the step is done when the kernel has seen it end (the DOM changes as soon as it starts)
    paused_at = py(page, "(views[300].wait_actions(), views[300].run_info['paused_at'])[1]")
    where = page.locator(".v-n300 .cnb-where")
    expect(where).to_have_text(re.compile(f"paused before {paused_at}$"))
    expect(page.locator(".v-n300 .cnb-run-status")).to_have_text("paused")  # named once
    # marked in the overview wherever the canvas is; the status line's link shows it
    expect(page.locator(".v-n300 .cnb-overview")).to_have_attribute("data-paused", paused_at)
    icon = page.locator(".v-n300 .cnb-where svg.cnb-icon")
    expect(icon).to_have_attribute("data-icon", "paused")  # an SVG, not a font's glyph
    page.locator(".v-n300 .cnb-where").click()
    expect(page.locator(f".v-n300 .cnb-node[data-node='{paused_at}']")).to_have_class(
        re.compile("cnb-paused-here")
    )
    screenshot(v, SHOTS / "scale-300-paused.png")
    more = [_answer_ms(page, 300, ".cnb-btn-step") for _ in range(3)]
    run_in_kernel(page, "views[300].run.resume()")
    pause_ms = _answer_ms(page, 300, ".cnb-btn-pause", "paused")
    print(f"Step answered in {step_ms:.0f} ms then {', '.join(f'{m:.0f}' for m in more)} ms; "
          f"Pause in {pause_ms:.0f} ms (300 nodes, run active)")  # fmt: skip
    run_in_kernel(page, "views[300].run.cancel()")


def test_a_1000_node_run_is_light_on_the_wire_and_cheap(page: Any) -> None:
    v = view(page, 1000)
    v.scroll_into_view_if_needed()
    frames: list[tuple[int, bool]] = page.frames_received
    ratios, plains, withs = [], [], []
    for _ in range(3):  # alternating, in the same kernel: the machine's load moves a lot
        plains.append(float(py(page, "timed_plain(1000)")))
        start = len(frames)
        flushes0 = int(py(page, "views[1000].flushes"))
        withs.append(float(py(page, "timed_view(1000)")))
        expect(page.locator(".v-n1000 .cnb-run-status")).to_have_text("succeeded")
        expect(page.locator(".v-n1000 .cnb-progress-text")).to_contain_text("1000/1000")
        sent = frames[start:]
        flushes = int(py(page, "views[1000].flushes")) - flushes0
        ratios.append(withs[-1] / plains[-1])
    patches = [size for size, is_patch in sent if is_patch]
    total = sum(size for size, _ in sent)
    spread = ", ".join(f"{100 * (r - 1):+.0f}%" for r in ratios)
    print(
        f"1,000-node run of 10 ms nodes: {sorted(withs)[1]:.2f} s with the view, "
        f"{sorted(plains)[1]:.2f} s without (medians); overhead {spread} in 3 runs "
        f"(median {100 * (sorted(ratios)[1] - 1):+.0f}%). Last run: {total / 1024:.0f} kB to "
        f"the browser in {len(sent)} frames; {flushes} view updates, {len(patches)} state "
        f"patches averaging {sum(patches) / max(1, len(patches)) / 1024:.1f} kB; the rest "
        f"({(total - sum(patches)) / 1024:.0f} kB) is the run info and the end picture"
    )
    screenshot(v, SHOTS / "scale-1000-done.png")
    states = py(page, "sorted({s['state'] for s in views[1000].states.values()})")
    assert states == "['succeeded']"


def test_screenshots_mid_run_and_paused(page: Any) -> None:
    """The README's pictures: 30 and 300 nodes mid-run (slow motion) and paused by Pause.
    Written to docs/img/ on request only (CNB_UPDATE_DOCS=1), else to CNB_SHOT_DIR."""
    target = DOCS_IMG if os.environ.get("CNB_UPDATE_DOCS") else SHOTS
    target.mkdir(parents=True, exist_ok=True)
    for n in (30, 300):
        v = view(page, n)
        v.scroll_into_view_if_needed()
        page.locator(f".v-n{n} .cnb-btn-reset").click()
        expect(page.locator(f".v-n{n} .cnb-run-status")).to_have_text("idle")
        run_in_kernel(page, "SLOW_MS = 700")
        page.locator(f".v-n{n} .cnb-btn-run").click()
        # mid-run: some nodes done, some running, the rest still to come
        expect(page.locator(f".v-n{n} .cnb-node[data-state='running']").first).to_be_visible()
        expect(page.locator(f".v-n{n} .cnb-node[data-state='succeeded']").first).to_be_visible()
        screenshot(v, target / f"view-{n}-running.png")
        page.locator(f".v-n{n} .cnb-btn-pause").click()
        expect(page.locator(f".v-n{n} .cnb-where")).to_contain_text("paused before")
        expect(page.locator(f".v-n{n} .cnb-node[data-state='running']")).to_have_count(0)
        paused_at = py(page, f"views[{n}].run_info['paused_at']")
        page.locator(f".v-n{n} .cnb-where").click()  # show the node the run waits before
        expect(page.locator(f".v-n{n} .cnb-node[data-node='{paused_at}']")).to_have_class(
            re.compile("cnb-paused-here")
        )
        screenshot(v, target / f"view-{n}-paused.png")
        run_in_kernel(page, f"SLOW_MS = 0; views[{n}].run.cancel()")
        expect(page.locator(f".v-n{n} .cnb-run-status")).to_have_text("cancelled")


def test_a_loop_body_unfolds_into_a_subflow_with_its_items(page: Any) -> None:
    v = page.locator(".v-fold .cnb-view")
    v.scroll_into_view_if_needed()
    toggle = page.locator(".v-fold .cnb-node[data-node='each'] .cnb-fold-toggle")
    expect(toggle).to_contain_text("body · 2 nodes")
    toggle.click()
    group = page.locator(".v-fold .cnb-body-group[data-body='each']")
    expect(group).to_contain_text("no items run yet")
    inner = page.locator(".v-fold .cnb-inner[data-body='each']")
    expect(inner).to_have_count(2)
    expect(page.locator(".v-fold .react-flow__edge")).to_have_count(2)  # each -> after, inside
    # the view moves (zoom unchanged) to show the body whole with its node
    page.wait_for_function(
        """() => { const c = document.querySelector('.v-fold .cnb-canvas').getBoundingClientRect();
            const g = document.querySelector('.v-fold .cnb-body-group').getBoundingClientRect();
            return g.top >= c.top && g.bottom <= c.bottom
                && g.left >= c.left && g.right <= c.right; }""",
        timeout=10_000,
    )
    # the body sits under its node, and the graph makes room: nothing overlaps it
    box = group.bounding_box()
    after = page.locator(".v-fold .cnb-node[data-node='after']").bounding_box()
    assert not _overlaps(box, after), (box, after)
    page.locator(".v-fold .cnb-btn-run").click()
    expect(page.locator(".v-fold .cnb-run-status")).to_have_text("succeeded")
    items = page.locator(".v-fold .cnb-item")
    expect(items).to_have_count(5)
    expect(page.locator(".v-fold .cnb-item[data-state='succeeded']")).to_have_count(5)
    # the latest item is shown; pick item 2 and open its first node in the inspector
    expect(inner.first).to_have_attribute("data-node", "each[4].times")
    page.locator(".v-fold .cnb-item[data-item='2']").click()
    expect(inner.first).to_have_attribute("data-node", "each[2].times")
    expect(inner.first).to_have_attribute("data-state", "succeeded")
    # the body's edge shows that item's data went through it (as the graph's own edges do)
    expect(page.locator(".v-fold path.cnb-edge[data-edge^='each::']")).to_have_class(
        re.compile("cnb-flowed")
    )
    inner.first.locator(".cnb-node-box").click()
    insp = page.locator(".v-fold .cnb-inspector")
    expect(insp.locator(".cnb-insp-title")).to_have_text("each[2].times")
    expect(insp.locator(".cnb-outputs .cnb-preview[data-name='output']")).to_contain_text("30")
    expect(insp.locator(".cnb-btn-delete-node")).to_have_count(0)  # read-only: a body's run
    target = DOCS_IMG if os.environ.get("CNB_UPDATE_DOCS") else SHOTS
    screenshot(v, target / "view-fold.png")
    toggle.click()
    expect(inner).to_have_count(0)


def _overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    apart_x = b["x"] >= a["x"] + a["width"] or b["x"] + b["width"] <= a["x"]
    apart_y = b["y"] >= a["y"] + a["height"] or b["y"] + b["height"] <= a["y"]
    return not (apart_x or apart_y)
