"""What the graph view shows, as plain JSON-able data (no widgets, no traitlets).

The view's synced traits are built here from a :class:`Blueprint` and a
:class:`Run`, so the browser-free unit tests can check exactly what the
front end receives:

- ``graph``: nodes (box, ports with their y offsets, label, type) and edges,
  positioned by the layered layout shared with the static SVG;
- ``states``: per node, its state, attempts and duration;
- ``run_info``: the run's status, progress, ETA and the node it is paused at;
- ``inspector``: the selected node's params form, last inputs/outputs as
  truncated previews, error with traceback, and logs.

Values edited in the params form arrive as text and are coerced here to the
param's declared type (``coerce_value``).
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from conductor_nb.model.layout import layout, port_y
from conductor_nb.model.types import MISSING, NodeType

if TYPE_CHECKING:
    from conductor_nb.engine.node_runner import NodeRun
    from conductor_nb.engine.run import Run
    from conductor_nb.model.blueprint import Blueprint

PREVIEW_CHARS = 400
HTML_PREVIEW_CHARS = 20_000
LOG_CHARS = 8_000


# ----------------------------------------------------------------------- graph
def graph_payload(bp: Blueprint) -> dict[str, Any]:
    """Nodes with boxes and ports, and edges, for the front end."""
    boxes = layout(bp)
    nodes = []
    for node_id, node in bp.nodes.items():
        box = boxes[node_id]
        node_type = bp.registry.find(node.type, node.version)
        nodes.append(
            {
                "id": node_id,
                "label": node.label,
                "type": node.type,
                "x": box.x,
                "y": box.y,
                "w": box.w,
                "h": box.h,
                "enabled": node.enabled,
                "known": node_type is not None,
                "inputs": _ports(node_type.inputs if node_type else (), box.y, box),
                "outputs": _ports(node_type.outputs if node_type else (), box.y, box),
            }
        )
    edges = [
        {
            "id": str(edge),
            "source": edge.source,
            "source_port": edge.source_port,
            "target": edge.target,
            "target_port": edge.target_port,
        }
        for edge in bp.edges
        if edge.source in bp.nodes and edge.target in bp.nodes
    ]
    return {"id": bp.id, "name": bp.name, "nodes": nodes, "edges": edges}


def _ports(ports: Any, top: float, box: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": p.name,
            "type": p.type,
            "required": bool(getattr(p, "required", False)),
            "many": bool(getattr(p, "many", False)),
            "dy": round(port_y(box, i) + 4 - top, 2),
        }
        for i, p in enumerate(ports)
    ]


def palette(bp: Blueprint) -> list[dict[str, str]]:
    """The registered node types a user can add, by name."""
    return [
        {"name": t.name, "category": t.category, "description": t.description} for t in bp.registry
    ]


# ------------------------------------------------------------------ run state
def node_state(record: NodeRun) -> dict[str, Any]:
    duration = record.duration if record.status.is_finished else None
    return {
        "state": record.status.value,
        "attempts": record.attempts,
        "duration": None if duration is None else round(duration, 3),
    }


def states_payload(run: Run, node_ids: Any = None) -> dict[str, dict[str, Any]]:
    ids = run.node_runs if node_ids is None else node_ids
    return {n: node_state(run.node_runs[n]) for n in ids if n in run.node_runs}


def run_info(run: Run | None) -> dict[str, Any]:
    if run is None:
        return {
            "status": "idle",
            "done": 0,
            "total": 0,
            "eta": None,
            "paused_at": None,
            "run_id": None,
            "dashboard": None,
        }
    done, total = run.progress()
    eta = run.eta()
    return {
        "status": run.status.value,
        "done": done,
        "total": total,
        "eta": None if eta is None or math.isinf(eta) else round(eta, 1),
        "paused_at": run.paused_at if run.is_paused else None,
        "run_id": run.id,
        "dashboard": None if run.is_finished else _dashboard_link(run),
    }


def _dashboard_link(run: Run) -> str | None:
    """The Dask dashboard of the run's executor, if it has one (shown while the run is active)."""
    try:
        link = getattr(run.executor, "dashboard_link", None)
    except Exception:  # a cluster that went away must not break the view
        return None
    return link if isinstance(link, str) and link else None


def svg_states(run: Run | None) -> tuple[dict[str, str], dict[str, str]]:
    """States and badge texts for :func:`conductor_nb.model.svg.render_svg`."""
    if run is None:
        return {}, {}
    states = {n: r.status.value for n, r in run.node_runs.items()}
    if run.is_paused and run.paused_at:
        states[run.paused_at] = "paused"
    details = {}
    for node_id, record in run.node_runs.items():
        parts = [f"x{record.attempts}"] if record.attempts > 1 else []
        if record.status.is_finished and record.duration is not None:
            parts.append(f"{record.duration:.2f}s")
        details[node_id] = " ".join(parts)
    return states, details


# ------------------------------------------------------------------ inspector
def inspector_payload(bp: Blueprint, node_id: str | None, run: Run | None) -> dict[str, Any]:
    """Everything the side panel shows for the selected node (empty when none)."""
    if not node_id or node_id not in bp.nodes:
        return {}
    node = bp.nodes[node_id]
    node_type = bp.registry.find(node.type, node.version)
    out: dict[str, Any] = {
        "node": node_id,
        "type": node.type,
        "label": node.label,
        "description": node_type.description if node_type else f"unknown type {node.type!r}",
        "fields": param_fields(node_type, node.params, connected(bp, node_id)),
        "run": None,
    }
    record = run.node_runs.get(node_id) if run is not None else None
    if record is not None:
        out["run"] = run_record(record)
    return out


def connected(bp: Blueprint, node_id: str) -> set[str]:
    return {e.target_port for e in bp.edges if e.target == node_id}


def param_fields(
    node_type: NodeType | None, values: Mapping[str, Any], wired: set[str]
) -> list[dict[str, Any]]:
    """The params form: config params, then input ports that no edge feeds."""
    if node_type is None:
        return []
    fields = []
    for f in node_type.params:
        fields.append(
            _field(f.name, f.type, f.default, f.choices, f.description, f.required, values)
        )
    for port in node_type.inputs:
        if port.name in wired or node_type.param(port.name) is not None:
            continue
        fields.append(
            _field(
                port.name,
                port.type,
                port.default,
                (),
                port.description,
                port.required,
                values,
                is_input=True,
            )
        )
    return fields


def _field(
    name: str,
    type_name: str,
    default: Any,
    choices: Any,
    description: str,
    required: bool,
    values: Mapping[str, Any],
    is_input: bool = False,
) -> dict[str, Any]:
    has_value = name in values
    return {
        "name": name,
        "type": type_name,
        "kind": field_kind(type_name, choices),
        "choices": [to_text(c) for c in choices],
        "description": description,
        "required": required and default is MISSING,
        "input": is_input,
        "default": None if default is MISSING else to_text(default),
        "value": to_text(values[name]) if has_value else None,
        "bool_value": bool(values[name])
        if has_value and isinstance(values[name], bool)
        else (bool(default) if isinstance(default, bool) else False),
    }


def field_kind(type_name: str, choices: Any = ()) -> str:
    if choices:
        return "choice"
    if type_name == "bool":
        return "bool"
    if type_name in ("int", "float"):
        return "number"
    return "text"


def to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def coerce_value(type_name: str, text: Any) -> Any:
    """Turn what the form sent into a param value; ``None`` (empty) removes the value."""
    if isinstance(text, bool):
        return text
    if text is None or (isinstance(text, str) and text.strip() == ""):
        return None
    text = str(text)
    if "{{" in text:  # a template stays text whatever the declared type
        return text
    if type_name == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if type_name == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    if type_name == "bool":
        return text.strip().lower() in ("1", "true", "yes", "on")
    if type_name == "str":
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def run_record(record: NodeRun) -> dict[str, Any]:
    return {
        "state": record.status.value,
        "attempts": record.attempts,
        "duration": None if record.duration is None else round(record.duration, 3),
        "inputs": previews(record.inputs),
        "outputs": previews(record.outputs),
        "inputs_json": inputs_json(record.inputs),
        "error": str(record.error) if record.error else "",
        "traceback": record.traceback or "",
        "logs": _tail(record.log_text, LOG_CHARS),
    }


def previews(values: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [] if values is None else [{"name": k, **preview(v)} for k, v in values.items()]


def preview(value: Any) -> dict[str, Any]:
    """A short text preview, plus an HTML one for DataFrames and images."""
    out: dict[str, Any] = {"kind": type(value).__name__, "text": _clip(_safe_repr(value))}
    html = _html_preview(value)
    if html:
        out["html"] = html
    return out


def _html_preview(value: Any) -> str | None:
    try:
        if hasattr(value, "save") and hasattr(value, "size") and hasattr(value, "thumbnail"):
            thumb = value.copy()
            thumb.thumbnail((240, 240))
            buf = io.BytesIO()
            thumb.save(buf, format="PNG")
            data = base64.b64encode(buf.getvalue()).decode()
            return f'<img class="cnb-preview-img" src="data:image/png;base64,{data}"/>'
        if hasattr(value, "_repr_html_") and hasattr(value, "head"):
            html = value.head(10)._repr_html_()
            if isinstance(html, str) and len(html) <= HTML_PREVIEW_CHARS:
                return html
    except Exception:  # a preview must never break the inspector
        return None
    return None


def inputs_json(values: Mapping[str, Any] | None) -> str | None:
    """Recorded inputs as editable JSON, when they are JSON (else the form is read-only)."""
    if values is None:
        return None
    try:
        text = json.dumps(dict(values), indent=1, default=_no_default)
    except (TypeError, ValueError):
        return None
    return text if len(text) <= 50_000 else None


def _no_default(value: Any) -> Any:
    raise TypeError(type(value).__name__)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:
        return f"<unprintable {type(value).__name__}: {exc}>"


def _clip(text: str, n: int = PREVIEW_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _tail(text: str, n: int) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1) :]
