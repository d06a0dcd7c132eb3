"""How node inputs and outputs are kept: JSON when the value is plain data, else a blob file.

Each port's value becomes one small JSON envelope, so a dict that happens to look
like an envelope is never confused with one::

    {"v": <value>}                                   plain JSON data, stored inline
    {"blob": "<sha256>", "format": "json", ...}      plain JSON data too big to inline
    {"blob": "<sha256>", "format": "bytes", ...}     bytes / bytearray, stored raw
    {"blob": "<sha256>", "format": "pickle", ...}    anything else that pickles
    {"format": "repr", "type": ..., "preview": ...}  not picklable: only its repr is kept
    {"format": "remote", "type": ..., "preview": ...}  a Dask future: the value stayed on the
                                                     cluster (a pickled future outlives nothing)
    {"skip": true}                                   the SKIP marker (a branch not taken)

"Plain" means exactly ``dict`` (string keys), ``list``, ``str``, ``int``, finite
``float``, ``bool`` and ``None``, so a value reads back equal to what was
written (a tuple or an int-keyed dict is not plain). Blobs are content-addressed
files under ``<home>/blobs``; every envelope notes the value's type.

Pickles are never loaded unless the caller opts in (``allow_pickle=True``, or
``CONDUCTOR_ALLOW_PICKLE=1``): otherwise a :class:`StoredValue` stands in for
the value, naming its type and where it is kept.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INLINE_LIMIT = 256_000
"""JSON longer than this many characters goes to a blob file instead of the database."""

PREVIEW_LIMIT = 200
MAX_DEPTH = 200


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


def is_plain(value: Any, depth: int = 0) -> bool:
    """True when ``value`` survives a JSON round trip unchanged."""
    if depth > MAX_DEPTH:
        return False
    kind = type(value)
    if kind is str or kind is bool or kind is int or value is None:
        return True
    if kind is float:
        return math.isfinite(value)
    if kind is list:
        return all(is_plain(item, depth + 1) for item in value)
    if kind is dict:
        return all(type(k) is str and is_plain(v, depth + 1) for k, v in value.items())
    return False


class ValueCodec:
    """Encodes port values to envelopes (writing blobs) and decodes them back."""

    def __init__(self, blob_dir: Path, *, allow_pickle: bool | None = None) -> None:
        self.blob_dir = blob_dir
        self.allow_pickle = pickle_allowed(allow_pickle)

    # ------------------------------------------------------------------ encode
    def encode(self, values: Mapping[str, Any] | None) -> tuple[str | None, list[str]]:
        """JSON text of ``{port: envelope}`` and the blob hashes it refers to."""
        if values is None:
            return None, []
        envelopes: dict[str, Any] = {}
        blobs: list[str] = []
        for key, value in values.items():
            envelope = self.envelope(value)
            if "blob" in envelope:
                blobs.append(envelope["blob"])
            envelopes[str(key)] = envelope
        return json.dumps(envelopes, separators=(",", ":")), blobs

    def envelope(self, value: Any) -> dict[str, Any]:
        from conductor_nb.model.types import SKIP

        if value is SKIP:
            return {"skip": True}
        if is_plain(value):
            text = json.dumps(value, separators=(",", ":"))
            if len(text) <= INLINE_LIMIT:
                return {"v": value}
            return self._blob(text.encode("utf-8"), "json", value)
        if isinstance(value, bytes | bytearray | memoryview):
            return self._blob(bytes(value), "bytes", value)
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
        if envelope.get("skip"):
            return SKIP
        fmt = envelope.get("format", "repr")
        kind = envelope.get("type", "object")
        preview = envelope.get("preview", "")
        digest = envelope.get("blob")
        if digest is None:
            return StoredValue(kind, "remote" if fmt == "remote" else "repr", preview)
        path = self.blob_path(str(digest))
        if not path.exists():
            return StoredValue(kind, "missing", preview)
        if fmt == "json":
            return json.loads(path.read_text("utf-8"))
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
