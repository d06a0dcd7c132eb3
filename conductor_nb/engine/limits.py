"""Limits shared by a whole run tree: node slots (``concurrency``) and per-type limits.

A run and its nested runs (the bodies of loop, parallel and group nodes) share one
:class:`Limits`, owned by the top-level run, so ``concurrency=2`` or
``type_limits={"work": 1}`` hold inside bodies as they do at the top level. A node
holds a :class:`Permit` while it runs: its type's limit (when it has one), then a
slot. A container node lends its permit back while it waits for its bodies
(:meth:`Permit.lent`), so the bodies never starve behind the node that runs them,
and nested containers of a limited type cannot deadlock. Semaphores are always
taken in the same order (type, then slot), so two permits never wait on each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Mapping


class Permit:
    """What one running node holds; released when it ends, lent while its bodies run."""

    def __init__(self, semaphores: tuple[asyncio.Semaphore, ...]) -> None:
        self._semaphores = semaphores
        self._held: list[asyncio.Semaphore] = []
        self._lent = 0

    async def acquire(self) -> None:
        for semaphore in self._semaphores:
            await semaphore.acquire()  # cancelled here: nothing more is held
            self._held.append(semaphore)

    def take_now(self) -> bool:
        """Take the permit if it is free now (never waits); False when it is not."""
        if any(semaphore.locked() for semaphore in self._semaphores):
            return False
        for semaphore in self._semaphores:
            waiting = semaphore.acquire()
            try:
                waiting.send(None)  # a free semaphore is taken without suspending
            except StopIteration:
                self._held.append(semaphore)
            else:  # cannot happen for a free semaphore: give it back and say so
                waiting.close()
                self.release()
                return False
        return True

    def release(self) -> None:
        held, self._held = self._held, []
        for semaphore in held:
            semaphore.release()

    @contextlib.asynccontextmanager
    async def lent(self) -> AsyncIterator[None]:
        """Give the permit back for the duration (a container waiting for its bodies).
        Several bodies of one node may run at once: the last one to end takes it back."""
        self._lent += 1
        if self._lent == 1:
            self.release()
        try:
            yield
        finally:
            self._lent -= 1
            if self._lent == 0:
                await self.acquire()


class Limits:
    """The semaphores of one run tree (see the module docstring)."""

    def __init__(self, concurrency: int, type_limits: Mapping[str, int]) -> None:
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._type_limits = type_limits
        self._per_type: dict[str, asyncio.Semaphore] = {}

    def is_limited(self, type_name: str, type_default: int | None) -> bool:
        """Whether nodes of ``type_name`` have a limit of their own (beyond the slots)."""
        return bool(self._type_limits.get(type_name, type_default))

    def permit(self, type_name: str, type_default: int | None) -> Permit:
        """A permit for a node of ``type_name`` (``type_default``: the type's own limit)."""
        limit = self._type_limits.get(type_name, type_default)
        if not limit:
            return Permit((self._slots,))
        semaphore = self._per_type.get(type_name)
        if semaphore is None:
            semaphore = self._per_type[type_name] = asyncio.Semaphore(limit)
        return Permit((semaphore, self._slots))


class LaneSlot:
    """The slot a lane (a task that runs one node after another) keeps between its nodes:
    taken for its first node, given back when the lane ends, so a node after another costs
    no semaphore round. A node whose type has a limit of its own takes its own permit
    (the lane gives its slot back first: with ``concurrency=1`` it would wait for itself)."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._kept: Permit | None = None

    async def permit(self, type_name: str, type_default: int | None) -> tuple[Permit, bool]:
        """The acquired permit of the next node, and whether the lane keeps it afterwards
        (else the node releases it when it ends)."""
        if self._limits.is_limited(type_name, type_default):
            self.release()
            own = self._limits.permit(type_name, type_default)
            await own.acquire()
            return own, False
        if self._kept is None:
            kept = self._limits.permit(type_name, type_default)
            await kept.acquire()
            self._kept = kept
        return self._kept, True

    def release(self) -> None:
        if self._kept is not None:
            self._kept.release()
            self._kept = None


current_permit: contextvars.ContextVar[Permit | None] = contextvars.ContextVar(
    "conductor_permit", default=None
)
"""The permit of the node whose code is running (set in the node's task)."""
