"""The scheduler: a small synchronous state machine over a plan, in the spirit of ``graphlib``.

The runner and the stepper both drive it: ``ready()`` lists the nodes that may
run now (in the plan's stable order), ``take(n)`` marks one dispatched, and
``done(n, ok)`` records the outcome and returns the nodes skipped because of it.
A node is ready when every upstream node it reads from has succeeded; when an
upstream fails, is skipped or is cancelled (or a branch output it reads is
:data:`SKIP`), it is skipped, and so on down the graph.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable

from conductor_nb.engine.plan import Plan


class Scheduler:
    def __init__(self, plan: Plan, succeeded: Iterable[str] = ()) -> None:
        self.plan = plan
        self._remaining: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self._ready: set[str] = set()
        self._running: set[str] = set()
        self._outcome: dict[str, bool] = dict.fromkeys(succeeded, True)  # True = succeeded
        nodes = plan.nodes
        for node_id in plan.order:
            if node_id in self._outcome:
                continue
            upstream = nodes[node_id].upstream
            if self._outcome:
                self._reset_one(node_id)
            elif upstream:
                self._remaining[node_id] = len(upstream)
            else:
                self._remaining[node_id] = 0
                self._push(node_id)

    # ---------------------------------------------------------------- queries
    def ready(self) -> list[str]:
        """Nodes that may run now, in stable order (not yet taken)."""
        return [nid for _, nid in sorted(self._heap)]

    def peek(self) -> str | None:
        return self._heap[0][1] if self._heap else None

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)

    def is_active(self) -> bool:
        """True while something is ready or running."""
        return bool(self._heap) or bool(self._running)

    def is_finished(self, node_id: str) -> bool:
        return node_id in self._outcome

    def succeeded(self, node_id: str) -> bool:
        return self._outcome.get(node_id) is True

    def waiting_on(self, node_id: str) -> int:
        """How many upstream nodes of ``node_id`` have not succeeded yet."""
        return self._remaining.get(node_id, 0)

    def is_ready(self, node_id: str) -> bool:
        return node_id in self._ready

    @property
    def finished_count(self) -> int:
        return len(self._outcome)

    def pending(self) -> list[str]:
        """Nodes neither finished, running nor ready (waiting on upstream)."""
        return [
            n
            for n in self.plan.order
            if n not in self._outcome and n not in self._running and n not in self._ready
        ]

    # ---------------------------------------------------------------- moves
    def take(self, node_id: str | None = None) -> str:
        """Dispatch ``node_id`` (default: the first ready node)."""
        if node_id is None or (self._heap and self._heap[0][1] == node_id):
            if not self._heap:
                raise LookupError("no node is ready")
            _, node_id = heapq.heappop(self._heap)
        else:
            if node_id not in self._ready:
                raise LookupError(f"node {node_id!r} is not ready")
            self._heap.remove((self.plan.nodes[node_id].rank, node_id))
            heapq.heapify(self._heap)
        self._ready.discard(node_id)
        self._running.add(node_id)
        return node_id

    def untake(self, node_id: str) -> None:
        """A taken node that did not start is ready again."""
        self._running.discard(node_id)
        self._push(node_id)

    def done(self, node_id: str, ok: bool, skipped_ports: Collection[str] = ()) -> list[str]:
        """Record an outcome; return the nodes that are skipped as a consequence."""
        self._running.discard(node_id)
        if node_id in self._ready:
            self._ready.discard(node_id)
            self._heap.remove((self.plan.nodes[node_id].rank, node_id))
            heapq.heapify(self._heap)
        self._outcome[node_id] = ok
        planned = self.plan.nodes[node_id]
        skipped: list[str] = []
        if not ok:
            for child in planned.downstream:
                self._skip(child, skipped)
            return skipped
        branch_skipped = (
            {t for port in skipped_ports for t in planned.consumers.get(port, ())}
            if skipped_ports
            else ()
        )
        remaining = self._remaining
        for child in planned.downstream:
            if child in self._outcome:
                continue
            if child in branch_skipped:
                self._skip(child, skipped)
                continue
            remaining[child] -= 1
            if remaining[child] == 0:
                self._push(child)
        return skipped

    def _skip(self, node_id: str, skipped: list[str]) -> None:
        stack = [node_id]  # iterative: a 10,000-node chain must not hit the recursion limit
        while stack:
            current = stack.pop()
            if current in self._outcome or current in self._running:
                continue
            if current in self._ready:
                self._ready.discard(current)
                self._heap.remove((self.plan.nodes[current].rank, current))
                heapq.heapify(self._heap)
            self._outcome[current] = False
            skipped.append(current)
            stack.extend(reversed(self.plan.nodes[current].downstream))

    def reset(self, node_ids: Iterable[str]) -> None:
        """Bring finished nodes back to pending (retry, rerun downstream, resume)."""
        ids = [n for n in self.plan.order if n in set(node_ids)]
        for node_id in ids:
            self._outcome.pop(node_id, None)
        for node_id in ids:
            self._reset_one(node_id)

    def _reset_one(self, node_id: str) -> None:
        upstream = self.plan.nodes[node_id].upstream
        self._remaining[node_id] = sum(1 for u in upstream if self._outcome.get(u) is not True)
        if self._remaining[node_id] == 0 and node_id not in self._ready:
            self._push(node_id)

    def _push(self, node_id: str) -> None:
        self._ready.add(node_id)
        heapq.heappush(self._heap, (self.plan.nodes[node_id].rank, node_id))

    def cancel_pending(self) -> list[str]:
        """Finish every node not finished or running (they end cancelled); return them."""
        left = [n for n in self.plan.order if n not in self._outcome and n not in self._running]
        for node_id in left:
            self._outcome[node_id] = False
        self._heap.clear()
        self._ready.clear()
        return left
