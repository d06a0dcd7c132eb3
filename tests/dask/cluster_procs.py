"""A real Dask cluster for tests: ``dask scheduler`` and ``dask worker`` as separate
processes on 127.0.0.1, started in a folder of their own with no PYTHONPATH (so the
test's own modules are not importable there), stopped with their whole process group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

BIN = Path(sys.executable).parent


def cluster_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("DASK_")}
    env.update(extra or {})
    return env


@dataclass
class Cluster:
    folder: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    seen: dict[int, psutil.Process] = field(default_factory=dict)
    address: str = ""

    def start_scheduler(self, timeout: float = 60.0) -> str:
        file = self.folder / "scheduler.json"
        self._spawn(
            [
                *(str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0"),
                *("--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(file)),
            ],
            "scheduler",
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if file.exists():
                try:
                    self.address = json.loads(file.read_text())["address"]
                    return self.address
                except (ValueError, KeyError):
                    pass
            self._check_alive()
            time.sleep(0.1)
        raise TimeoutError(f"the scheduler did not start; its log:\n{self.log('scheduler')}")

    def start_workers(
        self, nworkers: int = 1, *, nanny: bool = True, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        args = [str(BIN / "dask"), "worker", self.address, "--host", "127.0.0.1"]
        args += ["--nworkers", str(nworkers), "--nthreads", "1"]
        args += ["--dashboard-address", "127.0.0.1:0"]
        args += ["--local-directory", str(self.folder / "work")]
        if not nanny:
            args.append("--no-nanny")
        return self._spawn(args, f"workers-{len(self.procs)}", env)

    def _spawn(
        self, args: list[str], name: str, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with (self.folder / f"{name}.log").open("wb") as log:
            proc = subprocess.Popen(
                args,
                cwd=self.folder,
                env={**self.env, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                logs = "\n".join(self.log(p.stem) for p in self.folder.glob("*.log"))
                raise RuntimeError(f"{proc.args[1]} exited with {proc.returncode}:\n{logs}")

    def remember_tree(self) -> None:
        """Note every process of the cluster, so the shutdown can prove they all ended."""
        for proc in self.procs:
            try:
                root = psutil.Process(proc.pid)
                for p in [root, *root.children(recursive=True)]:
                    self.seen[p.pid] = p
            except psutil.NoSuchProcess:
                pass

    def listening(self) -> set[tuple[str, int]]:
        found = set()
        for p in self.seen.values():
            try:
                conns = p.net_connections(kind="inet")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            found |= {c.laddr[:2] for c in conns if c.status == psutil.CONN_LISTEN}
        return found

    def stop(self, proc: subprocess.Popen[bytes] | None = None) -> None:
        """Stop one process group (or all), first politely, then with SIGKILL."""
        procs = [proc] if proc is not None else list(reversed(self.procs))
        for item in procs:
            with _gone():
                os.killpg(item.pid, signal.SIGTERM)
        for item in procs:
            try:
                item.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with _gone():
                    os.killpg(item.pid, signal.SIGKILL)
                item.wait(timeout=10)
            with _gone():  # children left in the group (a nanny's worker)
                os.killpg(item.pid, signal.SIGKILL)
            if item in self.procs:
                self.procs.remove(item)

    def leftovers(self, timeout: float = 10.0) -> list[psutil.Process]:
        deadline = time.monotonic() + timeout
        while True:
            alive = [p for p in self.seen.values() if _running(p)]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.1)


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class _gone:
    """Suppress 'no such process' (it already ended)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        return kind is not None and issubclass(kind, ProcessLookupError)


def wait_for_workers(address: str, count: int, timeout: float = 90.0) -> None:
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(count, timeout=timeout)


def fake_version_folder(folder: Path, dist: str, version: str) -> Path:
    """A folder whose ``<dist>-<version>.dist-info`` makes ``importlib.metadata`` (and so
    Dask's version report) say ``version`` for ``dist`` when the folder is first on the
    path, while the code imported stays the same: a worker from an environment that a
    different release of ``dist`` was installed into, as its version report sees it."""
    info = folder / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    return folder
