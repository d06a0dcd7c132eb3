"""The run report: self-contained HTML, rendered by headless Chromium and screenshotted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.browser_support import CHROMIUM, launch_chromium


@pytest.mark.browser
def test_report_renders_in_chromium(cli, work: Path, tmp_path_factory) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium")
    done = cli("run", "retry.yaml", "--import", "hl_nodes", "--report", "report.html", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["report"] == "report.html"
    report = work / "report.html"
    shot = work / "report.png"
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        context = launch_chromium(p, tmp_path_factory.mktemp("chromium"), 1200, 900)
        try:
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri())
            assert "failed" in page.locator("h1 .badge").inner_text()
            assert page.locator("#graph svg").count() == 1
            assert page.locator("#timeline rect.bar.attempt").count() >= 5
            assert page.locator("#timeline rect.bar.retry").count() == 1  # flaky's retry delay
            failed = page.locator("details.node.failed")
            assert failed.get_attribute("open") is not None
            assert "kaboom" in failed.inner_text()
            page.locator("#node-make summary").click()
            assert "making 5" in page.locator("#node-make").inner_text()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()
    assert [u for u in requests if not u.startswith("file://")] == []  # nothing fetched
    assert shot.stat().st_size > 10_000
    keep = Path(__file__).parent / "_artifacts"
    keep.mkdir(exist_ok=True)
    (keep / "report.png").write_bytes(shot.read_bytes())
