"""A Dask cluster as users run one: ``dask scheduler`` and ``dask worker`` as separate
processes on 127.0.0.1, in a folder of their own with no PYTHONPATH.

The node functions live in ``mods.py`` in a temp folder the cluster cannot import
(checked), so each passing run proves the code was shipped by the executor. Runs go
through the CLI, the Python API and a real kernel; the failures (a node raising, a
package missing on the cluster, version skew, a worker dying) end with one clear error.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

from cluster_procs import BIN, Cluster, cluster_env, fake_version_folder, wait_for_workers  # noqa: E402

import conductor_nb as cnb  # noqa: E402

pytestmark = pytest.mark.dask

MODS = '''
import os
import time
from pathlib import Path

import conductor_nb as cnb
import mods_helpers


@cnb.node(name="mods-load")
def load(n: int) -> list:
    return mods_helpers.numbers(n)


@cnb.node(name="mods-total")
def total(xs: list) -> int:
    return mods_helpers.total(xs)


@cnb.node(name="mods-fail")
def fail(x: int) -> int:
    raise ValueError(f"bad value {x}")


@cnb.node(name="mods-hold")
def hold(folder: str, gate: str, limit: float = 60.0) -> str:
    """Notes its pid in folder/<gate>.pids, then waits for folder/<gate>.stop."""
    with open(Path(folder, gate + ".pids"), "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    deadline = time.monotonic() + limit
    while not Path(folder, gate + ".stop").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"{gate} released"


@cnb.node(name="mods-polite")
def polite(ctx: cnb.NodeContext, folder: str, limit: float = 60.0) -> str:
    """Runs until ctx.cancelled says stop, and notes that it saw it."""
    Path(folder, "polite.started").touch()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ctx.cancelled:
            Path(folder, "polite.stopped").touch()
            return "stopped"
        time.sleep(0.05)
    return "never cancelled"


@cnb.node(name="mods-crash")
def crash(x: int) -> int:
    os._exit(3)  # the worker process dies running this node
'''

HELPERS = """
def numbers(n):
    return list(range(n))


def total(xs):
    return sum(xs)
"""

BLUEPRINT = """
conductor: 1
id: d
nodes:
  load: {type: mods-load, params: {n: 10}}
  total: {type: mods-total}
  double: {type: transform, params: {operation: map, expression: "item * 2"}}
edges:
  - load.output -> total.xs
  - load.output -> double.input
outputs:
  total: total.output
  doubled: double.output
"""

EXPECTED = {"total": 45, "doubled": [x * 2 for x in range(10)]}
ALLOWED_FAILURES = 1  # the scheduler gives a task up after 2 worker deaths (default: 4)


# ------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def code(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """mods.py and mods_helpers.py in a folder only this process can import."""
    folder = tmp_path_factory.mktemp("usercode")
    (folder / "mods.py").write_text(MODS)
    (folder / "mods_helpers.py").write_text(HELPERS)
    (folder / "d.yaml").write_text(BLUEPRINT)
    sys.path.insert(0, str(folder))
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))


@pytest.fixture(scope="module")
def mods(code: Path) -> Any:
    return importlib.import_module("mods")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A scheduler and one `dask worker` process group with 2 workers (nannies)."""
    folder = tmp_path_factory.mktemp("cluster")
    env = cluster_env({"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(ALLOWED_FAILURES)})
    cl = Cluster(folder, env)
    try:
        cl.start_scheduler()
        cl.start_workers(2)
        wait_for_workers(cl.address, 2)
        cl.remember_tree()
        yield cl
    finally:
        cl.remember_tree()
        cl.stop()
    left = cl.leftovers()
    assert not left, f"cluster processes still running after the shutdown: {left}"


@pytest.fixture
def address(cluster: Cluster) -> str:
    wait_for_workers(cluster.address, 2)  # a test may have killed one: its nanny restarts it
    return cluster.address


@pytest.fixture
def gates(tmp_path: Path) -> Path:
    return tmp_path


def eventually(check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout}s: {check}")


def blueprint(mods: Any) -> cnb.Blueprint:
    return cnb.Blueprint.from_yaml((Path(mods.__file__).parent / "d.yaml").read_text())


# ---------------------------------------------------------------------- tests
def test_the_cluster_cannot_import_the_user_code(cluster: Cluster, code: Path) -> None:
    with distributed.Client(cluster.address, timeout=30) as client:
        found = client.run(importlib.util.find_spec, "mods")
        assert found and all(spec is None for spec in found.values()), found
        assert client.run_on_scheduler(lambda: importlib.util.find_spec("mods")) is None
    listening = cluster.listening()
    assert listening, "the scheduler and workers listen"
    assert {host for host, _ in listening} == {"127.0.0.1"}, listening


def test_cli_run_with_a_local_module(address: str, code: Path) -> None:
    """The issue's command: --import mods beside the blueprint, the cluster elsewhere."""
    env = cluster_env()
    done = subprocess.run(
        [
            *(str(BIN / "conductor-nb"), "run", "d.yaml", "--import", "mods"),
            *("--executor", "dask", "--scheduler", address, "--json", "--no-history"),
        ],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded", result
    assert result["outputs"] == EXPECTED, result


def test_python_api_runs_local_module_and_builtin_nodes(address: str, mods: Any) -> None:
    with cnb.DaskExecutor(address) as executor:
        run = blueprint(mods).run(executor=executor, history=False)
        assert run.status is cnb.RunState.SUCCEEDED, run.summary()
        assert run.outputs == EXPECTED


def test_a_failing_node_fails_with_its_own_error(address: str, mods: Any) -> None:
    bp = cnb.Blueprint("f")
    bp.add("mods-load", id="load", n=3)
    bp.add("mods-fail", id="bad", x=7)
    with cnb.DaskExecutor(address) as executor:
        run = bp.run(executor=executor, history=False)
    assert run.status is cnb.RunState.FAILED
    assert run["load"].status is cnb.NodeState.SUCCEEDED
    error = run["bad"].error
    assert error is not None
    assert "node 'bad' (mods-fail) failed on attempt 1/1: ValueError: bad value 7" in str(error)
    assert ", in fail\n" in run["bad"].traceback  # the worker's traceback came back


@pytest.fixture(scope="module")
def onlyhere(code: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``mods_needy`` (its node type ``needy``) imports ``onlyhere``, an installed package
    (not shipped) that only this client has: the workers cannot load ``needy``."""
    site = tmp_path_factory.mktemp("client-site")
    (site / "onlyhere").mkdir(parents=True)
    (site / "onlyhere" / "__init__.py").write_text("def twice(x):\n    return 2 * x\n")
    info = site / "onlyhere-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: onlyhere\nVersion: 1.2.3\n")
    (info / "top_level.txt").write_text("onlyhere\n")
    (code / "mods_needy.py").write_text(
        "import conductor_nb as cnb\nimport onlyhere\n\n\n"
        '@cnb.node(name="needy")\ndef needy(x: int) -> int:\n    return onlyhere.twice(x)\n'
    )
    sys.path.insert(0, str(site))
    try:
        yield importlib.import_module("mods_needy")
    finally:
        sys.path.remove(str(site))


def assert_failed_once_before_any_node(run: cnb.Run, label: str) -> None:
    assert run.status is cnb.RunState.FAILED
    message = str(run.error)
    assert "cannot load 1 node function(s); no node was dispatched" in message, message
    assert f"{label} cannot be loaded on worker tcp://127.0.0.1:" in message, message
    assert "No module named 'onlyhere'" in message
    assert "pip install 'onlyhere==1.2.3'" in message
    assert not [e for e in run.events if type(e).__name__ == "NodeStarted"]
    assert all(r.error is None for r in run.node_runs.values())  # one error: the run's


def test_a_package_missing_on_the_cluster_fails_the_run_once(address: str, onlyhere: Any) -> None:
    """An installed package (not shipped) that the workers lack: one error, before any node."""
    bp = cnb.Blueprint("needy")
    for i in range(5):
        bp.add("needy", id=f"n{i}", x=i)
    with cnb.DaskExecutor(address) as executor:
        run = bp.run(executor=executor, history=False)
    assert_failed_once_before_any_node(run, "node type 'needy' (mods_needy.needy)")


def test_body_nodes_are_probed_before_the_run(address: str, mods: Any, onlyhere: Any) -> None:
    """A node the cluster cannot load, inside a group inside a loop: the run fails once,
    naming the body node's path, before the loop (or anything) starts; not once per item."""
    inner = {"nodes": {"twice": {"type": "needy", "params": {"x": 2}}}}
    body = {"nodes": {"wrap": {"type": "group", "params": {"blueprint": inner}}}}
    bp = cnb.Blueprint("needy-body")
    bp.add("mods-load", id="load", n=3)
    bp.add("loop", id="each", body=body)
    bp.connect("load", "each.items")
    with cnb.DaskExecutor(address) as executor:
        run = bp.run(executor=executor, history=False)
    label = "node type 'needy' (mods_needy.needy), in body node 'each.wrap.twice'"
    assert_failed_once_before_any_node(run, label)


def test_body_nodes_from_a_local_module_run_on_the_cluster(address: str, mods: Any) -> None:
    """The module of a function used only inside a loop body is shipped too."""
    body = {"nodes": {"sum": {"type": "mods-total", "params": {"xs": "{{ params.item }}"}}}}
    bp = cnb.Blueprint("body-ok")
    bp.add("loop", id="each", items=[[1, 2], [3, 4, 5]], body=body)
    bp.outputs["totals"] = "each.output"
    with cnb.DaskExecutor(address) as executor:
        run = bp.run(executor=executor, history=False)
        assert run.status is cnb.RunState.SUCCEEDED, run.summary()
        assert run.outputs == {"totals": [3, 12]}


def test_cancel_mid_run(address: str, mods: Any, gates: Path, caplog: Any) -> None:
    """Nodes are cancelled at once; the one that polls ctx.cancelled stops on its worker;
    the one that cannot be interrupted is named."""
    bp = cnb.Blueprint("c")
    bp.add("mods-polite", id="polite", folder=str(gates))
    bp.add("mods-hold", id="hold", folder=str(gates), gate="hold")
    bp.add("mods-total", id="after", xs=[1])
    bp.connect("hold", "after.xs")
    caplog.set_level(logging.WARNING, logger="conductor_nb.dask")
    with cnb.DaskExecutor(address) as executor:
        run = bp.start(executor=executor, history=False)
        eventually(lambda: (gates / "polite.started").exists() and (gates / "hold.pids").exists())
        asked = time.monotonic()
        run.cancel()
        run.wait(timeout=30)
        took = time.monotonic() - asked
        try:
            assert run.status is cnb.RunState.CANCELLED, run.summary()
            for node in ("polite", "hold", "after"):
                assert run[node].status is cnb.NodeState.CANCELLED, run.summary()
            assert took < 10, f"cancelling took {took:.1f}s"  # the hold node runs 60 s
            eventually(lambda: (gates / "polite.stopped").exists(), timeout=20)
            eventually(lambda: "cannot interrupt" in run["hold"].log_text, timeout=20)
            assert "asked it to stop" in run["polite"].log_text
            summary = eventually(
                lambda: [r.getMessage() for r in caplog.records if "Dask cluster" in r.message]
            )
            assert "could not be interrupted" in summary[0] and "'hold'" in summary[0]
        finally:
            (gates / "hold.stop").touch()


def test_a_killed_worker_task_is_retried_on_another(address: str, mods: Any, gates: Path) -> None:
    bp = cnb.Blueprint("k")
    bp.add("mods-hold", id="hold", folder=str(gates), gate="victim")
    bp.outputs["released"] = "hold.output"
    with cnb.DaskExecutor(address) as executor:
        run = bp.start(executor=executor, history=False)
        pids = gates / "victim.pids"
        first = int(eventually(lambda: pids.exists() and pids.read_text().split())[0])
        os.kill(first, signal.SIGKILL)
        eventually(lambda: len(pids.read_text().split()) >= 2)  # Dask ran it again elsewhere
        (gates / "victim.stop").touch()
        run.wait(timeout=60)
        assert run.status is cnb.RunState.SUCCEEDED, run.summary()
        assert run.outputs == {"released": "victim released"}
    assert int(pids.read_text().split()[1]) != first


def test_a_node_that_kills_its_worker_fails_clearly(address: str, mods: Any) -> None:
    bp = cnb.Blueprint("crash")
    bp.add("mods-crash", id="crash", x=1)
    with cnb.DaskExecutor(address) as executor:
        run = bp.run(executor=executor, history=False)
    assert run.status is cnb.RunState.FAILED
    message = str(run["crash"].error)
    assert f"the Dask worker running this node died {ALLOWED_FAILURES + 1} times" in message
    assert "crashed its process" in message


def test_version_skew_fails_the_run_once(tmp_path: Path, mods: Any) -> None:
    """A worker whose environment reports another conductor_nb release (its metadata says
    0.0.1, first on its path) joins after two good runs: the executor kept what it checked
    while the workers stayed the same, and checks again now; the run fails before any
    node, naming both versions."""
    fake = fake_version_folder(tmp_path / "old-env", "conductor-nb", "0.0.1")
    cl = Cluster(tmp_path, cluster_env())
    try:
        cl.start_scheduler()
        cl.start_workers(1, nanny=False)
        wait_for_workers(cl.address, 1)
        with cnb.DaskExecutor(cl.address) as executor:
            good = [blueprint(mods).run(executor=executor, history=False) for _ in range(2)]
            cl.start_workers(1, nanny=False, env={"PYTHONPATH": str(fake)})
            wait_for_workers(cl.address, 2)
            cl.remember_tree()
            run = blueprint(mods).run(executor=executor, history=False)
    finally:
        cl.remember_tree()
        cl.stop()
    assert not cl.leftovers()
    assert [r.status for r in good] == [cnb.RunState.SUCCEEDED] * 2, good[-1].summary()
    assert run.status is cnb.RunState.FAILED
    message = str(run.error)
    mine = importlib.metadata.version("conductor-nb")
    assert "does not match this client (1 package differs); no node was dispatched" in message
    assert f"conductor_nb: client {mine}, worker tcp://127.0.0.1:" in message
    assert "0.0.1" in message
    assert f"pip install 'conductor-nb=={mine}'" in message
    assert not [e for e in run.events if type(e).__name__ == "NodeStarted"]


NOTEBOOK_CELL = """
import conductor_nb as cnb
import mods

@cnb.node
def shout(words: list) -> str:
    return " ".join(str(w) for w in words).upper() + "!"

bp = cnb.Blueprint("nb")
bp.add("mods-load", id="load", n=4)
bp.add(shout, id="shout")
bp.connect("load", "shout.words")
bp.outputs["shout"] = "shout.output"
with cnb.DaskExecutor(ADDRESS) as ex:
    r = bp.run(executor=ex, history=False)
    print("RESULT", r.status.value, r.outputs["shout"])
"""


def test_notebook_defined_functions_in_a_real_kernel(address: str, code: Path) -> None:
    jupyter_client = pytest.importorskip("jupyter_client")
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel(cwd=str(code), env=cluster_env())
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        out = _execute(kc, NOTEBOOK_CELL.replace("ADDRESS", repr(address)))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert "RESULT succeeded 0 1 2 3!" in out, out


def _execute(kc: Any, code: str, timeout: float = 120) -> str:
    msg_id = kc.execute(code)
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out.append(content["text"])
        elif kind == "error":
            out.append("\n".join(content["traceback"]))
        elif kind == "status" and content["execution_state"] == "idle":
            break
    return "".join(out)
