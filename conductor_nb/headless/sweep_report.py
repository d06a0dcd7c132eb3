"""A sweep's HTML report: the table of parameter sets, sortable, with a link to each output
notebook, and a chart of each recorded number against the parameter when one numeric
parameter varies. One self-contained file: inline CSS, SVG and a few lines of script,
nothing fetched."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor_nb.headless.report import COLOURS
from conductor_nb.headless.sweep import STATUS_COLUMNS, sweep_rows, varying_keys

if TYPE_CHECKING:
    from conductor_nb.engine.run import Run

_SORT = """
const sortBy = (th, col) => () => {
  const body = th.closest('table').tBodies[0];
  const up = th.dataset.order !== 'up';
  th.closest('tr').querySelectorAll('th').forEach(h => delete h.dataset.order);
  th.dataset.order = up ? 'up' : 'down';
  const key = r => r.cells[col].dataset.v ?? r.cells[col].textContent;
  const num = v => v !== '' && !isNaN(v);
  [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b);
    const c = num(x) && num(y) ? x - y : String(x).localeCompare(String(y));
    return up ? c : -c;
  }).forEach(r => body.appendChild(r));
};
document.querySelectorAll('table.sweep th').forEach((th, col) =>
  th.addEventListener('click', sortBy(th, col)));
"""

_CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#24292f;margin:24px}
table.sweep{border-collapse:collapse}
table.sweep th,table.sweep td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;
 vertical-align:top}
table.sweep th{background:#f6f8fa;cursor:pointer;user-select:none}
table.sweep th[data-order=up]::after{content:' \\25B2'}
table.sweep th[data-order=down]::after{content:' \\25BC'}
.badge{color:#fff;border-radius:8px;padding:0 6px;font-size:12px}
.err{color:#cf222e;max-width:40em}
figure{display:inline-block;margin:16px 24px 0 0}
"""


def param_columns(rows: Sequence[dict[str, Any]], parameters: Sequence[str]) -> list[str]:
    """The table's columns: parameters first, then status and duration, the recorded values,
    then the output and the error."""
    recorded = [
        key
        for key in dict.fromkeys(k for row in rows for k in row)
        if key not in parameters and key not in STATUS_COLUMNS
    ]
    return [*parameters, "status", "duration", *recorded, "output", "error"]


def rows_html(
    rows: Sequence[dict[str, Any]], *, links: bool = True, base: Path | None = None
) -> str:
    """The sweep's table as HTML (``links``: output notebooks as links relative to ``base``)."""
    parameters = [k for k in dict.fromkeys(k for r in rows for k in r) if k in _params(rows)]
    columns = param_columns(rows, parameters)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(_cell(c, row.get(c), links, base) for c in columns) + "</tr>"
        for row in rows
    )
    return f'<table class="sweep"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _params(rows: Sequence[dict[str, Any]]) -> set[str]:
    """Parameter names: what comes before ``status`` in a row."""
    names: set[str] = set()
    for row in rows:
        for key in row:
            if key == "status":
                break
            names.add(key)
    return names


def _cell(column: str, value: Any, links: bool, base: Path | None) -> str:
    if value is None:
        return '<td data-v=""></td>'
    if column == "status":
        colour = COLOURS.get(str(value), "#57606a")
        badge = f'<span class="badge" style="background:{colour}">{html.escape(str(value))}</span>'
        return f'<td data-v="{html.escape(str(value))}">{badge}</td>'
    if column == "output" and links:
        target = Path(str(value))
        href = os.path.relpath(target, base) if base else str(target)
        return f'<td><a href="{html.escape(href)}">{html.escape(target.name)}</a></td>'
    if column == "error":
        return f'<td class="err">{html.escape(str(value))}</td>'
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    sort_key = f' data-v="{value}"' if _is_number(value) else ""
    return f"<td{sort_key}>{html.escape(str(text))}</td>"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def charts(rows: Sequence[dict[str, Any]]) -> list[str]:
    """An SVG chart per recorded number against the parameter, when exactly one numeric
    parameter varies between the succeeded rows; none otherwise."""
    parameters = _params(rows)
    done = [row for row in rows if row.get("status") == "succeeded"]
    varying = [k for k in varying_keys([{p: r.get(p) for p in parameters} for r in rows])]
    numeric = [k for k in varying if all(_is_number(r.get(k)) for r in rows)]
    if len(varying) != 1 or len(numeric) != 1 or len(done) < 2:
        return []
    x_name = numeric[0]
    recorded = [
        k
        for k in param_columns(rows, list(parameters))
        if k not in parameters
        and k not in STATUS_COLUMNS
        and all(_is_number(r.get(k)) for r in done)
    ]
    return [_chart(x_name, y_name, [(r[x_name], r[y_name]) for r in done]) for y_name in recorded]


def _chart(x_name: str, y_name: str, points: list[tuple[float, float]]) -> str:
    width, height, pad = 420, 260, 48
    points = sorted(points)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    xspan, yspan = (x1 - x0) or 1, (y1 - y0) or 1

    def at(x: float, y: float) -> tuple[float, float]:
        return (
            pad + (x - x0) / xspan * (width - 2 * pad),
            height - pad - (y - y0) / yspan * (height - 2 * pad),
        )

    line = " ".join(f"{a:.1f},{b:.1f}" for a, b in (at(x, y) for x, y in points))
    dots = "".join(
        f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="#0969da">'
        f"<title>{html.escape(f'{x_name}={x:g}: {y_name}={y:g}')}</title></circle>"
        for (x, y), (a, b) in zip(points, (at(x, y) for x, y in points), strict=True)
    )
    ticks = (
        f'<text x="{pad}" y="{height - pad + 16}" font-size="11">{x0:g}</text>'
        f'<text x="{width - pad}" y="{height - pad + 16}" font-size="11" '
        f'text-anchor="end">{x1:g}</text>'
        f'<text x="{pad - 6}" y="{height - pad}" font-size="11" text-anchor="end">{y0:g}</text>'
        f'<text x="{pad - 6}" y="{pad + 4}" font-size="11" text-anchor="end">{y1:g}</text>'
    )
    axes = (
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" '
        'stroke="#8c959f"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#8c959f"/>'
    )
    labels = (
        f'<text x="{width / 2}" y="{height - 8}" font-size="12" text-anchor="middle">'
        f"{html.escape(x_name)}</text>"
        f'<text x="14" y="{height / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {height / 2})">{html.escape(y_name)}</text>'
    )
    return (
        f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'class="sweep-chart" data-x="{html.escape(x_name)}" data-y="{html.escape(y_name)}">'
        f"{axes}{ticks}{labels}"
        f'<polyline points="{line}" fill="none" stroke="#0969da" stroke-width="1.5"/>{dots}'
        f"</svg><figcaption>{html.escape(y_name)} against {html.escape(x_name)}</figcaption>"
        "</figure>"
    )


def sweep_html(run: Run, base: Path | None = None) -> str:
    """The whole report page of a sweep's run."""
    rows = sweep_rows(run)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    title = html.escape(run.blueprint.name)
    duration = f"{run.duration:.1f} s" if run.duration else "-"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_CSS}</style></head><body><h1>{title}</h1>"
        f"<p>run {html.escape(run.id)}: <b>{html.escape(run.status.value)}</b>, {len(rows)} "
        f"parameter sets ({html.escape(summary)}), {duration}</p>"
        f"{rows_html(rows, links=True, base=base)}{''.join(charts(rows))}"
        f"<script>{_SORT}</script></body></html>"
    )


def write_sweep_report(run: Run, path: str | Path) -> str:
    """Write :func:`sweep_html` to ``path`` (atomically); return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.tmp")
    temp.write_text(sweep_html(run, base=target.resolve().parent), encoding="utf-8")
    temp.replace(target)
    return str(target)
