"""The command line's side of Atomiton flows: ``import``, ``--path-map`` and ``--lenient``.

``conductor-nb import FLOW -o bp.yaml`` converts a desktop-app flow (any shape)
and writes the blueprint, printing what the conversion has to say (and, with
``--lenient``, what it left out). ``run``, ``validate`` and ``export`` read flows
too, with the same two options: ``--path-map /data=./data`` remaps the flow's
absolute paths and ``--lenient`` converts what it can. ``export --to atomiton``
writes a blueprint back in the app's current flow shape.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conductor_nb.headless import common

LENIENT_HINT = (
    "an Atomiton flow: pass --lenient to convert what can be converted and list what was left out"
)


def add_flow_options(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--path-map",
        dest="path_maps",
        action="append",
        default=[],
        metavar="FROM=TO",
        help="Atomiton flows: read the flow's absolute path FROM (a folder) as TO, e.g. "
        "--path-map /data=./data; repeatable",
    )
    p.add_argument(
        "--lenient",
        action="store_true",
        help="Atomiton flows: convert what can be converted and list what was left out",
    )


def flow_options(args: argparse.Namespace) -> dict[str, Any]:
    """``load_blueprint``'s keywords from the parsed command line."""
    return {
        "lenient": bool(getattr(args, "lenient", False)),
        "path_map": path_map(getattr(args, "path_maps", None) or []),
    }


def path_map(items: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in items:
        source, sep, target = item.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise common.UsageError(
                f"--path-map {item!r}: expected FROM=TO, e.g. --path-map /data=./data"
            )
        mapping[source.strip()] = target.strip()
    return mapping


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import",
        help="convert an Atomiton flow (*.flow.yaml, any shape) into a blueprint file",
        description="Convert a flow of the Atomiton desktop app into a conductor_nb "
        "blueprint. Every part without an equivalent is listed with its line; --lenient "
        "writes the rest.",
    )
    p.add_argument("flow", metavar="FLOW", help="the flow file (.yaml, .yml, .json)")
    p.add_argument(
        "-o",
        "--output",
        metavar="BP.yaml",
        help="where to write the blueprint (.yaml/.json; default: stdout)",
    )
    add_flow_options(p)
    p.set_defaults(command=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from conductor_nb.model import atomiton
    from conductor_nb.model.blueprint import Blueprint
    from conductor_nb.model.document import dump_json, dump_yaml, format_for, parse_text

    source = Path(args.flow)
    if not source.exists():
        raise common.UsageError(f"{args.flow}: no such file")
    data, locations = parse_text(
        source.read_text(encoding="utf-8"), format_for(source), source=args.flow
    )
    if not atomiton.is_atomiton(data):
        raise common.UsageError(
            f"{args.flow}: not an Atomiton flow (it has no list of nodes and no flow: or "
            "blueprint: wrapper); a conductor_nb blueprint needs no import"
        )
    options = flow_options(args)
    conversion = atomiton.convert(data, locations, source=args.flow, **options)
    bp = Blueprint.from_dict(conversion.document, locations=conversion.locations, source=args.flow)
    sys.stderr.write(conversion.summary(args.flow) + "\n")
    document = bp.to_dict()
    fmt = format_for(args.output) if args.output and args.output != "-" else "yaml"
    text = dump_json(document) if fmt == "json" else dump_yaml(document)
    return _write(text, args.output)


def _write(text: str, output: str | None) -> int:
    if output is None or output == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return common.EXIT_OK
    from conductor_nb.model.document import atomic_write

    target = Path(output)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, text.encode("utf-8"))
    sys.stderr.write(f"wrote {output}\n")
    return common.EXIT_OK


def to_atomiton_text(bp: Any) -> str:
    """``export --to atomiton``: the blueprint in the app's current flow shape (YAML)."""
    from conductor_nb.model.atomiton.export import to_flow
    from conductor_nb.model.document import dump_yaml

    flow: Mapping[str, Any] = to_flow(bp)
    return dump_yaml(flow)
