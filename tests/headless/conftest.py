"""Fixtures for headless tests: a module of function nodes and blueprints using them,
in a temporary folder that is the working directory of every CLI subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

NODES = """
import time
import conductor_nb as cnb


@cnb.node
def make(n: int = 3) -> list:
    print("making", n)
    return list(range(n))


@cnb.node
def total(items: list, factor: float = 1.0) -> float:
    return sum(items) * factor


@cnb.node
def echo(value: object = None, flag: bool = False, tags: list = [], opts: dict = {}) -> dict:
    return {"value": value, "flag": flag, "tags": tags, "opts": opts}


@cnb.node
def boom(x: float) -> float:
    raise ValueError("kaboom")


@cnb.node
def slow(items: list, seconds: float = 60.0) -> list:
    print("sleeping", flush=True)
    time.sleep(seconds)
    return items


_calls = {"n": 0}


@cnb.node
def flaky(items: list) -> int:
    _calls["n"] += 1
    if _calls["n"] < 2:
        raise RuntimeError("transient glitch")
    return len(items)
"""

BLUEPRINTS = {
    "ok.yaml": """
        conductor: 1
        id: demo
        description: make numbers and sum them
        params:
          n: {default: 3, type: int}
          factor: {default: 1.5, type: float}
          flag: {default: false, type: bool}
          tags: {default: [], type: list}
          opts: {default: {}, type: dict}
        nodes:
          make: {type: make, params: {n: "{{ params.n }}"}}
          total: {type: total, params: {factor: "{{ params.factor }}"}}
          echo:
            type: echo
            params: {flag: "{{ params.flag }}", tags: "{{ params.tags }}",
                     opts: "{{ params.opts }}"}
        edges:
          - make.output -> total.items
        outputs:
          total: total.output
          echo: echo.output
    """,
    "fail.yaml": """
        conductor: 1
        id: failing
        nodes:
          make: {type: make}
          total: {type: total}
          b: {type: boom}
          after: {type: total}
          side: {type: make, params: {n: 2}}
        edges:
          - make.output -> total.items
          - total.output -> b.x
          - b.output -> after.items
    """,
    "slow.yaml": """
        conductor: 1
        id: slowpoke
        nodes:
          make: {type: make}
          wait: {type: slow}
          after: {type: total}
        edges:
          - make.output -> wait.items
          - wait.output -> after.items
    """,
    "retry.yaml": """
        conductor: 1
        id: report-demo
        name: Report demo
        description: A small run with a retry, a failure and a skipped node
        params:
          n: {default: 5, type: int}
        nodes:
          make: {type: make, params: {n: "{{ params.n }}"}}
          flaky: {type: flaky, retries: 2, retry_delay: 0.1}
          total: {type: total}
          b: {type: boom}
          after: {type: total}
        edges:
          - make.output -> flaky.items
          - make.output -> total.items
          - total.output -> b.x
          - b.output -> after.items
        outputs:
          count: flaky.output
    """,
    "bad.yaml": """
        conductor: 1
        id: broken
        nodes:
          a: {type: make}
          b: {type: totl}
        edges:
          - a.output -> b.nope
          - a.missing -> zz.items
    """,
}


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "hl_nodes.py").write_text(NODES)
    for name, text in BLUEPRINTS.items():
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip())
    monkeypatch.setenv("CONDUCTOR_HOME", str(tmp_path / ".conductor"))
    return tmp_path


def cli_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(work), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["CONDUCTOR_HOME"] = str(work / ".conductor")
    env["PYTHONUNBUFFERED"] = "1"
    return env


CLI = [sys.executable, "-m", "conductor_nb.headless.cli"]


@pytest.fixture
def cli(work: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def call(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args],
            cwd=work,
            env=cli_env(work),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return call
