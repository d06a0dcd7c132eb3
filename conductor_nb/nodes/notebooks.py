"""Running a notebook with papermill the way Jupyter would: which kernel, which declared
parameters, and which cell failed, said in terms of the notebook the user wrote.

Shared by the ``notebook`` node and the headless ``conductor-nb run x.ipynb``:

- :func:`kernel_options`: papermill's ``kernel_name``/``language`` (and the quiet
  start-up arguments of :func:`conductor_nb._kernels.quiet_kernel`). A notebook
  without a kernelspec (``nbformat.v4.new_notebook()`` makes one) runs with the
  current Python kernel, as Jupyter opens it; papermill alone fails with "No kernel
  name found". A kernel given for a notebook that records no language is
  taken as Python when its name says so; otherwise the message asks for a kernelspec.
- :func:`declared_parameters`: the names the ``parameters`` cell declares, so a
  caller passes only what the notebook reads (papermill warns about the rest).
- :func:`kernel_cwd`: papermill's keywords that start the kernel in a folder without
  moving this process there (papermill's own ``cwd=`` chdirs the whole process while
  the notebook runs: other threads' relative paths and other notebooks move with it).
- :func:`failed_cell`: "cell 2 of analyse.ipynb (In [3] of the output notebook ...,
  after the injected parameters)" for papermill's error, whose ``exec_count`` and
  ``cell_index`` count the injected-parameters cell.

papermill and nbformat are imported inside the functions that need them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from conductor_nb._kernels import quiet_kernel
from conductor_nb.errors import ConductorError

DEFAULT_KERNEL = "python3"
INJECTED = "injected-parameters"  # papermill's tag on the cell it adds
ERROR_MARKER = "papermill-error-cell-tag"  # papermill's tag on the banner cells it adds


class KernelChoiceError(ConductorError, ValueError):
    """Which kernel or language runs a notebook cannot be told from its metadata.

    ``problem`` says what is missing and ``fix`` what to change; the message is both, so
    a caller with its own way to name a kernel (``--kernel``) can reword the fix.
    """

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem
        self.fix = fix

    def __reduce__(self) -> tuple[Any, ...]:  # pickles whole (process pools, Dask workers)
        return (type(self), (self.problem, self.fix))


def notebook_metadata(path: Path) -> dict[str, Any] | None:
    try:
        notebook = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None  # papermill reports a missing or broken notebook in its own words
    metadata = notebook.get("metadata") if isinstance(notebook, dict) else None
    return metadata if isinstance(metadata, dict) else {}


def _add_kernelspec(name: str) -> str:
    return (
        "add a kernelspec to the notebook: open it in Jupyter, pick the kernel (Kernel > "
        "Change Kernel...) and save, or set metadata.kernelspec to "
        f"{{name: {name!r}, language: ..., display_name: ...}}"
    )


def kernel_options(
    path: str | Path,
    kernel: str | None = None,
    *,
    log: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """papermill keyword arguments to run ``path`` with ``kernel`` (None: the notebook's).

    The result holds ``kernel_name`` and ``language`` (both None when the notebook cannot
    be read: papermill then says why) and, for Python kernels, the quiet start-up
    arguments. ``log`` receives one line when the choice is not the notebook's own (no
    kernelspec: the current Python kernel). Raises :class:`KernelChoiceError` when the
    notebook records no language and the kernel is not a Python one.
    """
    source = Path(path)
    metadata = notebook_metadata(source)
    if metadata is None:
        return {"kernel_name": kernel or None, "language": None, **quiet_kernel(source, kernel)}
    spec = metadata.get("kernelspec") or {}
    info = metadata.get("language_info") or {}
    language = str(info.get("name") or spec.get("language") or "") or None
    name = kernel or str(spec.get("name") or "") or None
    if name is None:
        if language not in (None, "python"):
            raise KernelChoiceError(
                f"notebook {source.name} has no kernelspec and its language is {language}, "
                "so which kernel runs it is unknown",
                "name the kernel to run it with, or " + _add_kernelspec("..."),
            )
        name, language = DEFAULT_KERNEL, "python"
        if log is not None:
            log(
                f"notebook {source.name} has no kernelspec (no kernel in its metadata); "
                f"running it with the current Python kernel ({DEFAULT_KERNEL}), as Jupyter "
                "would"
            )
    elif language is None:
        if not name.startswith("python"):
            raise KernelChoiceError(
                f"notebook {source.name} records no language (no kernelspec or language_info "
                f"in its metadata), so papermill cannot write its parameters for kernel "
                f"{name!r}",
                _add_kernelspec(name),
            )
        language = "python"
    return {"kernel_name": name, "language": language, **quiet_kernel(source, name)}


def kernel_cwd(cwd: str | Path | None) -> dict[str, Any]:
    """Keywords for ``papermill.execute_notebook`` that start the kernel in ``cwd`` (relative
    to the current directory) while this process stays where it is: nbclient takes the
    kernel's working directory from ``resources``. Nothing for ``None`` (the kernel starts
    in the current directory). A folder that does not exist is refused here, in words,
    where a kernel would fail to start with a launcher error."""
    if cwd is None or str(cwd) == "":
        return {}
    folder = Path(cwd).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"working directory {str(cwd)!r}: no such folder ({folder})")
    return {"resources": {"metadata": {"path": str(folder)}}}


def declared_parameters(path: str | Path, options: Mapping[str, Any]) -> set[str] | None:
    """The names the notebook's ``parameters`` cell declares (empty without such a cell),
    or None when papermill cannot list them for this language. ``options`` is what
    :func:`kernel_options` returned."""
    import nbformat
    from papermill.translators import papermill_translators

    try:
        notebook = nbformat.read(str(path), as_version=4)
    except Exception:  # unreadable: papermill says why when it runs it
        return None
    tagged = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", ())]
    if not tagged:
        return set()
    try:
        translator = papermill_translators.find_translator(
            options.get("kernel_name"), options.get("language")
        )
        return {p.name for p in translator.inspect(tagged[0])}
    except Exception:  # no translator, or it cannot inspect: do not guess
        return None


def failed_cell(error: Any, source: str | Path, output: str | Path) -> str:
    """Where papermill's ``PapermillExecutionError`` happened, in the source notebook's terms.

    papermill's ``cell_index`` counts the cells of the executed notebook (the injected
    parameters included) and ``exec_count`` is its ``In [n]``; the cell's position in the
    source notebook is found by its cell id (nbformat 4.5), else by not counting the
    injected cell.
    """
    count = getattr(error, "exec_count", None)
    source, output = Path(source), Path(output)
    prompt = f"In [{count}]" if count is not None else "a cell"
    found = cell_position(error, source, output)
    if found is None:
        return f"{prompt} of the output notebook {output} (run from {source.name})"
    position, injected = found
    after = ", after the injected parameters" if injected else ""
    return f"cell {position} of {source.name} ({prompt} of the output notebook {output}{after})"


def cell_position(error: Any, source: Path, output: Path) -> tuple[int, bool] | None:
    """The 1-based position in ``source`` of the cell papermill's error names, and whether
    an injected-parameters cell comes before it in ``output``; None when the notebooks
    cannot be read back or the error names no cell."""
    index = getattr(error, "cell_index", None)
    if not isinstance(index, int):
        return None
    try:
        import nbformat

        ran = [
            cell
            for cell in nbformat.read(str(output), as_version=4).cells
            if ERROR_MARKER not in cell.get("metadata", {}).get("tags", ())
        ]
        written = nbformat.read(str(source), as_version=4).cells
        cell = ran[index]
    except Exception:  # an output notebook we cannot read back
        return None
    injected = sum(1 for c in ran[:index] if INJECTED in c.get("metadata", {}).get("tags", ()))
    ids = [c.get("id") for c in written]
    cell_id = cell.get("id")
    position = ids.index(cell_id) + 1 if cell_id and cell_id in ids else index + 1 - injected
    return position, injected > 0


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CELL_FRAME = re.compile(r"^(?:Cell In\s*\[\d*\]|Input In \[\d*\]), line (\d+)")


def plain_traceback(lines: Any) -> str:
    """A kernel's traceback lines as one text without terminal colours."""
    return _ANSI.sub("", "\n".join(str(line) for line in lines or ()))


def failing_line(traceback: str, cell_source: str) -> tuple[int, str] | None:
    """The line of the cell that raised: its number in the cell and its code, read from
    IPython's ``Cell In[n], line L`` frame header (None when the traceback has none: a
    ``SystemExit``, an error raised by a magic)."""
    for text in traceback.splitlines():
        match = _CELL_FRAME.match(text.strip())
        if match:
            number = int(match.group(1))
            lines = cell_source.splitlines()
            code = lines[number - 1].strip() if 0 < number <= len(lines) else ""
            return number, code
    return None
