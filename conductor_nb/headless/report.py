"""The run report: one self-contained HTML file (no CDN, no script) describing a run.

Sections: a header (status, ids, times, params), the graph (the run's static
SVG with final node states), a timeline (one bar per node: queued, each running
attempt, retry delays), and one panel per node with its input and output
previews, error and traceback, and logs. Built from the run's event list when
it has one (attempts and retries are visible there), else from the NodeRuns
(a run loaded from history). Everything user-provided is HTML-escaped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import events as ev
from conductor_nb.model.states import STATE_STYLES

if TYPE_CHECKING:
    from conductor_nb.engine.node_runner import NodeRun
    from conductor_nb.engine.run import Run

PREVIEW_CHARS = 3000
LOG_CHARS = 20000

COLOURS = {name: look.stroke for name, look in STATE_STYLES.items()}
"""Bar and badge colours: the strokes of the one state table (model.states.STATE_STYLES)."""


def write_report(run: Run, path: str | Path) -> str:
    """Write the HTML report of ``run`` to ``path``; return the path written."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(run), encoding="utf-8")
    return str(target)


# ------------------------------------------------------------------ timeline model


@dataclass
class Span:
    kind: str  # "queued" | "attempt" | "retry"
    start: float
    end: float | None
    outcome: str = ""  # for attempts: succeeded | failed | cancelled | running
    label: str = ""


@dataclass
class Lane:
    node_id: str
    spans: list[Span] = field(default_factory=list)


def timeline(run: Run) -> list[Lane]:
    lanes = {node_id: Lane(node_id) for node_id in run.node_runs}
    if run.events:
        for event in run.events:
            node_id = getattr(event, "node_id", None)
            if node_id:
                _apply(lanes.setdefault(node_id, Lane(node_id)), event)
    else:
        for node_id, record in run.node_runs.items():
            _from_record(lanes[node_id], record)
    end = run.finished_at or time.time()
    for lane in lanes.values():
        for span in lane.spans:
            if span.end is None:
                span.end = end
    return list(lanes.values())


def _open(lane: Lane, kind: str) -> Span | None:
    for span in reversed(lane.spans):
        if span.kind == kind and span.end is None:
            return span
    return None


def _close_all(lane: Lane, at: float, outcome: str) -> None:
    for span in lane.spans:
        if span.end is None:
            span.end = at
            if span.kind == "attempt":
                span.outcome = outcome


def _apply(lane: Lane, event: ev.Event) -> None:
    if isinstance(event, ev.NodeReset):
        lane.spans.clear()
    elif isinstance(event, ev.NodeQueued):
        lane.spans.append(Span("queued", event.time, None))
    elif isinstance(event, ev.NodeStarted):
        _close_all(lane, event.time, "failed")
        lane.spans.append(Span("attempt", event.time, None, "running", f"attempt {event.attempt}"))
    elif isinstance(event, ev.NodeRetrying):
        _close_all(lane, event.time, "failed")
        lane.spans.append(Span("retry", event.time, None, label=f"retry in {event.delay:.1f}s"))
    elif isinstance(event, ev.NodeSucceeded | ev.NodeCached):
        _close_all(lane, event.time, "succeeded")
    elif isinstance(event, ev.NodeFailed):
        _close_all(lane, event.time, "failed")
    elif isinstance(event, ev.NodeCancelled):
        _close_all(lane, event.time, "cancelled")


def _from_record(lane: Lane, record: NodeRun) -> None:
    if record.queued_at is not None:
        lane.spans.append(Span("queued", record.queued_at, record.started_at or record.queued_at))
    if record.started_at is not None:
        outcome = record.status.value if record.status.is_finished else "running"
        lane.spans.append(
            Span(
                "attempt",
                record.started_at,
                record.finished_at,
                outcome,
                f"attempt {max(1, record.attempts)}",
            )
        )


# ------------------------------------------------------------------ rendering


def render_report(run: Run) -> str:
    title = f"{run.blueprint.name}: run {run.id} ({run.status.value})"
    body = [
        _header(run),
        _section("Graph", f'<div class="graph">{_graph(run)}</div>'),
        _section("Timeline", _timeline_svg(run)),
        _section(
            "Nodes",
            "\n".join(
                _node_panel(run, node_id, record) for node_id, record in run.node_runs.items()
            ),
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main>"
        f"<footer>conductor_nb run report, written {escape(_when(time.time()))}</footer>"
        "</body></html>\n"
    )


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def _badge(status: str) -> str:
    colour = COLOURS.get(status, "#57606a")
    return f'<span class="badge" style="background:{colour}">{escape(status)}</span>'


def _header(run: Run) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in sorted(run.counts().items()))
    rows = [
        ("Blueprint", f"{escape(run.blueprint.name)} <code>{escape(run.blueprint.id)}</code>"),
        ("Run", f"<code>{escape(run.id)}</code>"),
        ("Started", escape(_when(run.started_at))),
        ("Duration", escape(_secs(run.duration))),
        ("Nodes", escape(counts)),
    ]
    if run.params:
        rows.append(("Params", f"<pre>{escape(_preview(run.params))}</pre>"))
    if run.outputs:
        rows.append(("Outputs", f"<pre>{escape(_preview(run.redact(run.outputs)))}</pre>"))
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    desc = (
        f'<p class="desc">{escape(run.blueprint.description)}</p>'
        if run.blueprint.description
        else ""
    )
    return (
        f"<header><h1>{escape(run.blueprint.name)} {_badge(run.status.value)}</h1>{desc}"
        f'<table class="meta">{table}</table></header>'
    )


def _section(title: str, content: str) -> str:
    anchor = title.lower()
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{content}</section>'


def _graph(run: Run) -> str:
    try:
        return run.to_svg(max_width=None)
    except Exception as exc:  # a picture must never stop the report
        return f'<p class="muted">no picture: {escape(repr(exc))}</p>'


def _timeline_svg(run: Run) -> str:
    lanes = timeline(run)
    spans = [s for lane in lanes for s in lane.spans]
    if not spans:
        return '<p class="muted">no node ran</p>'
    t0 = min([s.start for s in spans] + ([run.started_at] if run.started_at else []))
    t1 = max([s.end or s.start for s in spans] + ([run.finished_at] if run.finished_at else []))
    scale = max(t1 - t0, 1e-3)
    label_w, bar_w, row_h, top = 170, 640, 24, 26
    width, height = label_w + bar_w + 170, top + row_h * len(lanes) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" font-size="12" '
        'font-family="Helvetica, Arial, sans-serif">'
    ]
    for i in range(6):
        x = label_w + bar_w * i / 5
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 6}" stroke="#eaeef2"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{top - 10}" text-anchor="middle" fill="#57606a">'
            f"{scale * i / 5:.2f}s</text>"
        )
    for row, lane in enumerate(lanes):
        y = top + row * row_h
        record = run.node_runs.get(lane.node_id)
        status = record.status.value if record else "pending"
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" fill="#24292f">'
            f"{escape(_clip(lane.node_id, 24))}</text>"
        )
        for span in lane.spans:
            parts.append(_bar(span, t0, scale, label_w, bar_w, y))
        total = record.duration if record else None
        note = f"{status} {_secs(total)}" if total is not None else status
        if record and record.attempts > 1:
            note += f" x{record.attempts}"
        parts.append(
            f'<text x="{label_w + bar_w + 6}" y="{y + 15}" fill="#57606a">{escape(note)}</text>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span class="key"><i style="background:{COLOURS[k]}"></i>{label}</span>'
        for k, label in (
            ("queued", "queued"),
            ("running", "running"),
            ("succeeded", "succeeded"),
            ("failed", "failed attempt"),
            ("retrying", "retry delay"),
            ("cancelled", "cancelled"),
        )
    )
    return f'<div class="legend">{legend}</div>' + "\n".join(parts)


def _bar(span: Span, t0: float, scale: float, left: int, width: int, y: float) -> str:
    start = left + (span.start - t0) / scale * width
    end = left + ((span.end or span.start) - t0) / scale * width
    w = max(end - start, 2.0)
    if span.kind == "queued":
        colour, height, dy = COLOURS["queued"], 6, 7
    elif span.kind == "retry":
        colour, height, dy = COLOURS["retrying"], 6, 7
    else:
        colour, height, dy = COLOURS.get(span.outcome, COLOURS["running"]), 16, 2
    took = (span.end or span.start) - span.start
    tip = f"{span.kind} {span.label} {span.outcome} {took:.3f}s".replace("  ", " ")
    return (
        f'<rect class="bar {span.kind}" x="{start:.1f}" y="{y + dy}" width="{w:.1f}" '
        f'height="{height}" rx="3" fill="{colour}"><title>{escape(tip)}</title></rect>'
    )


def _node_panel(run: Run, node_id: str, record: NodeRun) -> str:
    status = record.status.value
    facts = [
        f"type <code>{escape(record.type or '-')}</code>",
        f"duration {_secs(record.duration)}",
        f"attempts {record.attempts}",
    ]
    if record.started_at:
        facts.append(f"started {escape(_when(record.started_at))}")
    parts = [f'<p class="facts">{" · ".join(facts)}</p>']
    if record.error is not None:
        parts.append(f'<h4>Error</h4><pre class="error">{escape(str(record.error))}</pre>')
    if record.traceback:
        parts.append(
            "<details><summary>Traceback</summary>"
            f'<pre class="error">{escape(_clip(record.traceback, LOG_CHARS))}</pre>'
            "</details>"
        )
    reason = _skip_reason(run, node_id)
    if reason:
        parts.append(f'<p class="muted">{escape(reason)}</p>')
    if record.inputs:
        parts.append(f"<h4>Inputs</h4>{_values(record.inputs)}")
    if record.outputs:
        parts.append(f"<h4>Outputs</h4>{_values(run.redact(record.outputs))}")
    if record.logs:
        text = "".join(line.text for line in record.logs)
        parts.append(f'<h4>Logs</h4><pre class="logs">{escape(_clip(text, LOG_CHARS))}</pre>')
    is_open = " open" if status in ("failed", "cancelled") else ""
    return (
        f'<details class="node {escape(status)}" id="node-{escape(node_id)}"{is_open}>'
        f"<summary>{_badge(status)} <b>{escape(node_id)}</b> "
        f'<span class="muted">{escape(record.type)} · {_secs(record.duration)}</span>'
        f'</summary><div class="body">{"".join(parts)}</div></details>'
    )


def _skip_reason(run: Run, node_id: str) -> str:
    for event in reversed(run.events):
        if getattr(event, "node_id", None) == node_id and isinstance(
            event, ev.NodeSkipped | ev.NodeCancelled
        ):
            return f"{event.kind.removeprefix('Node').lower()}: {event.reason}"
    return ""


def _values(values: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td><pre>{escape(_preview(v))}</pre></td></tr>"
        for k, v in values.items()
    )
    return f'<table class="values">{rows}</table>'


def _preview(value: Any) -> str:
    """A bounded, readable preview: JSON when it is JSON-able, else ``repr``."""
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(value)
        except Exception as exc:
            text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    return _clip(text, PREVIEW_CHARS)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + f"… ({len(text)} chars)"


_CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#24292f;
 background:#f6f8fa;margin:0}
main{max-width:1100px;margin:0 auto;padding:24px}
header,section{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px 20px;
 margin-bottom:16px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:0 0 12px}h4{margin:12px 0 4px}
.badge{color:#fff;border-radius:10px;padding:1px 9px;font-size:12px;vertical-align:middle}
.meta th{text-align:left;padding:2px 16px 2px 0;color:#57606a;font-weight:600;vertical-align:top}
.meta pre,.values pre{margin:0}
pre{background:#f6f8fa;border:1px solid #eaeef2;border-radius:6px;padding:8px;overflow:auto;
 max-height:320px;white-space:pre-wrap;word-break:break-word;font-size:12px}
pre.error{background:#fff5f5;border-color:#ffcecb;color:#82071e}
.graph{overflow:auto}.graph svg{max-width:100%;height:auto}
.muted,.desc{color:#57606a}.facts{color:#57606a;margin:4px 0}
details.node{border:1px solid #d0d7de;border-radius:6px;margin:6px 0;background:#fff}
details.node>summary{cursor:pointer;padding:6px 10px}
details.node.failed{border-color:#d1242f}
.body{padding:4px 14px 10px}
.values th{text-align:left;vertical-align:top;padding:4px 12px 4px 0;font-weight:600}
.values td{width:100%}
.legend{margin-bottom:6px;color:#57606a;font-size:12px}
.key{margin-right:14px}.key i{display:inline-block;width:12px;height:10px;border-radius:2px;
 margin-right:4px;vertical-align:middle}
.timeline{max-width:100%;height:auto}
footer{text-align:center;color:#8c959f;font-size:12px;padding:8px 0 24px}
"""
