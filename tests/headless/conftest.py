"""Fixtures for headless tests: a module of function nodes and blueprints using them,
in a temporary folder that is the working directory of every CLI subprocess; and the one
way these tests run ``conductor-nb`` as a subprocess (:func:`run_cli`, :func:`start_cli`)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

NODES = """
import os
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


@cnb.node
def gated(gate: str = "gate") -> str:
    print("waiting for", gate, flush=True)
    while not os.path.exists(gate):  # the test creates it (in the working directory)
        time.sleep(0.02)
    return gate


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
    "fail_fast.yaml": """
        conductor: 1
        id: failing-fast
        description: b fails while side, an independent branch, waits for the file 'gate'
        nodes:
          make: {type: make}
          total: {type: total}
          b: {type: boom}
          after: {type: total}
          side: {type: gated}
        edges:
          - make.output -> total.items
          - total.output -> b.x
          - b.output -> after.items
    """,
    "cached.yaml": """
        conductor: 1
        id: cached
        nodes:
          make: {type: make, cache: true}
          total: {type: total}
        edges:
          - make.output -> total.items
        outputs:
          total: total.output
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


def start_cli(
    folder: Path, *args: str, env: Mapping[str, str] | None = None, **popen: Any
) -> subprocess.Popen[str]:
    """``conductor-nb ARGS`` started in ``folder`` with ``cli_env(folder)`` (unless ``env``
    is given); stdout and stderr are text pipes and stdin is /dev/null unless ``popen``
    says otherwise (a pipe inherited as stdin would be a notebook piped in, as papermill
    reads it)."""
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    options["stdin"] = subprocess.DEVNULL
    options["text"] = True
    options.update(popen)
    return subprocess.Popen(
        [*CLI, *args], cwd=folder, env=dict(cli_env(folder) if env is None else env), **options
    )


class CliResult(subprocess.CompletedProcess[str]):
    """A finished ``conductor-nb`` subprocess; ``pid`` was its process id."""

    def __init__(self, proc: subprocess.Popen[str], stdout: str, stderr: str) -> None:
        super().__init__(proc.args, proc.returncode, stdout, stderr)
        self.pid = proc.pid


def run_cli(
    folder: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> CliResult:
    """Run ``conductor-nb ARGS`` to the end (see :func:`start_cli`); a command still going
    after ``timeout`` seconds (a guard against hanging) is killed and fails the test."""
    with start_cli(folder, *args, env=env) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            pytest.fail(f"conductor-nb {' '.join(args)} hung\n{stdout}\n{stderr}")
    return CliResult(proc, stdout, stderr)


def wait_for_stderr(proc: subprocess.Popen[str], text: str) -> None:
    """Read the process's stderr (text) line by line until a line holds ``text``."""
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if text in line:
            return
    pytest.fail(f"stderr ended without {text!r}:\n{''.join(seen)}")


def record_runs(work: Path, count: int) -> None:
    """Record ``count`` succeeded runs of a one-node blueprint in the history of ``work``."""
    script = textwrap.dedent(f"""
        import conductor_nb as cnb

        bp = cnb.Blueprint("tiny")
        bp.add("delay", id="wait", seconds=0)
        for _ in range({count}):
            bp.run()
    """)
    subprocess.run(
        [sys.executable, "-c", script], cwd=work, env=cli_env(work), check=True, timeout=120
    )


@pytest.fixture
def cli(work: Path) -> Callable[..., CliResult]:
    """``cli(*args, timeout=60)``: :func:`run_cli` in the ``work`` folder."""

    def call(*args: str, timeout: float = 60) -> CliResult:
        return run_cli(work, *args, timeout=timeout)

    return call
