"""Running notebooks headlessly through papermill: ``cnb.run_notebook`` and ``conductor-nb run
NOTEBOOK.ipynb``.

papermill's conventions hold: a ``parameters``-tagged cell gets an
``injected-parameters`` cell after it, and the output notebook is written even
when a cell fails. What papermill's output notebook cannot tell (it marks every
cell completed after a cell timeout or a dead kernel) is taken from the
exception and recorded here: :class:`NotebookError` says which of the three it
was (``kind``), and the output notebook gets a ``metadata.conductor_nb`` entry
and a banner cell saying so. papermill is imported only when a notebook runs.

The kernel is the notebook's, or the one asked for (:func:`kernel_options`). A
notebook without a kernelspec (``nbformat.v4.new_notebook()`` makes one) runs
with the python3 kernel, as Jupyter opens it, where papermill alone stops with
"No kernel name found"; a Python kernel given for a notebook that records no
language gets language ``python`` (papermill needs it to write the parameters).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from conductor_nb.errors import ConductorError
from conductor_nb.nodes.notebooks import KernelChoiceError, kernel_options, notebook_metadata

CELL_ERROR = "cell-error"
TIMEOUT = "timeout"
DEAD_KERNEL = "dead-kernel"


class NotebookError(ConductorError):
    """A notebook run failed: a cell raised (``cell-error``), a cell ran past the time limit
    (``timeout``) or the kernel died (``dead-kernel``). ``output`` is the output notebook
    (written in every case, unless the kernel never started); ``__cause__`` is papermill's
    or nbclient's exception."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        output: Path | None,
        ename: str = "",
        evalue: str = "",
        cell: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.output = output
        self.ename = ename
        self.evalue = evalue
        self.cell = cell


@dataclass(frozen=True)
class NotebookResult:
    """A notebook that ran to the end."""

    input: Path
    output: Path
    parameters: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    status: str = "succeeded"


def run_notebook(
    input: str | Path,
    output: str | Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    cwd: str | Path | None = None,
    timeout: float | None = None,
    kernel: str | None = None,
    progress: bool = False,
) -> NotebookResult:
    """Execute ``input`` with papermill, injecting ``parameters``, and write ``output``.

    ``timeout`` limits each cell (seconds); ``kernel`` overrides the notebook's kernel
    (a notebook without one runs with python3); ``cwd`` is where the kernel starts
    (default: the current directory). Raises :class:`NotebookError` when a cell fails,
    times out or the kernel dies; the output notebook is still written and shows where
    it stopped. :class:`KernelChoiceError` when the kernel's language cannot be told.
    """
    from conductor_nb._extras import require

    pm = require("papermill", "papermill", "running notebooks")
    source, target = Path(input).resolve(), Path(output).resolve()
    if not source.exists():
        raise FileNotFoundError(f"{input}: no such notebook")
    options = kernel_options(source, kernel)
    target.parent.mkdir(parents=True, exist_ok=True)
    params = dict(parameters or {})
    started = time.monotonic()
    try:
        pm.execute_notebook(
            str(source),
            str(target),
            parameters=params,
            cwd=str(cwd) if cwd else None,
            execution_timeout=timeout,
            progress_bar=progress,
            **options,
        )
    except Exception as exc:
        error = classify(exc, target, timeout)
        if error is None:
            raise
        mark_output(target, error)
        raise error from exc
    return NotebookResult(source, target, params, time.monotonic() - started)


def classify(exc: BaseException, output: Path, timeout: float | None) -> NotebookError | None:
    """Turn papermill's/nbclient's exception into a NotebookError of the right kind."""
    name = type(exc).__name__
    written = output if output.exists() else None
    if name == "PapermillExecutionError":
        cell = getattr(exc, "exec_count", None)
        ename, evalue = getattr(exc, "ename", name), getattr(exc, "evalue", str(exc))
        return NotebookError(
            f"cell {cell} raised {ename}: {evalue}"
            + (f"; output notebook: {written}" if written else ""),
            kind=CELL_ERROR,
            output=written,
            ename=ename,
            evalue=evalue,
            cell=cell,
        )
    if name == "CellTimeoutError":
        limit = f" of {timeout:g}s" if timeout else ""
        preview = _cell_preview(str(exc))
        return NotebookError(
            f"a cell ran past the time limit{limit} and was stopped"
            + preview
            + (f"; output notebook: {written}" if written else ""),
            kind=TIMEOUT,
            output=written,
            ename=name,
            evalue=str(exc).splitlines()[0],
        )
    if name == "DeadKernelError":
        return NotebookError(
            "the kernel died while a cell was running (it crashed, ran out of memory or "
            "called os._exit)" + (f"; output notebook: {written}" if written else ""),
            kind=DEAD_KERNEL,
            output=written,
            ename=name,
            evalue=str(exc),
        )
    return None


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
    nb.metadata["conductor_nb"] = {"status": "failed", "kind": error.kind, "message": str(error)}
    if error.kind != CELL_ERROR:  # papermill already adds its own banner for cell errors
        banner = nbformat.v4.new_markdown_cell(
            '<span style="color:red;font-size:1.2em">conductor_nb: this notebook did not '
            f"finish: {error.kind.replace('-', ' ')}.</span> {error}"
        )
        banner.metadata["tags"] = ["conductor-nb-error"]
        nb.cells.insert(0, banner)
    nbformat.write(nb, str(output))


# ------------------------------------------------------------------------------ the CLI


class DeclaredParameters(NamedTuple):
    """What a notebook's ``parameters`` cell declares, as papermill reads it."""

    has_cell: bool
    """Whether some cell carries the ``parameters`` tag."""
    readable: bool
    """Whether papermill can list the cell's names for this kernel's language (if not,
    unknown ``-p`` names cannot be told apart and are passed through)."""
    types: dict[str, str]
    """Declared name -> param type, inferred from the default values."""


def declared_parameters(path: Path, options: Mapping[str, Any]) -> DeclaredParameters:
    """The notebook's declared parameters, read like ``papermill --help-notebook`` does;
    ``options`` is what :func:`kernel_options` chose."""
    from conductor_nb._extras import require
    from conductor_nb.headless.common import UsageError

    require("papermill", "papermill", "running notebooks")
    import nbformat
    from papermill.translators import papermill_translators

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # not JSON, not a notebook, unreadable
        raise UsageError(f"{path}: not a readable notebook ({exc})") from None
    tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", ())]
    if not tagged:
        return DeclaredParameters(has_cell=False, readable=True, types={})
    try:
        translator = papermill_translators.find_translator(
            options.get("kernel_name"), options.get("language")
        )
        found = translator.inspect(tagged[0])
    except Exception:  # no translator, no kernel/language metadata, or no introspection
        return DeclaredParameters(has_cell=True, readable=False, types={})
    return DeclaredParameters(True, True, {p.name: _param_type(p._asdict()) for p in found})


def _param_type(info: Mapping[str, Any]) -> str:
    from conductor_nb.model.params import infer_type

    hinted = str(info.get("inferred_type_name") or "None")
    if hinted in ("int", "float", "bool", "str", "list", "dict"):
        return hinted
    try:
        return infer_type(ast.literal_eval(str(info.get("default"))))
    except (ValueError, SyntaxError):
        return "any"


def notebook_params(
    source: Path, assignments: list[str], base: dict[str, Any], options: Mapping[str, Any]
) -> dict[str, Any]:
    """``-p`` and ``--params-file`` values typed by the notebook's ``parameters`` cell; a name
    that cell does not declare is a user error (papermill would only log it and go on)."""
    from conductor_nb.headless.common import UsageError
    from conductor_nb.headless.params import split_assignment, typed_params

    declared = declared_parameters(source, options)
    if not declared.has_cell and (assignments or base):
        names = list(base)
        for text in assignments:
            try:
                names.append(split_assignment(text)[0])
            except ValueError:
                names.append(text)
        raise UsageError(
            f"notebook {source.name!r} has no parameters cell, so it takes no parameters "
            f"(given: {', '.join(names)})\n"
            "    fix: put the defaults in one cell (e.g. `date = '2026-11-24'`) and give that "
            "cell the tag `parameters`; papermill injects the values in a new cell after it\n"
            "    (in JupyterLab: select the cell, open the property inspector, the gear icon in "
            "the right sidebar, then Common Tools > Cell Tags > Add Tag)"
        )
    return typed_params(
        assignments,
        declared.types,
        base=base,
        owner=f"notebook {source.name!r}",
        strict=declared.readable,
        declared_in="in its `parameters` cell",
    )


def run_notebook_command(args: argparse.Namespace) -> int:
    from conductor_nb.headless.common import (
        EXIT_FAILED,
        EXIT_INTERRUPTED,
        EXIT_OK,
        UsageError,
        import_modules,
    )
    from conductor_nb.headless.params import ParamValueError, load_params_file

    source = Path(args.file)
    if not source.exists():
        raise UsageError(f"{args.file}: no such notebook")
    import_modules(args.imports)
    try:
        base = load_params_file(args.params_file) if args.params_file else {}
    except ParamValueError as exc:
        raise UsageError(str(exc)) from None
    options = _cli_kernel_options(source, args.kernel)
    params = notebook_params(source, args.params, base, options)
    output = Path(args.output) if args.output else source.with_suffix(".out.ipynb")
    progress = args.progress == "rich" or (args.progress == "auto" and sys.stderr.isatty())
    result: dict[str, Any] = {"notebook": str(source), "output": str(output), "parameters": params}
    try:
        done = run_notebook(
            source,
            output,
            params,
            cwd=args.cwd,
            timeout=args.timeout,
            kernel=options["kernel_name"],
            progress=progress,
        )
    except NotebookError as exc:
        result.update(status="failed", kind=exc.kind, error=str(exc), exit_code=EXIT_FAILED)
        _report(args, result, f"error: notebook {source.name} failed: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        result.update(status="cancelled", exit_code=EXIT_INTERRUPTED)
        _report(args, result, "interrupted: the notebook run was stopped")
        return EXIT_INTERRUPTED
    result.update(status="succeeded", duration=round(done.duration, 3), exit_code=EXIT_OK)
    _report(
        args, result, f"notebook {source.name} succeeded in {done.duration:.1f}s; output: {output}"
    )
    return EXIT_OK


def _cli_kernel_options(source: Path, kernel: str | None) -> dict[str, Any]:
    """:func:`kernel_options` for the command line: its note on stderr; a kernel that is
    not installed and a kernel without a language are user errors (papermill would print
    a traceback)."""
    from conductor_nb.headless.common import UsageError

    spec = (notebook_metadata(source) or {}).get("kernelspec") or {}
    _check_installed(source, kernel or str(spec.get("name") or "") or None, given=bool(kernel))
    try:
        return kernel_options(
            source, kernel, log=lambda note: print(f"note: {note}", file=sys.stderr)
        )
    except KernelChoiceError as exc:
        raise UsageError(
            exc.problem, hints=[exc.fix, "give the kernel with --kernel NAME"]
        ) from None


def _check_installed(source: Path, name: str | None, *, given: bool) -> None:
    from jupyter_client.kernelspec import find_kernel_specs

    from conductor_nb.headless.common import UsageError

    installed = sorted(find_kernel_specs())
    if name is None or name in installed:
        return
    raise UsageError(
        f"notebook {source.name}: {'' if given else 'its '}kernel {name!r} is not installed "
        f"here (installed: {', '.join(installed) or 'none'})",
        hints=["pass --kernel NAME with an installed one (see `jupyter kernelspec list`)"],
    )


def _report(args: argparse.Namespace, result: dict[str, Any], line: str) -> None:
    if args.json:
        json.dump(result, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        stream = sys.stdout if result["status"] == "succeeded" else sys.stderr
        stream.write(line + "\n")
