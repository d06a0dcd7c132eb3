"""What the history gives back: a run's record and its nodes' records."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

FINISHED = ("succeeded", "failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class RunRecord:
    """One run as the history knows it. Times are POSIX timestamps (seconds)."""

    id: str
    status: str
    blueprint_id: str
    blueprint_name: str
    blueprint_hash: str
    params: dict[str, Any]
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    pid: int | None
    host: str | None
    resumed_from: str | None
    node_count: int
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (None while unfinished or never started)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    @property
    def started(self) -> _dt.datetime | None:
        return None if self.started_at is None else _dt.datetime.fromtimestamp(self.started_at)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    def __str__(self) -> str:
        when = (self.started or _dt.datetime.fromtimestamp(self.created_at)).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        dur = f"{self.duration:.2f}s" if self.duration is not None else "-"
        return f"{self.id}  {self.status:<11} {self.blueprint_id:<20} {when}  {dur}"


@dataclass(frozen=True)
class NodeRecord:
    """One node of a recorded run. ``inputs``/``outputs`` are decoded values."""

    run_id: str
    node_id: str
    type: str
    status: str
    attempts: int
    queued_at: float | None
    started_at: float | None
    finished_at: float | None
    error: str | None
    error_type: str | None
    traceback: str | None
    reason: str | None
    inputs: dict[str, Any] | None
    outputs: dict[str, Any] | None
    cache_key: str | None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at
