"""Editing a blueprint in the graph view as a user does: mouse and keyboard in a real JupyterLab.

Playwright drives Debian's chromium on the rendered SVG and DOM (the palette, dragging a
node, dragging from an output port to an input port, the Delete key, the inspector), and
every check of the outcome reads the Python ``Blueprint`` in the kernel: the view is only a
picture of it. One server, one page and one view for the module; the tests run in file
order and each starts from where the previous one left the blueprint. Waits are on
conditions (DOM states, kernel output), never fixed sleeps.
"""

from __future__ import annotations

import os
import re
import time
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

SHOTS = Path(os.environ.get("CNB_SHOT_DIR", "/tmp/cnb-shots"))
VIEW = ".v-ed"

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
    return f"{label}={value}"

bp = cnb.Blueprint("ed")
bp.add(load, id="src", position=(20, 40))
bp.add(total, id="sink", position=(560, 40))
bp.add(report, id="rep", position=(560, 230), label="sum")
v = BlueprintView(bp, height=340)
v.add_class("v-ed")
display(v)''',
    'print("READY-" + "SENTINEL")',
]


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    root = tmp_path_factory.mktemp("edroot")
    write_notebook(root / "edit.ipynb", CELLS)
    with (
        jupyter_server(
            "jupyterlab",
            root,
            tmp_path_factory.mktemp("edhome"),
            ["--LabApp.expose_app_in_browser=True"],
        ) as url,
        sync_api.sync_playwright() as pw,
    ):
        ctx = launch_chromium(pw, tmp_path_factory.mktemp("chrome-profile-ed"))
        try:
            pg = ctx.pages[0] if ctx.pages else ctx.new_page()
            pg.set_default_timeout(60_000)
            open_lab_and_run_all(pg, url, "edit.ipynb", "READY-SENTINEL")
            yield pg
        finally:
            ctx.close()


@pytest.fixture(autouse=True)
def whole_view_on_screen(page: Any) -> None:
    """Mouse actions need their start and end points on screen: centre the view (it is
    shorter than the window) before each test."""
    page.locator(f"{VIEW} .cnb-view").evaluate("e => e.scrollIntoView({block: 'center'})")


# ------------------------------------------------------------------ helpers
def py(page: Any, expr: str) -> str:
    """``print(expr)`` in the kernel; the printed text, stripped."""
    return run_in_kernel(page, f"print({expr})").strip()


def wait_py(page: Any, expr: str, expected: str, timeout: float = 60) -> None:
    """Wait until ``print(expr)`` in the kernel prints ``expected`` (the page's message to
    the kernel and the check travel separately, so the check polls)."""
    deadline = time.monotonic() + timeout
    got = ""
    while time.monotonic() < deadline:
        got = py(page, expr)
        if got == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"kernel: {expr} printed {got!r}, expected {expected!r}")


def node(page: Any, node_id: str) -> Any:
    return page.locator(f"{VIEW} .cnb-node[data-node='{node_id}']")


def port(page: Any, node_id: str, name: str, side: str) -> Any:
    return page.locator(f"{VIEW} .cnb-port-{side}[data-node='{node_id}'][data-port='{name}']")


def edges(page: Any) -> Any:
    return page.locator(f"{VIEW} path.cnb-edge")


def box_of(locator: Any, timeout: float = 30) -> dict[str, float]:
    """The element's box; retried, since a redraw from Python may replace the element
    between Playwright finding it and measuring it (it then reads as None)."""
    deadline = time.monotonic() + timeout
    while True:
        box = locator.bounding_box()
        if box is not None:
            return dict(box)
        assert time.monotonic() < deadline, f"{locator} has no box"
        time.sleep(0.05)


def centre(locator: Any) -> tuple[float, float]:
    box = box_of(locator)
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at ``start``, move there in steps (as a hand does), release at ``end``."""
    (ax, ay), (bx, by) = start, end
    page.mouse.move(ax, ay)
    page.mouse.down()
    page.mouse.move((ax + bx) / 2, (ay + by) / 2 + 15, steps=6)
    page.mouse.move(bx, by, steps=6)
    page.mouse.up()


def connect(page: Any, source: str, target: str) -> None:
    """Drag from output port ``node.port`` to input port ``node.port``."""
    s_node, s_port = source.split(".")
    t_node, t_port = target.split(".")
    drag(
        page,
        centre(port(page, s_node, s_port, "out")),
        centre(port(page, t_node, t_port, "in")),
    )


def grab_point(page: Any, node_id: str) -> tuple[float, float]:
    """A point on the node's title bar: on the node, off its ports and breakpoint badge."""
    box = box_of(node(page, node_id).locator(".cnb-node-box"))
    return box["x"] + box["width"] / 2, box["y"] + 10


def zoom(page: Any) -> float:
    """The canvas zoom (the view mirrors its viewport as data-viewport="x,y,zoom")."""
    return float(page.locator(f"{VIEW} .cnb-view").get_attribute("data-zoom") or "nan")


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(f"{VIEW} .cnb-view").screenshot(path=str(SHOTS / name))


def position(page: Any, node_id: str) -> tuple[float, float]:
    x, y = py(page, f"*bp.nodes[{node_id!r}].position").split()
    return float(x), float(y)


def edge_list(page: Any) -> str:
    return py(page, "sorted(str(e) for e in bp.edges)")


# ------------------------------------------------------------------ tests
def test_add_a_node_from_the_palette(page: Any) -> None:
    expect(page.locator(f"{VIEW} .cnb-node")).to_have_count(3)
    page.locator(f"{VIEW} .cnb-palette").select_option("double")
    page.locator(f"{VIEW} .cnb-btn-add").click()
    expect(page.locator(f"{VIEW} .cnb-node")).to_have_count(4)
    expect(node(page, "double")).to_be_visible()
    # the new node is in the Python blueprint, placed where the view showed it, and selected
    assert py(page, "list(bp.nodes)") == "['src', 'sink', 'rep', 'double']"
    assert py(page, "bp.nodes['double'].type, bp.nodes['double'].position is not None") == (
        "double True"
    )
    expect(page.locator(f"{VIEW} .cnb-insp-title")).to_have_text("double")
    expect(node(page, "double")).to_have_class(re.compile("cnb-selected"))


def test_drag_a_node_moves_it_in_python(page: Any) -> None:
    x0, y0 = position(page, "double")
    k = zoom(page)
    gx, gy = grab_point(page, "double")
    dx, dy = -40.0, 90.0
    drag(page, (gx, gy), (gx + dx, gy + dy))
    # the position that reached Python is the old one plus the drag, in graph units
    wait_py(page, f"bp.nodes['double'].position != ({x0}, {y0})", "True")
    x1, y1 = position(page, "double")
    assert abs((x1 - x0) - dx / k) < 1.5, (x0, x1, k)
    assert abs((y1 - y0) - dy / k) < 1.5, (y0, y1, k)
    # and the picture the view redrew from Python puts the node there
    expect(node(page, "double")).to_have_attribute("data-x", str(round(x1)))
    expect(node(page, "double")).to_have_attribute("data-y", str(round(y1)))


def test_connect_ports_by_dragging(page: Any) -> None:
    connect(page, "src.output", "double.rows")
    expect(edges(page)).to_have_count(1)
    connect(page, "double.output", "rep.value")
    expect(edges(page)).to_have_count(2)
    connect(page, "src.output", "sink.rows")
    expect(edges(page)).to_have_count(3)
    assert edge_list(page) == (
        "['double.output -> rep.value', 'src.output -> double.rows', 'src.output -> sink.rows']"
    )
    expect(page.locator(f"{VIEW} .cnb-notice")).to_contain_text("connected src.output -> sink.rows")
    shot(page, "edit-connected.png")


def test_invalid_connections_are_refused_in_the_view(page: Any) -> None:
    error = page.locator(f"{VIEW} .cnb-error-text")
    # sink.rows is fed already and is not a `many` port
    connect(page, "double.output", "sink.rows")
    expect(error).to_contain_text("cannot connect double.output -> sink.rows")
    expect(page.locator(f"{VIEW} .cnb-error")).to_be_visible()
    shot(page, "edit-refused.png")
    page.locator(f"{VIEW} .cnb-error-close").click()
    expect(page.locator(f"{VIEW} .cnb-error")).to_be_hidden()
    # rep reads from double: feeding double from rep would be a cycle
    connect(page, "rep.output", "double.factor")
    expect(error).to_contain_text("cannot connect rep.output -> double.factor")
    expect(error).to_contain_text("cycle")
    expect(edges(page)).to_have_count(3)
    assert len(edge_list(page).split(",")) == 3
    # the message stays up (the next test's edit clears it)


def test_delete_a_node_with_the_delete_key(page: Any) -> None:
    gx, gy = grab_point(page, "sink")
    page.mouse.click(gx, gy)
    expect(page.locator(f"{VIEW} .cnb-insp-title")).to_have_text("sink")
    # selecting is not an edit: the refused connection's message is still shown...
    expect(page.locator(f"{VIEW} .cnb-error-text")).to_contain_text("cycle")
    page.keyboard.press("Delete")
    expect(node(page, "sink")).to_have_count(0)
    # ...and an edit that went through clears it
    expect(page.locator(f"{VIEW} .cnb-error")).to_be_hidden()
    expect(edges(page)).to_have_count(2)
    wait_py(page, "'sink' in bp.nodes", "False")
    assert "sink" not in edge_list(page)
    # JupyterLab did not take the key: the notebook still has its two cells
    expect(page.locator(".jp-Notebook .jp-Cell")).to_have_count(2)


def test_delete_an_edge_with_backspace(page: Any) -> None:
    hit = page.locator(f"{VIEW} path.cnb-edge-hit[data-edge='double.output -> rep.value']")
    # the edge's middle: a point on the curve, where its wide invisible hit path lies
    point = hit.evaluate(
        """p => { const m = p.getPointAtLength(p.getTotalLength() / 2);
                  const c = p.getScreenCTM();
                  return [c.a * m.x + c.c * m.y + c.e, c.b * m.x + c.d * m.y + c.f]; }"""
    )
    page.mouse.click(point[0], point[1])
    expect(page.locator(f"{VIEW} path.cnb-edge.cnb-selected")).to_have_count(1)
    page.keyboard.press("Backspace")
    expect(edges(page)).to_have_count(1)
    wait_py(page, "sorted(str(e) for e in bp.edges)", "['src.output -> double.rows']")


def test_delete_a_node_from_the_inspector(page: Any) -> None:
    gx, gy = grab_point(page, "rep")
    page.mouse.click(gx, gy)
    expect(page.locator(f"{VIEW} .cnb-insp-title")).to_have_text("rep")
    page.locator(f"{VIEW} .cnb-btn-delete-node").click()
    expect(node(page, "rep")).to_have_count(0)
    wait_py(page, "list(bp.nodes)", "['src', 'double']")
    expect(page.locator(f"{VIEW} .cnb-insp-hint")).to_be_visible()
    shot(page, "edit-deleted.png")


# ------------------------------------------------------------------ undo / redo
# The view's history now holds, oldest first: add double, move double, three connects,
# delete sink, disconnect double -> rep, delete rep (refused connects are not edits).


def undo_btn(page: Any) -> Any:
    return page.locator(f"{VIEW} .cnb-btn-undo")


def redo_btn(page: Any) -> Any:
    return page.locator(f"{VIEW} .cnb-btn-redo")


def focus_view(page: Any) -> None:
    """Click an empty spot of the canvas (found in the page, not guessed), as a user does
    before pressing a key."""
    point = page.locator(f"{VIEW} .cnb-canvas").evaluate(
        """c => { const r = c.getBoundingClientRect();
                  const pane = c.querySelector(".react-flow__pane");
                  for (let y = r.bottom - 8; y > r.top; y -= 16)
                    for (let x = r.left + 8; x < r.right; x += 16)
                      if (document.elementFromPoint(x, y) === pane) return [x, y];
                  return null; }"""
    )
    assert point, "no empty spot on the canvas"
    page.mouse.click(point[0], point[1])
    expect(page.locator(f"{VIEW} .cnb-canvas")).to_be_focused()


def undo_steps(page: Any) -> str:
    return py(page, "v.undo_state['undo_steps'], v.undo_state['redo_steps']")


def test_undo_buttons_say_what_they_would_do(page: Any) -> None:
    expect(undo_btn(page)).to_be_enabled()
    expect(undo_btn(page)).to_have_attribute("title", "Undo delete node rep (Ctrl+Z)")
    expect(redo_btn(page)).to_be_disabled()
    expect(redo_btn(page)).to_have_attribute("title", "Nothing to redo (Ctrl+Shift+Z)")
    assert undo_steps(page) == "8 0"
    page.locator(f"{VIEW} .cnb-toolbar").screenshot(path=str(SHOTS / "edit-toolbar-undo.png"))


def test_ctrl_z_undoes_deletes_with_params_position_and_edges(page: Any) -> None:
    focus_view(page)
    page.keyboard.press("Control+z")
    expect(node(page, "rep")).to_have_count(1)
    wait_py(page, "'rep' in bp.nodes", "True")
    assert (  # positions are floats since settings are declared once: compare the numbers
        py(page, "bp.nodes['rep'].params, bp.nodes['rep'].position == (560, 230)")
        == "{'label': 'sum'} True"
    )
    expect(page.locator(f"{VIEW} .cnb-insp-title")).to_have_text("rep")  # selected again
    expect(page.locator(f"{VIEW} .cnb-notice")).to_have_text("undone: delete node rep")
    expect(redo_btn(page)).to_be_enabled()
    expect(redo_btn(page)).to_have_attribute("title", "Redo delete node rep (Ctrl+Shift+Z)")
    # the keyboard stays with the view: two more undos bring back the edge, then sink
    page.keyboard.press("Control+z")
    expect(edges(page)).to_have_count(2)
    page.keyboard.press("Control+z")
    expect(node(page, "sink")).to_have_count(1)
    expect(edges(page)).to_have_count(3)
    wait_py(page, "list(bp.nodes)", "['src', 'sink', 'rep', 'double']")
    assert edge_list(page) == (
        "['double.output -> rep.value', 'src.output -> double.rows', 'src.output -> sink.rows']"
    )
    assert undo_steps(page) == "5 3"
    # Lab did not act on the keys too (no cell undo, no cell change)
    expect(page.locator(".jp-Notebook .jp-Cell")).to_have_count(2)
    shot(page, "edit-undone.png")


def test_ctrl_shift_z_and_the_buttons_redo_and_undo(page: Any) -> None:
    page.keyboard.press("Control+Shift+z")  # redo: delete sink
    expect(node(page, "sink")).to_have_count(0)
    wait_py(page, "'sink' in bp.nodes", "False")
    expect(page.locator(f"{VIEW} .cnb-notice")).to_have_text("redone: delete node sink")
    redo_btn(page).click()  # redo: disconnect double -> rep
    expect(edges(page)).to_have_count(1)
    wait_py(page, "len(bp.edges)", "1")
    undo_btn(page).click()
    expect(edges(page)).to_have_count(2)
    wait_py(page, "len(bp.edges)", "2")
    assert undo_steps(page) == "6 2"
    # the focus stayed in the view (on the button): the keys still work
    page.keyboard.press("Control+Shift+z")
    expect(edges(page)).to_have_count(1)
    page.keyboard.press("Control+Shift+z")  # the last redo: delete rep
    expect(node(page, "rep")).to_have_count(0)
    expect(redo_btn(page)).to_be_disabled()
    # with nothing left to redo the key is harmless
    page.keyboard.press("Control+Shift+z")
    assert undo_steps(page) == "8 0"
    page.keyboard.press("Control+z")  # rep back, for the next test
    expect(node(page, "rep")).to_have_count(1)


def test_param_edits_are_undoable_and_typing_is_not_a_shortcut(page: Any) -> None:
    page.mouse.click(*grab_point(page, "rep"))
    field = page.locator(f"{VIEW} .cnb-param[data-param='label'] input")
    expect(field).to_have_value("sum")
    field.fill("grand")
    field.press("Enter")
    wait_py(page, "bp.nodes['rep'].params['label']", "grand")
    expect(undo_btn(page)).to_have_attribute("title", "Undo set rep.label (Ctrl+Z)")
    steps = undo_steps(page)
    # in the field, Ctrl+Z is the field's own text undo: the view's history is untouched,
    # and letters typed there are not notebook shortcuts (a, b, d d, z...)
    field.click()
    field.press("End")
    page.keyboard.type("abdd")
    expect(field).to_have_value("grandabdd")
    page.keyboard.press("Control+z")
    # the browser's own undo of the typing (how much it takes back depends on its timing)
    expect(field).not_to_have_value("grandabdd")
    expect(page.locator(".jp-Notebook .jp-Cell")).to_have_count(2)
    assert undo_steps(page) == steps
    assert py(page, "bp.nodes['rep'].params['label']") == "grand"
    field.fill("grand")  # back to the committed value: leaving the field commits nothing
    # from the view, Ctrl+Z undoes the committed edit; the form shows the old value
    focus_view(page)
    assert undo_steps(page) == steps
    page.keyboard.press("Control+z")
    wait_py(page, "bp.nodes['rep'].params['label']", "sum")
    page.mouse.click(*grab_point(page, "rep"))
    expect(field).to_have_value("sum")


def test_keys_outside_the_view_stay_with_jupyterlab(page: Any) -> None:
    steps = undo_steps(page)
    # the cell whose output is the view: a notebook undo from the view would reach it
    cell = page.locator(".jp-Notebook .jp-Cell").first.locator(".cm-content")
    cell.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("  # edited")
    expect(cell).to_contain_text("# edited")
    # in a cell, the keys are the cell editor's: its typing is undone and redone...
    page.keyboard.press("Control+z")
    expect(cell).not_to_contain_text("# edited")
    page.keyboard.press("Control+Shift+z")
    expect(cell).to_contain_text("# edited")
    page.keyboard.press("Escape")
    # ...and the view's history is untouched
    assert undo_steps(page) == steps
    # in the view, the keys are the view's only: the notebook keeps the cell's edit
    focus_view(page)
    page.keyboard.press("Control+z")
    expect(redo_btn(page)).to_have_attribute("title", re.compile("^Redo disconnect"))
    assert undo_steps(page) != steps
    page.keyboard.press("Control+Shift+z")
    expect(redo_btn(page)).to_have_attribute("title", "Redo set rep.label (Ctrl+Shift+Z)")
    assert undo_steps(page) == steps
    expect(cell).to_contain_text("# edited")


def test_an_edit_from_python_clears_redo_but_not_undo(page: Any) -> None:
    expect(redo_btn(page)).to_be_enabled()  # the label edit, undone above
    run_in_kernel(page, "bp.add(load, id='more', position=(20, 230))")
    expect(node(page, "more")).to_have_count(1)
    expect(redo_btn(page)).to_be_disabled()
    expect(undo_btn(page)).to_be_enabled()
    undo, redo = undo_steps(page).split()
    assert int(undo) > 0 and redo == "0"
    shot(page, "edit-python-cleared-redo.png")
    page.locator(f"{VIEW} .cnb-toolbar").screenshot(path=str(SHOTS / "edit-toolbar-redo-off.png"))
