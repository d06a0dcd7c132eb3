"""``notebook``: run a notebook with papermill (imported lazily) and read back what it records.

Parameters come from the ``parameters`` param (templates allowed) plus the node's
input as the parameter named ``input`` when the notebook's ``parameters`` cell
declares ``input`` (or ``parameters`` names it); otherwise the node's log says the
input was not passed, instead of papermill warning "Passed unknown parameter" on
every run. The notebook records results with ``cnb.record(name, value)``; they
become the node's ``records`` output. A cell that raises fails the node with that
cell's error, naming the cell by its place in the notebook as written.

The kernel is the notebook's, or ``kernel``; a notebook without a kernelspec runs
with the current Python kernel, as in Jupyter (see :mod:`conductor_nb.nodes.notebooks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from conductor_nb._extras import require
from conductor_nb.model.types import Port
from conductor_nb.nodes.builtin._define import define, is_given_empty, param
from conductor_nb.nodes.builtin.files import allowed_roots, confine
from conductor_nb.nodes.notebooks import (
    DEFAULT_KERNEL,
    declared_parameters,
    failed_cell,
    kernel_cwd,
    kernel_options,
)
from conductor_nb.nodes.record import read_records


class NotebookFailed(RuntimeError):
    """A cell of the notebook raised."""


T = TypeVar("T")

NO_INPUT = (
    "the notebook declares no `input` parameter (in its parameters cell); the node's input "
    "was not passed"
)


def _prepare(
    source: Path, kernel: str, parameters: dict[str, Any], input: Any
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """papermill's kernel options, the parameters to pass, and lines for the node's log."""
    require("papermill", "papermill", "the notebook node")
    notes: list[str] = []
    options = kernel_options(source, kernel or None, log=notes.append)
    values = dict(parameters)
    if input is not None and "input" not in values:
        declared = declared_parameters(source, options)
        if declared is None or "input" in declared:  # None: papermill cannot tell, so pass it
            values["input"] = input
        else:
            notes.append(NO_INPUT)
    return options, values, notes


def _kernel_manager(options: dict[str, Any]) -> Any:
    """A kernel manager the node owns (papermill starts the kernel through it), so that
    cancelling the node can stop the kernel at once instead of leaving it running."""
    manager = require("jupyter_client.manager", "papermill", "the notebook node")
    # the async manager, as nbclient's own: its client never blocks the thread on a dead
    # kernel (a blocking client would wait on iopub forever)
    return manager.AsyncKernelManager(kernel_name=options.get("kernel_name") or DEFAULT_KERNEL)


def _shutdown(km: Any) -> None:
    """Stop the kernel after the notebook ran (nbclient leaves a kernel it was given)."""
    if km.has_kernel:
        utils = require("jupyter_core.utils", "papermill", "the notebook node")
        utils.run_sync(km.shutdown_kernel)(now=True)


def _kill(km: Any) -> None:
    """Stop the kernel now if it is still running (from any thread: a signal to its process,
    and nbclient, waiting on it in the papermill thread, sees a dead kernel)."""
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is not None and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.kill()


def _isolated(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in an empty contextvars context, on an event loop of its own that is
    closed afterwards.

    nbclient runs its coroutines through jupyter_core, which keeps "the" event loop in a
    context variable. ``asyncio.to_thread`` copies the caller's context into the worker
    thread, so after any notebook ran in the caller's thread (``cnb.run_notebook`` in a
    cell) every notebook node would share that one loop: the second one running at the
    same time failed with "This event loop is already running".
    """

    def call() -> T:
        try:
            return fn(*args)
        finally:
            policy = asyncio.get_event_loop_policy()
            with contextlib.suppress(RuntimeError):  # no loop was made in this thread
                loop = policy.get_event_loop()
                policy.set_event_loop(None)
                if not loop.is_running():
                    loop.close()

    return contextvars.Context().run(call)


def _execute(
    source: Path,
    target: Path,
    parameters: dict[str, Any],
    options: dict[str, Any],
    cwd: str,
    timeout: float | None,
    km: Any,
) -> dict[str, Any]:
    papermill = require("papermill", "papermill", "the notebook node")
    nbformat = require("nbformat", "papermill", "the notebook node")
    try:
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters=parameters,
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout,
            km=km,
            **kernel_cwd(cwd),  # not papermill's cwd=: it moves every other node's paths
            **options,
        )
    except papermill.PapermillExecutionError as exc:
        where = failed_cell(exc, source, target)
        raise NotebookFailed(f"{where} raised {exc.ename}: {exc.evalue}") from None
    finally:
        _shutdown(km)
    return dict(nbformat.read(str(target), as_version=4))


async def notebook(
    ctx: Any,
    input: Any = None,
    path: str = "",
    output_path: str = "",
    parameters: dict[str, Any] | None = None,
    kernel: str = "",
    cwd: str = "",
    cell_timeout: float | None = None,
) -> dict[str, Any]:
    """Execute the notebook with papermill; output its recorded values and output path."""
    roots = allowed_roots(getattr(ctx, "settings", None))
    source = confine(path, roots)
    target = confine(output_path or str(source.with_name(f"{source.stem}.out.ipynb")), roots)
    workdir = str(confine(cwd, roots)) if cwd else str(source.parent)
    options, values, notes = await asyncio.to_thread(
        _prepare, source, kernel, dict(parameters or {}), input
    )
    for note in notes:
        if ctx is not None:
            ctx.log(note)
    target.parent.mkdir(parents=True, exist_ok=True)
    km = _kernel_manager(options)
    try:
        executed = await asyncio.to_thread(
            _isolated, _execute, source, target, values, options, workdir, cell_timeout, km
        )
    finally:  # cancelled (Ctrl-C, fail-fast, a timeout): the kernel stops with the node
        _kill(km)
    records = read_records(executed)
    return {"records": records, "output_path": str(target), "parameters": values}


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    path = values.get("path")
    if is_given_empty(values, "path"):
        return [("path", "path is empty: notebook needs the path of an .ipynb file")]
    if isinstance(path, str) and "{{" not in path and not path.endswith(".ipynb"):
        return [("path", f"expected an .ipynb file, got {path!r}")]
    return []


NOTEBOOK = define(
    "notebook",
    notebook,
    category="notebook",
    description="Run a notebook with papermill (parameters from params, and the input as "
    "'input' when the notebook declares it); output the values it records with cnb.record "
    "and the output notebook's path.",
    outputs=[
        Port("records", type="dict", description="name -> value recorded by cnb.record"),
        Port("output_path", type="str", description="the executed notebook"),
    ],
    params=[
        param("path", "path", "", "the notebook to run", required=True),
        param("output_path", "path", "", "where to write the executed notebook"),
        param(
            "parameters",
            "dict",
            {},
            "papermill parameters (the input is added as 'input' when the notebook's "
            "parameters cell declares input)",
        ),
        param(
            "kernel",
            "str",
            "",
            "kernel name (default: the notebook's; python3 for a notebook without one)",
        ),
        param("cwd", "path", "", "working directory (default: the notebook's folder)"),
        param("cell_timeout", "float", None, "seconds per cell", minimum=0),
    ],
    output_type="dict",
    example={
        "type": "notebook",
        "params": {"path": "report.ipynb", "parameters": {"day": "{{ params.day }}"}},
    },
    validate=_check,
    takes_context=True,
    side_effects=True,
)

NODE_TYPES = [NOTEBOOK]
