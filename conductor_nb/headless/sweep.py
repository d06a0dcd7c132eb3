"""Notebook sweeps: one notebook run over a grid of parameters, as one run of the engine.

A sweep is an ordinary blueprint: one ``notebook`` node per parameter set and no
edges, so every rule of the engine gives a sweep what its users expect, with no
code of its own:

- ``concurrency`` bounds the kernels running at once, and the process and Dask
  executors run the notebooks as they run any node;
- a failing notebook fails its own node (its row), not the others, and the run
  ends ``failed`` (exit code 1) when any row failed; ``fail_fast`` stops the rest;
- the history records the sweep like any run, so ``conductor-nb runs resume ID``
  (``cnb.resume``) runs only the failed and interrupted rows again;
- the graph view shows one node per parameter set, coloured by its state.

What is a sweep's own: expanding the grid (a mapping of lists is a cartesian
product, a list of mappings is taken as written), naming each output notebook by
its parameters (sanitised, never colliding), and reading the run back as a table:
one row per parameter set with its parameters, status, duration, the values the
notebook recorded with ``cnb.record``, its output notebook and its error.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor_nb.errors import ConductorError

if TYPE_CHECKING:
    from conductor_nb.engine.run import Run
    from conductor_nb.model.blueprint import Blueprint

Grid = Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]
"""A mapping of parameter name -> list of values (every combination is run), or a list
of parameter sets (each run as written)."""

ID_PREFIX = "sweep-"
NODE_PREFIX = "set_"
STATUS_COLUMNS = ("status", "duration", "output", "error")


class SweepError(ConductorError, ValueError):
    """A grid that cannot be swept (not a list, empty, a name given twice...)."""


def expand_grid(grid: Grid, base: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The parameter sets of ``grid``, each on top of ``base`` (values for every run).

    >>> expand_grid({"lr": [0.1, 0.01], "seed": [1, 2]})[1]
    {'lr': 0.1, 'seed': 2}
    """
    base = dict(base or {})
    if isinstance(grid, Mapping):
        sets = _product(grid)
    elif isinstance(grid, Sequence) and not isinstance(grid, str):
        sets = [_one_set(entry, f"grid[{i}]") for i, entry in enumerate(grid)]
    else:
        raise SweepError(
            f"a grid is a mapping of lists or a list of parameter sets, got {_kind(grid)}"
        )
    if not sets:
        raise SweepError("the grid is empty: give at least one parameter set")
    for name in sorted({key for entry in sets for key in entry} & set(base)):
        raise SweepError(
            f"parameter {name!r} is given both for every run and in the grid; give it in one place"
        )
    return [{**entry, **base} for entry in sets]


def _product(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    for name, values in grid.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise SweepError(f"grid parameter names are identifiers, got {name!r}")
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise SweepError(
                f"grid {name!r}: expected a list of values, got {_kind(values)} "
                f"(write {name}=[{values!r}] for a single value)"
            )
        if not values:
            raise SweepError(f"grid {name!r}: the list of values is empty")
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


def _one_set(entry: Any, where: str) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise SweepError(f"{where}: expected a mapping of parameter values, got {_kind(entry)}")
    for name in entry:
        if not isinstance(name, str) or not name.isidentifier():
            raise SweepError(f"{where}: parameter names are identifiers, got {name!r}")
    return dict(entry)


def _kind(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def output_names(stem: str, sets: Sequence[Mapping[str, Any]], varying: Sequence[str]) -> list[str]:
    """``NB-lr=0.1-seed=1``: a file name per set from the parameters that vary, made safe
    for every file system and unique (a ``-2``, ``-3``... suffix where two would collide)."""
    names: list[str] = []
    taken: set[str] = set()
    for index, values in enumerate(sets, start=1):
        parts = [f"{key}={_plain(values[key])}" for key in varying if key in values]
        name = _safe("-".join([stem, *parts]) if parts else f"{stem}-{index}")
        unique, n = name, 2
        while unique.lower() in taken:  # case-insensitive file systems too
            unique, n = f"{name}-{n}", n + 1
        taken.add(unique.lower())
        names.append(unique)
    return names


def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(_plain(v) for v in value)
    return str(value)


def _safe(name: str, limit: int = 120) -> str:
    name = re.sub(r"[^A-Za-z0-9._=,+-]+", "_", name).strip("._") or "run"
    return name[:limit]


def varying_keys(sets: Sequence[Mapping[str, Any]]) -> list[str]:
    """The parameter names whose value differs between the sets (all of them for one set)."""
    keys = list(dict.fromkeys(key for entry in sets for key in entry))
    if len(sets) <= 1:
        return keys
    return [key for key in keys if len({repr(entry.get(key)) for entry in sets}) > 1]


def sweep_blueprint(
    notebook: str | Path,
    sets: Sequence[Mapping[str, Any]],
    output_dir: str | Path,
    *,
    kernel: str | None = None,
    cell_timeout: float | None = None,
    cwd_per_run: bool = False,
) -> Blueprint:
    """The blueprint of a sweep: one ``notebook`` node per parameter set (``set_1``...)."""
    from conductor_nb.model.blueprint import Blueprint

    source = Path(notebook).resolve()
    out = Path(output_dir).resolve()
    varying = varying_keys(sets)
    bp = Blueprint(
        f"{ID_PREFIX}{_safe(source.stem)}",
        name=f"Sweep of {source.name}",
        description=f"{source.name} run over {len(sets)} parameter set(s)",
    )
    for index, (values, name) in enumerate(
        zip(sets, output_names(source.stem, sets, varying), strict=True), start=1
    ):
        label = ", ".join(f"{k}={_plain(values[k])}" for k in varying if k in values)
        node_params: dict[str, Any] = {
            "path": str(source),
            "output_path": str(out / f"{name}.ipynb"),
            "parameters": dict(values),
        }
        if kernel:
            node_params["kernel"] = kernel
        if cell_timeout is not None:
            node_params["cell_timeout"] = cell_timeout
        if cwd_per_run:
            node_params["cwd"] = str(out / name)
        bp.add(
            "notebook", id=f"{NODE_PREFIX}{index}", name=label or source.stem, params=node_params
        )
    return bp


def is_sweep(bp: Blueprint) -> bool:
    """Whether ``bp`` is a sweep's blueprint (as made by :func:`sweep_blueprint`)."""
    return (
        bp.id.startswith(ID_PREFIX)
        and not bp.edges
        and bool(bp.nodes)
        and all(n.type == "notebook" and i.startswith(NODE_PREFIX) for i, n in bp.nodes.items())
    )


def prepare_folders(bp: Blueprint) -> list[str]:
    """Create the output folder (and each run's working folder) of a sweep's blueprint;
    return the folders its notebook nodes may touch (the run's file roots)."""
    roots = [str(Path.cwd())]
    for node in bp.nodes.values():
        for key in ("path", "output_path", "cwd"):
            value = node.params.get(key)
            if not value:
                continue
            folder = Path(value) if key == "cwd" else Path(value).parent
            if key != "path":
                folder.mkdir(parents=True, exist_ok=True)
            if str(folder) not in roots:
                roots.append(str(folder))
    return roots


def sweep_rows(run: Run) -> list[dict[str, Any]]:
    """One row per parameter set of a sweep's run: its parameters, status, duration, the
    values the notebook recorded (a recorded name that is also a parameter's gets a
    ``recorded.`` prefix), the output notebook and the first line of its error."""
    rows = []
    for node_id, node in _sweep_nodes(run.blueprint):
        record = run.node_runs.get(node_id)
        params = dict(node.params.get("parameters") or {})
        row: dict[str, Any] = dict(params)
        row["status"] = record.status.value if record else "pending"
        row["duration"] = round(record.duration, 3) if record and record.duration else None
        outputs = (record.outputs or {}) if record and record.status.is_success else {}
        records: Any = outputs.get("records") or {}
        if callable(getattr(records, "result", None)):  # on Dask: a future of the values
            records = records.result()
        for name, value in records.items():
            row[f"recorded.{name}" if name in params or name in STATUS_COLUMNS else name] = value
        row["output"] = node.params.get("output_path")
        error = record.error if record else None
        row["error"] = str(error).strip().splitlines()[0] if error else None
        rows.append(row)
    return rows


def _sweep_nodes(bp: Blueprint) -> Iterator[tuple[str, Any]]:
    """The sweep's nodes in parameter-set order (set_1, set_2, ..., set_10)."""
    items = [(i, n) for i, n in bp.nodes.items() if i.startswith(NODE_PREFIX)]
    yield from sorted(items, key=lambda item: int(item[0][len(NODE_PREFIX) :] or 0))


def as_table(rows: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame of ``rows`` when pandas is installed, else the rows themselves."""
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows)


class SweepRun:
    """A sweep's run: the :class:`~conductor_nb.Run` it is (``.run``, and every attribute
    of a Run through this handle: ``status``, ``wait()``, ``cancel()``, ``view()``...),
    plus :meth:`table` and :meth:`report`."""

    def __init__(self, run: Run) -> None:
        self.run = run

    def __getattr__(self, name: str) -> Any:
        return getattr(self.run, name)

    def __getitem__(self, node_id: str) -> Any:
        return self.run[node_id]

    def __await__(self) -> Any:
        yield from self.run.__await__()
        return self

    def rows(self) -> list[dict[str, Any]]:
        """One dict per parameter set (see :func:`sweep_rows`)."""
        return sweep_rows(self.run)

    def table(self) -> Any:
        """One row per parameter set: a pandas DataFrame when pandas is installed, else
        a list of dicts."""
        return as_table(self.rows())

    def charts(self) -> list[str]:
        """SVG charts of each recorded number against the parameter, when exactly one
        numeric parameter varies (else none)."""
        from conductor_nb.headless.sweep_report import charts

        return charts(self.rows())

    def report(self, path: str | Path) -> str:
        """Write a self-contained HTML report of the sweep; return its path."""
        from conductor_nb.headless.sweep_report import write_sweep_report

        return write_sweep_report(self.run, path)

    def _ipython_display_(self) -> None:
        """In a notebook: the graph view (a node per parameter set, coloured by state) and
        the table, which follows a running sweep live (updated at most twice a second)."""
        from IPython.display import HTML, display

        try:
            display(self.run.view())
        except Exception:  # no widget stack: the run's static picture
            display(self.run)
        handle = display(HTML(self._html()), display_id=True)
        if handle is not None and not self.run.is_finished:
            self._follow(handle, HTML)

    def _html(self) -> str:
        from conductor_nb.headless.sweep_report import charts, rows_html

        rows = self.rows()
        return rows_html(rows, links=False) + "".join(charts(rows))

    def _follow(self, handle: Any, html: Any, every: float = 0.5) -> None:
        from conductor_nb.engine.events import NodeEvent, RunFinished

        shown = [0.0]

        def update(event: Any) -> None:
            now = time.monotonic()
            if isinstance(event, RunFinished):
                unsubscribe()
            elif now - shown[0] < every:
                return
            shown[0] = now
            handle.update(html(self._html()))

        unsubscribe = self.run.subscribe(update, NodeEvent, RunFinished)

    def __repr__(self) -> str:
        return f"<SweepRun {self.run.id} {self.run.status.value}: {len(self.rows())} sets>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = dict(self.run._repr_mimebundle_(include, exclude))
        bundle["text/html"] = self._html()
        return bundle


def sweep(
    notebook: str | Path,
    grid: Grid,
    *,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | Path | None = None,
    concurrency: int | None = None,
    executor: Any = None,
    fail_fast: bool = False,
    cwd_per_run: bool = False,
    kernel: str | None = None,
    cell_timeout: float | None = None,
    wait: bool = True,
    **options: Any,
) -> SweepRun:
    """Run ``notebook`` once per parameter set of ``grid``; return the :class:`SweepRun`.

    ``grid`` is a mapping of lists (every combination) or a list of parameter sets;
    ``parameters`` apply to every run. Each output notebook is written to
    ``output_dir`` (default ``<notebook stem>-sweep/`` beside the notebook), named by
    its parameters. ``concurrency`` (default: the number of CPUs) bounds the kernels
    running at once; ``executor`` is any executor a blueprint takes (``"process"``,
    ``cnb.DaskExecutor(...)``). With ``wait=False`` the sweep runs in the background
    and this returns at once (``.view()``, ``.table()`` show it live). Other keywords
    are run options (``history=False``...).
    """
    source = Path(notebook)
    if not source.is_file():
        raise SweepError(f"{notebook}: no such notebook")
    sets = expand_grid(grid, parameters)
    out = Path(output_dir) if output_dir else source.resolve().parent / f"{source.stem}-sweep"
    bp = sweep_blueprint(
        source, sets, out, kernel=kernel, cell_timeout=cell_timeout, cwd_per_run=cwd_per_run
    )
    roots = prepare_folders(bp)
    settings = {**options.pop("settings", {}), "file_roots": roots}
    run = bp.start(
        concurrency=concurrency or os.cpu_count() or 2,
        executor=executor if executor is not None else "local",
        fail_fast=fail_fast,
        settings=settings,
        **options,
    )
    handle = SweepRun(run)
    if wait:
        run.wait()
    return handle
