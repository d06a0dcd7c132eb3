"""The view bound to a real run on a Dask cluster: the dashboard link is there while it runs.

An in-process LocalCluster (one worker thread, dashboard on a free port) runs the nodes, so a
node can hold the run open on a threading gate the test releases: the link is read while the
run is certainly active, and again once it has finished. No timers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")
pytest.importorskip("anywidget")

import conductor_nb as cnb  # noqa: E402
from conductor_nb.widgets import BlueprintView  # noqa: E402

pytestmark = pytest.mark.dask

REG = cnb.Registry()
STARTED = threading.Event()  # the held node is running on the worker
GATE = threading.Event()  # the test lets it finish
HOLD_LIMIT = 120.0  # a broken test must not hang the worker for ever


@cnb.node(registry=REG)
def dv_held() -> int:
    STARTED.set()
    GATE.wait(HOLD_LIMIT)
    return 1


@cnb.node(registry=REG)
def dv_next(x: int) -> int:
    return x + 1


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=1, processes=False, dashboard_address="127.0.0.1:0"
        ) as cluster,
        distributed.Client(cluster) as dask_client,
    ):
        yield dask_client


def test_dashboard_link_shows_while_a_dask_run_is_active(client: Any) -> None:
    assert client.dashboard_link  # the scheduler serves a dashboard
    bp = cnb.Blueprint("dask-view", registry=REG)
    bp.add(dv_held, id="held")
    bp.add(dv_next, id="next")
    bp.connect("held", "next.x")
    bp.outputs["result"] = "next.output"
    executor = cnb.DaskExecutor(client)
    view = BlueprintView(bp, run_options={"history": False, "executor": executor})
    assert view.run_info["dashboard"] is None  # no run yet
    STARTED.clear()
    GATE.clear()
    run = view.start_run()
    try:
        assert STARTED.wait(HOLD_LIMIT), "the held node never started on the cluster"
        view.wait_actions()  # the view's traits, read from the live run
        assert view.run_info["status"] == "running"
        assert view.states["held"]["state"] == "running"
        assert view.run_info["dashboard"] == client.dashboard_link
    finally:
        GATE.set()
    run.wait(HOLD_LIMIT)
    view.wait_actions()
    assert run.status.value == "succeeded", run.summary()
    assert run.outputs["result"] == 2  # fetched from the cluster
    assert view.run_info["status"] == "succeeded"
    assert view.run_info["dashboard"] is None  # a finished run links to nothing
