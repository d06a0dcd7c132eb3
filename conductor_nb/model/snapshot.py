"""Run snapshots of a blueprint: one copy, document and digest while its content holds.

Every run works on a copy of its blueprint (edits made while it runs do not touch it)
and records the blueprint's document in the history. At 10,000 nodes copying, dumping
and (in the engine) validating and compiling cost more than a run of quick nodes, and
running the same blueprint again is the usual case in a notebook. :func:`take` writes
the blueprint's content as one JSON text (its nodes' fields as they are, its edges,
params, outputs and env: cheaper than the document) and compares it with that of its
last snapshot: while they are equal (and the registry and source are the same), the run
gets the same snapshot, whose :attr:`Snapshot.memo` keeps what the engine worked out for
it (the plan). Edits made in place (``bp.nodes["x"].params["n"] = 2``, no ``changed()``
call) are seen: the content is compared, not an edit counter.

A value JSON cannot hold (an object, a value that contains itself) gives no such text:
then every run copies afresh. A snapshot edited through its blueprint's methods (a view
of a run) is no longer anyone's last snapshot, so the next run copies again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

_LAST = "_last_snapshot"  # the Blueprint attribute holding its last snapshot
_OWN = "_snapshot"  # a snapshot's copy points at its Snapshot (for its document)


@dataclass(slots=True, eq=False)
class Snapshot:
    """A copy of a blueprint with its document (``json.dumps(to_dict(), sort_keys=True)``)."""

    blueprint: Blueprint
    data: dict[str, Any]
    text: str
    key: str | None
    """The content as compared with the next run's (None: some value is not JSON, so its
    content cannot be told from its text, and the snapshot is never reused)."""
    memo: dict[str, Any] = field(default_factory=dict)
    """What was worked out for this content (the engine keeps the compiled plan here)."""
    _digest: str | None = None

    @property
    def digest(self) -> str:
        """16 hex digits of the document's SHA-256 (the history's blueprint hash)."""
        if self._digest is None:
            self._digest = hashlib.sha256(self.text.encode()).hexdigest()[:16]
        return self._digest


def take(bp: Blueprint) -> Snapshot:
    """A snapshot of ``bp``: the last one while the content, registry and source are the
    same, else a fresh copy."""
    key = _key(bp)
    last: Snapshot | None = bp.__dict__.get(_LAST)
    if (
        key is not None
        and last is not None
        and last.key == key
        and last.blueprint.registry is bp.registry
        and last.blueprint.source == bp.source
        and of(last.blueprint) is last
    ):
        return last
    copy = bp.copy()
    snap = Snapshot(copy, *_dump(bp), key)
    copy.__dict__[_OWN] = snap
    copy.on_change(_forget)
    bp.__dict__[_LAST] = snap if key is not None else None
    return snap


def of(bp: Blueprint) -> Snapshot | None:
    """The snapshot whose copy ``bp`` is, while that copy is unedited (else None)."""
    return bp.__dict__.get(_OWN)


def described(bp: Blueprint) -> Snapshot:
    """``bp``'s snapshot when it is a run's unedited copy, else ``bp`` with its document
    dumped now (not copied, not kept)."""
    return of(bp) or Snapshot(bp, *_dump(bp), None)


def _dump(bp: Blueprint) -> tuple[dict[str, Any], str]:
    """The blueprint's document and its text (what the history keeps of a run; empty when
    a value holds itself: such a run runs, but is not recorded)."""
    data = bp.to_dict()
    try:
        return data, json.dumps(data, sort_keys=True, default=repr)
    except ValueError:  # a circular value
        return data, ""


def _key(bp: Blueprint) -> str | None:
    """Everything the blueprint holds, as JSON text: its nodes' fields raw (cheaper than
    their document form, which leaves defaults out), its edges, params, outputs and env.
    None when a value is not JSON (its text would not tell a change)."""
    try:
        return _exact_dumps(
            [
                bp.id,
                bp.name,
                bp.description,
                [[name, *vars(spec).values()] for name, spec in bp.params.items()],
                [list(vars(node).values()) for node in bp.nodes.values()],
                [str(edge) for edge in bp.edges],
                bp.outputs,
                bp.env,
            ]
        )
    except (TypeError, ValueError):
        return None


_exact_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _forget(copy: Blueprint) -> None:
    """An edit to a snapshot's copy: it is no longer the snapshot of anything."""
    copy.__dict__.pop(_OWN, None)


__all__ = ["Snapshot", "described", "of", "take"]
