"""The report notebook of a blueprint run through papermill, as people see it saved: rendered
by ``jupyter nbconvert --to html`` and opened in headless Chromium, at real size (30 nodes in
four chains running at once, a table output, a failed node): the run's picture shows once
at its own size (scrolling sideways: scaled to the page its labels were about 5 px high),
the run cell holds no node prints, each node's section has its own lines in order, the table
is a table and the failure is spelt out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser_support import CHROMIUM, launch_chromium
from tests.headless.conftest import cli_env

NODES = """
import time
import conductor_nb as cnb


@cnb.node
def step(n: int = 0, items: list = []) -> list:
    for i in range(3):
        print(f"step {n}: line {i}", flush=True)
        time.sleep(0.03)
    return [*items, n]


@cnb.node
def table(rows: int = 25) -> list:
    print("building the table", flush=True)
    return [{"id": i, "name": f"row {i}", "amount": i * 1.5} for i in range(rows)]


@cnb.node
def broken(items: list) -> int:
    print("about to fail", flush=True)
    raise ValueError("the data had a hole at row 7")
"""


def thirty_nodes() -> str:
    lines = ["conductor: 1", "id: big-report", "name: Thirty nodes", "nodes:"]
    edges = []
    for chain in range(4):
        for k in range(7):
            i = chain * 7 + k
            lines.append(f"  s{i}: {{type: step, params: {{n: {i}}}}}")
            if k:
                edges.append(f"  - s{i - 1}.output -> s{i}.items")
    lines += ["  tab: {type: table}", "  bad: {type: broken}", "edges:", *edges]
    lines += ["  - s6.output -> bad.items", "outputs: {table: tab.output, last: s27.output}"]
    return "\n".join(lines) + "\n"


@pytest.mark.browser
def test_report_notebook_in_nbconvert_html(cli, work: Path, tmp_path_factory) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium")
    (work / "big_nodes.py").write_text(NODES)
    (work / "big.yaml").write_text(thirty_nodes())
    args = ("run", "big.yaml", "-o", "big.ipynb", "--import", "big_nodes", "--concurrency", "4")
    done = cli(*args, timeout=240)
    assert done.returncode == 1, done.stderr  # the blueprint has a failing node
    subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", "big.ipynb"],
        cwd=work,
        env=cli_env(work),
        check=True,
        capture_output=True,
        timeout=240,
    )
    keep = Path(__file__).parent / "_artifacts"
    keep.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        context = launch_chromium(p, tmp_path_factory.mktemp("chromium"), 1100, 1000)
        try:
            page = context.new_page()
            page.goto((work / "big.html").as_uri())
            picture = page.locator('img[src^="data:image/svg+xml"]')
            assert picture.count() == 1  # the run's picture, once
            width, height = picture.evaluate("e => [e.naturalWidth, e.naturalHeight]")
            assert width > 1500 and height > 300
            # too wide for the page: drawn at its own size (labels readable), scrolling sideways
            assert picture.evaluate("e => e.getBoundingClientRect().width") == width
            box = page.locator("div.cnb-picture")
            assert box.evaluate("e => e.scrollWidth > e.clientWidth")
            picture.scroll_into_view_if_needed()
            assert picture.is_visible()
            page.screenshot(path=str(keep / "blueprint-notebook.png"))
            text = page.locator("body").inner_text()
            before_nodes = text.split("\nNodes\n")[0]
            assert "step 0: line 0" not in before_nodes  # no node prints in the run cell
            for n in (0, 13, 27):
                lines = "\n".join(f"step {n}: line {i}" for i in range(3))
                assert lines in text  # each node's own lines, whole and in order
            tab = page.locator("h3:has-text('tab')")
            tab.scroll_into_view_if_needed()
            page.screenshot(path=str(keep / "blueprint-notebook-table.png"))
            assert "25 rows; the first 20 shown" in text
            # the table of 'tab' and the same output in the result, 20 rows each
            assert page.locator("td:text-is('row 19')").count() == 2
            assert page.locator("td:text-is('row 20')").count() == 0
            page.locator("h3:has-text('bad')").scroll_into_view_if_needed()
            page.screenshot(path=str(keep / "blueprint-notebook-failed.png"))
            assert "ValueError: the data had a hole at row 7" in text
            assert "1 failed, 29 succeeded" in text
        finally:
            context.close()
