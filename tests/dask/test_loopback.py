"""Nothing the project starts listens beyond 127.0.0.1: DaskExecutor's own LocalCluster
(scheduler, workers, dashboard), in worker processes and in threads."""

from __future__ import annotations

import pytest

distributed = pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

import conductor_nb as cnb  # noqa: E402

pytestmark = pytest.mark.dask


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every inet socket listening in ``pid`` and its descendants."""
    root = psutil.Process(pid)
    found = set()
    for proc in [root, *root.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found |= {c.laddr[:2] for c in conns if c.status == psutil.CONN_LISTEN}
    return found


def _bp() -> cnb.Blueprint:
    bp = cnb.Blueprint("lo")
    bp.add("transform", id="double", input=[1, 2, 3], operation="map", expression="item * 2")
    bp.outputs["doubled"] = "double.output"
    return bp


@pytest.mark.parametrize(
    "options", [{}, {"n_workers": 1, "processes": False}], ids=["processes", "threads"]
)
def test_the_own_local_cluster_listens_on_loopback_only(options):
    import os

    before = listening(os.getpid())
    executor = cnb.DaskExecutor(**options)
    try:
        run = _bp().run(executor=executor, history=False)
        assert run.status is cnb.RunState.SUCCEEDED, run.summary()
        assert executor.resolve(run.outputs) == {"doubled": [2, 4, 6]}
        opened = listening(os.getpid()) - before
        assert opened, "the cluster listens somewhere (its dashboard at least)"
        assert {host for host, _ in opened} == {"127.0.0.1"}, opened
        assert executor.dashboard_link is not None
        assert "127.0.0.1" in executor.dashboard_link
    finally:
        executor.shutdown()


def test_a_user_given_host_is_kept():
    from conductor_nb.engine.dask_executor import cluster_options

    assert cluster_options({"processes": False})["dashboard_address"] == "127.0.0.1:0"
    assert "host" not in cluster_options({"processes": False})
    assert cluster_options({"processes": False, "host": "0.0.0.0"})["host"] == "0.0.0.0"
    assert cluster_options({})["host"] == "127.0.0.1"
