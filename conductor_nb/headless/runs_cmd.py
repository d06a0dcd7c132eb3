"""``conductor-nb runs``: the run history: list, show one, resume one, prune old ones.

Reads through the storage layer's public API only (``cnb.runs()``,
``cnb.load_run(id)``, ``cnb.resume(id)``, and ``RunHistory.count(...)``,
``.nodes(...)`` and ``.prune(...)`` of the default history).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
from typing import Any

from conductor_nb.errors import StoreError
from conductor_nb.headless import common
from conductor_nb.headless.common import EXIT_OK, UsageError


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("runs", help="the run history: list | show ID | resume ID | prune")
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    p.add_argument(
        "--home",
        metavar="DIR",
        help="history folder (default: $CONDUCTOR_HOME, else the project's .conductor/, "
        "else the user data folder)",
    )
    p.set_defaults(command=cmd_list, limit=20, json=False, status=None)
    home_after: dict[str, Any] = {
        "metavar": "DIR",
        "default": argparse.SUPPRESS,
        "help": "same as runs --home",
    }

    ls = actions.add_parser("list", help="recent runs, newest first")
    ls.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20)")
    ls.add_argument("--status", help="only runs with this status")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--home", **home_after)  # also after the action
    ls.set_defaults(command=cmd_list)

    show = actions.add_parser("show", help="one run: nodes, errors, outputs")
    show.add_argument("run_id", metavar="ID")
    show.add_argument("--json", action="store_true", help="the object `run --json` printed")
    show.add_argument(
        "--all",
        action="store_true",
        help="also list the engine's internal records (a loop's `each[0]._input`)",
    )
    show.add_argument("--report", metavar="FILE.html", help="also write its HTML report")
    show.add_argument("--home", **home_after)  # also after the action
    show.set_defaults(command=cmd_show)

    resume = actions.add_parser(
        "resume",
        help="re-run what failed or was interrupted",
        description="Re-run what failed, was cancelled or never ran; reuse what succeeded. "
        "The run's recorded blueprint runs again unless --blueprint gives an edited one.",
    )
    resume.add_argument("run_id", metavar="ID")
    resume.add_argument(
        "--blueprint",
        metavar="FILE",
        help="resume with this (edited) blueprint instead of the recorded one; succeeded "
        "nodes are reused only where they and everything upstream are unchanged",
    )
    common.add_file_roots(resume)
    common.add_env(resume)
    resume.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first; repeatable",
    )
    resume.add_argument("--json", action="store_true")
    resume.add_argument("--report", metavar="FILE.html")
    resume.add_argument("--progress", choices=("auto", "rich", "plain", "none"), default="auto")
    resume.add_argument("-q", "--quiet", action="store_true")
    resume.add_argument("--home", **home_after)  # also after the action
    resume.set_defaults(command=cmd_resume)

    prune = actions.add_parser("prune", help="delete old runs from the history")
    prune.add_argument("--keep", type=int, metavar="N", help="keep the newest N runs")
    prune.add_argument("--days", type=float, metavar="D", help="delete runs older than D days")
    prune.add_argument(
        "--older-than",
        dest="days",
        type=_age,
        metavar="AGE",
        help="delete runs older than AGE: 30m, 12h, 7d, 2w (same as --days)",
    )
    prune.add_argument("--home", **home_after)  # also after the action
    prune.set_defaults(command=cmd_prune)


def _age(text: str) -> float:
    from conductor_nb.storage.usage import parse_age

    try:
        return parse_age(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _storage() -> Any:
    import conductor_nb

    try:
        conductor_nb.runs  # noqa: B018 - resolves the lazy attribute
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"the run history is not available: {exc}") from None
    return conductor_nb


def _stamp(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, int | float):
        value = _dt.datetime.fromtimestamp(value)
    if isinstance(value, _dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.2f}s"


def _status(value: Any) -> str:
    return str(getattr(value, "value", value))


def cmd_list(args: argparse.Namespace) -> int:
    """The newest ``--limit`` runs; when more match, a last line says how many and how to
    see them (on stderr with ``--json``, whose stdout stays the list of rows)."""
    limit = max(0, args.limit)
    cnb = _storage()
    records = list(cnb.runs(limit + 1, status=args.status, home=args.home))
    more = 0
    if len(records) > limit:
        from conductor_nb.storage.history import default_history

        records = records[:limit]
        more = default_history(args.home).count(status=args.status) - limit
    note = f"... {more} more; show them with -n {limit + more}" if more > 0 else ""
    if args.json:
        rows = [
            {
                "id": r.id,
                "status": _status(r.status),
                "blueprint_id": r.blueprint_id,
                "started_at": _stamp(r.started_at),
                "duration": r.duration,
            }
            for r in records
        ]
        common.print_json(rows)
        if note:
            sys.stderr.write(note + "\n")
        sys.stderr.write(_disk_line(args.home) + "\n")
        return EXIT_OK
    if not records and not more:
        print("no runs recorded yet" if args.status is None else f"no {args.status} runs")
        return EXIT_OK
    print(f"{'ID':<24} {'STATUS':<11} {'BLUEPRINT':<20} {'STARTED':<19} DURATION")
    for r in records:
        print(
            f"{r.id:<24} {_status(r.status):<11} {r.blueprint_id!s:<20} "
            f"{_stamp(r.started_at):<19} {_seconds(r.duration)}"
        )
    if note:
        print(note)
    sys.stderr.write(_disk_line(args.home) + "\n")  # beside the list, not in it
    return EXIT_OK


def _disk_line(home: str | None) -> str:
    from conductor_nb.storage.history import default_history
    from conductor_nb.storage.usage import disk_usage, human_size

    folder = default_history(home).home
    return f"history: {human_size(disk_usage(folder))} on disk in {folder}"


def find_home(run_id: str, home: str | None, blueprint: str | None = None) -> str | None:
    """The history folder that holds ``run_id``, looked for by the history rule
    (:mod:`conductor_nb.storage.home`) from where the run's project can be told: ``--home``
    or ``$CONDUCTOR_HOME`` if given (only there); else the project of ``--blueprint FILE``
    (the file's folder upward), the project of the working directory, and the user data
    folder, in that order. A run id found in none of them is a usage error naming every
    folder looked in and how to point at the right one."""
    import os
    from pathlib import Path

    from conductor_nb.storage.history import DB_NAME, default_history
    from conductor_nb.storage.home import ENV_HOME, resolve_home, user_data_dir

    if home is not None or os.environ.get(ENV_HOME) or run_id == "latest":
        return home
    starts = [Path(blueprint).resolve().parent] if blueprint else []
    looked: list[Path] = []
    for folder in [*(resolve_home(None, s) for s in starts), resolve_home(), user_data_dir()]:
        folder = folder.absolute()
        if folder in looked:
            continue
        looked.append(folder)
        if not (folder / DB_NAME).is_file():
            continue
        try:
            default_history(folder).resolve_id(run_id)
        except StoreError as exc:
            if "ambiguous" in str(exc):  # a prefix of several runs here: say so
                raise UsageError(str(exc)) from None
            continue  # not in this history
        return str(folder)
    raise UsageError(
        f"run {run_id!r} is in none of the run histories looked in: "
        + ", ".join(str(f) for f in looked),
        hints=[
            "the history is the project's .conductor/ folder, found upward from the "
            "blueprint file (or the working directory) like git finds its repository",
            "run from inside the run's project, or name its history with --home "
            "PROJECT/.conductor (conductor-nb runs --home DIR resume ID), or give the "
            "blueprint with --blueprint FILE",
        ],
    )


def _load(run_id: str, home: str | None) -> Any:
    cnb = _storage()
    try:
        return cnb.load_run(run_id, home=home)
    except (KeyError, LookupError, StoreError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None


def cmd_show(args: argparse.Namespace) -> int:
    from conductor_nb.headless.result import outputs_text, run_result, run_summary

    args.home = find_home(args.run_id, args.home)
    run = _load(args.run_id, args.home)
    error_types = _error_types(run.id, args.home)
    report_path = None
    if args.report:
        from conductor_nb.headless.report import write_report

        report_path = write_report(run, args.report)
    if args.json:
        result = run_result(run, error_types=error_types, internal=args.all)
        result["report"] = report_path
        common.print_json(result)
        return EXIT_OK
    print(run_summary(run, error_types))
    for line in _node_lines(run, internal=args.all):
        print(line)
    outputs = outputs_text(run)
    if outputs:
        print(outputs)
    return EXIT_OK


def _error_types(run_id: str, home: str | None) -> dict[str, str | None]:
    """Node id -> the recorded type of its error (a rebuilt run no longer holds it)."""
    from conductor_nb.storage.history import default_history

    return {
        node.node_id: node.error_type for node in default_history(home).nodes(run_id) if node.error
    }


def _node_lines(run: Any, *, internal: bool) -> list[str]:
    """One line per record: the run's own nodes, each with its nested records under it."""
    from conductor_nb.headless.result import listed_records

    lines = []
    for node_id, depth in listed_records(run, internal=internal):
        indent = "  " * (depth + 1)
        record = run.node_runs[node_id]
        took = _seconds(record.duration)
        tries = f" x{record.attempts}" if record.attempts > 1 else ""
        lines.append(
            f"{indent}{node_id:<{22 - len(indent)}} {record.status.value:<10} {took}{tries}"
        )
    return lines


def cmd_resume(args: argparse.Namespace) -> int:
    from conductor_nb.headless.run_cmd import file_roots, finish, wait_with_progress

    common.import_modules(args.imports)
    cnb = _storage()
    args.home = find_home(args.run_id, args.home, args.blueprint)
    before = _load(args.run_id, args.home)
    options: dict[str, Any] = {}
    if args.blueprint:
        options["blueprint"] = common.load_blueprint(args.blueprint)
    if args.file_roots:
        from conductor_nb.storage.history import default_history

        roots = file_roots(args.file_roots, options.get("blueprint"))
        folder = None if args.blueprint else default_history(args.home).blueprint_folder(before.id)
        if folder is not None:  # relative paths still start at the blueprint's folder
            roots = [folder, *(r for r in roots if r != folder)]
        options["settings"] = {"file_roots": roots}
    if args.env_names:
        options["env"] = list(args.env_names)
    with common.route_node_output(echoed=args.progress != "none" and not args.quiet):
        try:
            run = cnb.resume(before.id, home=args.home, wait=False, **options)
        except (KeyError, LookupError, StoreError) as exc:
            raise UsageError(str(exc).strip("'\"")) from None
        code = wait_with_progress(run, args.progress, logs=not args.quiet, summary=not args.json)
    hints = [] if args.blueprint else _same_failure_hints(before, run)
    finish(run, code, args, hints=hints)
    return code


def _same_failure_hints(before: Any, after: Any) -> list[str]:
    """A resumed run that fails where it failed before, with the same error, most likely
    ran the old blueprint: resume uses the one recorded with the run, not the file."""
    again = [
        node_id
        for node_id in after.failed_nodes
        if node_id in before.failed_nodes
        and str(after.node_runs[node_id].error) == str(before.node_runs[node_id].error)
    ]
    if not again:
        return []
    nodes = ", ".join(repr(n) for n in again)
    return [
        f"{nodes} failed again with the same error: resume runs the blueprint recorded "
        f"with run {before.id}, not the file; if you fixed the file, resume with it: "
        f"conductor-nb runs resume {before.id} --blueprint FILE"
    ]


def cmd_prune(args: argparse.Namespace) -> int:
    if args.keep is None and args.days is None:
        raise UsageError("runs prune: give --keep N and/or --days D")
    _storage()
    from conductor_nb.storage.history import default_history

    removed = default_history(args.home).prune(keep=args.keep, days=args.days)
    count = len(removed) if isinstance(removed, list | tuple | set) else removed
    print(f"pruned {count if count is not None else 'old'} runs")
    return EXIT_OK
