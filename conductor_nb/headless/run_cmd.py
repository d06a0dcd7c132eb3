"""``conductor-nb run BLUEPRINT``: run a blueprint on the engine with progress and a result.

The run starts in the background of this process; the main thread only waits,
so Ctrl-C (SIGINT) lands here at once: the run is cancelled, its nodes end as
cancelled, the result is still printed and the exit code is 130. Progress goes
to stderr (rich on a terminal, a line per event otherwise); the result goes to
stdout so it can be piped: ``--json``, or one summary line (with each failed
node's error) and the blueprint's declared outputs, previewed.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor_nb.headless import atomiton_cmd, common
from conductor_nb.headless.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, UsageError

MAX_FILES_SHOWN = 10

if TYPE_CHECKING:
    from conductor_nb.engine.run import Run
    from conductor_nb.model.blueprint import Blueprint


def run_blueprint(args: argparse.Namespace) -> int:
    common.import_modules(args.imports)
    bp = common.load_blueprint(args.file, **atomiton_cmd.flow_options(args))
    params = blueprint_params(bp, args.params, param_sources(args))
    options = run_options(args, bp)
    with common.route_node_output(echoed=args.progress != "none" and not args.quiet):
        run = bp.start(params, **options)
        code = wait_with_progress(run, args.progress, logs=not args.quiet, summary=not args.json)
    finish(run, code, args)
    return code


def param_sources(args: argparse.Namespace) -> dict[str, Any]:
    """The values of ``-b``, ``--params-file``/``-f``, ``-y`` and ``-r`` merged in papermill's
    order (later wins); ``-p`` comes on top of them."""
    from conductor_nb.headless.params import ParamValueError, load_params_file, merge_yaml_sources

    try:
        base = merge_yaml_sources(base64_texts=args.base64_params)
        for path in args.params_file:
            base.update(load_params_file(path))
        base.update(merge_yaml_sources(yaml_texts=args.yaml_params))
    except ParamValueError as exc:
        raise UsageError(str(exc)) from None
    base.update(dict(args.raw_params))
    return base


def blueprint_params(bp: Blueprint, assignments: list[str], base: dict[str, Any]) -> dict[str, Any]:
    from conductor_nb.headless.params import typed_params

    declared = {name: spec.type for name, spec in bp.params.items()}
    return typed_params(assignments, declared, base=base, owner=f"blueprint {bp.id!r}")


def run_options(args: argparse.Namespace, bp: Blueprint | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {"fail_fast": args.fail_fast}
    if args.cache is not None:  # None: each node's own `cache` setting decides
        options["cache"] = args.cache
    if args.concurrency is not None:
        if args.concurrency < 1:
            raise UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
        options["concurrency"] = args.concurrency
    if args.file_roots:
        options["settings"] = {"file_roots": file_roots(args.file_roots, bp)}
    if getattr(args, "env_names", None):
        options["env"] = list(args.env_names)
    options["executor"] = make_executor(args.executor, args.scheduler, args.connect_timeout)
    if not common.history_available() or args.no_history:
        options["history"] = False
    return options


def file_roots(folders: list[str], bp: Blueprint | None = None) -> list[str]:
    """``--file-root DIR``...: the folders file nodes may touch. The blueprint file's
    folder stays the first root (relative paths start there), then the working directory."""
    from conductor_nb.nodes.file_roots import blueprint_folder

    first = blueprint_folder(bp) if bp is not None else None
    roots = [str(first)] if first is not None else []
    if str(Path.cwd().resolve()) not in roots:
        roots.append(str(Path.cwd().resolve()))
    for folder in folders:
        path = str(Path(folder).expanduser().resolve())
        if path not in roots:
            roots.append(path)
    return roots


def make_executor(name: str, scheduler: str | None, timeout: float | None = None) -> Any:
    """The executor ``--executor NAME`` names (from the engine's registry), connected now
    when ``--scheduler`` gives an address, so an unreachable one is a quick user error."""
    from conductor_nb.engine.executors import executor_kind, executor_kinds
    from conductor_nb.errors import ExecutorError, MissingExtraError

    kind = executor_kind(name)
    if scheduler and not kind.takes_address:
        connecting = [k.name for k in executor_kinds().values() if k.takes_address]
        raise UsageError(f"--scheduler needs --executor {' or '.join(connecting)}")
    if timeout is not None and not scheduler:
        raise UsageError("--connect-timeout applies to --scheduler ADDRESS only")
    if timeout is not None and timeout <= 0:
        raise UsageError(f"--connect-timeout must be more than 0 seconds, got {timeout:g}")
    try:
        executor = kind.create(
            address=scheduler,
            connect_timeout=common.CONNECT_TIMEOUT if timeout is None else timeout,
        )
    except MissingExtraError as exc:
        raise UsageError(f"--executor {name} is not available: {exc}") from None
    if scheduler:
        try:
            executor.connect()
        except ExecutorError as exc:
            raise UsageError(
                f"--scheduler {scheduler}: {exc.reason}", hints=list(exc.hints)
            ) from None
    return executor


def wait_with_progress(run: Run, mode: str, *, logs: bool = True, summary: bool = True) -> int:
    """Wait for ``run`` while a display follows it; return the exit code. With ``summary``
    (text output), the summary on stdout is the run's last line: the display does not
    announce the end itself."""
    from conductor_nb.headless.progress import attach, make_display

    display = None
    detach = None
    interrupted = False
    try:
        with _sigterm_as_interrupt():
            display = make_display(sys.stderr, mode, logs=logs, end_line=not summary)
            detach = attach(run, display) if display is not None else None
            run.wait()
    except KeyboardInterrupt:
        interrupted = True
        _cancel_and_settle(run)
    finally:
        if detach is not None:
            detach()
        if display is not None:
            display.close()
    return exit_code(run, interrupted)


def _cancel_and_settle(run: Run) -> None:
    """``run.wait()`` cancels the run on Ctrl-C and lets it settle, but an interrupt can land
    before it gets that far (while the display is set up, or as ``wait`` begins): the run
    would still be going. Cancel it then, so the result says cancelled."""
    if run.is_finished:
        return
    run.cancel()
    with contextlib.suppress(Exception):
        run.wait(timeout=10)


def exit_code(run: Run, interrupted: bool) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    if run.failed_nodes:
        return EXIT_FAILED
    return EXIT_OK if run.status.value == "succeeded" else EXIT_FAILED


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A scheduler's SIGTERM cancels the run the way Ctrl-C does."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def finish(
    run: Run,
    code: int,
    args: argparse.Namespace,
    *,
    hints: list[str] | None = None,
) -> None:
    """Write the report, then the result on stdout: JSON, or the summary line (with the
    failed nodes' errors and ``hints``) and the declared outputs."""
    report_path = None
    if args.report:
        from conductor_nb.headless.report import write_report

        report_path = write_report(run, args.report)
    from conductor_nb.headless.result import outputs_text, run_result, run_summary

    places = written(run)
    _print_places(places)
    _print_resume(run, places["history"])
    if args.json:
        result = run_result(run, code)
        result["report"] = report_path
        result["hints"] = [*result["hints"], *(hints or [])]
        common.print_json(result)
    else:
        print(run_summary(run))
        for hint in hints or []:
            print(f"hint: {hint}")
        outputs = outputs_text(run)
        if outputs:
            print(outputs)
        if code == EXIT_INTERRUPTED:
            print("interrupted: the run was cancelled")
        if report_path:
            print(f"report: {Path(report_path)}")
    sys.stdout.flush()


def _print_resume(run: Run, history: str | None) -> None:
    """After a run that did not succeed, the command that resumes it, with ``--home`` when
    its history is not the one found from here (a run of a blueprint in another project)."""
    if history is None or run.status.value not in ("failed", "cancelled"):
        return
    from conductor_nb.storage.home import resolve_home

    here = resolve_home().absolute()
    home = "" if Path(history).absolute() == here else f" --home {history}"
    print(f"resume: conductor-nb runs resume {run.id}{home}", file=sys.stderr)


def written(run: Run) -> dict[str, Any]:
    """Where the run wrote: ``files`` its file nodes wrote (paths resolved against the
    blueprint's folder) and ``history``, the folder of the run history (None: not kept)."""
    from conductor_nb.nodes.file_roots import CONFINED_TYPES

    started = (run.started_at or 0.0) - 1.0
    files = []
    for record in run.node_runs.values():
        path = (record.outputs or {}).get("path") if record.type in CONFINED_TYPES else None
        if isinstance(path, str) and _is_newer(Path(path), started) and path not in files:
            files.append(path)
    return {"files": files, "history": _history_home(run)}


def _is_newer(path: Path, since: float) -> bool:
    try:
        return path.is_file() and path.stat().st_mtime >= since
    except OSError:
        return False


def _history_home(run: Run) -> str | None:
    if run.options.history is False or not common.history_available():
        return None
    from conductor_nb.storage import history_home

    home = history_home(run)
    return None if home is None else str(home)


def _print_places(places: dict[str, Any]) -> None:
    """On stderr, beside the progress: stdout keeps the summary and outputs (or the JSON)."""
    shown = places["files"][:MAX_FILES_SHOWN]
    more = len(places["files"]) - len(shown)
    for path in shown:
        print(f"wrote: {path}", file=sys.stderr)
    if more > 0:
        print(f"wrote: ... and {more} more files (--json lists them all)", file=sys.stderr)
    if places["history"]:
        print(f"history: {places['history']}", file=sys.stderr)
