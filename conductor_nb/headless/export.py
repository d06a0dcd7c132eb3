"""Exporting a blueprint: as a runnable notebook, a static SVG picture, JSON or YAML.

The notebook follows papermill's conventions so papermill, Binder and any
scheduler can run any blueprint: a ``parameters``-tagged cell holds the
blueprint's params with their defaults, the next cell loads the blueprint (its
YAML is embedded, so the notebook stands alone), runs it with those values and
shows the run once, through its rich repr (the static SVG picture of the final
node states, with the summary as its text form); a cell shows the outputs, and
the last one fails the notebook when a node failed, so ``papermill`` exits
non-zero.
"""

from __future__ import annotations

import argparse
import json
import keyword
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

FORMATS = ("notebook", "svg", "json", "yaml")


def to_notebook(
    bp: Blueprint, *, imports: Sequence[str] = (), source: str | None = None
) -> dict[str, Any]:
    """The notebook (nbformat 4, as a plain dict) that runs ``bp`` with papermill."""
    cells = [
        _markdown(_intro(bp, source)),
        _code(_parameters_source(bp), tags=["parameters"]),
        _code(_run_source(bp, imports, source)),
        _code("run.outputs"),
        _code(
            "# a failed node fails the notebook, so papermill and CI see a non-zero exit\n"
            "run.raise_for_status();"
        ),
    ]
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "conductor_nb": {"blueprint_id": bp.id, "source": source},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _intro(bp: Blueprint, source: str | None) -> str:
    lines = [f"# {bp.name}"]
    if bp.description:
        lines += ["", bp.description]
    origin = f" from `{source}`" if source else ""
    lines += [
        "",
        f"Runs the conductor_nb blueprint `{bp.id}`{origin}. Change the parameters in the "
        "next cell, or inject them headlessly:",
        "",
        "```",
        "papermill this.ipynb out.ipynb -p NAME VALUE",
        "conductor-nb run this.ipynb -p NAME=VALUE -o out.ipynb",
        "```",
    ]
    return "\n".join(lines)


def _parameters_source(bp: Blueprint) -> str:
    lines = ["# Blueprint parameters: papermill injects new values after this cell"]
    for name, spec in bp.params.items():
        if not _is_identifier(name):
            lines.append(f"# {name!r} is not a Python name: set it in `params` below instead")
            continue
        note = f"  # {spec.type}" + (f": {spec.description}" if spec.description else "")
        lines.append(f"{name} = {_literal(spec.default)}{note if spec.type != 'any' else ''}")
    if not bp.params:
        lines.append("# (this blueprint declares no parameters)")
    return "\n".join(lines)


def _run_source(bp: Blueprint, imports: Sequence[str], source: str | None) -> str:
    text = bp.to_yaml()
    raw_ok = "'''" not in text and not text.endswith("\\")
    embedded = ("r'''\n" + text + "'''") if raw_ok else json.dumps(text)
    names = [n for n in bp.params if _is_identifier(n)]
    params = ", ".join(f"{n!r}: {n}" for n in names)
    lines = ["import conductor_nb as cnb"]
    lines += [f"import {module}  # registers node types" for module in imports]
    lines += [
        "",
        f"BLUEPRINT = {embedded}",
        f"bp = cnb.Blueprint.from_yaml(BLUEPRINT, source={source or bp.id!r})",
        f"run = bp.run(params={{{params}}})",
        "run  # shown once: the run's picture (final node states) and its summary",
    ]
    return "\n".join(lines)


def _literal(value: Any) -> str:
    text = repr(value)
    try:
        import ast

        ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return "None  # default not representable: " + text[:60].replace("\n", " ")
    return text


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _cell_id(text: str) -> str:
    import hashlib

    return hashlib.sha1(text.encode()).hexdigest()[:8]  # stable: the same export, the same ids


def _markdown(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": _cell_id(text), "metadata": {}, "source": text}


def _code(text: str, tags: Sequence[str] = ()) -> dict[str, Any]:
    metadata: dict[str, Any] = {"tags": list(tags)} if tags else {}
    return {
        "cell_type": "code",
        "id": _cell_id(text),
        "execution_count": None,
        "metadata": metadata,
        "outputs": [],
        "source": text,
    }


def export_text(
    bp: Blueprint, to: str, *, imports: Sequence[str] = (), source: str | None = None
) -> str:
    if to == "notebook":
        return json.dumps(to_notebook(bp, imports=imports, source=source), indent=1) + "\n"
    if to == "svg":
        return bp.to_svg()
    if to == "json":
        return bp.to_json()
    if to == "yaml":
        return bp.to_yaml()
    raise ValueError(f"cannot export to {to!r}; formats: {', '.join(FORMATS)}")


def export_command(args: argparse.Namespace) -> int:
    from conductor_nb.headless import atomiton_cmd
    from conductor_nb.headless.common import EXIT_OK, load_blueprint

    bp = load_blueprint(args.file, **atomiton_cmd.flow_options(args))
    if args.to == "atomiton":
        text = atomiton_cmd.to_atomiton_text(bp)
    else:
        text = export_text(bp, args.to, imports=args.imports, source=Path(args.file).name)
    output = args.output
    if output is None and args.to == "notebook":
        output = str(Path(args.file).with_suffix(".ipynb"))
    if output is None or output == "-":
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return EXIT_OK
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text, encoding="utf-8")
    sys.stderr.write(f"wrote {output}\n")
    return EXIT_OK
