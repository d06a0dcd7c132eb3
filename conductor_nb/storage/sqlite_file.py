"""The history's SQLite file: its tables, their migration, and many rows inserted at once.

Tables: ``runs`` (one row per run; ``plan`` lists its node ids and types in order),
``nodes`` (a row per node that has run, or runs long, or was cut short), ``logs``,
``blob_refs`` (which run refers to which blob) and ``cache`` (the result cache).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from itertools import chain
from typing import Any

SCHEMA_VERSION = 2
"""2: ``runs.plan`` lists the run's nodes; a node has a row once it has run (or runs long)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, blueprint_id TEXT, blueprint_name TEXT, blueprint TEXT,
    blueprint_hash TEXT, params TEXT, status TEXT, created_at REAL, started_at REAL,
    finished_at REAL, error TEXT, pid INTEGER, process_marker TEXT, host TEXT,
    resumed_from TEXT, node_count INTEGER, plan TEXT);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (created_at);
CREATE TABLE IF NOT EXISTS nodes (
    run_id TEXT, node_id TEXT, type TEXT, status TEXT, attempts INTEGER DEFAULT 0,
    queued_at REAL, started_at REAL, finished_at REAL, error TEXT, error_type TEXT,
    traceback TEXT, reason TEXT, inputs TEXT, outputs TEXT, cache_key TEXT, position INTEGER,
    PRIMARY KEY (run_id, node_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
    run_id TEXT, node_id TEXT, time REAL, stream TEXT, text TEXT, level TEXT);
CREATE INDEX IF NOT EXISTS logs_by_run ON logs (run_id, node_id);
CREATE TABLE IF NOT EXISTS blob_refs (owner TEXT, digest TEXT,
    PRIMARY KEY (owner, digest)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_refs_by_digest ON blob_refs (digest);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY, outputs TEXT, node_type TEXT, created_at REAL);
"""


def migrate(db: sqlite3.Connection) -> None:
    """Bring a history written by an older version to :data:`SCHEMA_VERSION`."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    if "plan" not in columns:  # 1 -> 2: runs written before keep a row for every node
        db.execute("ALTER TABLE runs ADD COLUMN plan TEXT")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))


ONE_ROW = re.compile(r" VALUES \((\?,)*\?\)$")
_CHUNKS = (1024, 256, 64, 16, 4, 1)
"""Rows per multi-row INSERT: a few fixed sizes, so their statements stay prepared."""


def insert_rows(db: sqlite3.Connection, sql: str, rows: list[Sequence[Any]]) -> None:
    """``sql`` (an INSERT of one row: ``... VALUES (?,...,?)``) for every row, as multi-row
    INSERTs. Far cheaper than ``executemany``, which steps once per row, and releases and
    takes back the GIL each time: with the run's loop busy in another thread, each take
    can wait a thread switch interval; one step per chunk waits once per chunk."""
    head, _, values = sql.rpartition(" VALUES ")
    width = len(rows[0])
    limit = max(1, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // max(width, 1))
    start = 0
    for size in _CHUNKS:
        size = min(size, limit)
        chunk_sql = f"{head} VALUES {','.join([values] * size)}"
        while len(rows) - start >= size:
            db.execute(chunk_sql, list(chain.from_iterable(rows[start : start + size])))
            start += size
