"""The live progress display of ``conductor-nb run`` on a real terminal (a pseudo-terminal):
per-node lines with ids and states and an overall bar, read mid-run while a node waits
on a gate file, then the final screen and the result of a succeeded run."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.headless.conftest import CLI

pty = pytest.importorskip("pty")
pytest.importorskip("rich")

MODULE = textwrap.dedent("""
    import os, time
    from pathlib import Path

    import conductor_nb as cnb

    GATE = Path(os.environ["PROGRESS_GATE"])


    @cnb.node(name="pr_first")
    def first() -> int:
        return 20


    @cnb.node(name="pr_gate")
    def gate(v: int) -> int:
        while not GATE.exists():  # the test opens the gate once it has read the screen
            time.sleep(0.02)
        return v + 1


    @cnb.node(name="pr_last")
    def last(v: int) -> int:
        return v * 2
""")

BLUEPRINT = """\
conductor: 1
id: pty-progress
nodes:
  first_node: {type: pr_first}
  gated_node: {type: pr_gate}
  last_node: {type: pr_last}
edges:
  - first_node.output -> gated_node.v
  - gated_node.output -> last_node.v
outputs:
  result: last_node.output
"""

MOVES = re.compile(r"\x1b\[[0-9;?]*[A-HJKST]|\r")  # cursor moves and erases: a line break
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>78]")
DEADLINE = 120.0  # a guard against hanging, never a performance bound


class Terminal:
    """The master side of a pty running a command; everything it printed, in order."""

    def __init__(self, cmd: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            close_fds=True,
        )
        os.close(slave)
        self.master = master
        self.raw = b""
        self.eof = False

    def read(self, timeout: float = 0.1) -> None:
        if self.eof:
            return
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return
        try:
            chunk = os.read(self.master, 65536)
        except OSError as exc:  # EIO: every writer of the slave side has closed it
            if exc.errno != errno.EIO:
                raise
            chunk = b""
        if chunk:
            self.raw += chunk
        else:
            self.eof = True

    @property
    def text(self) -> str:
        return self.text_since(0)

    def text_since(self, offset: int) -> str:
        """What was printed from byte ``offset`` on, without escape codes."""
        return ANSI.sub("", MOVES.sub("\n", self.raw[offset:].decode("utf-8", "replace")))

    def wait_for(self, what: str, ok: Callable[[str], bool]) -> str:
        deadline = time.monotonic() + DEADLINE
        while not ok(self.text):
            assert not self.eof, f"the terminal closed before {what}:\n{self.text[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} on screen:\n{self.text[-3000:]}"
            self.read()
        return self.text

    def finish(self) -> int:
        deadline = time.monotonic() + DEADLINE
        while not self.eof:
            assert time.monotonic() < deadline, f"the run did not end:\n{self.text[-3000:]}"
            self.read()
        code = self.proc.wait(DEADLINE)
        os.close(self.master)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        if not self.eof:
            self.eof = True
            os.close(self.master)


def node_line(node_id: str, state: str) -> re.Pattern[str]:
    """A row of the node table: state icon, node id, state (then time, attempts, note)."""
    return re.compile(rf"^\s*\S\s+{re.escape(node_id)}\s+{state}\b", re.MULTILINE)


def bar(done: int, total: int) -> re.Pattern[str]:
    """The overall bar's row: title, bar, ``done/total``, elapsed and eta."""
    return re.compile(rf"pty-progress \(\S+\).*\s{done}/{total}\s+elapsed\s.*\seta\s")


def test_rich_progress_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "pty_nodes.py").write_text(MODULE)
    (tmp_path / "bp.yaml").write_text(BLUEPRINT)
    gate = tmp_path / "gate"
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "COLUMNS")}
    env.update(
        TERM="xterm-256color",
        PROGRESS_GATE=str(gate),
        CONDUCTOR_HOME=str(tmp_path / "home"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")])),
    )
    term = Terminal([*CLI, "run", "bp.yaml", "--import", "pty_nodes"], cwd=tmp_path, env=env)
    try:
        # mid-run: the first node is done, the gated one runs, the last one waits; 1 of 3
        mid = term.wait_for(
            "a mid-run screen",
            lambda t: bool(
                node_line("gated_node", "running").search(t)
                and node_line("first_node", "succeeded").search(t)
                and bar(1, 3).search(t)
            ),
        )
        assert node_line("last_node", "pending").search(mid), mid[-3000:]
        assert "\x1b[" in term.raw.decode("utf-8", "replace")  # drawn with escape codes
        assert not node_line("last_node", "succeeded").search(mid)
        assert term.proc.poll() is None
        seen = len(term.raw)
        gate.touch()
        code = term.finish()
    finally:
        term.kill()
    assert code == 0, term.text[-3000:]
    final = term.text_since(seen)
    for node_id in ("first_node", "gated_node", "last_node"):
        assert node_line(node_id, "succeeded").search(final), final[-3000:]
    assert bar(3, 3).search(final), final[-3000:]
    assert re.search(r"pty-progress \(\S+\): succeeded", final), final[-3000:]
    # the result summary (stdout, the same terminal) says the run succeeded
    assert re.search(r"run \S+ of 'pty-progress': succeeded .*\(3 succeeded\)", final), final
