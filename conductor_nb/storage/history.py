"""Run history: every run, its nodes, logs and values, in one SQLite file (WAL mode).

Where: ``<home>/history.db`` with blobs in ``<home>/blobs``, where home is the
``home`` argument, else ``$CONDUCTOR_HOME``, else the project's ``.conductor/``
(the project root found upward from the blueprint, like git's), else the user's
data folder: see :mod:`conductor_nb.storage.home`.

What is kept, per run: id, blueprint document and its hash, params, status,
times, the first error, the owning process (pid, start marker, host) and the
run it resumed; per node: type, status, attempts, times, error with traceback,
the reason it was skipped or cancelled, inputs, outputs and the cache key; and
every log line. Values are stored as described in :mod:`conductor_nb.storage.values`.

A recorder (:mod:`conductor_nb.storage.recorder`) writes as events arrive, one
transaction per burst, so a process killed mid-run leaves a readable history. The
run's row lists its plan (node ids and types); a node has a row of its own once it
has run (or while it runs long), and a plan node without one reads as pending.
Opening a history marks runs whose process is gone as ``interrupted`` (their
running nodes become ``cancelled``); resume them with :func:`conductor_nb.resume`.

The result cache lives in the same file (table ``cache``); see
:mod:`conductor_nb.storage.cache`.

Stable API (used by the CLI): ``RunHistory(home)``, ``.runs(limit, status,
blueprint)``, ``.count(status, blueprint)``, ``.get(id)`` (a unique id prefix works),
``.nodes(id)``, ``.logs(id, node_id)``, ``.blueprint_doc(id)``, ``.prune(keep=N, days=D)``,
``.delete(id)``, ``.load_run(id)``, ``.resume(id, ...)`` and the fields of
:class:`RunRecord` and :class:`NodeRecord`.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from itertools import groupby
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor_nb.errors import StoreError
from conductor_nb.model import snapshot
from conductor_nb.storage import process
from conductor_nb.storage.home import ENV_HOME, resolve_home
from conductor_nb.storage.records import FINISHED, NodeRecord, RunRecord
from conductor_nb.storage.sqlite_file import ONE_ROW, SCHEMA, insert_rows, migrate
from conductor_nb.storage.values import ValueCodec
from conductor_nb.storage.writer import Writer

if TYPE_CHECKING:
    from conductor_nb.engine.node_runner import LogLine
    from conductor_nb.engine.run import Run
    from conductor_nb.storage.cache import HistoryCache

DB_NAME = "history.db"
UNFINISHED = ("created", "running", "paused")

Statement = tuple[str, Sequence[Any]]


class RunHistory:
    """The run history in ``<home>/history.db`` (see the module docstring).

    ``allow_pickle`` (default: $CONDUCTOR_ALLOW_PICKLE) lets recorded pickles be loaded
    back; otherwise non-JSON values read back as :class:`StoredValue` stand-ins.
    """

    def __init__(
        self, home: str | PathLike[str] | None = None, *, allow_pickle: bool | None = None
    ) -> None:
        self.home = resolve_home(home).absolute()
        self.path = self.home / DB_NAME
        self.codec = ValueCodec(self.home / "blobs", allow_pickle=allow_pickle)
        self._lock = threading.RLock()
        self._writer = Writer(self._write_batch)
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
            migrate(self._db)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the run history at {self.path}: {exc}; set "
                f"${ENV_HOME} to a writable folder"
            ) from exc
        self.mark_interrupted()

    def __repr__(self) -> str:
        return f"RunHistory({str(self.home)!r})"

    def close(self) -> None:
        self._writer.drain()
        with self._lock:
            self._db.close()

    def __enter__(self) -> RunHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- writing
    def write(self, statements: Iterable[Statement], *, durable: bool = False) -> None:
        """Execute statements in one transaction (consecutive same-SQL ones batched).

        Every commit survives the process being killed (WAL, ``synchronous=NORMAL``);
        ``durable`` also syncs this one to disk before returning (it survives a power cut).
        """
        with self._lock:
            if durable:
                self._db.execute("PRAGMA synchronous=FULL")
            try:
                self._transaction(statements)
            finally:
                if durable:
                    self._db.execute("PRAGMA synchronous=NORMAL")

    def submit(self, statements: list[Statement], *, durable: bool = False) -> Future[None]:
        """Write ``statements`` in one transaction on the history's writer thread, after every
        batch submitted before; the future settles when it is on disk (or failed)."""
        return self._writer.submit(statements, durable)

    def _write_batch(self, statements: list[Statement], durable: bool) -> None:
        if durable:
            self.write(statements, durable=True)
        else:
            self.write(statements)  # (subclasses may override write(statements))

    def _transaction(self, statements: Iterable[Statement]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for sql, group in groupby(statements, key=lambda s: s[0]):
                rows = [params for _, params in group]
                if len(rows) == 1:
                    self._db.execute(sql, rows[0])
                elif sql.startswith("INSERT") and ONE_ROW.search(sql):
                    insert_rows(self._db, sql, rows)
                else:
                    self._db.executemany(sql, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._writer.drain()  # a read sees every batch this process sent before it
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def begin(self, run: Run, *, resumed_from: str | None = None) -> None:
        """Record a new run, before it starts (its nodes get rows as they run)."""
        self.write(self.begin_statements(run, resumed_from=resumed_from))

    def begin_statements(self, run: Run, *, resumed_from: str | None = None) -> list[Statement]:
        """What :meth:`begin` writes (the recorder submits them to the writer thread): the
        run's row, with its plan (node ids and types in order) instead of a row per node."""
        snap = snapshot.described(run.blueprint)  # a run's copy was dumped when it was made
        if not snap.text:
            raise StoreError(f"blueprint {run.blueprint.id!r} holds a value that contains itself")
        data, doc, digest = snap.data, snap.text, snap.digest
        folder = _blueprint_folder(run)
        if folder is not None:  # where its relative paths start, for a resume from elsewhere
            doc = _with_folder(doc, data, folder)
        plan = json.dumps([[nid, nr.type] for nid, nr in run.node_runs.items()])
        row = (
            run.id,
            run.blueprint.id,
            run.blueprint.name,
            doc,
            digest,
            json.dumps(run.params, default=repr),
            run.status.value,
            time.time(),
            os.getpid(),
            process.start_marker(),
            process.hostname(),
            resumed_from,
            len(run.node_runs),
            plan,
        )
        return [
            (
                "INSERT OR REPLACE INTO runs (id, blueprint_id, blueprint_name, blueprint, "
                "blueprint_hash, params, status, created_at, pid, process_marker, host, "
                "resumed_from, node_count, plan) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                row,
            )
        ]

    def mark_interrupted(self) -> list[str]:
        """Mark unfinished runs whose process is gone as interrupted; their ids."""
        rows = self._query(
            f"SELECT id, pid, process_marker, host FROM runs WHERE status IN "
            f"({','.join('?' * len(UNFINISHED))})",
            UNFINISHED,
        )
        dead = [
            (rid, pid) for rid, pid, marker, host in rows if not process.is_alive(pid, marker, host)
        ]
        if not dead:
            return []
        statements: list[Statement] = []
        for run_id, pid in dead:
            reason = f"interrupted: its process (pid {pid}) ended during the run"
            statements += [
                (
                    "UPDATE nodes SET status='cancelled', reason=? WHERE run_id=? AND "
                    "status IN ('running','queued','pending')",  # each node ends terminal
                    (reason, run_id),
                ),
                *(
                    (
                        "INSERT OR IGNORE INTO nodes (run_id, node_id, type, status, reason, "
                        "position) VALUES (?,?,?,'cancelled',?,?)",
                        (run_id, node_id, type_, reason, position),
                    )
                    for position, node_id, type_ in self._unwritten(run_id)
                ),
                (
                    "UPDATE runs SET status='interrupted', error=COALESCE(error, ?), "
                    "finished_at=COALESCE((SELECT MAX(COALESCE(finished_at, started_at)) FROM "
                    "nodes WHERE run_id=?), started_at, created_at) WHERE id=?",
                    (reason, run_id, run_id),
                ),
            ]
        self.write(statements)
        return [rid for rid, _ in dead]

    def _unwritten(self, run_id: str) -> list[tuple[int, str, str]]:
        """(position, node id, type) of the run's plan nodes that have no row yet (they
        never ran: a recorder writes a node's row when it has run, or runs long)."""
        found = self._query("SELECT plan FROM runs WHERE id = ?", (run_id,))
        if not found or not found[0][0]:
            return []  # recorded before schema 2: every node has its row
        written = {r[0] for r in self._query("SELECT node_id FROM nodes WHERE run_id=?", (run_id,))}
        return [
            (position, node_id, type_)
            for position, (node_id, type_) in enumerate(json.loads(found[0][0]))
            if node_id not in written
        ]

    # ----------------------------------------------------------------- reading
    _RUN_COLUMNS = (
        "id, status, blueprint_id, blueprint_name, blueprint_hash, params, "
        "created_at, started_at, finished_at, error, pid, host, resumed_from, "
        "node_count"
    )

    def runs(
        self, limit: int | None = None, *, status: str | None = None, blueprint: str | None = None
    ) -> list[RunRecord]:
        """Recorded runs, newest first, optionally filtered by status or blueprint id."""
        where, params = self._filters(status, blueprint)
        sql = f"SELECT {self._RUN_COLUMNS} FROM runs{where}"
        sql += " ORDER BY created_at DESC, rowid DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._query(sql, params)
        counts = self._counts([r[0] for r in rows])
        return [self._record(row, counts.get(row[0], {})) for row in rows]

    def count(self, *, status: str | None = None, blueprint: str | None = None) -> int:
        """How many runs :meth:`runs` would list with these filters (without loading them)."""
        where, params = self._filters(status, blueprint)
        return int(self._query(f"SELECT COUNT(*) FROM runs{where}", params)[0][0])

    @staticmethod
    def _filters(status: str | None, blueprint: str | None) -> tuple[str, list[Any]]:
        """The ``WHERE`` clause (with a leading space, or empty) shared by runs and count."""
        where, params = [], []
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if blueprint is not None:
            where.append("blueprint_id = ?")
            params.append(blueprint)
        return (" WHERE " + " AND ".join(where) if where else ""), params

    def _counts(self, run_ids: list[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start : start + 500]
            rows = self._query(
                f"SELECT run_id, status, COUNT(*) FROM nodes WHERE run_id IN "
                f"({','.join('?' * len(chunk))}) GROUP BY run_id, status",
                chunk,
            )
            for run_id, state, count in rows:
                out.setdefault(run_id, {})[state] = count
            unwritten = self._query(  # plan nodes without a row have not run
                f"SELECT id, node_count - (SELECT COUNT(*) FROM nodes WHERE run_id = runs.id "
                f"AND position < runs.node_count) FROM runs WHERE plan IS NOT NULL AND id IN "
                f"({','.join('?' * len(chunk))})",
                chunk,
            )
            for run_id, count in unwritten:
                if count:
                    states = out.setdefault(run_id, {})
                    states["pending"] = states.get("pending", 0) + count
        return out

    @staticmethod
    def _record(row: tuple[Any, ...], counts: dict[str, int]) -> RunRecord:
        (
            rid,
            status,
            bp_id,
            bp_name,
            bp_hash,
            params,
            created,
            started,
            finished,
            error,
            pid,
            host,
            resumed_from,
            node_count,
        ) = row
        return RunRecord(
            rid,
            status,
            bp_id or "",
            bp_name or "",
            bp_hash or "",
            json.loads(params or "{}"),
            created,
            started,
            finished,
            error,
            pid,
            host,
            resumed_from,
            node_count or 0,
            counts,
        )

    def resolve_id(self, run_id: str) -> str:
        """The full id of ``run_id`` (an exact id or a unique prefix, or 'latest')."""
        if run_id == "latest":
            rows = self._query("SELECT id FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1")
        else:
            rows = self._query("SELECT id FROM runs WHERE id = ?", (run_id,)) or self._query(
                "SELECT id FROM runs WHERE substr(id, 1, ?) = ? LIMIT 6", (len(run_id), run_id)
            )
        if len(rows) == 1:
            return str(rows[0][0])
        if not rows:
            raise StoreError(
                f"no run {run_id!r} in the history at {self.path}; "
                "list runs with cnb.runs() or `conductor-nb runs`"
            )
        raise StoreError(
            f"run id {run_id!r} is ambiguous: it starts "
            f"{', '.join(r[0] for r in rows)}; give more characters"
        )

    def get(self, run_id: str) -> RunRecord:
        """The record of one run (exact id, unique prefix, or 'latest')."""
        full = self.resolve_id(run_id)
        rows = self._query(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE id = ?", (full,))
        return self._record(rows[0], self._counts([full]).get(full, {}))

    def blueprint_doc(self, run_id: str) -> dict[str, Any]:
        """The blueprint document the run executed."""
        doc = self._stored_doc(run_id)
        doc.pop(FOLDER_KEY, None)
        return doc

    def blueprint_folder(self, run_id: str) -> str | None:
        """The folder of the blueprint file the run was loaded from (None: not a file)."""
        folder = self._stored_doc(run_id).get(FOLDER_KEY)
        return str(folder) if folder else None

    def _stored_doc(self, run_id: str) -> dict[str, Any]:
        full = self.resolve_id(run_id)
        rows = self._query("SELECT blueprint FROM runs WHERE id = ?", (full,))
        return dict(json.loads(rows[0][0]))

    _NODE_COLUMNS = (
        "run_id, node_id, type, status, attempts, queued_at, started_at, "
        "finished_at, error, error_type, traceback, reason, inputs, outputs, "
        "cache_key"
    )

    def nodes(self, run_id: str, *, allow_pickle: bool | None = None) -> list[NodeRecord]:
        """The nodes of a run in plan order (nested group nodes after them)."""
        full = self.resolve_id(run_id)
        rows = self._query(
            f"SELECT {self._NODE_COLUMNS}, position FROM nodes WHERE run_id = ?", (full,)
        )
        placed = [(row[-1], row[1], self._node(row[:-1], allow_pickle)) for row in rows]
        placed += [(p, nid, _pending(full, nid, t)) for p, nid, t in self._unwritten(full)]
        placed.sort(key=lambda item: (item[0] is not None, item[0] or 0, item[1]))  # as SQL
        return [record for _, _, record in placed]

    def _node(self, row: tuple[Any, ...], allow_pickle: bool | None) -> NodeRecord:
        values = list(row)
        values[12] = self.codec.decode(row[12], allow_pickle=allow_pickle)
        values[13] = self.codec.decode(row[13], allow_pickle=allow_pickle)
        values[4] = values[4] or 0
        return NodeRecord(*values)

    def logs(self, run_id: str, node_id: str | None = None) -> list[tuple[str, LogLine]]:
        """(node_id, LogLine) pairs in the order they were written."""
        from conductor_nb.engine.node_runner import LogLine

        full = self.resolve_id(run_id)
        sql = "SELECT node_id, time, stream, text, level FROM logs WHERE run_id = ?"
        params: list[Any] = [full]
        if node_id is not None:
            sql += " AND node_id = ?"
            params.append(node_id)
        rows = self._query(sql + " ORDER BY rowid", params)
        return [
            (nid, LogLine(t, stream, text, level or "")) for nid, t, stream, text, level in rows
        ]

    # --------------------------------------------------------------- retention
    def prune(self, keep: int | None = None, days: float | None = None) -> list[str]:
        """Delete old finished runs; returns their ids. Unfinished runs are never pruned.

        ``keep=N`` keeps the newest N runs, ``days=D`` keeps runs younger than D days;
        with both, a run is kept when either rule keeps it. With neither, nothing goes.
        """
        if keep is None and days is None:
            return []
        if keep is not None and keep < 0:
            raise StoreError(f"prune keep must be >= 0 (got {keep})")
        rows = self._query(
            "SELECT id, status, created_at FROM runs ORDER BY created_at DESC, rowid DESC"
        )
        cutoff = None if days is None else time.time() - days * 86400
        doomed = []
        for index, (run_id, status, created) in enumerate(rows):
            if status not in FINISHED:
                continue
            kept_by_count = keep is not None and index < keep
            kept_by_age = cutoff is not None and created >= cutoff
            if not (kept_by_count or kept_by_age):
                doomed.append(run_id)
        for start in range(0, len(doomed), 200):
            self._delete(doomed[start : start + 200])
        return doomed

    def delete(self, run_id: str) -> None:
        """Delete one run (and blobs nothing else refers to)."""
        self._delete([self.resolve_id(run_id)])

    def _delete(self, run_ids: list[str]) -> None:
        if not run_ids:
            return
        marks = ",".join("?" * len(run_ids))
        digests = [
            r[0]
            for r in self._query(
                f"SELECT DISTINCT digest FROM blob_refs WHERE owner IN ({marks})", run_ids
            )
        ]
        self.write(
            [
                (f"DELETE FROM {table} WHERE {column} IN ({marks})", run_ids)
                for table, column in (
                    ("runs", "id"),
                    ("nodes", "run_id"),
                    ("logs", "run_id"),
                    ("blob_refs", "owner"),
                )
            ]
        )
        self._collect(digests)
        for run_id in run_ids:  # shell-command completion records (see storage.children)
            shutil.rmtree(self.home / "children" / run_id, ignore_errors=True)

    def _collect(self, digests: list[str]) -> None:
        for digest in digests:
            if not self._query("SELECT 1 FROM blob_refs WHERE digest = ? LIMIT 1", (digest,)):
                self.codec.blob_path(digest).unlink(missing_ok=True)

    # ------------------------------------------------------------ conveniences
    def cache(self) -> HistoryCache:
        """The result cache kept in this history file."""
        from conductor_nb.storage.cache import HistoryCache

        return HistoryCache(self)

    def load_run(self, run_id: str) -> Run:
        """A Run rebuilt from history (see :func:`conductor_nb.storage.load_run`)."""
        from conductor_nb.storage.rebuild import load_run

        return load_run(run_id, history=self)

    def resume(self, run_id: str, **options: Any) -> Run:
        """Resume a run (see :func:`conductor_nb.storage.resume`)."""
        from conductor_nb.storage.rebuild import resume

        return resume(run_id, history=self, **options)


def _pending(run_id: str, node_id: str, type_: str) -> NodeRecord:
    """The record of a plan node that has no row: it has not run."""
    return NodeRecord(run_id, node_id, type_, "pending", 0, *([None] * 10))


FOLDER_KEY = "x-folder"
"""Beside the recorded document: the blueprint file's folder (not part of the format)."""


def _with_folder(doc: str, data: dict[str, Any], folder: str) -> str:
    """``doc`` (``data`` dumped with sorted keys) with :data:`FOLDER_KEY` added, as dumping
    them together would give it: the key sorts last, so it goes at the end (a 10,000-node
    document is not dumped twice)."""
    if data and max(data) < FOLDER_KEY and doc.endswith("}"):
        return f"{doc[:-1]}, {json.dumps(FOLDER_KEY)}: {json.dumps(folder)}}}"
    return json.dumps({**data, FOLDER_KEY: folder}, sort_keys=True, default=repr)


def _blueprint_folder(run: Run) -> str | None:
    from conductor_nb.nodes.file_roots import blueprint_folder

    folder = blueprint_folder(run.blueprint)
    return None if folder is None else str(folder)


_histories: dict[Path, RunHistory] = {}
_histories_lock = threading.Lock()


def default_history(
    home: str | PathLike[str] | None = None, start: str | PathLike[str] | None = None
) -> RunHistory:
    """The process-wide history for ``home`` (default: by the rule of
    :mod:`conductor_nb.storage.home`, the project search starting at ``start``)."""
    path = resolve_home(home, start).absolute()
    with _histories_lock:
        found = _histories.get(path)
        if found is None:
            found = _histories[path] = RunHistory(path)
            while len(_histories) > 8:  # tests and notebooks may switch homes often
                del _histories[next(iter(_histories))]  # recorders still using it keep it open
        return found
