"""The edits the graph view makes to a blueprint, and their undo/redo history.

Model: every edit made in the view (add a node, delete one, move one, connect, disconnect,
set a param value) is recorded as an :class:`Edit` that can apply itself and its inverse
through the Blueprint's own editing API (``add``, ``remove``, ``connect``, ``disconnect``,
``set_params``). Undo is one more ordinary edit, never a snapshot swapped in, so the Python
``Blueprint`` stays the one source of truth and its listeners (every view of it) see the
same kind of change as for the original edit.

:class:`History` holds the two stacks. Its rules:

- It is bounded (:data:`LIMIT` steps); the oldest steps fall off the bottom.
- A new edit in the view clears the redo stack, as in any editor.
- An edit that did not come through this view (a cell calling ``bp.add``, another view of
  the same blueprint) is not recorded and clears the redo stack (:meth:`History.outside_edit`):
  redoing past it could bring back what the user has since replaced. The undo stack is kept.
- Each undo or redo is tried on a copy of the blueprint first. A step that no longer
  applies (its node was removed from Python, its edge would now be refused) changes
  nothing: it is dropped from the history and :class:`HistoryError` says why.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from conductor_nb.errors import BlueprintError, ConductorError
from conductor_nb.model.blueprint import SETTINGS, Edge, Node

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

LIMIT = 100
"""Undo steps kept per view."""

ABSENT: Any = object()
"""A param that had no value (setting it back removes the value)."""


class ConnectionRefused(ValueError):
    """An edge the blueprint would not accept; the message says why."""


class HistoryError(ValueError):
    """An undo or redo step that no longer applies to the blueprint; the message says why."""


# ----------------------------------------------------------------------- connecting
def checked_connect(bp: Blueprint, source: str, target: str) -> Edge:
    """``bp.connect``, refusing (ConnectionRefused) an edge that would make ``bp`` invalid:
    one more edge into a port that takes one, a cycle, a port that does not exist."""
    before = {(p.path, p.message) for p in bp.problems()}
    trial = bp.copy()
    try:
        edge = trial.connect(source, target)
    except BlueprintError as exc:
        raise ConnectionRefused(_refusal(source, target, exc.problems)) from None
    if len(trial.edges) == len(bp.edges):
        raise ConnectionRefused(f"cannot connect {source} -> {target}: they are already connected")
    new = [p for p in trial.problems() if (p.path, p.message) not in before]
    if new:
        raise ConnectionRefused(_refusal(source, target, new))
    return bp.connect(_end(edge.source, edge.source_port), _end(edge.target, edge.target_port))


def _refusal(source: str, target: str, problems: Any) -> str:
    reasons = "; ".join(p.message for p in problems)
    return f"cannot connect {source} -> {target}: {reasons}"


def _end(node_id: str, port: str) -> str:
    return f"{node_id}.{port}"


# ----------------------------------------------------------------------- node snapshots
@dataclass(frozen=True)
class NodeSnapshot:
    """A node as it stood in a blueprint: itself, where it was listed, its edges (with their
    places in ``bp.edges``, since a ``many`` input reads its edges in order) and the
    blueprint outputs that read from it."""

    node: Node
    index: int
    edges: tuple[tuple[int, Edge], ...]
    outputs: tuple[tuple[int, str, str], ...]

    @classmethod
    def of(cls, bp: Blueprint, node_id: str) -> NodeSnapshot:
        if node_id not in bp.nodes:
            raise KeyError(f"no node {node_id!r}")
        edges = tuple((i, e) for i, e in enumerate(bp.edges) if node_id in (e.source, e.target))
        outputs = tuple(
            (i, name, ref)
            for i, (name, ref) in enumerate(bp.outputs.items())
            if ref.partition(".")[0] == node_id
        )
        return cls(bp.nodes[node_id].clone(), list(bp.nodes).index(node_id), edges, outputs)

    @property
    def id(self) -> str:
        return self.node.id

    def restore(self, bp: Blueprint) -> None:
        """Put the node back with its params, settings, edges, outputs and places."""
        for _, name, ref in self.outputs:
            if bp.outputs.get(name, ref) != ref:
                raise ValueError(f"output {name!r} now reads {bp.outputs[name]!r}")
        node = self.node
        settings = {key: copy.deepcopy(getattr(node, key)) for key in SETTINGS}
        bp.add(
            node.type,
            id=node.id,
            version=node.version,
            params=copy.deepcopy(node.params),
            **settings,
        )
        for _, edge in self.edges:
            checked_connect(
                bp, _end(edge.source, edge.source_port), _end(edge.target, edge.target_port)
            )
        for _, name, ref in self.outputs:
            bp.outputs[name] = ref
        self._put_back_in_place(bp)

    def _put_back_in_place(self, bp: Blueprint) -> None:
        """Undo must give back the same document: the node, its edges and outputs go back
        to where they were listed (``Blueprint.changed`` is the API for such direct edits)."""
        items = list(bp.nodes.items())
        mine = next(i for i, (key, _) in enumerate(items) if key == self.id)
        items.insert(min(self.index, len(items) - 1), items.pop(mine))
        bp.nodes.clear()
        bp.nodes.update(items)
        for index, edge in self.edges:
            bp.edges.remove(edge)
            bp.edges.insert(min(index, len(bp.edges)), edge)
        outputs = list(bp.outputs.items())
        for index, name, ref in self.outputs:
            outputs.remove((name, ref))
            outputs.insert(min(index, len(outputs)), (name, ref))
        bp.outputs.clear()
        bp.outputs.update(outputs)
        bp.changed()


# ----------------------------------------------------------------------- edits
class Edit(Protocol):
    """One step of the history: ``apply`` does (and redoes) it, ``revert`` undoes it."""

    @property
    def label(self) -> str: ...

    @property
    def focus(self) -> str:
        """The node to select after the step (when it exists), or ""."""
        ...

    def apply(self, bp: Blueprint) -> None: ...

    def revert(self, bp: Blueprint) -> None: ...


@dataclass(frozen=True)
class NodeAdded:
    snapshot: NodeSnapshot

    @property
    def label(self) -> str:
        return f"add node {self.snapshot.id}"

    @property
    def focus(self) -> str:
        return self.snapshot.id

    def apply(self, bp: Blueprint) -> None:
        self.snapshot.restore(bp)

    def revert(self, bp: Blueprint) -> None:
        bp.remove(self.snapshot.id)


@dataclass(frozen=True)
class NodeRemoved:
    snapshot: NodeSnapshot

    @property
    def label(self) -> str:
        return f"delete node {self.snapshot.id}"

    @property
    def focus(self) -> str:
        return self.snapshot.id

    def apply(self, bp: Blueprint) -> None:
        bp.remove(self.snapshot.id)

    def revert(self, bp: Blueprint) -> None:
        self.snapshot.restore(bp)


@dataclass(frozen=True)
class NodeMoved:
    node_id: str
    old: tuple[float, float] | None
    new: tuple[float, float] | None

    @property
    def label(self) -> str:
        return f"move node {self.node_id}"

    @property
    def focus(self) -> str:
        return self.node_id

    def apply(self, bp: Blueprint) -> None:
        _require_node(bp, self.node_id)
        bp.set_params(self.node_id, position=self.new)

    def revert(self, bp: Blueprint) -> None:
        _require_node(bp, self.node_id)
        bp.set_params(self.node_id, position=self.old)


@dataclass(frozen=True)
class ParamChanged:
    """A param (or unconnected input) value; :data:`ABSENT` when it had none."""

    node_id: str
    name: str
    old: Any
    new: Any

    @property
    def label(self) -> str:
        return f"set {self.node_id}.{self.name}"

    @property
    def focus(self) -> str:
        return self.node_id

    def apply(self, bp: Blueprint) -> None:
        self._set(bp, self.new)

    def revert(self, bp: Blueprint) -> None:
        self._set(bp, self.old)

    def _set(self, bp: Blueprint, value: Any) -> None:
        _require_node(bp, self.node_id)
        bp.set_params(
            self.node_id, **{self.name: None if value is ABSENT else copy.deepcopy(value)}
        )


@dataclass(frozen=True)
class Connected:
    edge: Edge

    @property
    def label(self) -> str:
        return f"connect {self.edge}"

    @property
    def focus(self) -> str:
        return ""

    def apply(self, bp: Blueprint) -> None:
        _connect(bp, self.edge)

    def revert(self, bp: Blueprint) -> None:
        _disconnect(bp, self.edge)


@dataclass(frozen=True)
class Disconnected:
    edge: Edge

    @property
    def label(self) -> str:
        return f"disconnect {self.edge}"

    @property
    def focus(self) -> str:
        return ""

    def apply(self, bp: Blueprint) -> None:
        _disconnect(bp, self.edge)

    def revert(self, bp: Blueprint) -> None:
        _connect(bp, self.edge)


def _require_node(bp: Blueprint, node_id: str) -> None:
    if node_id not in bp.nodes:
        raise KeyError(f"node {node_id!r} is no longer in the blueprint")


def _connect(bp: Blueprint, edge: Edge) -> None:
    checked_connect(bp, _end(edge.source, edge.source_port), _end(edge.target, edge.target_port))


def _disconnect(bp: Blueprint, edge: Edge) -> None:
    bp.disconnect(_end(edge.source, edge.source_port), _end(edge.target, edge.target_port))


def param_value(node: Node, name: str) -> Any:
    """A node's current value for ``name`` as an edit records it (a copy, or ABSENT)."""
    return copy.deepcopy(node.params[name]) if name in node.params else ABSENT


PAST = {
    "add": "added",
    "delete": "deleted",
    "move": "moved",
    "connect": "connected",
    "disconnect": "disconnected",
}


def past(label: str) -> str:
    """The notice after an edit: "connect a.output -> b.x" -> "connected a.output -> b.x"."""
    verb, _, rest = label.partition(" ")
    return f"{PAST.get(verb, verb)} {rest}"


def is_same_value(old: Any, new: Any) -> bool:
    """Is setting ``new`` over ``old`` a no-op (not worth an undo step)? 1 and True differ."""
    if old is ABSENT or new is ABSENT:
        return old is new
    return type(old) is type(new) and bool(old == new)


# ----------------------------------------------------------------------- history
class History:
    """The undo and redo stacks of one view (see the module docstring for the rules)."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._undo: deque[Edit] = deque(maxlen=limit)
        self._redo: list[Edit] = []

    def __repr__(self) -> str:
        return f"<History {len(self._undo)} to undo, {len(self._redo)} to redo>"

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def record(self, edit: Edit) -> None:
        """An edit just made in the view: it can be undone; nothing is left to redo."""
        self._undo.append(edit)
        self._redo.clear()

    def outside_edit(self) -> None:
        """The blueprint was edited elsewhere: nothing is left to redo."""
        self._redo.clear()

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()

    def undo(self, bp: Blueprint) -> Edit | None:
        """Revert the newest edit on ``bp``; the edit, or None when there is none."""
        if not self._undo:
            return None
        edit = self._undo[-1]
        self._check("undo", edit, lambda trial: edit.revert(trial), bp, self._undo.pop)
        edit.revert(bp)
        self._redo.append(self._undo.pop())
        return edit

    def redo(self, bp: Blueprint) -> Edit | None:
        """Apply again the newest undone edit on ``bp``; the edit, or None when there is none."""
        if not self._redo:
            return None
        edit = self._redo[-1]
        self._check("redo", edit, lambda trial: edit.apply(trial), bp, self._redo.pop)
        edit.apply(bp)
        self._undo.append(self._redo.pop())
        return edit

    @staticmethod
    def _check(
        action: str,
        edit: Edit,
        step: Callable[[Blueprint], None],
        bp: Blueprint,
        drop: Callable[[], object],
    ) -> None:
        """Try ``step`` on a copy first: a step that fails there would fail half-way on ``bp``
        (a restored node without its edges), so it is refused whole and dropped."""
        try:
            step(bp.copy())
        except (ConductorError, KeyError, ValueError) as exc:
            drop()
            reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            raise HistoryError(
                f"cannot {action} '{edit.label}': {reason} "
                "(the blueprint changed since; the step is dropped from the history)"
            ) from None

    def summary(self) -> dict[str, Any]:
        """What the toolbar shows: the next step each way ("" when none) and the counts."""
        return {
            "undo": self._undo[-1].label if self._undo else "",
            "redo": self._redo[-1].label if self._redo else "",
            "undo_steps": len(self._undo),
            "redo_steps": len(self._redo),
        }
