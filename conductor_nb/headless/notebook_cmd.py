"""``conductor-nb run NOTEBOOK.ipynb``: papermill's command line, with clearer outcomes.

Every papermill option has its papermill name and meaning (``-p NAME VALUE`` or
``-p NAME=VALUE``, ``-r``, ``-y``, ``-b``, ``-f``, ``-k``, ``-l``, ``--cwd``,
``--report-mode``, ``--prepare-only``, ``--log-output``, ``--stdout-file``,
``--stderr-file``, ``--start-timeout``, ``--execution-timeout``,
``--inject-paths``, ``--engine``, ``--help-notebook``...), the output notebook is
the positional OUTPUT or ``-o``, and ``-`` reads the notebook from stdin or
writes it to stdout; as with papermill, a pipe is enough (no FILE with a notebook
piped in; no OUTPUT with stdout a pipe or a file; see
:func:`~conductor_nb.headless.run_options.follow_pipes`). As with papermill, an
undeclared parameter, a notebook without a ``parameters`` cell and a value whose type
differs from the declared default are injected anyway; each gets one ``warning:`` line
(``--strict`` makes them errors, exit 2, before a kernel starts). papermill's own log goes to stderr
once, never twice. The result: one line (a failed cell is named by its place in
the source notebook, its first line, the line that raised and the exception), or
with ``--json`` one object with the full traceback. Exit codes: 0, 1 (a cell
failed or timed out), 2 (usage), 130 (interrupted) and, as papermill, 138 when
the kernel died.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from conductor_nb.errors import BlueprintError, Problem
from conductor_nb.headless.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    print_json,
)
from conductor_nb.headless.papermill import (
    DEAD_KERNEL,
    NotebookError,
    NotebookOptions,
    NotebookResult,
    execute,
)
from conductor_nb.headless.run_options import STDIO, default_output, stdout_is_piped
from conductor_nb.nodes.notebooks import KernelChoiceError, kernel_options, notebook_metadata

EXIT_DEAD_KERNEL = 138
"""papermill's exit code when the kernel died."""


class DeclaredParameters(NamedTuple):
    """What a notebook's ``parameters`` cell declares, as papermill reads it."""

    has_cell: bool
    """Whether some cell carries the ``parameters`` tag."""
    readable: bool
    """Whether papermill can list the cell's names for this kernel's language (if not,
    no ``-p`` name can be told to be unknown)."""
    types: dict[str, str]
    """Declared name -> param type, inferred from the default values."""
    defaults: dict[str, str]
    """Declared name -> its default, as written."""
    helps: dict[str, str]
    """Declared name -> the comment after it."""


def declared_parameters(path: Path, options: Mapping[str, Any]) -> DeclaredParameters:
    """The notebook's declared parameters, read like ``papermill --help-notebook`` does;
    ``options`` is what :func:`kernel_options` chose."""
    from conductor_nb._extras import require

    require("papermill", "papermill", "running notebooks")
    import nbformat
    from papermill.translators import papermill_translators

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # not JSON, not a notebook, unreadable
        raise UsageError(f"{path}: not a readable notebook ({exc})") from None
    tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", ())]
    if not tagged:
        return DeclaredParameters(False, True, {}, {}, {})
    try:
        translator = papermill_translators.find_translator(
            options.get("kernel_name"), options.get("language")
        )
        found = translator.inspect(tagged[0])
    except Exception:  # no translator, no kernel/language metadata, or no introspection
        return DeclaredParameters(True, False, {}, {}, {})
    return DeclaredParameters(
        True,
        True,
        {p.name: _param_type(p._asdict()) for p in found},
        {p.name: str(p.default) for p in found},
        {p.name: str(p.help or "") for p in found},
    )


def _param_type(info: Mapping[str, Any]) -> str:
    import ast

    from conductor_nb.model.params import infer_type

    hinted = str(info.get("inferred_type_name") or "None")
    if hinted in ("int", "float", "bool", "str", "list", "dict"):
        return hinted
    try:
        return infer_type(ast.literal_eval(str(info.get("default"))))
    except (ValueError, SyntaxError):
        return "any"


# ------------------------------------------------------------------------------ parameters


def notebook_params(
    source: Path,
    args: argparse.Namespace,
    declared: DeclaredParameters,
    *,
    name: str,
) -> dict[str, Any]:
    """The parameters to inject, from ``-b``/``-f``/``-y``/``-p``/``-r`` in papermill's
    order. What papermill would only log (or not notice) is one ``warning:`` line each, or
    with ``--strict`` a user error listing every problem."""
    from conductor_nb.headless.params import (
        ParamValueError,
        merge_yaml_sources,
        notebook_assignments,
        split_assignment,
    )

    for text in args.params:  # a -p without its value: papermill's usage error (exit 2)
        try:
            split_assignment(text)
        except ParamValueError as exc:
            raise UsageError(
                f"-p {text}: {exc}", hints=["papermill's form works too: -p NAME VALUE"]
            ) from None
    try:
        base = merge_yaml_sources(
            files=args.params_file, yaml_texts=args.yaml_params, base64_texts=args.base64_params
        )
    except ParamValueError as exc:
        raise UsageError(str(exc)) from None
    values, problems = notebook_assignments(
        declared.types if declared.readable and declared.has_cell else None,
        base=base,
        assignments=args.params,
        raw=[tuple(pair) for pair in args.raw_params],
        owner=f"notebook {name!r}",
    )
    if values and not declared.has_cell:
        problems.insert(0, _no_parameters_cell(name, list(values)))
    if args.strict and problems:
        raise BlueprintError(problems)
    for problem in problems:
        sys.stderr.write(f"warning: {problem.render()}\n")
    if problems:
        sys.stderr.write(
            "    (injected as given, as papermill does; --strict refuses to run instead)\n"
        )
    return values


def _no_parameters_cell(name: str, given: list[str]) -> Problem:
    return Problem(
        "parameters",
        f"notebook {name!r} has no parameters cell, so the values ({', '.join(given)}) "
        "go into a new first cell",
        (
            "fix: put the defaults in one cell (e.g. `date = '2026-11-24'`) and give that "
            "cell the tag `parameters`; the values are then injected in a new cell after it",
            "(in JupyterLab: select the cell, open the property inspector, the gear icon in "
            "the right sidebar, then Common Tools > Cell Tags > Add Tag)",
        ),
    )


def injected_paths(args: argparse.Namespace, input_path: str, output_path: str) -> dict[str, str]:
    """``--inject-input-path``, ``--inject-output-path``, ``--inject-paths``: papermill's
    ``PAPERMILL_INPUT_PATH``/``PAPERMILL_OUTPUT_PATH`` parameters, as given."""
    paths: dict[str, str] = {}
    if args.inject_input_path or args.inject_paths:
        paths["PAPERMILL_INPUT_PATH"] = input_path
    if args.inject_output_path or args.inject_paths:
        paths["PAPERMILL_OUTPUT_PATH"] = output_path
    return paths


def format_path(path: str, params: Mapping[str, Any]) -> str:
    """papermill formats the output path with the parameters (``out-{date}.ipynb``)."""
    if "{" not in path:
        return path
    from papermill.parameterize import add_builtin_parameters

    try:
        return path.format(**add_builtin_parameters(dict(params)))
    except (KeyError, IndexError, ValueError) as exc:
        raise UsageError(
            f"output path {path!r}: cannot fill in {exc} from the parameters",
            hints=["braces in the output path name parameters, e.g. out-{date}.ipynb"],
        ) from None


# ------------------------------------------------------------------------------ the command


def run_notebook_command(args: argparse.Namespace) -> int:
    from conductor_nb.headless.common import import_modules

    import_modules(args.imports)
    with contextlib.ExitStack() as stack:
        stack.enter_context(papermill_log(args.log_level, log_output=args.log_output))
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cnb-nb-")))
        source, shown = _input_notebook(args.file, folder)
        choice = cli_kernel_options(source, args.kernel, shown)
        if args.language:
            choice["language"] = args.language
        declared = declared_parameters(source, choice)
        if args.help_notebook:
            return help_notebook(shown, declared)
        output_name = _output_name(args)
        params = injected_paths(args, args.file, output_name)
        params.update(notebook_params(source, args, declared, name=shown))
        output_name = format_path(output_name, params)
        to_stdout = output_name == STDIO
        target = folder / "stdout.ipynb" if to_stdout else Path(output_name)
        settings = notebook_settings(args, stack, to_stdout=to_stdout)
        result: dict[str, Any] = {"notebook": args.file, "output": output_name}
        result["parameters"] = params
        try:
            done = execute(source, target, params, settings, kernel_choice=choice)
        except NotebookError as exc:
            _restore_paths(exc.output, args.file, output_name)
            _emit(exc.output, to_stdout)
            return _failed(args, result, exc, shown)
        except KeyboardInterrupt:
            result.update(status="cancelled", exit_code=EXIT_INTERRUPTED)
            _report(args, result, "interrupted: the notebook run was stopped", to_stdout)
            return EXIT_INTERRUPTED
        _restore_paths(done.output, args.file, output_name)
        _emit(done.output, to_stdout)
        return _succeeded(args, result, done, shown, to_stdout)


def _input_notebook(name: str, folder: Path) -> tuple[Path, str]:
    """The notebook to run and its name in messages; ``-`` reads it from stdin."""
    if name != STDIO:
        source = Path(name)
        if not source.exists():
            raise UsageError(f"{name}: no such notebook")
        return source, source.name
    if sys.stdin.isatty():
        raise UsageError("input '-' reads the notebook from stdin, but stdin is a terminal")
    copy = folder / "stdin.ipynb"
    copy.write_text(sys.stdin.read(), encoding="utf-8")
    return copy, "<stdin>"


def _output_name(args: argparse.Namespace) -> str:
    if args.output and args.output_path and args.output != args.output_path:
        raise UsageError(f"two output notebooks given: {args.output_path!r} and -o {args.output!r}")
    given = args.output or args.output_path
    if given:
        return str(given)
    return default_output(args, stdout_piped=stdout_is_piped())


def notebook_settings(
    args: argparse.Namespace, stack: contextlib.ExitStack, *, to_stdout: bool
) -> NotebookOptions:
    """papermill's knobs from the command line; the files are closed with ``stack``."""
    if to_stdout and args.json:
        raise UsageError("--json and an output notebook on stdout (-o -) cannot share stdout")
    if args.cwd and not Path(args.cwd).is_dir():
        raise UsageError(f"--cwd {args.cwd}: no such folder")
    progress = args.progress_bar
    if progress is None:
        progress = args.progress in ("rich", "plain") or (
            args.progress == "auto" and sys.stderr.isatty() and not args.log_output
        )
    return NotebookOptions(
        cwd=args.cwd,
        timeout=args.timeout,
        kernel=args.kernel,
        language=args.language,
        progress=bool(progress),
        report_mode=args.report_mode,
        prepare_only=args.prepare_only,
        log_output=args.log_output,
        stdout_file=_open_text(args.stdout_file, stack),
        stderr_file=_open_text(args.stderr_file, stack),
        start_timeout=args.start_timeout,
        engine=args.engine,
        request_save_on_cell_execute=args.request_save_on_cell_execute and not to_stdout,
        autosave_cell_every=args.autosave_cell_every,
    )


def _open_text(path: str | None, stack: contextlib.ExitStack) -> TextIO | None:
    if path is None:
        return None
    if path == STDIO:
        return sys.stdout
    try:
        return stack.enter_context(open(path, "w", encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot write it ({exc.strerror})") from None


def _restore_paths(output: Path | None, input_name: str, output_name: str) -> None:
    """The output notebook records the paths the user gave (``-`` included), as papermill's
    does, not the temporary copies a pipe needed."""
    if output is None or (input_name != STDIO and output_name != STDIO):
        return
    import nbformat

    nb = nbformat.read(str(output), as_version=4)
    nb.metadata.setdefault("papermill", {}).update(input_path=input_name, output_path=output_name)
    nbformat.write(nb, str(output))


def _emit(output: Path | None, to_stdout: bool) -> None:
    if to_stdout and output is not None:
        sys.stdout.write(output.read_text(encoding="utf-8"))
        sys.stdout.flush()


def _succeeded(
    args: argparse.Namespace,
    result: dict[str, Any],
    done: NotebookResult,
    shown: str,
    to_stdout: bool,
) -> int:
    result.update(status=done.status, duration=round(done.duration, 3), exit_code=EXIT_OK)
    where = "stdout" if to_stdout else str(result["output"])
    verb = "prepared (not run)" if done.status == "prepared" else "succeeded"
    line = f"notebook {shown} {verb} in {done.duration:.1f}s; output: {where}"
    _report(args, result, line, to_stdout)
    return EXIT_OK


def _failed(
    args: argparse.Namespace, result: dict[str, Any], exc: NotebookError, shown: str
) -> int:
    code = EXIT_DEAD_KERNEL if exc.kind == DEAD_KERNEL else EXIT_FAILED
    result.update(status="failed", kind=exc.kind, error=str(exc), exit_code=code)
    if exc.ename:
        result.update(ename=exc.ename, evalue=exc.evalue)
    if exc.cell is not None or exc.traceback:
        result.update(cell=exc.cell, line=exc.line, code=exc.code, traceback=exc.traceback)
    _report(args, result, f"error: notebook {shown} failed: {exc}")
    return code


def _report(
    args: argparse.Namespace, result: dict[str, Any], line: str, to_stdout: bool = False
) -> None:
    if args.json:
        print_json(result)
        sys.stdout.write("\n")
        return
    ok = result["status"] in ("succeeded", "prepared") and not to_stdout
    stream = sys.stdout if ok else sys.stderr
    stream.write(line + "\n")


def help_notebook(shown: str, declared: DeclaredParameters) -> int:
    """``--help-notebook``: the parameters the notebook declares, as papermill lists them."""
    if not declared.has_cell:
        print(f"Notebook {shown} has no cell tagged `parameters`: it declares no parameters.")
        return EXIT_OK
    if not declared.readable:
        print(f"Parameters of notebook {shown} cannot be listed for its language.")
        return EXIT_OK
    print(f"Parameters inferred for notebook {shown}:")
    for name, type_name in declared.types.items():
        text = f"  {name}: {type_name} (default {declared.defaults[name]})"
        help_text = declared.helps.get(name)
        print(text + (f"  {help_text}" if help_text else ""))
    return EXIT_OK


# ------------------------------------------------------------------------------ kernels, log


def cli_kernel_options(source: Path, kernel: str | None, shown: str) -> dict[str, Any]:
    """:func:`kernel_options` for the command line: its note on stderr; a kernel that is
    not installed and a kernel without a language are user errors (papermill would print
    a traceback)."""
    spec = (notebook_metadata(source) or {}).get("kernelspec") or {}
    _check_installed(shown, kernel or str(spec.get("name") or "") or None, given=bool(kernel))
    try:
        return kernel_options(
            source, kernel, log=lambda note: print(f"note: {note}", file=sys.stderr)
        )
    except KernelChoiceError as exc:
        raise UsageError(
            exc.problem, hints=[exc.fix, "give the kernel with --kernel NAME"]
        ) from None


def _check_installed(shown: str, name: str | None, *, given: bool) -> None:
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME, find_kernel_specs

    installed = sorted(find_kernel_specs())
    if name is None or name in installed:
        return
    if name == "python" and NATIVE_KERNEL_NAME in installed:
        return  # jupyter_client runs the current Python's kernel for the alias `python`
    raise UsageError(
        f"notebook {shown}: {'' if given else 'its '}kernel {name!r} is not installed "
        f"here (installed: {', '.join(installed) or 'none'})",
        hints=["pass --kernel NAME with an installed one (see `jupyter kernelspec list`)"],
    )


class _Once(logging.Filter):
    """papermill's log, each message once; minus the two warnings the command words
    itself (an unknown parameter, no ``parameters`` cell)."""

    REPLACED = ("Passed unknown parameter:", "Input notebook does not contain a cell with tag")

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if _is_cell_output(record):
            return True  # --log-output: a cell may print the same line twice
        message = record.getMessage()
        if message.startswith(self.REPLACED):
            return False
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


class _Prefixed(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING and not _is_cell_output(record):
            return f"{record.levelname.lower()}: {message.strip()}"
        return message


def _is_cell_output(record: logging.LogRecord) -> bool:
    """A cell's output that ``--log-output`` logs (its stderr at WARNING), not a message."""
    return record.module == "clientwrap"


@contextlib.contextmanager
def papermill_log(level: str | None, *, log_output: bool) -> Iterator[None]:
    """papermill's logger, on stderr for the command: warnings by default (its info lines
    repeat what the command says), INFO with ``--log-output`` (cell output is logged at
    INFO), or ``--log-level``."""
    logger = logging.getLogger("papermill")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Once())
    handler.setFormatter(_Prefixed())
    chosen = level or ("INFO" if log_output else "WARNING")
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(chosen)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
