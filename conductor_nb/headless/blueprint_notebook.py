"""A blueprint run through papermill: ``conductor-nb run bp.yaml -o run.ipynb`` and
``cnb.run_notebook("bp.yaml", "run.ipynb")``.

The blueprint is not converted: a short *report notebook* loads the file itself
(so relative paths and the history location follow the file, as in a direct run)
and runs it in the kernel. Its cells: an introduction; the ``parameters`` cell
(the blueprint's params and defaults, where papermill injects the ``-p`` values);
the run, shown once as its static picture (SVG, final node states), with what the
nodes print kept out of it (:func:`node_output_in_sections`); a section
per node (status, inputs, outputs as tables or values, logs, error and
traceback), rendered by :func:`show_node`; the result (:func:`show_result`),
which also carries the run's ``--json`` result for the command line; and a last
cell that fails the notebook when the run failed, so papermill, CI and the exit
code agree with a direct run. The run is recorded in the history like any run.

Parameters are checked against the blueprint before a kernel starts; a blueprint
that does not validate is refused the same way (exit 2).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import keyword
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor_nb.headless.papermill import (
    CELL_ERROR,
    NotebookError,
    NotebookOptions,
    NotebookResult,
    execute,
)

if TYPE_CHECKING:
    from conductor_nb.engine.run import Run
    from conductor_nb.model.blueprint import Blueprint

RESULT_MIME = "application/vnd.conductor-nb.result+json"
RUN_FAILED = "run-failed"
ROWS = 20
"""Rows of a table shown per node output."""


# ------------------------------------------------------------------ the notebook


def report_notebook(
    bp: Blueprint,
    path: Path,
    *,
    imports: Sequence[str] = (),
    run_options: str = "",
    report: str | None = None,
    load_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report notebook (nbformat 4, a plain dict) that runs the blueprint file ``path``.
    ``run_options`` is Python keyword text for ``bp.run`` (``concurrency=4, ...``);
    ``load_options`` are ``Blueprint.load``'s keywords (an Atomiton flow's)."""
    names = [name for name in bp.params if _is_identifier(name)]
    params = "{" + ", ".join(f"{name!r}: {name}" for name in names) + "}"
    run_lines = ["import conductor_nb as cnb"]
    run_lines += [f"import {module}  # registers node types" for module in imports]
    run_lines += [
        "from conductor_nb.headless.blueprint_notebook import (",
        "    node_output_in_sections,",
        "    show_node,",
        "    show_run,",
        "    show_result,",
        ")",
        "",
        f"bp = cnb.Blueprint.load({str(path)!r}{_keywords(load_options)})",
        "with node_output_in_sections():  # each node's prints: in its section below, in order",
        f"    run = bp.run(params={params}{', ' + run_options if run_options else ''})",
    ]
    if report:
        run_lines.append(f"run.report({report!r})")
    run_lines.append("show_run(run)  # the run's picture: final node states")
    cells = [
        _markdown(_intro(bp, path)),
        _code(_parameters_source(bp), tags=["parameters"]),
        _code("\n".join(run_lines)),
        _markdown("## Nodes"),
    ]
    for node_id, node in bp.nodes.items():
        cells.append(_markdown(f"### `{node_id}` ({node.type})"))
        cells.append(_code(f"show_node(run, {node_id!r})"))
    cells += [
        _markdown("## Result"),
        _code("show_result(run)", tags=["conductor-nb-result"]),
        _code(
            "# a failed run fails the notebook, so papermill and CI see a non-zero exit\n"
            'if run.failed_nodes or run.status.value != "succeeded":\n'
            "    raise cnb.ConductorError(run.summary()) from None"
        ),
    ]
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "conductor_nb": {"blueprint_id": bp.id, "blueprint": str(path)},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def _keywords(options: Mapping[str, Any] | None) -> str:
    given = {name: value for name, value in (options or {}).items() if value}
    return "".join(f", {name}={value!r}" for name, value in given.items())


def _intro(bp: Blueprint, path: Path) -> str:
    lines = [f"# {bp.name}"]
    if bp.description:
        lines += ["", bp.description]
    lines += [
        "",
        f"A run of the conductor_nb blueprint `{bp.id}` from `{path.name}`: its parameters, "
        "the picture of the run, a section per node and the result. Run it again with",
        "",
        "```",
        f"conductor-nb run {path.name} -p NAME=VALUE -o run.ipynb",
        "```",
    ]
    return "\n".join(lines)


def _parameters_source(bp: Blueprint) -> str:
    lines = ["# Blueprint parameters: papermill injects the given values after this cell"]
    for name, spec in bp.params.items():
        if not _is_identifier(name):
            lines.append(f"# {name!r} is not a Python name: it keeps its default")
            continue
        note = f"  # {spec.type}" + (f": {spec.description}" if spec.description else "")
        lines.append(f"{name} = {spec.default!r}{note if spec.type != 'any' else ''}")
    if not bp.params:
        lines.append("# (this blueprint declares no parameters)")
    return "\n".join(lines)


def _is_identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _cell_id(text: str, index: list[int] = [0]) -> str:  # noqa: B006 - a counter
    index[0] += 1
    return hashlib.sha1(f"{index[0]}:{text}".encode()).hexdigest()[:8]


def _markdown(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "id": _cell_id(text), "metadata": {}, "source": text}


def _code(text: str, tags: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "id": _cell_id(text),
        "execution_count": None,
        "metadata": {"tags": list(tags)} if tags else {},
        "outputs": [],
        "source": text,
    }


# ------------------------------------------------------------------ shown in the kernel


@contextlib.contextmanager
def node_output_in_sections() -> Iterator[None]:
    """While the run runs in the kernel, what nodes print is kept out of the run cell: the
    engine still records it in each node's logs, which the node's section shows whole and
    in order. Printed into the run cell, the lines of nodes running at the same time came
    out interleaved, even within a line. Output that is not a node's passes through."""
    from conductor_nb.headless.common import route_node_output

    with route_node_output(echoed=True):  # echoed: shown elsewhere (the sections)
        yield


PICTURE_WIDTH = 960
"""Width a picture is drawn at in a page; a wider one keeps its own size and scrolls."""


def show_run(run: Run) -> None:
    """Display the run's picture (final node states) and its summary. A run too wide for
    the page is shown at its own size in a box that scrolls sideways, so its labels stay
    readable (scaled to the page, a 30-node run's labels were about 5 px high); the SVG
    itself is in the bundle too, for viewers that show no HTML."""
    from IPython.display import display

    display(run_bundle(run), raw=True)


def run_bundle(run: Run) -> dict[str, str]:
    import base64
    import re

    bundle = {"text/plain": run.summary()}
    try:
        svg = run.to_svg(max_width=None)
    except Exception as exc:  # the picture is a view: the summary still shows
        bundle["text/plain"] += f"\n(no picture: {exc})"
        return bundle
    bundle["image/svg+xml"] = svg
    found = re.search(r'width="(\d+)"', svg)
    width = int(found.group(1)) if found else 0
    if width > PICTURE_WIDTH:
        data = base64.b64encode(svg.encode()).decode()
        bundle["text/html"] = (
            '<div class="cnb-picture" style="overflow-x:auto;max-width:100%">'
            f'<img src="data:image/svg+xml;base64,{data}" width="{width}" '
            f'style="max-width:none;width:{width}px" alt="{escape(run.summary())}"></div>'
        )
    else:
        bundle["image/svg+xml"] = run.to_svg()
    return bundle


def show_node(run: Run, node_id: str) -> None:
    """Display the section of one node: status, inputs, outputs, logs, error."""
    from IPython.display import display

    display(node_bundle(run, node_id), raw=True)


def node_bundle(run: Run, node_id: str) -> dict[str, str]:
    from conductor_nb.headless.report import COLOURS

    record = run.node_runs.get(node_id)
    if record is None:
        return {"text/plain": f"{node_id}: not run", "text/html": "<p>not run</p>"}
    status = record.status.value
    facts = [f"attempts {record.attempts}"]
    if record.duration is not None:
        facts.insert(0, f"{record.duration:.3f}s")
    colour = COLOURS.get(status, "#57606a")
    html = [
        f'<p><span style="background:{colour};color:#fff;border-radius:9px;padding:1px 8px">'
        f"{escape(status)}</span> {escape(' · '.join(facts))}</p>"
    ]
    text = [f"{node_id}: {status} ({', '.join(facts)})"]
    if record.error is not None:
        html.append(f'<pre style="color:#82071e">{escape(str(record.error))}</pre>')
        text.append(f"error: {record.error}")
    if record.traceback:
        html.append(
            f"<details><summary>traceback</summary><pre>{escape(record.traceback)}</pre></details>"
        )
    for title, values in (("inputs", record.inputs), ("outputs", record.outputs)):
        if values:
            html.append(f"<h4>{title}</h4>" + _values_html(values))
            text.append(f"{title}: " + ", ".join(f"{k}={_short(v)}" for k, v in values.items()))
    if record.logs:
        logs = "".join(line.text for line in record.logs)
        html.append(f"<h4>logs</h4><pre>{escape(logs)}</pre>")
        text.append("logs:\n" + logs.rstrip())
    return {"text/plain": "\n".join(text), "text/html": "".join(html)}


def _values_html(values: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><th style="text-align:left;vertical-align:top">{escape(str(name))}</th>'
        f'<td style="text-align:left">{value_html(value)}</td></tr>'
        for name, value in values.items()
    )
    return f"<table>{rows}</table>"


def value_html(value: Any) -> str:
    """A table for records and data frames (the first rows), else the value's preview."""
    to_html = getattr(value, "_repr_html_", None)
    if callable(to_html) and not isinstance(value, type):
        head = getattr(value, "head", None)
        try:
            shown = head(ROWS) if callable(head) else value
            return str(shown._repr_html_())
        except Exception:
            pass
    if isinstance(value, list) and value and all(isinstance(row, dict) for row in value):
        return _records_html(value)
    from conductor_nb.headless.report import _preview

    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = ""
    if not text or len(text) > 100:  # long or not JSON: the report's indented preview
        text = _preview(value)
    return f"<pre>{escape(text)}</pre>"


def _records_html(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows[:ROWS]:
        columns += [str(key) for key in row if str(key) not in columns]
    head = "".join(f"<th>{escape(name)}</th>" for name in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{escape(_short(row.get(name, '')))}</td>" for name in columns)
        + "</tr>"
        for row in rows[:ROWS]
    )
    more = f"<p>{len(rows)} rows; the first {ROWS} shown</p>" if len(rows) > ROWS else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _short(value: Any, limit: int = 80) -> str:
    from conductor_nb.headless.result import preview

    return value if isinstance(value, str) and len(value) <= limit else preview(value, limit)


def show_result(run: Run) -> None:
    """Display the run's outputs and summary; the bundle carries the ``--json`` result."""
    from IPython.display import display

    from conductor_nb.headless.result import outputs_text, run_result, run_summary

    outputs = run.outputs
    html = "<p><b>" + escape(run_summary(run)).replace("\n", "<br>") + "</b></p>"
    if outputs:
        html += _values_html(outputs)
    text = "\n".join(part for part in (run_summary(run), outputs_text(run)) if part)
    bundle = {"text/plain": text, "text/html": html, RESULT_MIME: run_result(run)}
    display(json.loads(json.dumps(bundle, default=str)), raw=True)


# ------------------------------------------------------------------ running it


def run_blueprint_notebook(
    path: str | Path,
    output: str | Path,
    parameters: Mapping[str, Any] | None,
    settings: NotebookOptions,
    *,
    imports: Sequence[str] = (),
    run_options: str = "",
    report: str | None = None,
    load_options: Mapping[str, Any] | None = None,
) -> NotebookResult:
    """Run the blueprint file ``path`` in a kernel and write its report notebook to
    ``output``. The node types must be registered here (the blueprint is validated before
    a kernel starts); the kernel imports ``imports`` and the modules that define them.
    Raises :class:`NotebookError` (kind ``run-failed`` when the run failed; ``.result`` is
    its ``--json`` result) like any notebook run."""
    from conductor_nb.model.blueprint import Blueprint

    source = Path(path).resolve()
    bp = Blueprint.load(source, **dict(load_options or {}))
    bp.validate()
    params = dict(parameters or {})
    unnamed = [name for name in params if not _is_identifier(name)]
    if unnamed:
        raise ValueError(
            f"param(s) {', '.join(map(repr, unnamed))} of blueprint {bp.id!r} are not Python "
            "names, so a notebook cannot receive them; run the blueprint directly instead"
        )
    modules = [*imports, *(m for m in defining_modules(bp) if m not in imports)]
    with tempfile.TemporaryDirectory(prefix="cnb-bp-") as folder:
        notebook = Path(folder) / f"{source.stem}.ipynb"
        document = report_notebook(
            bp,
            source,
            imports=modules,
            run_options=run_options,
            report=report,
            load_options=load_options,
        )
        notebook.write_text(json.dumps(document, indent=1), encoding="utf-8")
        try:
            done = execute(notebook, output, params, settings)
        except NotebookError as exc:
            result = _finish(exc.output, source)
            if result is None or exc.kind != CELL_ERROR:
                raise
            error = NotebookError(
                _failure(result), kind=RUN_FAILED, output=exc.output, ename="RunFailed"
            )
            error.result = result
            raise error from exc
    _finish(done.output, source)
    return NotebookResult(source, done.output, params, done.duration, done.status)


def defining_modules(bp: Blueprint) -> list[str]:
    """The modules that define the blueprint's node types (``@cnb.node`` functions), which
    the kernel imports so the types are registered there too; built-in types and functions
    of ``__main__`` (a script or notebook the kernel cannot import) are left out."""
    from conductor_nb.model.types import registry

    modules: list[str] = []
    for node in bp.nodes.values():
        found = registry.find(node.type)
        module = found.module if found is not None else ""
        is_own = module and module != "__main__" and not module.startswith("conductor_nb")
        if is_own and module not in modules:
            modules.append(module)
    return modules


def _failure(result: Mapping[str, Any]) -> str:
    failed = [
        f"node {node_id!r} failed: {node.get('error')}"
        for node_id, node in result.get("nodes", {}).items()
        if node.get("status") == "failed"
    ]
    head = f"blueprint {result.get('blueprint_id')!r} run {result.get('status')}"
    return head + (": " + "; ".join(failed) if failed else "")


def _finish(output: Path | None, blueprint: Path) -> dict[str, Any] | None:
    """Record the blueprint (not the temporary notebook) as the output's input, and return
    the run's result from the result cell (None when the run never got there), with its
    text (``summary``: what a direct run prints)."""
    if output is None or not output.exists():
        return None
    import nbformat

    nb = nbformat.read(str(output), as_version=4)
    nb.metadata.setdefault("papermill", {})["input_path"] = str(blueprint)
    result = None
    for cell in nb.cells:
        for item in cell.get("outputs", ()):
            data = item.get("data", {})
            if RESULT_MIME in data:
                result = dict(data[RESULT_MIME])
                result["summary"] = "".join(data.get("text/plain", ""))
    if result is not None:
        info = nb.metadata.setdefault("conductor_nb", {})
        info.update(run_id=result.get("run_id"), status=result.get("status"))
        info.pop("kind", None)
        info.pop("message", None)
        if result.get("exit_code"):
            info.update(kind=RUN_FAILED, message=_failure(result))
    nbformat.write(nb, str(output))
    return result


# ------------------------------------------------------------------ the command


def run_blueprint_command(args: argparse.Namespace) -> int:
    """``conductor-nb run bp.yaml -o run.ipynb``: the run in a kernel, then the same result
    and exit code as a direct run, and the report notebook."""
    from conductor_nb.headless import atomiton_cmd, common
    from conductor_nb.headless.notebook_cmd import notebook_settings, papermill_log
    from conductor_nb.headless.run_cmd import blueprint_params, param_sources

    common.import_modules(args.imports)
    flow = atomiton_cmd.flow_options(args)
    bp = common.load_blueprint(args.file, **flow)
    params = blueprint_params(bp, args.params, param_sources(args))
    bp.validate()
    output = args.output or args.output_path
    if output == "-":
        raise common.UsageError("a blueprint's report notebook needs a file (-o run.ipynb)")
    import contextlib

    with contextlib.ExitStack() as stack:
        stack.enter_context(papermill_log(args.log_level, log_output=args.log_output))
        settings = notebook_settings(args, stack, to_stdout=False)
        try:
            done = run_blueprint_notebook(
                args.file,
                output,
                params,
                settings,
                imports=args.imports,
                run_options=kernel_run_options(args),
                report=str(Path(args.report).resolve()) if args.report else None,
                load_options=flow,
            )
        except NotebookError as exc:
            if exc.result is None:
                raise
            return _print_result(args, exc.result, output)
    if done.status == "prepared":
        sys.stdout.write(f"prepared (not run): {output}\n")
        return common.EXIT_OK
    return _print_result(args, _finish(done.output, Path(args.file).resolve()) or {}, output)


def _print_result(args: argparse.Namespace, result: dict[str, Any], output: str) -> int:
    from conductor_nb.headless import common

    code = int(result.get("exit_code", common.EXIT_FAILED))
    result["notebook"] = str(output)
    summary = result.pop("summary", "")
    if args.report:
        result["report"] = args.report
    if args.json:
        common.print_json(result)
        sys.stdout.write("\n")
        return code
    sys.stdout.write(summary + "\n")
    sys.stdout.write(f"notebook: {output}\n")
    if args.report:
        sys.stdout.write(f"report: {args.report}\n")
    return code


def kernel_run_options(args: argparse.Namespace) -> str:
    """The run options of the command line, as keyword text for ``bp.run`` in the kernel."""
    from conductor_nb.headless import common
    from conductor_nb.headless.run_cmd import file_roots

    options: dict[str, Any] = {"fail_fast": args.fail_fast}
    if args.cache is not None:
        options["cache"] = args.cache
    if args.concurrency is not None:
        if args.concurrency < 1:
            raise common.UsageError(f"--concurrency must be at least 1, got {args.concurrency}")
        options["concurrency"] = args.concurrency
    if args.file_roots:
        options["settings"] = {"file_roots": file_roots(args.file_roots)}
    if args.no_history or not common.history_available():
        options["history"] = False
    if args.executor == "process":
        options["executor"] = "process"
    text = ", ".join(f"{name}={value!r}" for name, value in options.items())
    if args.executor == "dask":
        address = f"{args.scheduler!r}" if args.scheduler else ""
        text += f", executor=cnb.DaskExecutor({address})"
    elif args.scheduler:
        raise common.UsageError("--scheduler needs --executor dask")
    return text
