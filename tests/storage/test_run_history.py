"""Run history: what is recorded, load_run, resume, retention, and the recorder's safety."""

from __future__ import annotations

from pathlib import Path

import pytest

import conductor_nb as cnb
from conductor_nb.engine import api
from conductor_nb.errors import StoreError
from conductor_nb.storage import RunHistory, StoredValue, default_history
from conductor_nb.storage.recorder import MAX_FAILURES, MAX_IN_FLIGHT


class Opaque:
    """A value that is not JSON: it goes to a blob (pickled), never unpickled by default."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.n == self.n


SIDE_EFFECTS: list[str] = []
FAIL = {"flag": True}


@cnb.node(name="hist_source")
def source(n: int = 3) -> list[int]:
    SIDE_EFFECTS.append("source")
    print("made", n, "items")
    return list(range(n))


@cnb.node(name="hist_total")
def total(items: list[int]) -> int:
    SIDE_EFFECTS.append("total")
    return sum(items)


@cnb.node(name="hist_flaky")
def flaky(value: int) -> int:
    SIDE_EFFECTS.append("flaky")
    if FAIL["flag"]:
        raise ValueError(f"cannot handle {value}")
    return value * 10


@cnb.node(name="hist_opaque")
def opaque(value: int) -> Opaque:
    return Opaque(value)


@pytest.fixture(autouse=True)
def _reset() -> None:
    SIDE_EFFECTS.clear()
    FAIL["flag"] = True


def _pipeline() -> cnb.Blueprint:
    bp = cnb.Blueprint("hist-demo", params={"n": 4})
    bp.add(source, id="source", n="{{ params.n }}")
    bp.add(total, id="total")
    bp.add(flaky, id="flaky", retries=1)
    bp.add(total, id="side")
    bp.connect("source", "total.items")
    bp.connect("total", "flaky.value")
    bp.connect("source", "side.items")
    bp.outputs["result"] = "flaky.output"
    return bp


def test_a_failed_run_is_recorded_with_nodes_errors_and_logs() -> None:
    run = _pipeline().run()
    assert run.status is cnb.RunState.FAILED
    record = cnb.runs()[0]
    assert record.id == run.id
    assert record.status == "failed"
    assert record.blueprint_id == "hist-demo"
    assert record.params == {"n": 4}
    assert record.duration is not None and record.duration >= 0
    assert record.counts == {"succeeded": 3, "failed": 1}
    assert len(record.blueprint_hash) == 16
    assert "flaky" in (record.error or "")

    history = default_history()
    nodes = {n.node_id: n for n in history.nodes(run.id)}
    assert set(nodes) == {"source", "total", "flaky", "side"}
    assert nodes["source"].status == "succeeded"
    assert nodes["source"].outputs == {"output": [0, 1, 2, 3]}
    assert nodes["total"].inputs == {"items": [0, 1, 2, 3]}
    flaky_record = nodes["flaky"]
    assert flaky_record.status == "failed"
    assert flaky_record.attempts == 2
    assert flaky_record.error_type == "ValueError"
    assert "failed on attempt 2/2: ValueError: cannot handle 6" in (flaky_record.error or "")
    assert "Traceback" in (flaky_record.traceback or "")
    logs = history.logs(run.id)
    assert "made 4 items" in "".join(line.text for nid, line in logs if nid == "source")
    assert any(nid == "flaky" and line.stream == "retry" for nid, line in logs)


def test_runs_are_listed_newest_first_and_filtered() -> None:
    first = _pipeline().run()
    FAIL["flag"] = False
    second = _pipeline().run()
    assert [r.id for r in cnb.runs()] == [second.id, first.id]
    assert [r.id for r in cnb.runs(status="succeeded")] == [second.id]
    assert [r.id for r in cnb.runs(limit=1)] == [second.id]
    assert cnb.runs(blueprint="nope") == []
    assert default_history().get("latest").id == second.id


def test_count_matches_the_runs_listed_with_the_same_filters() -> None:
    history = default_history()
    assert history.count() == 0
    _pipeline().run()
    _pipeline().run()
    FAIL["flag"] = False
    _pipeline().run()
    other = cnb.Blueprint("hist-other")
    other.add(source, id="source")
    other.run()
    cases = [
        ({}, 4),
        ({"status": "failed"}, 2),
        ({"status": "succeeded"}, 2),
        ({"status": "cancelled"}, 0),
        ({"blueprint": "hist-demo"}, 3),
        ({"blueprint": "hist-other"}, 1),
        ({"status": "succeeded", "blueprint": "hist-demo"}, 1),
        ({"status": "failed", "blueprint": "hist-other"}, 0),
    ]
    for filters, expected in cases:
        assert history.count(**filters) == expected, filters
        assert len(history.runs(**filters)) == expected, filters


def test_history_false_records_nothing() -> None:
    FAIL["flag"] = False
    _pipeline().run(history=False)
    assert cnb.runs() == []


def test_history_option_picks_another_folder(tmp_path: Path) -> None:
    FAIL["flag"] = False
    run = _pipeline().run(history=str(tmp_path / "elsewhere"))
    assert cnb.runs() == []
    assert RunHistory(tmp_path / "elsewhere").get(run.id).status == "succeeded"


def test_unknown_run_id_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="no run 'nope'"):
        cnb.load_run("nope")


def test_load_run_rebuilds_a_finished_run() -> None:
    run = _pipeline().run()
    loaded = cnb.load_run(run.id)
    assert loaded.id == run.id
    assert loaded.status is cnb.RunState.FAILED
    assert loaded.is_finished
    assert loaded["source"].outputs == {"output": [0, 1, 2, 3]}
    assert loaded["flaky"].status is cnb.NodeState.FAILED
    assert loaded["flaky"].attempts == 2
    assert "cannot handle 6" in str(loaded["flaky"].error)
    assert "Traceback" in loaded["flaky"].traceback
    assert "made 4 items" in loaded["source"].log_text
    assert loaded.summary().splitlines()[0].startswith(f"run {run.id} of 'hist-demo': failed")
    assert "<svg" in loaded.to_svg()
    assert loaded.raise_for_status is not None
    with pytest.raises(cnb.NodeExecutionError, match="cannot handle"):
        loaded.raise_for_status()


def test_load_run_works_without_the_node_functions() -> None:
    @cnb.node(name="hist_temporary")
    def temporary(x: int = 1) -> int:
        return x + 1

    bp = cnb.Blueprint("temp-demo")
    bp.add(temporary, id="t", x=41)
    run = bp.run()
    cnb.registry.unregister("hist_temporary")
    loaded = cnb.load_run(run.id)
    assert loaded["t"].outputs == {"output": 42}
    assert loaded.status is cnb.RunState.SUCCEEDED
    assert "<svg" in loaded.to_svg()


def test_values_that_are_not_json_go_to_blobs_and_are_not_unpickled(conductor_home: Path) -> None:
    bp = cnb.Blueprint("opaque-demo")
    bp.add(opaque, id="o", value=5)
    bp.add(total, id="t", items=(1, 2))
    run = bp.run()
    history = default_history()
    nodes = {n.node_id: n for n in history.nodes(run.id)}
    stand_in = nodes["o"].outputs["output"]  # type: ignore[index]
    assert isinstance(stand_in, StoredValue)
    assert stand_in.type_name.endswith("Opaque")
    assert stand_in.format == "pickle"
    assert stand_in.path is not None and stand_in.path.is_relative_to(conductor_home)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        stand_in.load()
    assert stand_in.load(allow_pickle=True) == Opaque(5)
    trusted = RunHistory(conductor_home, allow_pickle=True)
    assert trusted.nodes(run.id)[0].outputs == {"output": Opaque(5)}
    # a tuple is not JSON (it would come back as a list): kept exactly, as a blob
    assert isinstance(nodes["t"].inputs["items"], StoredValue)  # type: ignore[index]


def test_resume_reruns_only_what_did_not_succeed() -> None:
    failed = _pipeline().run()
    assert SIDE_EFFECTS.count("source") == 1
    FAIL["flag"] = False
    SIDE_EFFECTS.clear()
    resumed = cnb.resume(failed.id)
    assert resumed.status is cnb.RunState.SUCCEEDED
    assert resumed.id != failed.id
    assert resumed.outputs == {"result": 60}
    assert SIDE_EFFECTS == ["flaky"]
    assert resumed["source"].status is cnb.NodeState.CACHED
    record = cnb.runs()[0]
    assert record.id == resumed.id
    assert record.resumed_from == failed.id
    assert record.counts == {"cached": 3, "succeeded": 1}


def test_resume_with_an_edited_blueprint_reuses_only_what_is_unchanged() -> None:
    failed = _pipeline().run()  # flaky fails; source, total and side succeed
    FAIL["flag"] = False
    SIDE_EFFECTS.clear()
    edited = _pipeline()
    edited.nodes["total"].retries = 2  # total changed: it and flaky (downstream) run again
    resumed = cnb.resume(failed.id, blueprint=edited)
    assert resumed.status is cnb.RunState.SUCCEEDED
    assert sorted(SIDE_EFFECTS) == ["flaky", "total"]
    assert resumed["source"].status is cnb.NodeState.CACHED
    assert resumed["side"].status is cnb.NodeState.CACHED
    assert resumed["total"].status is cnb.NodeState.SUCCEEDED


def test_resume_of_a_resume_still_reuses_everything() -> None:
    failed = _pipeline().run()
    again = cnb.resume(failed.id)  # still failing
    assert again.status is cnb.RunState.FAILED
    FAIL["flag"] = False
    SIDE_EFFECTS.clear()
    done = cnb.resume(again.id)
    assert done.status is cnb.RunState.SUCCEEDED
    assert SIDE_EFFECTS == ["flaky"]


def test_resume_needs_the_node_types() -> None:
    @cnb.node(name="hist_gone")
    def gone(x: int = 1) -> int:
        raise RuntimeError("no")

    bp = cnb.Blueprint("gone-demo")
    bp.add(gone, id="g")
    run = bp.run()
    cnb.registry.unregister("hist_gone")
    with pytest.raises(StoreError, match="define or import the node functions"):
        cnb.resume(run.id)


def test_prune_keeps_the_newest_and_never_unfinished_runs() -> None:
    FAIL["flag"] = False
    ids = [_pipeline().run().id for _ in range(4)]
    unfinished = api.prepare(_pipeline(), None, {})  # recorded, never started
    history = default_history()
    assert history.get(unfinished.id).status == "created"
    removed = history.prune(keep=2)
    assert sorted(removed) == sorted(ids[:3])  # the newest two are the unfinished + ids[3]
    assert {r.id for r in cnb.runs()} == {unfinished.id, ids[3]}
    assert history.prune(keep=0) == [ids[3]]
    assert [r.id for r in cnb.runs()] == [unfinished.id]
    assert history.prune(days=0) == []


def test_prune_by_age_and_blob_cleanup(conductor_home: Path) -> None:
    bp = cnb.Blueprint("opaque-demo")
    bp.add(opaque, id="o", value=7)
    old = bp.run()
    history = default_history()
    blobs = [p for p in (conductor_home / "blobs").rglob("*") if p.is_file()]
    assert blobs
    history.write(
        [("UPDATE runs SET created_at = created_at - 10 * 86400 WHERE id = ?", (old.id,))]
    )
    assert history.prune(days=5) == [old.id]
    assert not any(p.exists() for p in blobs)
    assert history.prune() == []


def test_a_broken_history_never_breaks_a_run(conductor_home: Path, caplog) -> None:
    class Broken(RunHistory):
        calls = 0

        def write(self, statements):  # type: ignore[no-untyped-def]
            Broken.calls += 1
            raise OSError("disk full")

    FAIL["flag"] = False
    with caplog.at_level("WARNING", logger="conductor_nb"):
        run = _pipeline().run(history=Broken(conductor_home / "broken"))
    assert run.status is cnb.RunState.SUCCEEDED
    assert run.outputs == {"result": 60}
    warnings = [r.getMessage() for r in caplog.records if "run history" in r.getMessage()]
    assert warnings == [f"run history: run {run.id} is not recorded (OSError: disk full)"]
    assert Broken.calls == 1  # reported once; the run is not recorded, nothing retried


def test_a_subscriber_failure_mid_run_is_contained(
    conductor_home: Path, caplog, monkeypatch
) -> None:
    from conductor_nb.storage import recorder

    monkeypatch.setattr(recorder, "FLUSH_INTERVAL", 0.0)  # a write per burst: several writes

    class FailsLater(RunHistory):
        calls = 0

        def write(self, statements):  # type: ignore[no-untyped-def]
            FailsLater.calls += 1
            if FailsLater.calls > 1:
                raise OSError("disk full")
            super().write(statements)

    FAIL["flag"] = False
    with caplog.at_level("WARNING", logger="conductor_nb"):
        run = _pipeline().run(history=FailsLater(conductor_home / "later"))
    assert run.status is cnb.RunState.SUCCEEDED
    assert run.outputs == {"result": 60}
    warnings = [r.getMessage() for r in caplog.records if "could not record" in r.getMessage()]
    assert warnings and f"of run {run.id} (OSError: disk full)" in warnings[0]
    assert "recording stopped for this run" in warnings[-1]  # reported, then detached
    assert len(warnings) == MAX_FAILURES  # said once each, then nothing more
    # batches already handed to the writer when recording stopped may still be tried once
    assert 1 + MAX_FAILURES <= FailsLater.calls <= 1 + MAX_FAILURES + MAX_IN_FLIGHT


def test_async_and_concurrent_runs_are_recorded() -> None:
    import asyncio

    FAIL["flag"] = False
    bp = _pipeline()
    started = [bp.start() for _ in range(3)]
    for run in started:
        run.wait()

    async def main() -> cnb.Run:
        return await bp.arun()

    awaited = asyncio.run(main())
    records = {r.id: r for r in cnb.runs()}
    for run in [*started, awaited]:
        assert records[run.id].status == "succeeded"
        assert records[run.id].counts == {"succeeded": 4}
