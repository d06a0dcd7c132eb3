"""The result cache: node outputs by cache key, kept in the run history's SQLite file.

What the key covers (computed by the engine, ``node_runner.cache_key``): the node
type's name and version, the hash of its function's source code (so redefining
a ``@cnb.node`` function in a cell gives new keys), and every value the call
receives: rendered params and the inputs arriving on edges. Values that cannot
be turned into a stable key (objects whose repr is identity-based) make the
node uncacheable for that call.

What is not covered: anything the function reads besides its arguments (files,
the network, globals, the code of functions it calls). Use ``cache=False`` for
such nodes, or clear the cache with ``RunHistory().cache().clear()``.

Outputs are stored like history values (:mod:`conductor_nb.storage.values`).
Outputs that would need unpickling are cached only when pickles are allowed
(``CONDUCTOR_ALLOW_PICKLE=1`` or ``RunHistory(allow_pickle=True)``); outputs
kept only as a repr are never cached. A failed cache write never fails the node.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conductor_nb.storage.values import has_stored, is_plain

if TYPE_CHECKING:
    from conductor_nb.storage.history import RunHistory

log = logging.getLogger("conductor_nb.storage")


class HistoryCache:
    """``get(key)`` / ``put(key, outputs)`` over the ``cache`` table of a RunHistory."""

    def __init__(self, history: RunHistory) -> None:
        self.history = history

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            rows = self.history._query("SELECT outputs FROM cache WHERE key = ?", (key,))
            if not rows:
                return None
            outputs = self.history.codec.decode(rows[0][0])
        except Exception as exc:  # a broken cache is a miss, never a failed node
            log.warning("result cache: cannot read %s: %s", key[:12], exc)
            return None
        if outputs is None or has_stored(outputs):
            return None
        return outputs

    def put(self, key: str, outputs: Mapping[str, Any]) -> None:
        if not self.history.codec.allow_pickle and not all(map(_storable, outputs.values())):
            return  # it could only come back by unpickling, which is not allowed
        try:
            text, digests = self.history.codec.encode(outputs)
            if any(e.get("format") == "repr" for e in json.loads(text or "{}").values()):
                return
            owner = f"cache:{key}"
            self.history.write(
                [
                    ("DELETE FROM blob_refs WHERE owner = ?", (owner,)),
                    ("INSERT OR REPLACE INTO cache VALUES (?,?,?,?)", (key, text, "", time.time())),
                    *(
                        ("INSERT OR IGNORE INTO blob_refs VALUES (?,?)", (owner, d))
                        for d in digests
                    ),
                ]
            )
        except Exception as exc:
            log.warning("result cache: cannot store %s: %s", key[:12], exc)

    def __len__(self) -> int:
        return int(self.history._query("SELECT COUNT(*) FROM cache")[0][0])

    def clear(self) -> int:
        """Forget every cached result; returns how many there were."""
        count = len(self)
        digests = [
            r[0]
            for r in self.history._query(
                "SELECT DISTINCT digest FROM blob_refs WHERE owner LIKE 'cache:%'"
            )
        ]
        self.history.write(
            [("DELETE FROM cache", ()), ("DELETE FROM blob_refs WHERE owner LIKE 'cache:%'", ())]
        )
        self.history._collect(digests)
        return count


def _storable(value: Any) -> bool:
    from conductor_nb.model.types import SKIP

    return value is SKIP or isinstance(value, bytes | bytearray) or is_plain(value)
