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
    screenshot,
    write_notebook,
)

pytestmark = pytest.mark.browser

nbformat = pytest.importorskip("nbformat")
sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

SHOTS = Path(os.environ.get("CNB_SHOT_DIR", "/tmp/cnb-shots"))
SIZES = (6, 30, 300, 1000)

CELLS = [
    '''import time
from pathlib import Path
import conductor_nb as cnb
from conductor_nb.widgets import BlueprintView

@cnb.node
def work(rows: list = (), ms: int = 10) -> list:
    """Sleep ms milliseconds, pass the rows on."""
    time.sleep(ms / 1000)
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

views = {}
for n, width in ((6, 2), (30, 4), (300, 12), (1000, 30)):
    v = BlueprintView(layered(n, width), height=480, run_options={"history": False})
    v.add_class(f"v-n{n}")
    views[n] = v
    display(v)
print("READY-" + "SENTINEL")''',
]

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
        frames: list[int] = []
        pg.on("pageerror", lambda exc: print(f"page error: {exc}"))
        pg.on("websocket", lambda ws: ws.on("framereceived", lambda f: frames.append(_size(f))))
        pg.add_init_script(f"addEventListener('DOMContentLoaded', () => {{ const s = "
                           f"document.createElement('style'); s.textContent = {AREA!r}; "
                           f"document.head.appendChild(s); }});")  # fmt: skip
        open_lab_and_run_all(pg, lab["url"], "scale.ipynb", "READY-SENTINEL")
        pg.frames_received = frames  # type: ignore[attr-defined]
        yield pg
        ctx.close()


def _size(frame: Any) -> int:
    return len(frame) if isinstance(frame, bytes | str) else len(str(frame))


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
    assert float(v.get_attribute("data-zoom") or 0) >= 0.9


def _answer_ms(page: Any, n: int, button: str) -> float:
    """Click a toolbar button; ms until a node's state changes in the DOM."""
    return float(
        view(page, n).evaluate(
            """(v, button) => new Promise(resolve => {
                const t0 = performance.now();
                const obs = new MutationObserver(() => {
                    obs.disconnect(); resolve(performance.now() - t0); });
                obs.observe(v, {subtree: true, attributes: true,
                                attributeFilter: ['data-state']});
                v.querySelector(button).click();
            })""",
            button,
        )
    )


def test_step_and_pause_answer_and_a_paused_run_says_where(page: Any) -> None:
    v = view(page, 300)
    step_ms = _answer_ms(page, 300, ".cnb-btn-step")
    expect(page.locator(".v-n300 .cnb-where")).to_contain_text("paused before")
    paused_at = py(page, "views[300].run_info['paused_at']")
    expect(page.locator(".v-n300 .cnb-run-status")).to_have_text(f"paused before {paused_at}")
    # marked in the overview wherever the canvas is; the status line's link shows it
    mini = page.locator(f".v-n300 .cnb-mini-node[data-node='{paused_at}']")
    expect(mini).to_have_attribute("data-state", "paused")
    page.locator(".v-n300 .cnb-where").click()
    expect(page.locator(f".v-n300 .cnb-node[data-node='{paused_at}']")).to_have_class(
        re.compile("cnb-paused-here")
    )
    screenshot(v, SHOTS / "scale-300-paused.png")
    more = [_answer_ms(page, 300, ".cnb-btn-step") for _ in range(3)]
    run_in_kernel(page, "views[300].run.resume()")
    pause_ms = _answer_ms(page, 300, ".cnb-btn-pause")
    print(f"Step answered in {step_ms:.0f} ms then {', '.join(f'{m:.0f}' for m in more)} ms; "
          f"Pause in {pause_ms:.0f} ms (300 nodes, run active)")  # fmt: skip
    run_in_kernel(page, "views[300].run.cancel()")


def test_a_1000_node_run_is_light_on_the_wire_and_cheap(page: Any) -> None:
    v = view(page, 1000)
    v.scroll_into_view_if_needed()
    baseline = float(py(page, "timed_plain(1000)"))
    frames: list[int] = page.frames_received
    start = len(frames)
    flushes0 = int(py(page, "views[1000].flushes"))
    with_view = float(py(page, "timed_view(1000)"))
    expect(page.locator(".v-n1000 .cnb-run-status")).to_have_text("succeeded")
    expect(page.locator(".v-n1000 .cnb-progress-text")).to_contain_text("1000/1000")
    sent = frames[start:]
    flushes = int(py(page, "views[1000].flushes")) - flushes0
    total = sum(sent)
    print(
        f"1,000-node run of 10 ms nodes: {with_view:.2f} s with the view, {baseline:.2f} s "
        f"without (overhead {100 * (with_view / baseline - 1):+.0f}%); {total / 1024:.0f} kB to "
        f"the browser in {len(sent)} frames, {flushes} view updates, "
        f"{total / max(1, flushes) / 1024:.1f} kB per update on average"
    )
    screenshot(v, SHOTS / "scale-1000-done.png")
    states = py(page, "sorted({s['state'] for s in views[1000].states.values()})")
    assert states == "['succeeded']"
