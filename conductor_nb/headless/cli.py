"""``conductor-nb``: run, validate, export and inspect blueprints and notebooks headlessly.

Exit codes: 0 success, 1 a node (or notebook cell) failed, 2 invalid input or
usage (blueprint problems are printed with where they are, never as a
traceback), 130 interrupted (Ctrl-C cancels the run cleanly).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from conductor_nb.errors import BlueprintError, ConductorError, MissingExtraError
from conductor_nb.headless import common
from conductor_nb.headless.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    code = _main(argv)
    if code == EXIT_INTERRUPTED and argv is None:
        _exit_now(code)
    return code


def _exit_now(code: int) -> None:
    """After an interrupt the run is cancelled and reported, but a sync node function may
    still be sleeping in a worker thread, which the interpreter would join at exit (thread
    pools are joined even when their threads are daemons). A command-line process ends now
    instead, with its output flushed (only when run as the console script)."""
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command | None = getattr(args, "command", None)
    if command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return command(args)
    except BlueprintError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except (common.UsageError, MissingExtraError) as exc:
        _error(str(exc))
        return EXIT_USAGE
    except ConductorError as exc:
        _error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="conductor-nb",
        description="Run, validate and export conductor_nb blueprints and notebooks.",
        epilog="exit codes: 0 ok, 1 a node or cell failed, 2 invalid input, 130 interrupted",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_run(sub)
    _add_validate(sub)
    p = sub.add_parser("schema", help="print the JSON Schema of the blueprint format")
    p.set_defaults(command=cmd_schema)
    _add_nodes(sub)
    _add_export(sub)
    from conductor_nb.headless.runs_cmd import add_parser as add_runs

    add_runs(sub)
    return parser


def _add_imports(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (it registers node types); repeatable",
    )


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run a blueprint (.yaml/.json) or a notebook (.ipynb)",
        description="Run a blueprint on the engine, or a notebook via papermill.",
    )
    p.add_argument("file", help="a blueprint (.yaml, .yml, .json) or a notebook (.ipynb)")
    p.add_argument(
        "-p",
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter, typed by its declared type",
    )
    p.add_argument("--params-file", metavar="FILE", help="a YAML/JSON mapping of parameters")
    _add_imports(p)
    g = p.add_argument_group("blueprints")
    g.add_argument("--concurrency", type=int, metavar="N", help="nodes running at once")
    g.add_argument("--executor", choices=("local", "process", "dask"), default="local")
    g.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address")
    g.add_argument("--fail-fast", action="store_true", help="stop everything at the first failure")
    g.add_argument("--json", action="store_true", help="print a machine-readable result")
    g.add_argument("--report", metavar="FILE.html", help="write a self-contained HTML report")
    g.add_argument(
        "--progress",
        choices=("auto", "rich", "plain", "none"),
        default="auto",
        help="progress display on stderr (auto: rich on a terminal)",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="do not echo node logs")
    g.add_argument("--no-history", action="store_true", help="do not record the run")
    n = p.add_argument_group("notebooks")
    n.add_argument(
        "-o",
        "--output",
        metavar="OUT.ipynb",
        help="output notebook (default: NAME.out.ipynb beside the input)",
    )
    n.add_argument("--cwd", metavar="DIR", help="working directory of the kernel")
    n.add_argument("--timeout", type=float, metavar="SECONDS", help="time limit per cell")
    n.add_argument("--kernel", metavar="NAME", help="kernel name (default: the notebook's)")
    p.set_defaults(command=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    if args.file.lower().endswith(".ipynb"):
        from conductor_nb.headless.papermill import run_notebook_command

        return run_notebook_command(args)
    for flag in ("output", "cwd", "timeout", "kernel"):
        if getattr(args, flag) is not None:
            raise common.UsageError(f"--{flag} applies to notebooks (.ipynb) only")
    from conductor_nb.headless.run_cmd import run_blueprint

    return run_blueprint(args)


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check blueprints; list every problem with where it is")
    p.add_argument("files", nargs="+", metavar="FILE")
    _add_imports(p)
    p.set_defaults(command=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    common.import_modules(args.imports)
    code = EXIT_OK
    for path in args.files:
        try:
            bp = common.load_blueprint(path)
            bp.validate()
        except BlueprintError as exc:
            sys.stdout.write(f"{path}: {exc}\n")
            code = EXIT_USAGE
        except common.UsageError as exc:
            sys.stdout.write(f"{path}: {exc}\n")
            code = EXIT_USAGE
        else:
            sys.stdout.write(f"{path}: ok ({len(bp.nodes)} nodes, {len(bp.edges)} edges)\n")
    return code


def cmd_schema(args: argparse.Namespace) -> int:
    from conductor_nb.model.schema import json_schema

    json.dump(json_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return EXIT_OK


def _add_nodes(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("nodes", help="list the registered node types, or describe one")
    p.add_argument("type", nargs="?", metavar="TYPE")
    p.add_argument("--version", type=int, help="a specific version of TYPE")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_imports(p)
    p.set_defaults(command=cmd_nodes)


def cmd_nodes(args: argparse.Namespace) -> int:
    from conductor_nb.headless.describe import describe_type, list_types
    from conductor_nb.model.types import registry

    common.import_modules(args.imports)
    if args.type is None:
        sys.stdout.write(list_types(registry, as_json=args.json))
        return EXIT_OK
    node_type = registry.find(args.type, args.version)
    if node_type is None:
        raise common.UsageError(registry.unknown_message(args.type, args.version))
    sys.stdout.write(describe_type(node_type, as_json=args.json))
    return EXIT_OK


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("export", help="export a blueprint as a notebook, SVG, JSON or YAML")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--to", required=True, choices=("notebook", "svg", "json", "yaml"))
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="where to write (default: stdout "
        "for svg/json/yaml, NAME.ipynb beside FILE for notebook)",
    )
    _add_imports(p)
    p.set_defaults(command=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from conductor_nb.headless.export import export_command

    common.import_modules(args.imports)
    return export_command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
