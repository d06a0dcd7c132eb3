"""DaskExecutor on a real LocalCluster: same outputs and events as local, results kept remote.

The node functions live in this module and travel by value (as they would from a
notebook), so the workers never need to import the test module.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
np = pytest.importorskip("numpy")

import conductor_nb as cnb  # noqa: E402
from conductor_nb.engine import events as ev  # noqa: E402

pytestmark = pytest.mark.dask

cloudpickle.register_pickle_by_value(sys.modules[__name__])

CLIENT_FLAG = "CONDUCTOR_TEST_DASK_CLIENT_PID"  # set only after the workers started
REG = cnb.Registry()


# ------------------------------------------------------------------ node types
@cnb.node(registry=REG)
def dk_load(n: int) -> list:
    print(f"loading {n} rows")
    logging.getLogger("dk.load").warning("loaded %d rows", n)
    return list(range(n))


@cnb.node(registry=REG)
async def dk_scale(xs: list, factor: int = 2) -> list:
    await asyncio.sleep(0.01)
    return [x * factor for x in xs]


@cnb.node(registry=REG, outputs=["total", "count"])
def dk_stats(xs: list) -> dict:
    return {"total": sum(xs), "count": len(xs)}


@cnb.node(registry=REG)
async def dk_ratio(total: int, count: int) -> float:
    return total / count


@cnb.node(registry=REG, outputs=["total", "count"])
def dk_bad_stats(xs: list) -> dict:
    return {"total": sum(xs)}


@cnb.node(registry=REG)
def dk_flaky(path: str, fail_times: int) -> str:
    """Fails ``fail_times`` times (counted in a file: workers are other processes)."""
    attempts = Path(path)
    count = len(attempts.read_text().splitlines()) + 1 if attempts.exists() else 1
    with attempts.open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    if count <= fail_times:
        raise ValueError(f"flaky failure {count}")
    return f"ok after {count}"


@cnb.node(registry=REG)
def dk_wait_for(stop: str, limit: float = 15.0) -> str:
    """Holds a worker thread until ``stop`` exists (so the test can free it)."""
    deadline = time.monotonic() + limit
    while not Path(stop).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "stopped"


@cnb.node(registry=REG)
def dk_ctx(ctx: cnb.NodeContext, x: int) -> dict:
    ctx.log("context log line")
    return {
        "pid": os.getpid(),
        "node": ctx.node_id,
        "attempt": ctx.attempt,
        "params": ctx.params,
        "roots": ctx.settings.get("file_roots"),
    }


class Guard:
    """A large payload that refuses to be unpickled in the client (the test) process."""

    def __init__(self, array: Any) -> None:
        self.array = array

    def __sizeof__(self) -> int:  # what Dask reports as the result's size
        return int(self.array.nbytes)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if os.environ.get(CLIENT_FLAG) == str(os.getpid()):
            raise RuntimeError("the large array was unpickled on the client")
        self.__dict__.update(state)


@cnb.node(registry=REG)
def dk_big(n: int) -> Guard:
    return Guard(np.ones(n, dtype="float64"))


@cnb.node(registry=REG)
def dk_big_sum(big: Guard) -> float:
    return float(big.array.sum())


@cnb.node(registry=REG)
def dk_big_len(big: Guard) -> int:
    return len(big.array)


# ------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        os.environ[CLIENT_FLAG] = str(os.getpid())
        try:
            yield dask_client
        finally:
            os.environ.pop(CLIENT_FLAG, None)


@pytest.fixture
def executor(client: Any) -> cnb.DaskExecutor:
    return cnb.DaskExecutor(client)


def pipeline() -> cnb.Blueprint:
    bp = cnb.Blueprint("dk", registry=REG, params={"n": 5})
    bp.add(dk_load, id="load", n="{{ params.n }}")
    bp.add(dk_scale, id="scale", factor=3)
    bp.add(dk_stats, id="stats")
    bp.add(dk_ratio, id="ratio")
    bp.connect("load", "scale.xs")
    bp.connect("scale", "stats.xs")
    bp.connect("stats.total", "ratio.total")
    bp.connect("stats.count", "ratio.count")
    bp.outputs["ratio"] = "ratio.output"
    bp.outputs["total"] = "stats.total"
    bp.outputs["scaled"] = "scale.output"
    return bp


def node_events(run: cnb.Run) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for event in run.events:
        node_id = getattr(event, "node_id", None)
        if node_id:
            out.setdefault(node_id, []).append(type(event).__name__)
    return out


def scheduler_keys(client: Any, prefix: str) -> list[str]:
    def keys(dask_scheduler: Any, prefix: str) -> list[str]:
        return [str(k) for k in dask_scheduler.tasks if str(k).startswith(prefix + "-")]

    return list(client.run_on_scheduler(keys, prefix=prefix))


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


# ---------------------------------------------------------------------- tests
def test_same_outputs_and_events_as_local(executor: cnb.DaskExecutor) -> None:
    local = pipeline().run(params={"n": 6})
    remote = pipeline().run(params={"n": 6}, executor=executor)
    assert remote.status is cnb.RunState.SUCCEEDED, remote.summary()
    assert (
        remote.outputs
        == local.outputs
        == {"ratio": 7.5, "total": 45, "scaled": local["scale"].output}
    )
    assert node_events(remote) == node_events(local)
    # results stay on the cluster: the records hold futures, keyed by node type
    future = remote["scale"].outputs["output"]
    assert isinstance(future, distributed.Future)
    assert str(future.key).startswith("dk_scale-")
    assert isinstance(remote["stats"].outputs["count"], distributed.Future)


def test_worker_logs_reach_the_node_record(executor: cnb.DaskExecutor) -> None:
    run = pipeline().run(executor=executor)
    text = run["load"].log_text
    assert "loading 5 rows" in text
    assert "loaded 5 rows" in text
    assert any(line.level == "WARNING" for line in run["load"].logs)
    logs = [e for e in run.events if isinstance(e, ev.NodeLog) and e.node_id == "load"]
    assert logs, "worker output should arrive as NodeLog events"


def test_async_and_sync_nodes_on_the_cluster_and_dashboard(executor: cnb.DaskExecutor) -> None:
    run = pipeline().run(params={"n": 3}, executor=executor)
    assert run.outputs["scaled"] == [0, 3, 6]
    link = executor.dashboard_link
    assert link is not None and link.startswith("http")


def test_retries_count_attempts_on_workers(executor: cnb.DaskExecutor, tmp_path: Path) -> None:
    attempts = tmp_path / "attempts"
    bp = cnb.Blueprint("flaky", registry=REG)
    bp.add(dk_flaky, id="flaky", path=str(attempts), fail_times=2, retries=2)
    bp.outputs["result"] = "flaky.output"
    run = bp.run(executor=executor)
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert run.outputs == {"result": "ok after 3"}
    assert run["flaky"].attempts == 3
    assert len(attempts.read_text().splitlines()) == 3
    retrying = [e for e in run.events if isinstance(e, ev.NodeRetrying)]
    assert [e.error for e in retrying] == [
        "ValueError: flaky failure 1",
        "ValueError: flaky failure 2",
    ]


def test_failure_keeps_the_original_exception(executor: cnb.DaskExecutor, tmp_path: Path) -> None:
    bp = cnb.Blueprint("fails", registry=REG)
    bp.add(dk_flaky, id="flaky", path=str(tmp_path / "n"), fail_times=5, retries=1)
    bp.add(dk_scale, id="after", xs=[1])
    bp.connect("flaky", "after.factor")
    run = bp.run(executor=executor)
    assert run.status is cnb.RunState.FAILED
    error = run["flaky"].error
    assert error is not None and isinstance(error.original, ValueError)
    assert "failed on attempt 2/2: ValueError: flaky failure 2" in str(error)
    assert "dk_flaky" in run["flaky"].traceback  # the worker's frames
    assert run["after"].status is cnb.NodeState.SKIPPED


def test_wrong_output_shape_fails_the_producing_node(executor: cnb.DaskExecutor) -> None:
    bp = cnb.Blueprint("shape", registry=REG)
    bp.add(dk_bad_stats, id="stats", xs=[1, 2])
    run = bp.run(executor=executor)
    assert run["stats"].status is cnb.NodeState.FAILED
    assert "lacks ['count']" in str(run["stats"].error)


def test_cancel_cancels_the_dask_future(
    executor: cnb.DaskExecutor, client: Any, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    bp = cnb.Blueprint("slow", registry=REG)
    bp.add(dk_wait_for, id="slow", stop=str(stop))
    bp.add(dk_scale, id="after", xs=[1])
    bp.connect("slow", "after.factor")
    try:
        run = bp.start(executor=executor)
        assert eventually(lambda: bool(scheduler_keys(client, "dk_wait_for")))
        run.cancel()
        run.wait(timeout=10)
        assert run.status is cnb.RunState.CANCELLED
        assert run["slow"].status is cnb.NodeState.CANCELLED
        assert run["after"].status is cnb.NodeState.CANCELLED
        assert eventually(lambda: not scheduler_keys(client, "dk_wait_for"))
    finally:
        stop.touch()  # free the worker thread


def test_timeout_cancels_the_dask_future(
    executor: cnb.DaskExecutor, client: Any, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    bp = cnb.Blueprint("slow", registry=REG)
    bp.add(dk_wait_for, id="slow", stop=str(stop), timeout=1)
    try:
        run = bp.run(executor=executor)
        assert run["slow"].status is cnb.NodeState.FAILED
        assert "timed out after 1s" in str(run["slow"].error)
        assert eventually(lambda: not scheduler_keys(client, "dk_wait_for"))
    finally:
        stop.touch()


def test_large_array_never_passes_through_the_client(
    executor: cnb.DaskExecutor, client: Any
) -> None:
    n = 2_000_000  # 16 MB
    bp = cnb.Blueprint("big", registry=REG)
    bp.add(dk_big, id="big", n=n)
    bp.add(dk_big_sum, id="total")
    bp.add(dk_big_len, id="length")
    bp.connect("big", "total.big")
    bp.connect("big", "length.big")
    bp.outputs["total"] = "total.output"
    bp.outputs["length"] = "length.output"
    run = bp.run(executor=executor)
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert run.outputs == {"total": float(n), "length": n}
    future = run["big"].outputs["output"]
    assert isinstance(future, distributed.Future) and future.status == "finished"

    def nbytes(dask_scheduler: Any, key: str) -> int:
        return int(dask_scheduler.tasks[key].nbytes)

    assert client.run_on_scheduler(nbytes, key=future.key) >= n * 8
    # the guard works: fetching the array here is exactly what the run never did
    with pytest.raises(RuntimeError, match="unpickled on the client"):
        executor.resolve(future)


def test_debug_step_retry_and_rerun_on_the_cluster(
    executor: cnb.DaskExecutor, tmp_path: Path
) -> None:
    bp = pipeline()
    run = bp.debug(executor=executor)
    try:
        first = run.step()
        assert first.node_id == "load" and first.status is cnb.NodeState.SUCCEEDED
        assert run.is_paused and run.next_node() == "scale"
        second = run.step()
        assert second.node_id == "scale"
        assert executor.resolve(second.outputs) == {"output": [0, 3, 6, 9, 12]}
        run.resume().wait(timeout=30)
        assert run.status is cnb.RunState.SUCCEEDED
        assert run.outputs["ratio"] == 6.0
        again = run.rerun("scale", inputs={"xs": [1, 2]})
        assert executor.resolve(again.output) == [3, 6]
    finally:
        if not run.is_finished:
            run.cancel().wait(timeout=10)

    attempts = tmp_path / "attempts"
    flaky = cnb.Blueprint("flaky", registry=REG)
    flaky.add(dk_flaky, id="flaky", path=str(attempts), fail_times=1)
    flaky.add(dk_scale, id="after", xs=[1])
    flaky.connect("flaky", "after.factor")
    failed = flaky.run(executor=executor)
    assert failed["flaky"].status is cnb.NodeState.FAILED
    failed.retry("flaky")
    assert failed.status is cnb.RunState.SUCCEEDED, failed.summary()
    assert executor.resolve(failed["after"].output) == ["ok after 2"]


def test_executor_string_starts_its_own_local_cluster() -> None:
    run = pipeline().run(params={"n": 4}, executor="dask")
    executor = run.executor
    try:
        assert isinstance(executor, cnb.DaskExecutor)
        assert run.status is cnb.RunState.SUCCEEDED, run.summary()
        assert run.outputs["total"] == 18  # still readable: the cluster outlives the run
        assert executor.dashboard_link is not None
        workers = executor.client.scheduler_info()["workers"]
        assert len(workers) == 2
    finally:
        executor.shutdown()
    assert executor.dashboard_link is None


def test_templates_over_remote_inputs_gather_them(executor: cnb.DaskExecutor) -> None:
    bp = cnb.Blueprint("tpl", registry=REG)
    bp.add(dk_load, id="load", n=4)
    bp.add(dk_scale, id="scale", factor="{{ inputs.xs | length }}")
    bp.connect("load", "scale.xs")
    bp.outputs["scaled"] = "scale.output"
    run = bp.run(executor=executor)
    assert run.outputs == {"scaled": [0, 4, 8, 12]}
    assert run["scale"].inputs == {"xs": [0, 1, 2, 3], "factor": 4}


def test_control_nodes_run_locally_so_branches_skip(executor: cnb.DaskExecutor) -> None:
    bp = cnb.Blueprint("branch")
    bp.add("transform", id="double", input=[1, 2, 3], operation="map", expression="item * 2")
    bp.add("if", id="cond", condition="input | length > 2")
    bp.connect("double", "cond.input")
    bp.add("transform", id="yes", operation="map", expression="item + 1")
    bp.add("transform", id="no", operation="map", expression="item - 1")
    bp.connect("cond.true", "yes.input")
    bp.connect("cond.false", "no.input")
    bp.outputs["yes"] = "yes.output"
    run = bp.run(executor=executor)
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    assert run.outputs == {"yes": [3, 5, 7]}
    assert run["no"].status is cnb.NodeState.SKIPPED
    assert run["double"].output.result() == [2, 4, 6]  # a future: transform ran on a worker


def test_nodes_that_take_a_context_run_on_workers(executor: cnb.DaskExecutor) -> None:
    bp = cnb.Blueprint("ctx", registry=REG, params={"tag": "t1"})
    bp.add(dk_ctx, id="where", x=3)
    run = bp.run(executor=executor, settings={"file_roots": ["/tmp"]})
    assert run.status is cnb.RunState.SUCCEEDED, run.summary()
    facts = run["where"].output.result()
    assert facts["pid"] != os.getpid()
    assert facts == {**facts, "node": "where", "params": {"tag": "t1"}, "roots": ["/tmp"]}
    assert facts["attempt"] == 1
    assert "context log line" in run["where"].log_text


def test_scheduler_address_connects_and_shutdown_leaves_the_cluster(client: Any) -> None:
    executor = cnb.DaskExecutor(client.scheduler.address)
    run = pipeline().run(params={"n": 2}, executor=executor)
    assert run.outputs["scaled"] == [0, 3]
    own_client = executor.client
    assert own_client is not client
    executor.shutdown()
    assert own_client.status == "closed"
    assert client.submit(sum, [1, 2]).result() == 3  # the shared cluster is still up
    with pytest.raises(TypeError, match="takes a distributed.Client"):
        cnb.DaskExecutor(42)


def test_history_keeps_no_pickled_futures_and_resume_reruns_those_nodes(
    executor: cnb.DaskExecutor,
) -> None:
    from conductor_nb.storage import default_history
    from conductor_nb.storage.values import StoredValue

    run = pipeline().run(executor=executor)
    assert run.status is cnb.RunState.SUCCEEDED
    recorded = {n.node_id: n for n in default_history().nodes(run.id, allow_pickle=True)}
    stored = recorded["load"].outputs["output"]
    assert isinstance(stored, StoredValue) and stored.format == "remote"
    with pytest.raises(ValueError, match="stayed on the Dask cluster"):
        stored.load(allow_pickle=True)
    resumed = cnb.resume(run.id, allow_pickle=True, registry=REG, executor=executor)
    assert resumed.status is cnb.RunState.SUCCEEDED
    assert resumed.outputs["ratio"] == run.outputs["ratio"]
    assert resumed["load"].status is cnb.NodeState.SUCCEEDED  # ran again, not reused


def test_reading_remote_outputs_after_the_client_closed_says_why() -> None:
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
    ) as cluster:
        client = distributed.Client(cluster)
        run = pipeline().run(executor=cnb.DaskExecutor(client))
        assert run.outputs["total"] == 30
        client.close()
        with pytest.raises(cnb.ConductorError, match="stayed on the Dask cluster"):
            run.outputs  # noqa: B018


def test_an_unreachable_scheduler_fails_the_run_with_its_address() -> None:
    import socket

    with socket.socket() as held:  # a port nothing listens on
        held.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{held.getsockname()[1]}"
        bp = cnb.Blueprint("unreachable", registry=REG)
        bp.add(dk_load, id="load", n=2)
        run = bp.run(executor=cnb.DaskExecutor(address, connect_timeout=1), history=False)
    assert run.status is cnb.RunState.FAILED
    with pytest.raises(
        cnb.ConductorError, match=f"cannot connect to a Dask scheduler at {address}"
    ):
        run.raise_for_status()


def test_node_functions_include_body_nodes_at_any_depth() -> None:
    """The up-front probe sees the functions of nodes inside loop/parallel/group bodies
    each function once, labelled by where."""
    from conductor_nb.engine import dask_remote
    from conductor_nb.engine.plan import compile_plan

    reg = cnb.Registry()
    for name in ("loop", "parallel", "group", "pass", "dk_load", "dk_scale", "dk_stats"):
        reg.register(REG.find(name) or cnb.registry.get(name))
    stored = {
        "nodes": {"stats": {"type": "dk_stats", "params": {"xs": [1]}}},
        "outputs": {"total": "stats.total"},
    }
    deep = {"nodes": {"g": {"type": "group", "params": {"blueprint": stored}}}}
    body = {
        "nodes": {
            "scale": {"type": "dk_scale", "params": {"xs": "{{ params.item }}"}},
            "fan": {"type": "parallel", "params": {"items": [1], "body": deep}},
        }
    }
    bp = cnb.Blueprint("outer", registry=reg)
    bp.add("dk_load", id="load", n=2)
    bp.add("loop", id="each", items=[[1]], body=body)
    bp.add("dk_scale", id="again", xs=[2])
    labels = dict(dask_remote.node_functions(compile_plan(bp)))
    where = f"{__name__}."
    assert list(labels) == [
        f"node type 'dk_load' ({where}dk_load)",
        f"node type 'dk_scale' ({where}dk_scale)",
        f"node type 'dk_stats' ({where}dk_stats), in body node 'each.fan.g.stats'",
    ], labels
    assert set(map(id, labels.values())) == {
        id(REG.get(n).fn) for n in ("dk_load", "dk_scale", "dk_stats")
    }
