"""The options of ``conductor-nb run`` that papermill has too, with papermill's names.

Parameters in papermill's order of precedence (``-b``, ``-f``, ``-y``, ``-p``, ``-r``;
later wins), the notebook options (which also apply to a blueprint run into an output
notebook), :func:`papermill_pairs`, which lets ``-p`` take papermill's two arguments, and
:func:`follow_pipes`, papermill's rule for reading stdin and writing stdout without ``-``.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STDIO = "-"
BLUEPRINT_SUFFIXES = (".yaml", ".yml", ".json")


def add_parameters(p: argparse.ArgumentParser) -> None:
    """papermill's parameter options, in its order of precedence (later wins)."""
    p.add_argument(
        "-p",
        "--param",
        "--parameters",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter, as KEY=VALUE or papermill's KEY VALUE; typed by its declared type "
        "(lists and mappings as JSON or YAML flow: -p 'names=[Ada, Bo]'), for an undeclared "
        "notebook parameter as papermill types it; repeatable",
    )
    p.add_argument(
        "-r",
        "--parameters_raw",
        "--parameters-raw",
        dest="raw_params",
        action="append",
        nargs=2,
        default=[],
        metavar=("KEY", "VALUE"),
        help="a parameter taken as a string, whatever it looks like; repeatable",
    )
    p.add_argument(
        "-f",
        "--params-file",
        "--parameters_file",
        "--parameters-file",
        dest="params_file",
        action="append",
        default=[],
        metavar="FILE",
        help="a YAML/JSON mapping of parameters; repeatable",
    )
    p.add_argument(
        "-y",
        "--parameters_yaml",
        "--parameters-yaml",
        dest="yaml_params",
        action="append",
        default=[],
        metavar="YAML",
        help="parameters as a YAML mapping, e.g. -y 'n: 3'; repeatable",
    )
    p.add_argument(
        "-b",
        "--parameters_base64",
        "--parameters-base64",
        dest="base64_params",
        action="append",
        default=[],
        metavar="BASE64",
        help="parameters as a base64-encoded YAML mapping; repeatable",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="notebooks: refuse (exit 2) undeclared parameters, a notebook without a "
        "parameters cell and values whose type differs from the default (papermill, and "
        "the default, inject them with a warning)",
    )


NOTEBOOK_DEFAULTS: dict[str, Any] = {
    "output": None,
    "output_path": None,
    "cwd": None,
    "timeout": None,
    "kernel": None,
    "language": None,
    "engine": None,
    "report_mode": False,
    "prepare_only": False,
    "log_output": False,
    "log_level": None,
    "stdout_file": None,
    "stderr_file": None,
    "start_timeout": 60.0,
    "progress_bar": None,
    "inject_input_path": False,
    "inject_output_path": False,
    "inject_paths": False,
    "request_save_on_cell_execute": True,
    "autosave_cell_every": 30,
    "help_notebook": False,
}
"""The notebook options and their defaults: given for a blueprint without an output
notebook, they are a usage error (they would do nothing)."""


def add_notebook_options(p: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    n = p.add_argument_group("notebooks (papermill's options), and blueprints run into a notebook")
    n.add_argument(
        "-o",
        "--output",
        metavar="OUT.ipynb",
        help="output notebook (default: NAME.out.ipynb beside a notebook; - is stdout); for "
        "a blueprint, run it in a kernel and write this report notebook",
    )
    n.add_argument("--cwd", metavar="DIR", help="working directory of the kernel")
    n.add_argument(
        "--timeout",
        "--execution-timeout",
        dest="timeout",
        type=float,
        metavar="SECONDS",
        help="time limit per cell",
    )
    n.add_argument(
        "-k",
        "--kernel",
        metavar="NAME",
        help="kernel name (default: the notebook's; python3 for a notebook without one)",
    )
    n.add_argument("-l", "--language", help="the notebook's language, instead of its metadata's")
    n.add_argument("--engine", metavar="NAME", help="a papermill execution engine")
    n.add_argument(
        "--report-mode",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="hide the code cells' input in the output notebook",
    )
    n.add_argument(
        "--prepare-only",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="write the output notebook with the parameters injected, without running it",
    )
    n.add_argument(
        "--prepare-execute", dest="prepare_only", action="store_false", help=argparse.SUPPRESS
    )
    n.add_argument(
        "--log-output",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="write the cells' output to stderr as they run",
    )
    n.add_argument(
        "--log-level",
        choices=("NOTSET", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
        help="papermill's log level (default WARNING; INFO with --log-output)",
    )
    n.add_argument("--stdout-file", metavar="FILE", help="write the cells' stdout to FILE")
    n.add_argument("--stderr-file", metavar="FILE", help="write the cells' stderr to FILE")
    n.add_argument(
        "--start-timeout",
        "--start_timeout",
        dest="start_timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time to wait for the kernel to start (default 60)",
    )
    n.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="papermill's progress bar of cells (default: --progress)",
    )
    n.add_argument(
        "--inject-input-path",
        action="store_true",
        help="pass the input path as the parameter PAPERMILL_INPUT_PATH",
    )
    n.add_argument(
        "--inject-output-path",
        action="store_true",
        help="pass the output path as the parameter PAPERMILL_OUTPUT_PATH",
    )
    n.add_argument("--inject-paths", action="store_true", help="both of the above")
    n.add_argument(
        "--request-save-on-cell-execute",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="save the output notebook after each cell (default on)",
    )
    n.add_argument(
        "--autosave-cell-every",
        type=int,
        default=30,
        metavar="SECONDS",
        help="save the output notebook this often during a long cell (0: never)",
    )
    n.add_argument(
        "--help-notebook",
        action="store_true",
        help="list the parameters the notebook declares, and do nothing else",
    )
    return n


def papermill_pairs(argv: Sequence[str]) -> list[str]:
    """``run ... -p NAME VALUE`` (papermill's two arguments) -> ``-p NAME=VALUE``. A ``-p``
    whose next argument holds no ``=`` takes the one after it as the value unless that is
    an option (a negative number is a value: ``-p offset -5``)."""
    out = list(argv)
    if not out or out[0] != "run":
        return out
    i = 1
    while i < len(out) - 2:
        name, value = out[i + 1], out[i + 2]
        is_value = not value.startswith("-") or _NUMBER.fullmatch(value) is not None
        if out[i] in ("-p", "--param", "--parameters") and "=" not in name and is_value:
            out[i + 1 : i + 3] = [f"{name}={value}"]
        i += 1
    return out


_NUMBER = re.compile(r"-\.?\d[\d.e+-]*|-inf|-nan", re.IGNORECASE)


def stdin_is_pipe() -> bool:
    """papermill's test for a notebook piped in: stdin is a FIFO (``cat nb | ...``), not a
    terminal, a file redirect or /dev/null."""
    try:
        return stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):  # no stdin at all
        return False


def stdout_is_piped() -> bool:
    """papermill's test for writing the notebook to stdout: stdout is not a terminal."""
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):
        return True


def follow_pipes(args: argparse.Namespace, *, stdin_piped: bool) -> None:
    """papermill's rule for a notebook on stdin without ``-``: no FILE reads the notebook
    from stdin (``cat nb.ipynb | conductor-nb run -p n 3``), and one path that does not
    exist yet is the output (``cat nb.ipynb | conductor-nb run out.ipynb``).

    Better than papermill: one path that *exists* stays the input, even when stdin is a
    pipe. papermill would read stdin instead and overwrite that notebook, and it waits
    forever when stdin is a pipe nobody writes to (the stdin of a Jupyter kernel, of a
    ``while read`` loop, of many CI runners)."""
    from conductor_nb.headless.common import UsageError

    if args.file is None:
        if not stdin_piped:
            raise UsageError(
                "run needs a FILE: a blueprint, a notebook, or - (or a notebook piped in)",
                hints=["conductor-nb run NOTEBOOK.ipynb [OUTPUT.ipynb] [-p NAME VALUE ...]"],
            )
        args.file = STDIO
        return
    named = args.file
    if (
        stdin_piped
        and named != STDIO
        and args.output is None
        and args.output_path is None
        and Path(named).suffix.lower() not in BLUEPRINT_SUFFIXES
        and not Path(named).exists()
    ):
        args.file, args.output_path = STDIO, named


def default_output(args: argparse.Namespace, *, stdout_piped: bool) -> str:
    """The output notebook when none is given: stdout when stdout is a pipe or a file, as
    papermill (``conductor-nb run nb.ipynb | jq .metadata``, ``... > out.ipynb``), unless
    ``--json`` holds stdout; else ``NAME.out.ipynb`` beside the notebook (papermill stops
    with "Missing argument 'OUTPUT_PATH'" on a terminal)."""
    if args.file == STDIO or (stdout_piped and not args.json):
        return STDIO
    return str(Path(args.file).with_suffix(".out.ipynb"))
