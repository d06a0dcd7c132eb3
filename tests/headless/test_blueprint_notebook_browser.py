"""The report notebook of a blueprint run through papermill, as people see it saved: rendered
by ``jupyter nbconvert --to html`` and opened in headless Chromium, the run's picture shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser_support import CHROMIUM, launch_chromium
from tests.headless.conftest import cli_env


@pytest.mark.browser
def test_report_notebook_picture_in_nbconvert_html(cli, work: Path, tmp_path_factory) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium")
    done = cli("run", "retry.yaml", "-o", "retry.ipynb", "--import", "hl_nodes", timeout=240)
    assert done.returncode == 1, done.stderr  # the blueprint has a failing node
    subprocess.run(
        [sys.executable, "-m", "nbconvert", "--to", "html", "retry.ipynb"],
        cwd=work,
        env=cli_env(work),
        check=True,
        capture_output=True,
        timeout=240,
    )
    shot = work / "retry.png"
    with sync_api.sync_playwright() as p:
        context = launch_chromium(p, tmp_path_factory.mktemp("chromium"), 1100, 1000)
        try:
            page = context.new_page()
            page.goto((work / "retry.html").as_uri())
            picture = page.locator('img[src^="data:image/svg+xml"]')
            assert picture.count() == 1  # the run's picture, once
            width, height = picture.evaluate("e => [e.naturalWidth, e.naturalHeight]")
            assert width > 300 and height > 100
            picture.scroll_into_view_if_needed()
            assert picture.is_visible()
            text = page.locator("body").inner_text()
            assert "kaboom" in text and "skipped" in text and "making 5" in text
            page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()
    keep = Path(__file__).parent / "_artifacts"
    keep.mkdir(exist_ok=True)
    (keep / "blueprint-notebook.png").write_bytes(shot.read_bytes())
