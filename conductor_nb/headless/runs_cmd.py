"""``conductor-nb runs``: the run history: list, show one, resume one, prune old ones.

Reads through the storage layer's public API only (``cnb.runs()``,
``cnb.load_run(id)``, ``cnb.resume(id)``, and ``RunHistory.count(...)`` and
``.prune(...)`` of the default history).
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
        "--home", metavar="DIR", help="history folder (default: $CONDUCTOR_HOME or ./.conductor)"
    )
    p.set_defaults(command=cmd_list, limit=20, json=False, status=None)

    ls = actions.add_parser("list", help="recent runs, newest first")
    ls.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20)")
    ls.add_argument("--status", help="only runs with this status")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(command=cmd_list)

    show = actions.add_parser("show", help="one run: nodes, errors, outputs")
    show.add_argument("run_id", metavar="ID")
    show.add_argument("--json", action="store_true")
    show.add_argument("--report", metavar="FILE.html", help="also write its HTML report")
    show.set_defaults(command=cmd_show)

    resume = actions.add_parser("resume", help="re-run what failed or was interrupted")
    resume.add_argument("run_id", metavar="ID")
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
    resume.set_defaults(command=cmd_resume)

    prune = actions.add_parser("prune", help="delete old runs from the history")
    prune.add_argument("--keep", type=int, metavar="N", help="keep the newest N runs")
    prune.add_argument("--days", type=float, metavar="D", help="delete runs older than D days")
    prune.set_defaults(command=cmd_prune)


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
    return EXIT_OK


def _load(run_id: str, home: str | None) -> Any:
    cnb = _storage()
    try:
        return cnb.load_run(run_id, home=home)
    except (KeyError, LookupError, StoreError) as exc:
        raise UsageError(str(exc).strip("'\"")) from None


def cmd_show(args: argparse.Namespace) -> int:
    from conductor_nb.headless.result import plan_parent, run_result, run_summary

    run = _load(args.run_id, args.home)
    if args.report:
        from conductor_nb.headless.report import write_report

        write_report(run, args.report)
    if args.json:
        common.print_json(run_result(run))
        return EXIT_OK
    print(run_summary(run))
    plan = list(run.plan.order)
    nested: dict[str | None, list[str]] = {}
    for node_id in run.node_runs:
        if node_id not in plan:
            nested.setdefault(plan_parent(node_id, plan), []).append(node_id)
    for node_id in [*plan, *nested.pop(None, [])]:  # nested records under their node
        if node_id in run.node_runs:
            print(_node_line(node_id, run.node_runs[node_id], "  "))
        for inner in nested.get(node_id, []):
            print(_node_line(inner, run.node_runs[inner], "    "))
    return EXIT_OK


def _node_line(node_id: str, record: Any, indent: str) -> str:
    took = _seconds(record.duration)
    tries = f" x{record.attempts}" if record.attempts > 1 else ""
    return f"{indent}{node_id:<{22 - len(indent)}} {record.status.value:<10} {took}{tries}"


def cmd_resume(args: argparse.Namespace) -> int:
    from conductor_nb.headless.run_cmd import finish, wait_with_progress

    common.import_modules(args.imports)
    cnb = _storage()
    with common.route_node_output(echoed=args.progress != "none" and not args.quiet):
        try:
            run = cnb.resume(args.run_id, home=args.home, wait=False)
        except (KeyError, LookupError, StoreError) as exc:
            raise UsageError(str(exc).strip("'\"")) from None
        code = wait_with_progress(run, args.progress, logs=not args.quiet)
    finish(run, code, args)
    return code


def cmd_prune(args: argparse.Namespace) -> int:
    if args.keep is None and args.days is None:
        raise UsageError("runs prune: give --keep N and/or --days D")
    _storage()
    from conductor_nb.storage.history import default_history

    removed = default_history(args.home).prune(keep=args.keep, days=args.days)
    count = len(removed) if isinstance(removed, list | tuple | set) else removed
    print(f"pruned {count if count is not None else 'old'} runs")
    return EXIT_OK
