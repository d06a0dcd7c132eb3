"""Shared pieces of the browser tier: Debian's chromium, a Jupyter server, the kernel wait.

The recipe is ../shared/TESTING.md's: chromium launched by path with the flags that keep it
off the network, a Jupyter server with isolated config dirs on a free loopback port, ready
when ``/api/status`` answers, and a notebook ready when its kernel is idle and connected.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_notebook(path: Path, cells: Sequence[str]) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nbformat.write(nb, str(path))


@contextlib.contextmanager
def jupyter_server(
    app: str, root: Path, home: Path, extra_args: Sequence[str] = ()
) -> Iterator[str]:
    """Run ``python -m <app>`` (jupyterlab or notebook) serving ``root``; yield its URL."""
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
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable, "-m", app, "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
        f"--ServerApp.root_dir={root}", *extra_args,
    ]  # fmt: skip
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = home / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            t0 = time.monotonic()
            while True:  # ready = the REST API answers
                assert proc.poll() is None, log_path.read_text()[-2000:]
                try:
                    with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                        break
                except Exception:
                    assert time.monotonic() - t0 < 90, f"{app} did not start"
                    time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(15)


def kernel_of(url: str, path: str) -> dict[str, Any]:
    """The server's view of the kernel behind the notebook at ``path`` (empty if none)."""
    with urllib.request.urlopen(f"{url}/api/sessions") as r:
        for s in json.load(r):
            if s["path"] == path and s.get("kernel"):
                return dict(s["kernel"])
    return {}


def wait_kernel_connected(url: str, path: str, timeout: float = 90) -> None:
    """Server-side readiness: the kernel is idle with the page's websocket connected."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        k = kernel_of(url, path)
        if k.get("execution_state") == "idle" and k.get("connections", 0) >= 1:
            return
        time.sleep(0.2)
    raise TimeoutError("kernel not connected")


def launch_chromium(pw: Any, profile: Path, width: int = 1400, height: int = 1000) -> Any:
    """A persistent chromium context with a fresh profile (Playwright's own browser is unused)."""
    return pw.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROME_ARGS,
        viewport={"width": width, "height": height},
    )


IDLE_KERNEL = r"\(ipykernel\) \| Idle"


def open_lab_and_run_all(page: Any, url: str, path: str, sentinel: str) -> None:
    """Open the notebook at ``path`` in JupyterLab, wait for its kernel, Run All, and wait
    for ``sentinel`` in an output (never page-wide: the cell source matches too)."""
    page.goto(f"{url}/lab/tree/{path}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    wait_kernel_connected(url, path)
    page.get_by_role("button", name=re.compile(IDLE_KERNEL)).wait_for()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
    page.locator(".jp-OutputArea-output", has_text=sentinel).wait_for()


def run_in_kernel(page: Any, code: str) -> str:
    """Run ``code`` in the current notebook's kernel through the page (needs JupyterLab's
    ``--LabApp.expose_app_in_browser=True``); its printed output, and errors as text."""
    return str(
        page.evaluate(
            """async (code) => {
        const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        const f = k.requestExecute({code});
        let t = "";
        f.onIOPub = m => {
          if (m.header.msg_type === "stream") t += m.content.text;
          const c = m.content;
          if (m.header.msg_type === "error") t += `ERROR ${c.ename}: ${c.evalue}`;
        };
        await f.done; return t; }""",
            code,
        )
    )


def run_new_cell(page: Any, code: str, sentinel: str) -> None:
    """Add a cell holding ``code`` at the end of the current notebook, run it with JupyterLab's
    own commands (those behind Shift+Enter), and wait for ``sentinel`` in its output. Needs
    ``--LabApp.expose_app_in_browser=True``."""
    count = page.locator(".jp-Notebook .jp-Cell").count()
    page.evaluate(
        """async (code) => {
        const app = window.jupyterapp;
        const notebook = app.shell.currentWidget.content;
        notebook.activeCellIndex = notebook.widgets.length - 1;
        await app.commands.execute("notebook:insert-cell-below");
        notebook.activeCell.model.sharedModel.setSource(code);
        await app.commands.execute("notebook:run-cell");
        }""",
        code,
    )
    cell = page.locator(".jp-Notebook .jp-Cell").nth(count)
    cell.locator(".jp-OutputArea-output", has_text=sentinel).wait_for()


def screenshot(locator: Any, path: Path | str) -> None:
    """``locator.screenshot(path=...)``, taken again if the element goes while it is shot: a
    view's output is sent again when its run pauses or ends, and the notebook then replaces
    the view's element with a new drawing (the locator finds the new one)."""
    from playwright.sync_api import Error

    for attempt in range(3):
        try:
            locator.screenshot(path=str(path))
            return
        except Error as exc:
            if not re.search(r"not attached|detached", str(exc)) or attempt == 2:
                raise
