"""What the graph view shows, as plain JSON-able data (no widgets, no traitlets).

The view's synced traits are built here from a :class:`Blueprint` and a
:class:`Run`, so the browser-free unit tests can check exactly what the
front end receives:

- ``graph``: nodes (label, type, ports by type, position from :mod:`.layout`)
  and edges;
- ``states``: per node, its state, attempts and duration (to the page as
  ``wire_states``: the full set once, then only the nodes that changed);
- ``run_info``: the run's status, progress, ETA and the node it is paused at;
- ``inspector``: the selected node's params form, last inputs/outputs as
  previews by kind (tables, JSON trees, images, text), error with traceback,
  and logs;
- (the states' looks go to the page from :data:`conductor_nb.model.states.STATE_STYLES`).

Values edited in the params form arrive as text and are coerced here to the
param's declared type (``coerce_value``).
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from conductor_nb.model.types import MISSING, NodeType
from conductor_nb.widgets.layout import BODY_TYPES, MARGIN, layered, node_height, positions

if TYPE_CHECKING:
    from conductor_nb.engine.node_runner import NodeRun
    from conductor_nb.engine.run import Run
    from conductor_nb.model.blueprint import Blueprint

PREVIEW_CHARS = 400
HTML_PREVIEW_CHARS = 20_000
LOG_CHARS = 8_000


# ----------------------------------------------------------------------- graph
def graph_payload(bp: Blueprint) -> dict[str, Any]:
    """The graph for the page, sent once per edit, kept small (about 80 bytes a node).

    ``types`` holds the ports of each node type once; a node names its type and carries its
    label (when it is not the id), its position (``pos``, from :mod:`.layout`; ``saved`` when
    the blueprint has it), ``enabled``/``known`` only when false, and a loop/parallel/group body.
    ``edges`` are the edges' own texts, ``"source.port -> target.port"``.
    """
    types: dict[str, dict[str, Any]] = {}
    nodes = []
    places = positions(bp)
    for node_id, node in bp.nodes.items():
        node_type = bp.registry.find(node.type, node.version)
        key = node.type if node.version is None else f"{node.type}@{node.version}"
        if key not in types:
            types[key] = {
                "inputs": _ports(node_type.inputs if node_type else ()),
                "outputs": _ports(node_type.outputs if node_type else ()),
            }
        item: dict[str, Any] = {"id": node_id, "type": node.type}
        if key != node.type:
            item["ports"] = key
        if node.label != node_id:
            item["label"] = node.label
        item["pos"] = list(places[node_id])
        if node.position is not None:
            item["saved"] = True
        if not node.enabled:
            item["enabled"] = False
        if node_type is None:
            item["known"] = False
        if node.type in BODY_TYPES:
            item["body"] = body_summary(node.params.get("body"), bp.registry, types)
        nodes.append(item)
    edges = [str(e) for e in bp.edges if e.source in bp.nodes and e.target in bp.nodes]
    return {"id": bp.id, "name": bp.name, "types": types, "nodes": nodes, "edges": edges}


def _ports(ports: Any) -> list[dict[str, Any]]:
    out = []
    for p in ports:
        port: dict[str, Any] = {"name": p.name, "type": p.type}
        if getattr(p, "required", False):
            port["required"] = True
        if getattr(p, "many", False):
            port["many"] = True
        out.append(port)
    return out


def body_summary(
    body: Any, registry: Any = None, types: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any] | None:
    """The nodes and edges of a loop/parallel/group body, for the view's fold-out: each node
    with its type and, given the ``registry``, its ports (added to ``types``, as for the outer
    nodes) and its place in the body's own layered layout (``pos``, from the body's corner);
    edges as ``"source.port -> target.port"``."""
    if not isinstance(body, Mapping):
        return None
    raw_nodes = body.get("nodes")
    specs = raw_nodes if isinstance(raw_nodes, Mapping) else {}
    raw_edges = body.get("edges")
    edges = [_edge_text(e) for e in raw_edges] if isinstance(raw_edges, list) else []
    nodes: list[dict[str, Any]] = []
    heights: dict[str, float] = {}
    for key, spec in specs.items():
        node_id = str(key)
        type_name = str(spec.get("type", "?")) if isinstance(spec, Mapping) else "?"
        item: dict[str, Any] = {"id": node_id, "type": type_name}
        node_type = registry.find(type_name, spec.get("version")) if registry else None
        if node_type is not None and types is not None:
            types.setdefault(
                type_name,
                {"inputs": _ports(node_type.inputs), "outputs": _ports(node_type.outputs)},
            )
            heights[node_id] = node_height(len(node_type.inputs), len(node_type.outputs))
        nodes.append(item)
    if registry is not None and nodes:
        ends = [(src.split(".")[0], tgt.split(".")[0]) for src, _, tgt in map(_split, edges)]
        inner = [(s, t) for s, t in ends if s in heights and t in heights]
        places = layered(list(heights), inner, heights) if heights else {}
        for item in nodes:
            place = places.get(item["id"])
            item["pos"] = [round(place.x, 1), round(place.y, 1)] if place else [MARGIN, MARGIN]
    return {"nodes": nodes, "edges": edges}


def _split(edge_text: str) -> tuple[str, str, str]:
    return edge_text.partition(" -> ")


def _edge_text(edge: Any) -> str:
    """A body edge (text or ``{source, target}``) as ``"source.port -> target.port"``."""
    if isinstance(edge, Mapping):
        source, target = str(edge.get("source", "")), str(edge.get("target", ""))
    else:
        source, _, target = str(edge).partition("->")
    return f"{source.strip()} -> {target.strip()}"


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


def wire_states(states: Mapping[str, Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Node states as the front end gets them: ``{id: [state, attempts, duration]}``.

    Lists, not objects, because a live 1,000-node run sends many of these: about 30 bytes
    a node instead of 70.
    """
    return {n: [s["state"], s["attempts"], s["duration"]] for n, s in states.items()}


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
        "paused_at": paused_before(run),
        "run_id": run.id,
        "dashboard": None if run.is_finished else _dashboard_link(run),
    }


def paused_before(run: Run) -> str | None:
    """The node a paused run waits before: its breakpoint, else the node Step would run next
    (the first ready node in the plan's stable order)."""
    if not run.is_paused:
        return None
    if run.paused_at:
        return run.paused_at
    records = run.node_runs
    for node_id in run.plan.order:
        record = records.get(node_id)
        if record is None or record.status.value not in ("pending", "queued"):
            continue
        upstream = run.plan.nodes[node_id].upstream
        if all(records[u].status.value in ("succeeded", "cached") for u in upstream):
            return node_id
    return None


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
    if not node_id:
        return {}
    if node_id not in bp.nodes:
        return _nested_payload(bp, node_id, run)
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
    if record is not None and run is not None:
        out["run"] = run_record(record, run.redact)
    return out


def _nested_payload(bp: Blueprint, node_id: str, run: Run | None) -> dict[str, Any]:
    """A body node's run inside a loop/parallel/group (``each[2].fetch``, ``grp.inner``):
    read-only (its params live in the container's ``body``), with that item's record."""
    record = run.node_runs.get(node_id) if run is not None else None
    if record is None or run is None:
        return {}
    container, inner = _nested_parts(node_id)
    spec = _body_spec(bp, container, inner)
    type_name = str(spec.get("type", record.type or "?"))
    node_type = bp.registry.find(type_name, spec.get("version"))
    return {
        "node": node_id,
        "nested": True,
        "type": type_name,
        "label": node_id,
        "description": f"{inner} in the body of {container!r}"
        + (f": {node_type.description}" if node_type and node_type.description else ""),
        "fields": [],
        "run": run_record(record, run.redact),
    }


def _nested_parts(node_id: str) -> tuple[str, str]:
    """``"each[2].fetch"`` -> ``("each", "fetch")``; ``"grp.inner"`` -> ``("grp", "inner")``."""
    head, _, inner = node_id.partition(".")
    return head.split("[", 1)[0], inner


def _body_spec(bp: Blueprint, container: str, inner: str) -> Mapping[str, Any]:
    node = bp.nodes.get(container)
    body = node.params.get("body") if node is not None else None
    specs = body.get("nodes") if isinstance(body, Mapping) else None
    spec = specs.get(inner) if isinstance(specs, Mapping) else None
    return spec if isinstance(spec, Mapping) else {}


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


def run_record(record: NodeRun, redact: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """The inspector's "Last run" of one node. ``redact`` (the run's ``redact``) masks the
    run's secrets (``--env``/``env:`` values) in everything that goes to the browser: the
    record keeps real values for downstream nodes, so outputs and errors are masked here."""
    out = {
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
    return out if redact is None else masked_payload(out, redact)


def masked_payload(value: Any, redact: Callable[[Any], Any]) -> Any:
    """``value`` (the inspector's JSON) with every text masked by ``redact``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _masked_entry(k, v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [masked_payload(v, redact) for v in value]
    return value


def _masked_entry(key: str, value: Any, redact: Callable[[Any], Any]) -> Any:
    if key == "image":  # a data URL: no text a secret hides in, and masking would break it
        return value
    if key == "tree":
        return _masked_tree(value, redact)
    return masked_payload(value, redact)


def _masked_tree(value: Any, redact: Callable[[Any], Any]) -> Any:
    """A JSON tree's keys are the user's data too: masked like its leaves."""
    if isinstance(value, Mapping):
        return {redact(str(k)): _masked_tree(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_tree(v, redact) for v in value]
    return redact(value) if isinstance(value, str) else value


def previews(values: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [] if values is None else [{"name": k, **preview(v)} for k, v in values.items()]


def preview(value: Any) -> dict[str, Any]:
    """What the inspector shows for one value, by kind.

    Always a short ``text`` (and the value's Python ``kind``); then, where the value is one:
    ``table`` (records, DataFrames, Arrow tables: row count, columns with types, first rows),
    ``tree`` (nested JSON, clipped), ``image`` (a PNG data URL) or ``html`` (other rich reprs).
    """
    out: dict[str, Any] = {"kind": type(value).__name__, "text": _clip(_safe_repr(value))}
    try:
        extra = _rich_preview(value)
    except Exception:  # a preview must never break the inspector
        extra = {}
    out.update(extra)
    return out


def _rich_preview(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"long_text": value[:TEXT_CHARS]} if len(value) > 80 or "\n" in value else {}
    table = table_preview(value)
    if table is not None:
        return {"table": table}
    image = _image_preview(value)
    if image is not None:
        return {"image": image}
    if isinstance(value, Mapping | list | tuple) and _is_nested(value):
        return {"tree": _json_tree(value, TREE_DEPTH)}
    html = _html_preview(value)
    return {"html": html} if html else {}


TABLE_ROWS = 20
TEXT_CHARS = 20_000
TREE_DEPTH = 6
TREE_ITEMS = 50


def table_preview(value: Any) -> dict[str, Any] | None:
    """``{rows, columns: [{name, type}], head: [[cell text]...]}`` for tabular values, else None.

    Lists of records (dicts with the same kind of keys), pandas DataFrames and pyarrow Tables
    (recognised by their type's module, so neither is imported here).
    """
    module = type(value).__module__ or ""
    if module.startswith("pandas") and hasattr(value, "dtypes") and hasattr(value, "columns"):
        head = value.head(TABLE_ROWS)
        return {
            "rows": len(value),
            "columns": [{"name": str(c), "type": str(t)} for c, t in value.dtypes.items()],
            "head": [[_cell(v) for v in row] for row in head.itertuples(index=False)],
        }
    if module.startswith("pyarrow") and hasattr(value, "schema") and hasattr(value, "num_rows"):
        head = value.slice(0, TABLE_ROWS).to_pylist()
        names = list(value.schema.names)
        return {
            "rows": int(value.num_rows),
            "columns": [{"name": f.name, "type": str(f.type)} for f in value.schema],
            "head": [[_cell(r.get(n)) for n in names] for r in head],
        }
    if isinstance(value, list) and value and all(isinstance(r, Mapping) for r in value[:100]):
        names = list(dict.fromkeys(k for r in value[:100] for k in r))
        if len(names) > 60:
            return None
        return {
            "rows": len(value),
            "columns": [{"name": str(n), "type": _column_type(value[:100], n)} for n in names],
            "head": [[_cell(r.get(n)) for n in names] for r in value[:TABLE_ROWS]],
        }
    return None


def _column_type(rows: list[Any], name: Any) -> str:
    kinds = {type(r[name]).__name__ for r in rows if name in r and r[name] is not None}
    return kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else "null")


def _cell(value: Any) -> str:
    return _clip(value if isinstance(value, str) else _safe_repr(value), 120)


def _is_nested(value: Any) -> bool:
    items = value.values() if isinstance(value, Mapping) else value
    return any(isinstance(v, Mapping | list | tuple) for v in items)


def _json_tree(value: Any, depth: int) -> Any:
    """JSON-able copy of a nested value, clipped in depth, width and text length."""
    if isinstance(value, Mapping):
        if depth <= 0:
            return f"{{… {len(value)} keys}}"
        items = list(value.items())
        out = {str(k): _json_tree(v, depth - 1) for k, v in items[:TREE_ITEMS]}
        if len(items) > TREE_ITEMS:
            out["…"] = f"{len(items) - TREE_ITEMS} more keys"
        return out
    if isinstance(value, list | tuple):
        if depth <= 0:
            return f"[… {len(value)} items]"
        clipped = [_json_tree(v, depth - 1) for v in value[:TREE_ITEMS]]
        if len(value) > TREE_ITEMS:
            clipped.append(f"… {len(value) - TREE_ITEMS} more items")
        return clipped
    if value is None or isinstance(value, bool | int | float):
        return value if not isinstance(value, float) or math.isfinite(value) else repr(value)
    return _clip(value if isinstance(value, str) else _safe_repr(value), 300)


def _image_preview(value: Any) -> str | None:
    if not (hasattr(value, "save") and hasattr(value, "size") and hasattr(value, "thumbnail")):
        return None
    thumb = value.copy()
    thumb.thumbnail((480, 480))
    buf = io.BytesIO()
    thumb.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _html_preview(value: Any) -> str | None:
    try:
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
