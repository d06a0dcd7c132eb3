"""Is the process that owns a run still alive? A pid plus a start marker, so reused pids
do not fool us (on Linux the marker is the process start time from ``/proc``)."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def start_marker(pid: int | None = None) -> str | None:
    """When ``pid`` started (clock ticks since boot), or None where that is unknown."""
    stat = _stat(pid or os.getpid())
    if stat is None:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _stat(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None


def hostname() -> str:
    return socket.gethostname()


def is_alive(pid: int | None, marker: str | None, host: str | None) -> bool:
    """False only when we can tell the process is gone (same host, pid dead or reused)."""
    if pid is None or (host and host != hostname()):
        return True  # another machine: we cannot tell, so never claim it died
    if pid == os.getpid():
        return marker is None or marker == start_marker()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    stat = _stat(pid)
    if stat is not None:
        fields = stat.rsplit(")", 1)[-1].split()
        if fields and fields[0] in ("Z", "X"):  # a zombie: dead, not yet reaped
            return False
        if marker is not None and len(fields) > 19 and fields[19] != marker:
            return False  # the pid was reused by another process
    return True
