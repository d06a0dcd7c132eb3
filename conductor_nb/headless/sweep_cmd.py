"""``conductor-nb run NB.ipynb --grid 'lr=[0.1, 0.01]' --grid 'seed=[1, 2]'``: a sweep.

The grid comes from ``--grid NAME=[V1, V2, ...]`` (repeatable: the cartesian product)
and/or ``--grid-file FILE`` (YAML or JSON: a mapping of lists, or a list of parameter
sets); ``-p`` values apply to every run. The sweep runs as a blueprint (see
:mod:`conductor_nb.headless.sweep`) with the blueprint options: ``--concurrency``,
``--executor``/``--scheduler``, ``--fail-fast``, progress, history. The result is the
sweep's table: one row per parameter set on stdout (``--json``: the same rows as
JSON), ``--report FILE.html`` writes the sweep report. Exit code 1 when any row
failed, 130 when interrupted (every kernel is stopped).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from conductor_nb.headless import common
from conductor_nb.headless.common import EXIT_INTERRUPTED, UsageError
from conductor_nb.headless.sweep import (
    SweepError,
    expand_grid,
    prepare_folders,
    sweep_blueprint,
    sweep_rows,
)


def add_sweep_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=[V1, V2]",
        help="sweep: run the notebook once per value (YAML/JSON list); several --grid "
        "run every combination",
    )
    group.add_argument(
        "--grid-file",
        metavar="FILE",
        help="sweep: a YAML/JSON mapping of lists, or a list of parameter sets",
    )
    group.add_argument(
        "--cwd-per-run",
        action="store_true",
        help="sweep: start each notebook in its own folder under -o DIR",
    )


def is_sweep_command(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "grid", None) or getattr(args, "grid_file", None))


def parse_grid(assignments: list[str], grid_file: str | None) -> Any:
    """The grid of ``--grid`` flags and ``--grid-file`` (flags add to a file's mapping)."""
    grid: Any = _grid_file(grid_file) if grid_file else {}
    if assignments and not isinstance(grid, dict):
        raise UsageError(
            f"--grid-file {grid_file} lists parameter sets; --grid adds values to a mapping "
            "of lists: give the whole grid in one place"
        )
    for text in assignments:
        name, sep, raw = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--grid {text!r}: expected NAME=[VALUE, ...]")
        try:
            values = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            why = getattr(exc, "problem", None) or exc
            raise UsageError(f"--grid {name}: not a YAML/JSON list ({why})") from None
        if not isinstance(values, list):
            raise UsageError(
                f"--grid {name}: expected a list like {name}=[1, 2], got {raw!r}; "
                f"a value for every run is -p {name}=..."
            )
        if name in grid:
            raise UsageError(f"--grid {name} is given twice")
        grid[name] = values
    return grid


def _grid_file(path: str) -> Any:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--grid-file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UsageError(f"--grid-file {path}{where}: not valid YAML/JSON") from None
    if isinstance(data, dict) and set(data) == {"grid"}:
        data = data["grid"]
    if not isinstance(data, dict | list):
        raise UsageError(
            f"--grid-file {path}: expected a mapping of lists or a list of parameter sets"
        )
    return data


def run_sweep_command(args: argparse.Namespace) -> int:
    from conductor_nb.headless.notebook_cmd import (
        cli_kernel_options,
        declared_parameters,
        notebook_params,
    )
    from conductor_nb.headless.run_cmd import run_options, wait_with_progress

    source = Path(args.file)
    if not source.is_file():
        raise UsageError(f"{args.file}: no such notebook")
    if args.file_roots:
        raise UsageError("--file-root applies to blueprints only (not notebooks)")
    common.import_modules(args.imports)
    kernel = cli_kernel_options(source, args.kernel, source.name)
    declared = declared_parameters(source, kernel)
    base = notebook_params(source, args, declared, name=source.name)
    try:
        sets = expand_grid(parse_grid(args.grid, args.grid_file), base)
    except SweepError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.output) if args.output else source.resolve().parent / f"{source.stem}-sweep"
    if out.suffix == ".ipynb":
        raise UsageError(f"-o {args.output}: a sweep writes a folder of notebooks; give a folder")
    bp = sweep_blueprint(
        source,
        sets,
        out,
        kernel=kernel.get("kernel_name"),
        cell_timeout=args.timeout,
        cwd_per_run=args.cwd_per_run,
    )
    options = run_options(args)
    options["settings"] = {"file_roots": prepare_folders(bp)}
    with common.route_node_output(echoed=args.progress != "none" and not args.quiet):
        run = bp.start(**options)
        code = wait_with_progress(run, args.progress, logs=not args.quiet, summary=False)
    _finish(run, code, args, out)
    return code


def _finish(run: Any, code: int, args: argparse.Namespace, out: Path) -> None:
    rows = sweep_rows(run)
    report = None
    if args.report:
        from conductor_nb.headless.sweep_report import write_sweep_report

        report = write_sweep_report(run, args.report)
    if args.json:
        common.print_json(
            {
                "run_id": run.id,
                "status": run.status.value,
                "exit_code": code,
                "notebook": str(Path(args.file)),
                "output_dir": str(out),
                "report": report,
                "rows": rows,
            }
        )
    else:
        print(rows_text(rows))
        failed = sum(1 for row in rows if row["status"] != "succeeded")
        print(
            f"sweep {run.id} {run.status.value}: {len(rows)} parameter sets, "
            f"{failed} not succeeded; output notebooks in {out}"
        )
        if code == EXIT_INTERRUPTED:
            print("interrupted: the sweep was cancelled, its kernels stopped")
        if report:
            print(f"report: {report}")
    sys.stdout.flush()


def rows_text(rows: list[dict[str, Any]], width: int = 40) -> str:
    """The rows as a plain text table (the output column shows file names only)."""
    columns = list(dict.fromkeys(k for row in rows for k in row))

    def show(column: str, value: Any) -> str:
        if value is None:
            return "-"
        if column == "output":
            return Path(str(value)).name
        text = str(value)
        return text if len(text) <= width else text[: width - 3] + "..."

    cells = [[show(c, row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)
