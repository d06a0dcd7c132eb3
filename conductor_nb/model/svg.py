"""A static SVG picture of a blueprint, optionally coloured by node states.

This is what saved notebooks, nbconvert HTML, GitHub, papermill outputs,
reports and ``conductor-nb export --to svg`` show. Self-contained: no scripts,
no external fonts or styles.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import TYPE_CHECKING

from conductor_nb.model.layout import Box, layout, port_y
from conductor_nb.model.states import STATE_STYLES, style_of

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint


def render_svg(
    bp: Blueprint,
    states: Mapping[str, str] | None = None,
    details: Mapping[str, str] | None = None,
    title: str | None = None,
    max_width: int | None = 960,
) -> str:
    """Render ``bp``; ``states`` maps node id to a state name, ``details`` to a badge text."""
    states = states or {}
    details = details or {}
    boxes = layout(bp)
    width = max((b.x + b.w for b in boxes.values()), default=200) + 30
    height = max((b.y + b.h for b in boxes.values()), default=60) + 30
    top = 34 if title else 0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cnb-static" '
        f'viewBox="0 {-top} {width:.0f} {height + top:.0f}" width="{_scaled(width, max_width)}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="12">',
        '<defs><marker id="cnb-arrow" viewBox="0 0 10 10" refX="9" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#7d8590"/></marker></defs>',
    ]
    if title:
        parts.append(
            f'<text x="12" y="{-top + 22}" font-size="15" font-weight="bold" '
            f'fill="#24292f">{escape(title)}</text>'
        )
    for edge in bp.edges:
        if edge.source not in boxes or edge.target not in boxes:
            continue
        sx, sy = _port_xy(bp, boxes, edge.source, edge.source_port, "output")
        tx, ty = _port_xy(bp, boxes, edge.target, edge.target_port, "input")
        dx = max(40.0, abs(tx - sx) / 2)
        flowed = states.get(edge.source) in ("succeeded", "cached")
        colour = STATE_STYLES["succeeded"].stroke if flowed else "#7d8590"
        parts.append(
            f'<path class="cnb-edge" d="M {sx:.1f} {sy:.1f} C {sx + dx:.1f} {sy:.1f} '
            f'{tx - dx:.1f} {ty:.1f} {tx:.1f} {ty:.1f}" fill="none" stroke="{colour}" '
            f'stroke-width="{2 if flowed else 1.4}" marker-end="url(#cnb-arrow)">'
            f"<title>{escape(str(edge))}</title></path>"
        )
    for node_id, box in boxes.items():
        parts.append(_node_svg(bp, node_id, box, states.get(node_id), details.get(node_id)))
    parts.append("</svg>")
    return "\n".join(parts)


def _scaled(width: float, max_width: int | None) -> str:
    return f"{min(width, max_width):.0f}" if max_width else f"{width:.0f}"


def _port_xy(
    bp: Blueprint, boxes: Mapping[str, Box], node_id: str, port: str, side: str
) -> tuple[float, float]:
    box = boxes[node_id]
    node = bp.nodes[node_id]
    nt = bp.registry.find(node.type, node.version)
    names = [p.name for p in ((nt.outputs if side == "output" else nt.inputs) if nt else ())]
    index = names.index(port) if port in names else 0
    x = box.x + box.w if side == "output" else box.x
    return x, port_y(box, index) + 4


def _node_svg(bp: Blueprint, node_id: str, box: Box, state: str | None, detail: str | None) -> str:
    node = bp.nodes[node_id]
    nt = bp.registry.find(node.type, node.version)
    look = style_of(state if node.enabled else "skipped")
    fill, stroke = look.fill, look.stroke
    dash = ' stroke-dasharray="4 3"' if not node.enabled else ""
    out = [
        f'<g class="cnb-node" data-node="{escape(node_id)}" data-state="{state or "pending"}">',
        f"<title>{escape(node_id)} ({escape(node.type)}){': ' + escape(state) if state else ''}"
        "</title>",
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.0f}" height="{box.h:.0f}" '
        f'rx="7" fill="{fill}" stroke="{stroke}" stroke-width="1.8"{dash}/>',
        f'<text x="{box.x + 10:.1f}" y="{box.y + 17:.1f}" font-weight="bold" '
        f'fill="#24292f">{escape(_clip(node.label, 20))}</text>',
        f'<text x="{box.x + box.w - 8:.1f}" y="{box.y + 17:.1f}" text-anchor="end" '
        f'font-size="10" fill="#57606a">{escape(_clip(node.type, 14))}</text>',
    ]
    if nt is not None:
        for i, port in enumerate(nt.inputs):
            y = port_y(box, i)
            out.append(
                f'<circle cx="{box.x:.1f}" cy="{y + 4:.1f}" r="3.5" fill="#fff" '
                f'stroke="{stroke}"/><text x="{box.x + 7:.1f}" y="{y + 8:.1f}" '
                f'font-size="10" fill="#57606a">{escape(_clip(port.name, 12))}</text>'
            )
        for i, port in enumerate(nt.outputs):
            y = port_y(box, i)
            out.append(
                f'<circle cx="{box.x + box.w:.1f}" cy="{y + 4:.1f}" r="3.5" fill="#fff" '
                f'stroke="{stroke}"/><text x="{box.x + box.w - 7:.1f}" y="{y + 8:.1f}" '
                f'font-size="10" text-anchor="end" fill="#57606a">'
                f"{escape(_clip(port.name, 12))}</text>"
            )
    if state or detail:
        text = " ".join(t for t in (state, detail) if t)
        out.append(
            f'<text x="{box.x + 10:.1f}" y="{box.y + box.h - 7:.1f}" font-size="10" '
            f'fill="{stroke}">{escape(_clip(text, 28))}</text>'
        )
    out.append("</g>")
    return "".join(out)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
