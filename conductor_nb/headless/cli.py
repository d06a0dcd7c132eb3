"""``conductor-nb``: run, validate, export and inspect blueprints and notebooks headlessly.

Exit codes: 0 success, 1 a node (or notebook cell) failed, 2 invalid input or
usage (blueprint problems are printed with where they are, never as a
traceback), 130 interrupted (Ctrl-C cancels the run cleanly). With ``--json``,
stdout carries exactly one JSON object whatever happens, user errors included
(``{"status": "error", "exit_code": 2, "error": ..., "problems": [...]}``).
When stdout is closed before all the output is written (``conductor-nb schema |
head -1``), the command ends quietly, without a traceback, with exit code 1.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from conductor_nb.engine.executors import executor_kinds
from conductor_nb.errors import BlueprintError, ConductorError, MissingExtraError
from conductor_nb.headless import atomiton_cmd, common, run_options
from conductor_nb.headless.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
    except BrokenPipeError:
        code = _stdout_closed()
    if code == EXIT_INTERRUPTED and argv is None:
        _exit_now(code)
    return code


def _stdout_closed() -> int:
    """The reader of stdout went away (``conductor-nb schema | head -1``): end quietly, the
    way the Python docs recommend for SIGPIPE. Exit code 1, as there: not all the output
    was delivered, and a failed run must not read as a success under ``set -o pipefail``
    (tools killed by SIGPIPE exit non-zero too). Pointing stdout at devnull keeps the
    interpreter's last flush at exit from reporting the broken pipe all over again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # no file behind stdout: nothing to flush
        pass
    return EXIT_FAILED


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
    argv = run_options.papermill_pairs(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(parser, argv)
    except CommandLineError as exc:
        return _bad_command_line(exc, argv)
    command: Command | None = getattr(args, "command", None)
    if command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return command(args)
    except (BlueprintError, common.UsageError, MissingExtraError) as exc:
        return _fail(args, exc, EXIT_USAGE)
    except ConductorError as exc:
        return _fail(args, exc, EXIT_FAILED)
    except KeyboardInterrupt:
        return _fail(args, None, EXIT_INTERRUPTED)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parse_args``, but ``run IN -p x=1 OUT`` works as papermill's ``IN OUT -p x 1``
    (argparse alone takes positionals only before the first option)."""
    args, extra = parser.parse_known_args(argv)
    if (
        len(extra) == 1
        and not extra[0].startswith("-")
        and getattr(args, "command", None) is cmd_run
        and args.output_path is None
    ):
        args.output_path, extra = extra[0], []
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _fail(args: argparse.Namespace, exc: BaseException | None, code: int) -> int:
    """Report a command that failed before (or instead of) a run: the message (and hints)
    on stderr and, with ``--json``, one JSON object on stdout, so a CI job always has a
    result to parse."""
    message = "interrupted" if exc is None else str(exc)
    hints = [] if exc is None else error_hints(exc, getattr(args, "imports", ()))
    sys.stderr.write(f"error: {message}\n")
    for hint in hints:
        sys.stderr.write(f"hint: {hint}\n")
    if getattr(args, "json", False):
        from conductor_nb.headless.result import error_result

        found = blueprint_error(exc)
        status = "cancelled" if exc is None else "error"
        problems = found.problems if found is not None else ()
        common.print_json(
            error_result(message, code, problems=problems, hints=hints, status=status)
        )
    return code


def blueprint_error(exc: BaseException | None) -> BlueprintError | None:
    """The BlueprintError behind ``exc`` (itself, or what it was raised from), if any."""
    for item in _chain(exc):
        if isinstance(item, BlueprintError):
            return item
    return None


def _chain(exc: BaseException | None) -> list[BaseException]:
    chain: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in chain):
        chain.append(exc)
        exc = exc.__cause__ or exc.__context__
    return chain


_UNKNOWN_TYPE = re.compile(r"unknown node type (['\"]).+?\1")


def error_hints(exc: BaseException, imports: Sequence[str] = ()) -> list[str]:
    """Fixes the message itself cannot know: those a UsageError carries, and for a node
    type the registry lacks, which is usually a ``@cnb.node`` function whose module this
    process never imported (a blueprint saved from a notebook or script), the ``--import``
    option only the CLI knows."""
    if isinstance(exc, common.UsageError) and exc.hints:
        return list(exc.hints)
    if type(exc).__name__ == "FlowConversionError":
        return [atomiton_cmd.LENIENT_HINT]
    if not any(_UNKNOWN_TYPE.search(str(item)) for item in _chain(exc)):
        return []
    done = f"; imported so far: {', '.join(imports)}" if imports else ""
    return [
        f"node types defined in Python: pass --import MODULE (the module that defines them{done})"
    ]


class CommandLineError(Exception):
    """argparse's complaint about the command line, raised (instead of exiting) so that
    ``--json`` can answer with a JSON object too."""

    def __init__(self, parser: argparse.ArgumentParser, message: str) -> None:
        super().__init__(message)
        self.parser = parser
        self.message = message


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandLineError(self, message)


def _bad_command_line(exc: CommandLineError, argv: Sequence[str]) -> int:
    exc.parser.print_usage(sys.stderr)
    sys.stderr.write(f"{exc.parser.prog}: error: {exc.message}\n")
    if "--json" in argv:
        from conductor_nb.headless.result import error_result

        common.print_json(error_result(f"{exc.parser.prog}: {exc.message}", EXIT_USAGE))
    sys.stdout.flush()
    sys.stderr.flush()
    return EXIT_USAGE


class _Version(argparse.Action):
    """``--version``, papermill's way: ``VERSION from WHERE (PYTHON)``; ``run --version``
    adds the papermill and nbclient it runs notebooks with."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", argparse.SUPPRESS)
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(version_text(with_papermill=parser.prog.endswith(" run")) + "\n")
        parser.exit()


def version_text(*, with_papermill: bool = False) -> str:
    import platform
    from importlib import metadata
    from pathlib import Path

    import conductor_nb

    where = Path(conductor_nb.__file__).parent
    text = f"conductor-nb {conductor_nb.__version__} from {where} ({platform.python_version()})"
    if not with_papermill:
        return text
    found = []
    for name in ("papermill", "nbclient"):
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return f"{text}; notebooks run with {', '.join(found)}"


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _Parser(
        prog="conductor-nb",
        description="Run, validate and export conductor_nb blueprints and notebooks.",
        epilog="exit codes: 0 ok, 1 a node or cell failed, 2 invalid input, 130 interrupted",
    )
    parser.add_argument(
        "--version", action=_Version, help="print the version (and Python's) and exit"
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_run(sub)
    _add_validate(sub)
    p = sub.add_parser("schema", help="print the JSON Schema of the blueprint format")
    p.set_defaults(command=cmd_schema)
    _add_nodes(sub)
    _add_export(sub)
    atomiton_cmd.add_parser(sub)
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
        description="Run a blueprint on the engine, or a notebook via papermill (every "
        "papermill option works, with its name). A blueprint given an output notebook runs "
        "in a kernel too and the notebook is its report.",
        epilog="exit codes: 0 ok, 1 a node or cell failed, 2 invalid input, 130 interrupted, "
        "138 the notebook's kernel died (as papermill)",
    )
    p.add_argument(
        "file",
        nargs="?",
        help="a blueprint (.yaml, .yml, .json) or a notebook (.ipynb; - or a pipe: stdin)",
    )
    p.add_argument(
        "output_path",
        nargs="?",
        metavar="OUTPUT",
        help="the output notebook, as papermill's second argument (same as -o)",
    )
    run_options.add_parameters(p)
    _add_imports(p)
    p.add_argument("--version", action=_Version, help="print the versions (papermill's too)")
    g = p.add_argument_group("blueprints")
    g.add_argument("--concurrency", type=int, metavar="N", help="nodes running at once")
    kinds = executor_kinds()
    g.add_argument(
        "--executor",
        choices=sorted(kinds),
        default="local",
        help="where nodes run: "
        + "; ".join(f"{kind.name}: {kind.description}" for kind in kinds.values()),
    )
    g.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="the scheduler to connect to (--executor "
        + " or ".join(k.name for k in kinds.values() if k.takes_address)
        + ")",
    )
    g.add_argument(
        "--connect-timeout",
        type=float,
        metavar="SECONDS",
        help=f"how long to try reaching --scheduler (default {common.CONNECT_TIMEOUT:g})",
    )
    g.add_argument("--fail-fast", action="store_true", help="stop everything at the first failure")
    common.add_file_roots(g)
    atomiton_cmd.add_flow_options(g)
    common.add_env(g)
    g.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="cache every node's result and reuse it while its code, params and inputs "
        "are unchanged; --no-cache: run every node afresh (default: each node's `cache` setting)",
    )
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
    n = run_options.add_notebook_options(p)
    from conductor_nb.headless.sweep_cmd import add_sweep_arguments

    add_sweep_arguments(n)
    p.set_defaults(command=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    run_options.follow_pipes(args, stdin_piped=run_options.stdin_is_pipe())
    if args.file.lower().endswith(".ipynb") or args.file == run_options.STDIO:
        from conductor_nb.headless.notebook_cmd import run_notebook_command
        from conductor_nb.headless.sweep_cmd import is_sweep_command, run_sweep_command

        if is_sweep_command(args):
            return run_sweep_command(args)

        if args.file_roots:
            raise common.UsageError("--file-root applies to blueprints only (not notebooks)")
        if args.env_names:
            raise common.UsageError("--env applies to blueprints only (not notebooks)")

        return run_notebook_command(args)
    if args.grid or args.grid_file or args.cwd_per_run:
        raise common.UsageError(
            "--grid, --grid-file and --cwd-per-run apply to notebooks (.ipynb) only"
        )
    if args.output or args.output_path:
        from conductor_nb.headless.blueprint_notebook import run_blueprint_command

        return run_blueprint_command(args)
    given = [
        name
        for name, default in run_options.NOTEBOOK_DEFAULTS.items()
        if getattr(args, name) != default
    ]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise common.UsageError(
            f"{flags} apply to notebooks (.ipynb), or to a blueprint run into an output "
            "notebook (-o OUT.ipynb)"
        )
    from conductor_nb.headless.run_cmd import run_blueprint

    return run_blueprint(args)


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check blueprints; list every problem with where it is")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print a machine-readable result")
    common.add_file_roots(p)
    common.add_env(p)
    _add_imports(p)
    atomiton_cmd.add_flow_options(p)
    p.set_defaults(command=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    """One line per file (``FILE: ok (...)`` or ``FILE: N problems ...`` and the problems),
    or with ``--json`` one object: ``{"status", "exit_code", "files": [...], "hints"}``."""
    common.import_modules(args.imports)
    flow = atomiton_cmd.flow_options(args)
    checked = [_validate_one(path, args, **flow) for path in args.files]
    code = EXIT_OK if all(exc is None for _, _, exc in checked) else EXIT_USAGE
    hints = sorted(
        {
            hint
            for _, _, exc in checked
            if exc is not None
            for hint in error_hints(exc, args.imports)
        }
    )
    if args.json:
        status = "ok" if code == EXIT_OK else "error"
        files = [entry for entry, _, _ in checked]
        common.print_json({"status": status, "exit_code": code, "files": files, "hints": hints})
        return code
    for entry, text, _ in checked:
        sys.stdout.write(f"{entry['file']}: {text}\n")
    for hint in hints:
        sys.stdout.write(f"hint: {hint}\n")
    return code


def _check_run(bp: Blueprint, args: argparse.Namespace) -> None:
    """What a run with these options would refuse before starting: literal paths of file
    nodes outside the file roots, ``{{ env.NAME }}`` not exposed."""
    from conductor_nb.engine import environ
    from conductor_nb.headless.run_cmd import file_roots
    from conductor_nb.nodes.file_roots import path_problems, run_settings

    roots = args.file_roots
    settings = run_settings(bp, {"file_roots": file_roots(roots, bp)} if roots else {})
    found = path_problems(bp, settings)
    found += environ.problems(bp, environ.exposed(bp, args.env_names))
    if found:
        raise BlueprintError(found, name=bp.id, source=bp.source)


def _validate_one(
    path: str, args: argparse.Namespace, **flow: Any
) -> tuple[dict[str, Any], str, ConductorError | None]:
    """The file's JSON entry, its line of text (after ``FILE: ``) and the error, if any."""
    from conductor_nb.headless.result import problem_result

    try:
        bp = common.load_blueprint(path, **flow)
        bp.validate()
        _check_run(bp, args)
    except (BlueprintError, common.UsageError) as exc:
        found = blueprint_error(exc)
        text = _problems_text(found) if found else _without_location(str(exc), path)
        problems = [problem_result(p) for p in found.problems] if found else []
        failed = {"file": path, "status": "error", "error": text, "problems": problems}
        return failed, text, exc
    counts = f"{common.plural(len(bp.nodes), 'node')}, {common.plural(len(bp.edges), 'edge')}"
    entry: dict[str, Any] = {
        "file": path,
        "status": "ok",
        "blueprint_id": bp.id,
        "nodes": len(bp.nodes),
        "edges": len(bp.edges),
        "problems": [],
    }
    return entry, f"ok ({counts})", None


def _without_location(message: str, path: str) -> str:
    """``validate`` starts each line with the file: drop it from a message that has it."""
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _problems_text(exc: BlueprintError) -> str:
    """The BlueprintError's message without its ``(source)``, which the line starts with."""
    head = common.plural(len(exc.problems), "problem")
    if exc.blueprint_name:
        head += f" in blueprint {exc.blueprint_name!r}"
    rendered = ("  " + p.render().replace("\n", "\n  ") for p in exc.problems)
    return "\n".join([head, *rendered])


def cmd_schema(args: argparse.Namespace) -> int:
    from conductor_nb.model.schema import json_schema

    common.print_json(json_schema())
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
    p.add_argument("--to", required=True, choices=("notebook", "svg", "json", "yaml", "atomiton"))
    p.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="where to write (default: stdout "
        "for svg/json/yaml/atomiton, NAME.ipynb beside FILE for notebook)",
    )
    _add_imports(p)
    atomiton_cmd.add_flow_options(p)
    p.set_defaults(command=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from conductor_nb.headless.export import export_command

    common.import_modules(args.imports)
    return export_command(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
