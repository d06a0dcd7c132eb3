"""How a run's nodes are kept: the run's row lists its plan, a node gets its row when it has
run (or while it runs long), and a history written by the previous schema is still read."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import conductor_nb as cnb
from conductor_nb.storage import RunHistory, default_history
from conductor_nb.storage.history import Statement
from conductor_nb.storage.recorder import _NODE_ROW, _PLAIN_ROW

NODE_ROWS = (_NODE_ROW, _PLAIN_ROW)


@cnb.node(name="rows_step")
def step(v: int = 0) -> int:
    return v + 1


def _chain(n: int) -> cnb.Blueprint:
    bp = cnb.Blueprint("rows-chain")
    for i in range(n):
        bp.add(step, id=f"s{i}")
        if i:
            bp.connect(f"s{i - 1}", f"s{i}.v")
    return bp


class SpyHistory(RunHistory):
    """A real history that also keeps every node row it writes."""

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        self.node_rows: list[tuple[str, str]] = []  # (node id, status)

    def write(self, statements: Iterable[Statement], *, durable: bool = False) -> None:
        statements = list(statements)
        self.node_rows += [(p[1], p[3]) for sql, p in statements if sql in NODE_ROWS]
        super().write(statements, durable=durable)


def test_a_paused_run_lists_its_never_run_nodes_as_pending() -> None:
    run = _chain(4).start(breakpoints=["s2"]).wait()
    assert run.status is cnb.RunState.PAUSED
    history = default_history()
    nodes = history.nodes(run.id)
    assert [n.node_id for n in nodes] == ["s0", "s1", "s2", "s3"]
    assert [n.status for n in nodes] == ["succeeded", "succeeded", "pending", "pending"]
    assert (nodes[2].type, nodes[2].attempts, nodes[2].outputs) == ("rows_step", 0, None)
    assert history.get(run.id).counts == {"succeeded": 2, "pending": 2}
    stored = history._query("SELECT node_id FROM nodes WHERE run_id = ?", (run.id,))
    assert sorted(row[0] for row in stored) == ["s0", "s1"]  # no row for what never ran
    loaded = cnb.load_run(run.id)
    assert loaded["s3"].status is cnb.NodeState.PENDING and loaded["s1"].output == 2

    run.resume().wait()
    assert [n.status for n in history.nodes(run.id)] == ["succeeded"] * 4
    assert history.get(run.id).counts == {"succeeded": 4}


def test_each_node_is_written_finished_once_and_never_as_queued(tmp_path: Path) -> None:
    history = SpyHistory(tmp_path / "spy")
    run = _chain(30).run(history=history)
    assert run.status is cnb.RunState.SUCCEEDED
    finished = [nid for nid, status in history.node_rows if status == "succeeded"]
    assert sorted(finished) == sorted(f"s{i}" for i in range(30))  # once each
    assert not [row for row in history.node_rows if row[1] in ("pending", "queued")]
    assert history.get(run.id).counts == {"succeeded": 30}


def test_a_history_of_the_previous_schema_is_read_and_extended(tmp_path: Path) -> None:
    home = tmp_path / "old"
    with RunHistory(home) as history:
        old = _chain(3).run(history=history)
    with sqlite3.connect(home / "history.db") as db:  # as schema 1 left it
        db.execute("ALTER TABLE runs DROP COLUMN plan")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    db.close()

    with RunHistory(home) as history:
        assert [n.status for n in history.nodes(old.id)] == ["succeeded"] * 3
        assert history.get(old.id).counts == {"succeeded": 3}
        new = _chain(3).start(history=history, breakpoints=["s1"]).wait()
        assert [n.status for n in history.nodes(new.id)] == ["succeeded", "pending", "pending"]
        schema = history._query("SELECT value FROM meta WHERE key = 'schema'")
        assert schema == [("2",)]
        assert new.resume().wait().status is cnb.RunState.SUCCEEDED  # no run left paused


def test_a_file_blueprint_is_recorded_with_its_folder_as_one_sorted_document(
    tmp_path: Path,
) -> None:
    import json

    from conductor_nb.storage.history import FOLDER_KEY

    path = _chain(3).save(tmp_path / "flows" / "chain.yaml")
    bp = cnb.Blueprint.load(path)
    run = bp.run()
    history = default_history()
    stored = history._query("SELECT blueprint FROM runs WHERE id = ?", (run.id,))[0][0]
    data = bp.to_dict()
    folder = str(path.parent.resolve())
    assert stored == json.dumps({**data, FOLDER_KEY: folder}, sort_keys=True, default=repr)
    assert history.blueprint_folder(run.id) == folder
    assert history.blueprint_doc(run.id) == data


def test_many_rows_go_in_as_multi_row_inserts_within_the_variable_limit(tmp_path: Path) -> None:
    sql = "INSERT INTO logs VALUES (?,?,?,?,?,?)"
    with RunHistory(tmp_path / "many") as history:
        for limit in (None, 20):  # 20 variables: 3 rows of 6 per statement at most
            if limit is not None:
                history._db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)
            for count in (2, 1023, 1100):
                run_id = f"r{limit}-{count}"
                rows = [
                    (run_id, f"n{i}", float(i), "stdout", f"line {i}\n", "") for i in range(count)
                ]
                history.write([(sql, row) for row in rows])
                stored = history._query(
                    "SELECT run_id, node_id, time, stream, text, level FROM logs "
                    "WHERE run_id = ? ORDER BY rowid",
                    (run_id,),
                )
                assert stored == rows


def test_the_recorder_hears_every_event_but_queued_and_progress() -> None:
    """A new event type must be added to Recorder.EVENTS (or said not to need a row)."""
    from conductor_nb.engine import events as ev
    from conductor_nb.storage.recorder import Recorder

    def leaves(cls: type) -> set[type]:
        subs = cls.__subclasses__()
        return set().union(*(leaves(s) for s in subs)) if subs else {cls}

    assert set(Recorder.EVENTS) == leaves(ev.Event) - {ev.NodeQueued, ev.RunProgress}
