"""Running notebooks headlessly through papermill: ``cnb.run_notebook``.

papermill's conventions hold: a ``parameters``-tagged cell gets an
``injected-parameters`` cell after it (a notebook without one gets it first),
the output notebook is written even when a cell fails, and every papermill
option has a keyword here (:class:`NotebookOptions`). What papermill's output
notebook cannot tell (it marks every cell completed after a cell timeout or a
dead kernel) is taken from the exception and recorded here:
:class:`NotebookError` says which of the three it was (``kind``), which cell of
the source notebook failed and on which line, and the output notebook gets a
``metadata.conductor_nb`` entry and a banner cell saying so. papermill is
imported only when a notebook runs.

A blueprint file given to :func:`run_notebook` runs in a kernel too: its report
notebook (:mod:`conductor_nb.headless.blueprint_notebook`) is what executes.

The kernel is the notebook's, or the one asked for (:func:`kernel_options`). A
notebook without a kernelspec (``nbformat.v4.new_notebook()`` makes one) runs
with the python3 kernel, as Jupyter opens it, where papermill alone stops with
"No kernel name found"; a Python kernel given for a notebook that records no
language gets language ``python`` (papermill needs it to write the parameters).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from conductor_nb.errors import ConductorError
from conductor_nb.nodes.notebooks import (
    cell_position,
    failing_line,
    kernel_cwd,
    kernel_options,
    plain_traceback,
)

CELL_ERROR = "cell-error"
TIMEOUT = "timeout"
DEAD_KERNEL = "dead-kernel"
BLUEPRINT_SUFFIXES = (".yaml", ".yml", ".json")


class NotebookError(ConductorError):
    """A notebook run failed: a cell raised (``cell-error``), a cell ran past the time limit
    (``timeout``) or the kernel died (``dead-kernel``). ``output`` is the output notebook
    (written in every case, unless the kernel never started); ``__cause__`` is papermill's
    or nbclient's exception.

    For a cell error, ``cell`` is the failing cell's 1-based position in the source
    notebook (None when it cannot be told), ``line`` and ``code`` the line of that cell
    that raised, and ``traceback`` the kernel's traceback without terminal colours. A
    blueprint run through papermill that failed is kind ``run-failed``.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        output: Path | None,
        ename: str = "",
        evalue: str = "",
        cell: int | None = None,
        line: int | None = None,
        code: str = "",
        traceback: str = "",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.output = output
        self.ename = ename
        self.evalue = evalue
        self.cell = cell
        self.line = line
        self.code = code
        self.traceback = traceback
        self.result: dict[str, Any] | None = None
        """For a blueprint run in a kernel: its ``--json`` result, when it got that far."""


@dataclass(frozen=True)
class NotebookResult:
    """A notebook that ran to the end (or, with ``prepare_only``, was only parameterised)."""

    input: Path
    output: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    status: str = "succeeded"


@dataclass(frozen=True)
class NotebookOptions:
    """How papermill runs a notebook; the names are papermill's where it has them."""

    cwd: str | Path | None = None
    """Where the kernel starts (default: the current directory)."""
    timeout: float | None = None
    """Time limit per cell, seconds (papermill's ``execution_timeout``)."""
    kernel: str | None = None
    """Kernel name, instead of the notebook's (``python`` means the current Python's)."""
    language: str | None = None
    """Language of the notebook, instead of its metadata's."""
    progress: bool = False
    report_mode: bool = False
    """Hide the code of every cell in the output notebook."""
    prepare_only: bool = False
    """Write the parameterised notebook without running it."""
    log_output: bool = False
    """Send each cell's output to the ``papermill`` logger as it comes."""
    stdout_file: TextIO | None = None
    stderr_file: TextIO | None = None
    start_timeout: float = 60
    """Seconds to wait for the kernel to start."""
    engine: str | None = None
    """A papermill engine registered under ``papermill.engine`` (default: nbclient's)."""
    request_save_on_cell_execute: bool = True
    autosave_cell_every: int = 30


def run_notebook(
    input: str | Path,
    output: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    kernel: str | None = None,
    progress: bool = False,
    language: str | None = None,
    report_mode: bool = False,
    prepare_only: bool = False,
    log_output: bool = False,
    stdout_file: TextIO | None = None,
    stderr_file: TextIO | None = None,
    start_timeout: float = 60,
    engine: str | None = None,
) -> NotebookResult:
    """Execute ``input`` with papermill, injecting ``parameters``, and write ``output``.

    ``timeout`` limits each cell (seconds); ``kernel`` overrides the notebook's kernel
    (a notebook without one runs with python3); ``cwd`` is where the kernel starts
    (default: the current directory); the other keywords are papermill's, explained at
    :class:`NotebookOptions`. A blueprint (``.yaml``/``.yml``/``.json``) runs in the kernel and
    ``output`` is its report notebook. Raises :class:`NotebookError` when a cell fails,
    times out or the kernel dies; the output notebook is still written and shows where
    it stopped. :class:`KernelChoiceError` when the kernel's language cannot be told.
    """
    settings = NotebookOptions(
        cwd=cwd,
        timeout=timeout,
        kernel=kernel,
        language=language,
        progress=progress,
        report_mode=report_mode,
        prepare_only=prepare_only,
        log_output=log_output,
        stdout_file=stdout_file,
        stderr_file=stderr_file,
        start_timeout=start_timeout,
        engine=engine,
    )
    if Path(input).suffix.lower() in BLUEPRINT_SUFFIXES:
        from conductor_nb.headless.blueprint_notebook import run_blueprint_notebook

        return run_blueprint_notebook(input, output, parameters, settings)
    return execute(input, output, parameters, settings)


def execute(
    input: str | Path,
    output: str | Path,
    parameters: Mapping[str, Any] | None,
    settings: NotebookOptions,
    *,
    kernel_choice: Mapping[str, Any] | None = None,
) -> NotebookResult:
    """:func:`run_notebook` for a notebook; ``kernel_choice`` is :func:`kernel_options`'
    answer when the caller has it already (it may have printed a note about it)."""
    from conductor_nb._extras import require

    pm = require("papermill", "papermill", "running notebooks")
    source, target = Path(input).resolve(), Path(output).resolve()
    if not source.exists():
        raise FileNotFoundError(f"{input}: no such notebook")
    choice = dict(kernel_choice or kernel_options(source, settings.kernel))
    if settings.language:
        choice["language"] = settings.language
    target.parent.mkdir(parents=True, exist_ok=True)
    params = dict(parameters or {})
    where = kernel_cwd(settings.cwd)  # papermill's cwd= would chdir this whole process
    started = time.monotonic()
    try:
        pm.execute_notebook(
            str(source),
            str(target),
            parameters=params,
            execution_timeout=settings.timeout,
            progress_bar=settings.progress,
            report_mode=settings.report_mode,
            prepare_only=settings.prepare_only,
            log_output=settings.log_output,
            stdout_file=settings.stdout_file,
            stderr_file=settings.stderr_file,
            start_timeout=settings.start_timeout,
            engine_name=settings.engine,
            request_save_on_cell_execute=settings.request_save_on_cell_execute,
            autosave_cell_every=settings.autosave_cell_every,
            **where,
            **choice,
        )
    except Exception as exc:
        error = classify(exc, target, settings.timeout, source=source)
        if error is None:
            raise
        mark_output(target, error)
        raise error from exc
    status = "prepared" if settings.prepare_only else "succeeded"
    return NotebookResult(source, target, params, time.monotonic() - started, status)


def classify(
    exc: BaseException, output: Path, timeout: float | None, *, source: Path | None = None
) -> NotebookError | None:
    """Turn papermill's/nbclient's exception into a NotebookError of the right kind."""
    name = type(exc).__name__
    written = output if output.exists() else None
    where = f"; output notebook: {written}" if written else ""
    if name == "PapermillExecutionError":
        return _cell_error(exc, source, output, written)
    if name == "CellTimeoutError":
        limit = f" of {timeout:g}s" if timeout else ""
        return NotebookError(
            f"a cell ran past the time limit{limit} and was stopped"
            + _cell_preview(str(exc))
            + where,
            kind=TIMEOUT,
            output=written,
            ename=name,
            evalue=str(exc).splitlines()[0],
        )
    if name == "DeadKernelError":
        return NotebookError(
            "the kernel died while a cell was running (it crashed, ran out of memory or "
            "called os._exit)" + where,
            kind=DEAD_KERNEL,
            output=written,
            ename=name,
            evalue=str(exc),
        )
    return None


def _cell_error(
    exc: BaseException, source: Path | None, output: Path, written: Path | None
) -> NotebookError:
    """``cell 3 (`total = f(x)`), line 2 `assert x > 5`: AssertionError: x too small``."""
    ename = str(getattr(exc, "ename", "") or type(exc).__name__)
    evalue = str(getattr(exc, "evalue", "") or "")
    cell_source = str(getattr(exc, "source", "") or "")
    traceback = plain_traceback(getattr(exc, "traceback", ()))
    found = cell_position(exc, source, output) if source is not None else None
    position = found[0] if found else None
    count = getattr(exc, "exec_count", None)
    first = next((text.strip() for text in cell_source.splitlines() if text.strip()), "")
    label = f"cell {position}" if position is not None else f"the cell In [{count}]"
    where = f"{label} (`{_short(first)}`)" if first else label
    raised = failing_line(traceback, cell_source)
    if raised is not None and raised[1] and (raised[0] != 1 or raised[1] != first):
        where += f", line {raised[0]} `{_short(raised[1])}`"
    elif raised is not None:
        where += f", line {raised[0]}"
    message = f"{where}: {ename}" + (f": {_first_line(evalue)}" if evalue else "")
    return NotebookError(
        message + (f"; output notebook: {written}" if written else ""),
        kind=CELL_ERROR,
        output=written,
        ename=ename,
        evalue=evalue,
        cell=position,
        line=raised[0] if raised else None,
        code=raised[1] if raised else "",
        traceback=traceback,
    )


def _short(code: str, limit: int = 70) -> str:
    return code if len(code) <= limit else code[: limit - 3] + "..."


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] + (" ..." if len(lines) > 1 else "") if lines else ""


def _cell_preview(message: str) -> str:
    lines = message.splitlines()
    if "-------------------" in lines:
        start = lines.index("-------------------") + 1
        code = [line for line in lines[start:] if line != "-------------------"]
        if code:
            return f" (cell starting {code[0].strip()[:60]!r})"
    return ""


def mark_output(output: Path, error: NotebookError) -> None:
    """Record the real outcome in the output notebook, which papermill alone cannot show
    for timeouts and dead kernels (it marks every cell completed then)."""
    if error.output is None:
        return
    import nbformat

    nb = nbformat.read(str(output), as_version=4)
    nb.metadata["conductor_nb"] = {
        **nb.metadata.get("conductor_nb", {}),
        "status": "failed",
        "kind": error.kind,
        "message": str(error),
    }
    if error.kind != CELL_ERROR:  # papermill already adds its own banner for cell errors
        banner = nbformat.v4.new_markdown_cell(
            '<span style="color:red;font-size:1.2em">conductor_nb: this notebook did not '
            f"finish: {error.kind.replace('-', ' ')}.</span> {error}"
        )
        banner.metadata["tags"] = ["conductor-nb-error"]
        nb.cells.insert(0, banner)
    nbformat.write(nb, str(output))
