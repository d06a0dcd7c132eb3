"""``notebook``: run a notebook with papermill (imported lazily) and read back what it records.

Parameters come from the ``parameters`` param (templates allowed) plus the node's
input as the parameter named ``input``. The notebook records results with
``cnb.record(name, value)``; they become the node's ``records`` output. A cell
that raises fails the node with that cell's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from conductor_nb._extras import require
from conductor_nb._kernels import quiet_kernel
from conductor_nb.model.types import Port
from conductor_nb.nodes.builtin._define import define, is_given_empty, param
from conductor_nb.nodes.builtin.files import allowed_roots, confine
from conductor_nb.nodes.record import read_records


class NotebookFailed(RuntimeError):
    """A cell of the notebook raised."""


def _execute(
    source: str,
    target: str,
    parameters: dict[str, Any],
    kernel: str,
    cwd: str | None,
    timeout: float | None,
) -> dict[str, Any]:
    papermill = require("papermill", "papermill", "the notebook node")
    nbformat = require("nbformat", "papermill", "the notebook node")
    try:
        papermill.execute_notebook(
            source,
            target,
            parameters=parameters,
            kernel_name=kernel or None,
            cwd=cwd,
            progress_bar=False,
            log_output=False,
            execution_timeout=timeout,
            **quiet_kernel(source, kernel or None),
        )
    except papermill.PapermillExecutionError as exc:
        raise NotebookFailed(
            f"cell {exc.exec_count} of {source} raised {exc.ename}: {exc.evalue}; "
            f"the output notebook is {target}"
        ) from None
    return dict(nbformat.read(target, as_version=4))


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
    values = dict(parameters or {})
    if input is not None:
        values.setdefault("input", input)
    workdir = str(confine(cwd, roots)) if cwd else str(source.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    executed = await asyncio.to_thread(
        _execute, str(source), str(target), values, kernel, workdir, cell_timeout
    )
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
    description="Run a notebook with papermill (parameters from params and the input); "
    "output the values it records with cnb.record and the output notebook's path.",
    outputs=[
        Port("records", type="dict", description="name -> value recorded by cnb.record"),
        Port("output_path", type="str", description="the executed notebook"),
    ],
    params=[
        param("path", "path", "", "the notebook to run", required=True),
        param("output_path", "path", "", "where to write the executed notebook"),
        param("parameters", "dict", {}, "papermill parameters (the input is added as 'input')"),
        param("kernel", "str", "", "kernel name (default: the notebook's)"),
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
)

NODE_TYPES = [NOTEBOOK]
