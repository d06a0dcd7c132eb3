"""``shell-command``: run one program with a list of arguments, never through a shell.

The program is started by the runner's supervisor (``conductor_nb._supervisor``) in a
process group of its own, so on timeout or cancellation the whole tree it spawned is
killed: SIGTERM to the group, then SIGKILL after a grace period. It also dies with the
runner, even when the runner is killed with SIGKILL (see ``_children``). The supervisor
records the program's end on disk (exit code, output); the node reads that record, and
``runs resume`` finishes the node from it when the runner died before committing the
node's success, instead of running the program again (see ``_completions``).
Output is ``{stdout, stderr, exit_code, duration}``; a non-zero exit fails the
node unless ``allowFailure`` is set.

Arguments are a list, never a shell command line. A user who writes a shell
script anyway (``program: sh, args: [-c, SCRIPT]``) must pass templates in it
through ``shquote`` (``tojson`` for ``python -c``): validation refuses a bare
``{{ params.x }}`` spliced into such a script, naming the node and the arg.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conductor_nb import _children, _completions
from conductor_nb.model import templates
from conductor_nb.model.types import Port
from conductor_nb.nodes.builtin._define import define, is_given_empty, param

GRACE = 2.0
SUPERVISOR = str(Path(_completions.__file__).with_name("_supervisor.py"))
"""The script that runs each child and records its end (``python -I -S``: no site, fast)."""


class CommandFailed(RuntimeError):
    """The program exited with a non-zero code."""


def _kill_group(pgid: int, sig: int) -> None:
    if sys.platform == "win32":  # pragma: no cover
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _stop(started: asyncio.Future[int], ended: asyncio.Future[int]) -> None:
    """Kill a child that was started (or is starting) and wait for its recorded end."""
    try:
        child = await started
    except Exception:  # it did not start: nothing to stop
        with contextlib.suppress(Exception):
            await ended
        return
    await _terminate(child, ended)


async def _terminate(child: int, ended: asyncio.Future[int]) -> None:
    """SIGTERM the child's process group, SIGKILL it if it lingers; the supervisor records
    its end (and tells us)."""
    _kill_group(child, signal.SIGTERM)
    try:
        await asyncio.wait_for(asyncio.shield(ended), GRACE)
    except TimeoutError:
        pass
    _kill_group(child, signal.SIGKILL)  # children that ignored SIGTERM, or outlived the leader
    with contextlib.suppress(RuntimeError):
        await ended


def _environment(env: Any, inherit: bool) -> dict[str, str]:
    if env is not None and not isinstance(env, Mapping):
        raise TypeError(
            f"env must be a mapping of variable names to values, got {_shown(env)}; "
            "e.g. env: {LANG: C.UTF-8}"
        )
    base = dict(os.environ) if inherit else {"PATH": os.environ.get("PATH", "")}
    base.update({str(k): str(v) for k, v in (env or {}).items()})
    return base


def _shown(value: Any) -> str:
    """``value`` for an error message: its type and a short repr."""
    text = repr(value)
    return f"a {type(value).__name__} ({text[:60] + '...' if len(text) > 60 else text})"


def _argv(program: Any, args: Any) -> list[str]:
    if args is None:
        args = []
    if not isinstance(args, list | tuple):
        raise TypeError(
            f"args must be a list (one item per argument), got {_shown(args)}; commands never "
            "go through a shell, so a string is not split: write args: [-l, /tmp]"
        )
    return [str(program), *(str(a) for a in args)]


def stdin_bytes(stdin: Any, encoding: str) -> bytes | None:
    """What goes to the program's standard input: text and bytes as they are, dicts and lists
    as JSON text, other values as ``str(value)``; None means no standard input."""
    if stdin is None:
        return None
    if isinstance(stdin, bytes | bytearray | memoryview):
        return bytes(stdin)
    if isinstance(stdin, Mapping | list | tuple):
        text = json.dumps(stdin, default=str)
    else:
        text = stdin if isinstance(stdin, str) else str(stdin)
    return text.encode(encoding)


async def shell_command(
    input: Any = None,
    program: str = "",
    args: list[Any] | None = None,
    stdin: Any = None,
    env: Mapping[str, Any] | None = None,
    inheritEnv: bool = True,
    cwd: str | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 (a node param, enforced below)
    allowFailure: bool = False,
    encoding: str = "utf-8",
    ctx: Any = None,
) -> dict[str, Any]:
    """Run ``program`` with ``args`` (no shell) through its supervisor, which records its end
    durably; kill its tree on cancel and timeout."""
    if not program:
        raise ValueError("shell-command needs a program")
    argv = _argv(program, args)
    data = stdin_bytes(stdin, encoding)
    started = time.monotonic()
    folder, durable = _completions.new_folder(
        getattr(ctx, "run_id", "-"), getattr(ctx, "node_id", "-"), getattr(ctx, "attempt", 0)
    )
    try:
        _completions.write_intent(
            folder, encoding=encoding, allow_failure=allowFailure, program=argv[0]
        )
        done = await _supervised(argv, folder, data, _environment(env, inheritEnv), cwd, timeout)
    finally:
        if not durable:
            shutil.rmtree(folder, ignore_errors=True)
    result = done.result(time.monotonic() - started)
    if not done.succeeded:
        tail = result["stderr"].strip().splitlines()[-5:]
        raise CommandFailed(
            f"{argv[0]} exited with code {done.exit_code}"
            + (": " + " | ".join(tail) if tail else "")
            + "; set allowFailure: true to continue on non-zero exits"
        )
    return result


async def _supervised(
    argv: list[str],
    folder: Path,
    data: bytes | None,
    env: dict[str, str],
    cwd: str | None,
    limit: float | None,
) -> _completions.Completion:
    """Start ``argv`` through the runner's supervisor (see ``conductor_nb._supervisor``) and
    return the child's end, as it recorded it."""
    stdin = None
    if data is not None:
        (folder / "stdin").write_bytes(data)
        stdin = str(folder / "stdin")
    pid, exit_code = _children.supervisor.start(
        argv, env=env, cwd=cwd or None, folder=str(folder), stdin=stdin
    )
    started, ended = asyncio.wrap_future(pid), asyncio.wrap_future(exit_code)
    try:
        async with asyncio.timeout(limit):
            await asyncio.shield(started)
            await asyncio.shield(ended)
    except TimeoutError:
        raise TimeoutError(
            f"{argv[0]} timed out after {limit:g}s; its process tree was killed"
        ) from None
    finally:
        if not ended.done():  # timed out, cancelled or not started: never leave a tree running
            await asyncio.shield(_stop(started, ended))
    done = _completions.read(folder)
    if done is None:
        raise RuntimeError(f"the end of {argv[0]} was not recorded in {folder}")
    return done


SHELLS = re.compile(r"^(sh|bash|zsh|dash|ksh|ash)$")
PYTHONS = re.compile(r"^python[\d.]*$")
SHELL_SCRIPT_FLAG = re.compile(r"^-[a-zA-Z]*c[a-zA-Z]*$")  # -c, -ec, -xc ...


def _script_index(program: str, args: list[Any]) -> int | None:
    """Where the ``-c`` script is in ``args`` for a shell or Python program, or None."""
    name = os.path.basename(program)
    flag = SHELL_SCRIPT_FLAG if SHELLS.match(name) else None
    if PYTHONS.match(name):
        flag = re.compile(r"^-c$")
    if flag is None:
        return None
    for i, arg in enumerate(args[:-1]):
        if arg == "--":  # the end of the options: no -c script follows
            return None
        if isinstance(arg, str) and flag.match(arg):
            return i + 1
    return None


def _script_templates(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A template spliced into a ``sh -c`` (or ``python -c``) script unquoted would run a
    param's text as code: it must go through ``shquote`` (``tojson`` for Python)."""
    program, args = values.get("program"), values.get("args")
    if not isinstance(program, str) or not isinstance(args, list):
        return []
    index = _script_index(program, args)
    script = args[index] if index is not None else None
    if not isinstance(script, str) or not templates.has_template(script):
        return []
    is_python = bool(PYTHONS.match(os.path.basename(program)))
    safe = "tojson" if is_python else "shquote"
    loose = templates.unfiltered_expressions(script, frozenset({safe}))
    if not loose:
        return []
    name = os.path.basename(program)
    example = loose[0] if loose[0] != "{{ ... }}" else "value"
    return [
        (
            f"args[{index}]",
            f"the {name} -c script splices {', '.join(loose)} into code without quoting: "
            f"a value like 'x && rm -rf ~' would run as a command; write "
            f"{{{{ {example} | {safe} }}}}, or pass the value as its own argument after "
            "the script" + (" (read it as sys.argv[1])" if is_python else ' (read it as "$1")'),
        )
    ]


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = _script_templates(values)
    if is_given_empty(values, "program"):
        problems.append(("program", "program is empty: shell-command needs a program to run"))
    program = values.get("program")
    if isinstance(program, str) and " " in program.strip() and "{{" not in program:
        problems.append(
            (
                "program",
                f"program {program!r} holds spaces: commands do not go through a shell; "
                "put the arguments in args, e.g. program: ls, args: [-l]",
            )
        )
    return problems


SHELL_COMMAND = define(
    "shell-command",
    shell_command,
    category="system",
    description="Run a program with a list of arguments (never through a shell); output "
    "stdout, stderr, exit code and duration; timeouts and cancels kill the process tree. "
    "In an `sh -c` script, pass every template through `| shquote` (`| tojson` for "
    "`python -c`): validation refuses a bare one.",
    outputs=[
        Port("stdout", type="str"),
        Port("stderr", type="str"),
        Port("exit_code", type="int"),
    ],
    params=[
        param("program", "str", "", "the executable (a name on PATH or a path)", required=True),
        param(
            "args",
            "list",
            [],
            "its arguments, one list item each; in a script (program: sh, args: [-c, "
            "'echo {{ params.name | shquote }}']) every template goes through shquote",
        ),
        param(
            "stdin",
            "any",
            None,
            "sent to its standard input: text or bytes as given, a dict or list as JSON, "
            "other values as text",
        ),
        param("env", "dict", {}, "extra environment variables"),
        param("inheritEnv", "bool", True, "start from this process's environment"),
        param("cwd", "path", None, "working directory"),
        param("timeout", "float", None, "seconds before the process tree is killed", minimum=0),
        param("allowFailure", "bool", False, "a non-zero exit code does not fail the node"),
        param("encoding", "str", "utf-8", "how to decode stdout and stderr"),
    ],
    example={"type": "shell-command", "params": {"program": "echo", "args": ["hello", "world"]}},
    validate=_check,
    takes_context=True,
    side_effects=True,
)

NODE_TYPES = [SHELL_COMMAND]
