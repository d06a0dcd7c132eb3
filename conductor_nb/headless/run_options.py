"""The options of ``conductor-nb run`` that papermill has too, with papermill's names.

Parameters in papermill's order of precedence (``-b``, ``-f``, ``-y``, ``-p``, ``-r``;
later wins), the notebook options (which also apply to a blueprint run into an output
notebook), and :func:`papermill_pairs`, which lets ``-p`` take papermill's two arguments.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any


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
