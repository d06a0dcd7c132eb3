"""How node inputs and outputs are kept: JSON when the value is plain data, else a blob file.

Each port's value becomes one small JSON envelope, so a dict that happens to look
like an envelope is never confused with one::

    {"v": <value>}                                   plain JSON data, stored inline
    {"blob": "<sha256>", "format": "json", ...}      plain JSON data too big to inline
    {"blob": "<sha256>", "format": "bytes", ...}     bytes / bytearray, stored raw
    {"blob": "<sha256>", "format": "parquet", ...}   a Table, stored once by content as Parquet
    {"tree": <value>, "tables": [[<path>, <envelope>], ...]}
                                                     plain data holding tables (a spreadsheet's
                                                     output): each table stored as above
    {"blob": "<sha256>", "format": "pickle", ...}    anything else that pickles
    {"format": "repr", "type": ..., "preview": ...}  not picklable: only its repr is kept
    {"format": "remote", "type": ..., "preview": ...}  a Dask future: the value stayed on the
                                                     cluster (a pickled future outlives nothing)
    {"skip": true}                                   the SKIP marker (a branch not taken)
    {"format": "capped", "type": ..., "preview": ...}  not stored: the run had recorded its
                                                     cap of value bytes (see RecordBudget)

"Plain" means exactly ``dict`` (string keys), ``list``, ``str``, ``int``, finite
``float``, ``bool`` and ``None``, so a value reads back equal to what was
written (a tuple or an int-keyed dict is not plain). Blobs are content-addressed
files under ``<home>/blobs``; every envelope notes the value's type.

A table is written once: its digest is kept on the (immutable) table, so the same
table recorded as one node's output and the next nodes' inputs costs one file,
and an equal table from another run is not written again.

Pickles are never loaded unless the caller opts in (``allow_pickle=True``, or
``CONDUCTOR_ALLOW_PICKLE=1``): otherwise a :class:`StoredValue` stands in for
the value, naming its type and where it is kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conductor_nb.model.table import Table

log = logging.getLogger("conductor_nb.storage")

INLINE_LIMIT = 256_000
"""JSON longer than this many characters goes to a blob file instead of the database."""

PREVIEW_LIMIT = 200
MAX_DEPTH = 200


DEFAULT_RUN_CAP = 1_000_000_000
"""Bytes of large values (tables in memory, blobs) one run records before it keeps only
previews; ``CONDUCTOR_HISTORY_CAP`` (bytes, or ``500MB``, ``2GB``; ``0``: no cap) sets it."""


@dataclass
class RecordBudget:
    """One run's allowance of recorded value bytes; a value stored once is charged once."""

    limit: int = DEFAULT_RUN_CAP
    spent: int = 0
    seen: set[str] = field(default_factory=set)

    @classmethod
    def from_env(cls) -> RecordBudget:
        text = os.environ.get("CONDUCTOR_HISTORY_CAP", "").strip().upper()
        if not text:
            return cls()
        units = {"KB": 10**3, "MB": 10**6, "GB": 10**9}
        scale = next((v for k, v in units.items() if text.endswith(k)), 1)
        number = text[:-2] if scale != 1 else text
        try:
            return cls(limit=int(float(number) * scale))
        except ValueError:
            log.warning("CONDUCTOR_HISTORY_CAP=%r is not a size; using the default", text)
            return cls()

    def allows(self, key: str, size: int) -> bool:
        """Charge ``size`` bytes for ``key`` (once); False when that goes over the cap."""
        if key in self.seen:
            return True
        if self.limit and self.spent + size > self.limit:
            return False
        self.seen.add(key)
        self.spent += size
        return True


def pickle_allowed(flag: bool | None = None) -> bool:
    if flag is not None:
        return flag
    return os.environ.get("CONDUCTOR_ALLOW_PICKLE", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class StoredValue:
    """A recorded value that was not loaded (a pickle without opt-in, or only a repr)."""

    type_name: str
    format: str
    preview: str
    path: Path | None = None

    def load(self, *, allow_pickle: bool = False) -> Any:
        """Read the value back. Unpickling runs code from the file: only for files you trust."""
        if self.format == "capped":
            raise ValueError(
                f"this {self.type_name} was not stored: its run had recorded its cap of value "
                f"bytes (CONDUCTOR_HISTORY_CAP); only a preview was kept: {self.preview}"
            )
        if self.format == "remote":
            raise ValueError(
                f"this value stayed on the Dask cluster of its run ({self.preview}); "
                "it was not stored"
            )
        if self.path is None:
            raise ValueError(
                f"a {self.type_name} value was not stored (only its repr was): {self.preview}"
            )
        data = self.path.read_bytes()
        if self.format == "pickle":
            if not allow_pickle:
                raise ValueError(
                    "this value is a pickle; pass allow_pickle=True to load it "
                    "(only for history files you trust)"
                )
            return pickle.loads(data)
        return data

    def __repr__(self) -> str:
        where = f" in {self.path.name}" if self.path else ""
        return f"<stored {self.type_name} ({self.format}{where}): {self.preview}>"


def type_name(value: Any) -> str:
    cls = type(value)
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


_SCALARS = frozenset({str, int, bool, type(None)})
"""Types that are plain whatever their value (a float is plain only when finite)."""
_KEYS = frozenset({str})


def _no_default(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_dumps(allow_nan: bool = True) -> Any:
    """``json.dumps(value, separators=(",", ":"))`` for plain values (checked by
    :func:`is_plain`: no cycles), with one C encoder built once: ``JSONEncoder.encode``
    builds a new one on every call, about half the cost of encoding a small value.
    Without ``allow_nan`` a NaN or infinite float raises ValueError."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the pure-Python encoder
        return json.JSONEncoder(separators=(",", ":"), allow_nan=allow_nan).encode
    encoder = make(
        None,
        _no_default,
        json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        allow_nan,
    )

    def dumps(value: Any) -> str:
        chunks = encoder(value, 0)
        return chunks[0] if len(chunks) == 1 else "".join(chunks)

    return dumps


_dumps = _make_dumps()
_finite_dumps = _make_dumps(allow_nan=False)


def is_plain(value: Any, depth: int = 0) -> bool:
    """True when ``value`` survives a JSON round trip unchanged."""
    if depth > MAX_DEPTH:
        return False
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return _all_plain(value, depth)
    if kind is dict:
        return _KEYS.issuperset(map(type, value)) and _all_plain(value.values(), depth)
    return False


def _all_plain(items: Iterable[Any], depth: int) -> bool:
    """Every item plain; scalars and lists of scalars (the common case) without recursion."""
    scalar = _SCALARS.__contains__
    for item in items:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is list and all(map(scalar, map(type, item))):
            continue
        if not is_plain(item, depth + 1):
            return False
    return True


_FLAT = frozenset({str, int, bool, float, type(None)})
"""Types a flat value may hold when the encoder refuses NaN and infinite floats."""


def plain_text(values: Mapping[str, Any]) -> str | None:
    """The stored text of ``{port: value}`` when every value is plain and it is small
    enough to inline (the common case, one dumps); else None (see ValueCodec.encode).

    Scalars and flat lists and dicts of them (most port values) are checked by their
    types alone, without a call per item; their floats are checked by the encoder."""
    if type(values) is not dict or not _KEYS.issuperset(map(type, values)):
        return None
    flat = _FLAT.issuperset
    wrapped = {}
    for key, value in values.items():
        kind = type(value)
        if not (
            kind in _FLAT
            or (kind is list and flat(map(type, value)))
            or (
                kind is dict
                and _KEYS.issuperset(map(type, value))
                and flat(map(type, value.values()))
            )
            or is_plain(value, 1)
        ):
            return None
        wrapped[key] = {"v": value}
    try:
        text = _finite_dumps(wrapped)
    except ValueError:  # a NaN or an infinite float: not plain
        return None
    return text if len(text) <= INLINE_LIMIT else None  # then each value is within it too


class ValueCodec:
    """Encodes port values to envelopes (writing blobs) and decodes them back."""

    def __init__(self, blob_dir: Path, *, allow_pickle: bool | None = None) -> None:
        self.blob_dir = blob_dir
        self.allow_pickle = pickle_allowed(allow_pickle)

    # ------------------------------------------------------------------ encode
    def encode(
        self, values: Mapping[str, Any] | None, budget: RecordBudget | None = None
    ) -> tuple[str | None, list[str]]:
        """JSON text of ``{port: envelope}`` and the blob hashes it refers to.

        With a ``budget`` (a run's), a large value past the run's cap is kept as a preview.
        """
        if values is None:
            return None, []
        text = plain_text(values)
        if text is not None:
            return text, []
        envelopes: dict[str, Any] = {}
        blobs: list[str] = []
        for key, value in values.items():
            envelope = self.envelope(value, budget)
            if "blob" in envelope:
                blobs.append(envelope["blob"])
            blobs += [e["blob"] for _, e in envelope.get("tables", [])]
            envelopes[str(key)] = envelope
        return _dumps(envelopes), blobs

    def envelope(self, value: Any, budget: RecordBudget | None = None) -> dict[str, Any]:
        from conductor_nb.model.types import SKIP

        if value is SKIP:
            return {"skip": True}
        if isinstance(value, Table):
            return self._table(value, budget)
        if is_plain(value):
            text = _dumps(value)
            if len(text) <= INLINE_LIMIT:
                return {"v": value}
            return self._blob(text.encode("utf-8"), "json", value)
        if isinstance(value, bytes | bytearray | memoryview):
            return self._blob(bytes(value), "bytes", value)
        tree = _split_tables(value)
        if tree is not None:
            rest, tables = tree
            envelopes = [[p, self._table(t, budget)] for p, t in tables]
            return {
                "tree": rest,
                "tables": [e for e in envelopes if "blob" in e[1]],
                "capped": [e for e in envelopes if "blob" not in e[1]],
            }
        if _is_remote(value):
            return {"format": "remote", "type": type_name(value), "preview": _preview(value)}
        try:
            data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return {"format": "repr", "type": type_name(value), "preview": _preview(value)}
        return self._blob(data, "pickle", value)

    def _blob(self, data: bytes, fmt: str, value: Any) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            from conductor_nb.model.document import atomic_write

            atomic_write(path, data)
        return {
            "blob": digest,
            "format": fmt,
            "type": type_name(value),
            "size": len(data),
            "preview": _preview(value),
        }

    def _table(self, table: Table, budget: RecordBudget | None = None) -> dict[str, Any]:
        """A table as Parquet, written once per content (the digest stays on the table).

        The digest is taken from the table's Arrow IPC bytes (fast); the Parquet file is
        written by a background thread, so a run's next node does not wait for it.
        """
        key = table.digest or f"id:{id(table)}"
        if budget is not None and not budget.allows(key, int(table.arrow.nbytes)):
            return {
                "format": "capped",
                "type": "Table",
                "rows": len(table),
                "columns": table.column_types(),
                "preview": _preview(table),
            }
        if table.digest is None:
            table.digest = _content_digest(table)
            if budget is not None:
                budget.seen.add(table.digest)  # charged above under its id
        write_parquet_once(self.blob_path(table.digest), table)
        return {
            "blob": table.digest,
            "format": "parquet",
            "type": "Table",
            "rows": len(table),
            "columns": table.column_types(),
            "memory": int(table.arrow.nbytes),
            "preview": _preview(table),
        }

    def blob_path(self, digest: str) -> Path:
        return self.blob_dir / digest[:2] / digest

    # ------------------------------------------------------------------ decode
    def decode(
        self, text: str | None, *, allow_pickle: bool | None = None
    ) -> dict[str, Any] | None:
        if text is None:
            return None
        allow = self.allow_pickle if allow_pickle is None else allow_pickle
        return {k: self.value(env, allow) for k, env in json.loads(text).items()}

    def value(self, envelope: Mapping[str, Any], allow_pickle: bool = False) -> Any:
        from conductor_nb.model.types import SKIP

        if "v" in envelope:
            return envelope["v"]
        if "tree" in envelope:
            parts = [*envelope.get("tables", []), *envelope.get("capped", [])]
            return _join_tables(envelope["tree"], [(p, self.value(e)) for p, e in parts])
        if envelope.get("skip"):
            return SKIP
        fmt = envelope.get("format", "repr")
        kind = envelope.get("type", "object")
        preview = envelope.get("preview", "")
        digest = envelope.get("blob")
        if digest is None:
            kept = fmt if fmt in ("remote", "capped") else "repr"
            return StoredValue(kind, kept, preview)
        path = self.blob_path(str(digest))
        if fmt == "parquet":
            _wait_for(path)
        if not path.exists():
            return StoredValue(kind, "missing", preview)
        if fmt == "json":
            return json.loads(path.read_text("utf-8"))
        if fmt == "parquet":
            return _read_parquet(path)
        if fmt == "bytes":
            data = path.read_bytes()
            return bytearray(data) if kind == "bytearray" else data
        if fmt == "pickle" and allow_pickle:
            return pickle.loads(path.read_bytes())
        return StoredValue(kind, str(fmt), preview, path)


def has_stored(values: Mapping[str, Any] | None) -> bool:
    """True when some value could not be restored (it is a StoredValue stand-in)."""
    return any(isinstance(v, StoredValue) for v in (values or {}).values())


def _is_remote(value: Any) -> bool:
    """A ``distributed`` Future (checked by name: storage does not import Dask)."""
    cls = type(value)
    return cls.__name__ == "Future" and cls.__module__.partition(".")[0] == "distributed"


def _preview(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:
        text = f"<unrepresentable: {type(exc).__name__}>"
    return text if len(text) <= PREVIEW_LIMIT else text[: PREVIEW_LIMIT - 3] + "..."


# ------------------------------------------------------------------ tables

Path_ = list[str | int]


def _split_tables(value: Any) -> tuple[Any, list[tuple[Path_, Table]]] | None:
    """Plain ``value`` with its tables set to None, and where they were; None when
    ``value`` holds no table or something else that is not plain."""
    found: list[tuple[Path_, Table]] = []

    def walk(node: Any, path: Path_, depth: int) -> Any:
        if isinstance(node, Table):
            found.append((path, node))
            return None
        if depth > 8:
            raise ValueError("too deep")
        if type(node) is dict:
            return {k: walk(v, [*path, k], depth + 1) for k, v in node.items()}
        if type(node) is list:
            return [walk(v, [*path, i], depth + 1) for i, v in enumerate(node)]
        return node

    if type(value) not in (dict, list):
        return None
    try:
        rest = walk(value, [], 0)
    except ValueError:
        return None
    return (rest, found) if found and is_plain(rest) else None


def _join_tables(tree: Any, tables: list[tuple[Path_, Any]]) -> Any:
    for path, table in tables:
        if not path:
            return table
        node = tree
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = table
    return tree


_writer: ThreadPoolExecutor | None = None
_pending: dict[Path, Future[None]] = {}
_lock = threading.Lock()


def _content_digest(table: Table) -> str:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.arrow.schema) as stream:
        stream.write_table(table.arrow)
    return hashlib.sha256(memoryview(sink.getvalue())).hexdigest()


def write_parquet_once(path: Path, table: Table) -> None:
    """Write ``table`` to ``path`` as Parquet in the background, unless it is (being) written.

    The writer thread is not a daemon: the interpreter waits for it at exit, so a run
    recorded by a script is complete on disk when the script ends.
    """
    global _writer
    with _lock:
        if path in _pending or path.exists():
            return
        if _writer is None:
            _writer = ThreadPoolExecutor(1, thread_name_prefix="conductor-parquet")
        _pending[path] = _writer.submit(_write_parquet, path, table)


def _write_parquet(path: Path, table: Table) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from conductor_nb.model.document import atomic_write

    try:
        sink = pa.BufferOutputStream()
        pq.write_table(table.arrow, sink, compression="zstd", write_statistics=False)
        atomic_write(path, sink.getvalue().to_pybytes())
    except Exception as exc:  # the history lacks this value; the run goes on
        log.warning("run history: could not store a table as %s: %s", path.name, exc)
    finally:
        with _lock:
            _pending.pop(path, None)


def flush_tables() -> None:
    """Wait until every table handed to the background writer is on disk."""
    with _lock:
        waiting = list(_pending.values())
    for future in waiting:
        future.result()


def _wait_for(path: Path) -> None:
    with _lock:
        pending = _pending.get(path)
    if pending is not None:
        pending.result()


def _read_parquet(path: Path) -> Table:
    import pyarrow.parquet as pq

    table = Table(pq.read_table(path))
    table.digest = path.name
    return table
