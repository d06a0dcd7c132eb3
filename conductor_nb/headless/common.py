"""What every ``conductor-nb`` command shares: exit codes, user errors, imports, loading."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor_nb.errors import ConductorError

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

CONNECT_TIMEOUT = 5.0
"""Seconds ``run --scheduler`` tries to reach the scheduler (``--connect-timeout``)."""


class UsageError(ConductorError):
    """A mistake in how the command was called: printed without a traceback, exit 2.
    ``hints`` are printed after the message, one ``hint:`` line each."""

    def __init__(self, message: str, *, hints: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.hints = tuple(hints)


def add_file_roots(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--file-root",
        dest="file_roots",
        action="append",
        default=[],
        metavar="DIR",
        help="let file nodes use DIR too (the run setting file_roots; the blueprint's "
        "folder, where relative paths start, and the working directory stay allowed); "
        "repeatable",
    )


def add_env(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--env",
        dest="env_names",
        action="append",
        default=[],
        metavar="NAME",
        help="expose the environment variable NAME to templates as {{ env.NAME }} (its value "
        "is masked as *** in history, logs, reports and --json); repeatable",
    )


def import_modules(names: Iterable[str]) -> None:
    """``--import MODULE``: modules whose import registers node types (cwd is importable)."""
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise UsageError(
                f"--import {name}: cannot import it ({exc}); "
                "put its folder on PYTHONPATH or run from there"
            ) from None


def load_blueprint(path: str, **flow: Any) -> Blueprint:
    """Load a blueprint file, or an Atomiton flow (``flow``: ``lenient``, ``path_map``),
    whose conversion notice is printed to stderr once, as a note rather than a warning."""
    import warnings

    from conductor_nb.model.atomiton import ConvertedFlowWarning
    from conductor_nb.model.blueprint import Blueprint

    file = Path(path)
    if not file.exists():
        raise UsageError(f"{path}: no such file")
    if file.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise UsageError(
            f"{path}: expected a blueprint (.yaml, .yml, .json) or a notebook (.ipynb)"
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvertedFlowWarning)
        try:
            return Blueprint.load(file, **flow)
        finally:
            for warning in caught:
                if issubclass(warning.category, ConvertedFlowWarning):
                    sys.stderr.write(f"note: {warning.message}\n")
                else:
                    warnings.showwarning(
                        warning.message, warning.category, warning.filename, warning.lineno
                    )


def print_json(data: Any) -> None:
    """One JSON document on stdout (``--json``); values JSON cannot hold become strings."""
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def plural(count: int, noun: str) -> str:
    """``plural(1, "edge")`` -> ``"1 edge"``; ``plural(2, "edge")`` -> ``"2 edges"``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def history_available() -> bool:
    """Whether the run-history layer is installed (runs are recorded by default then)."""
    try:
        storage = importlib.import_module("conductor_nb.storage")
    except ImportError:
        return False
    return callable(getattr(storage, "on_run_created", None))


class NodeOutputRouter:
    """Stands in for ``sys.stdout`` during a CLI run: what nodes print goes to ``divert``
    (or nowhere, when the progress display already echoes node logs), so stdout carries
    only the result (``--json`` stays parseable). Everything else passes through."""

    def __init__(self, stream: Any, divert: Any | None) -> None:
        self._stream = stream
        self._divert = divert

    def write(self, text: str) -> int:
        from conductor_nb.engine import capture

        if capture.current_sink.get() is None:
            return int(self._stream.write(text))
        if self._divert is not None:
            self._divert.write(text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextmanager
def route_node_output(*, echoed: bool) -> Iterator[None]:
    """Keep node prints off stdout for the length of a run. Set up before the run starts,
    the routers sit *inside* the engine's capture tee, which still records every node's
    output; after an earlier run, the existing tee's stream is swapped instead."""
    divert = None if echoed else sys.stderr
    names = ("stdout", "stderr")
    for name in names:
        _swap(name, lambda stream: NodeOutputRouter(stream, divert))
    try:
        yield
    finally:
        for name in names:
            _swap(
                name,
                lambda stream: stream._stream if isinstance(stream, NodeOutputRouter) else stream,
            )


def _swap(name: str, change: Any) -> None:
    from conductor_nb.engine import capture

    current = getattr(sys, name)
    if isinstance(current, capture._Tee):
        current._stream = change(current._stream)
    else:
        setattr(sys, name, change(current))
