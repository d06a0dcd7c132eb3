"""The view's static picture (saved notebooks, nbconvert, papermill outputs).

Up to ``FULL_PICTURE_NODES`` nodes it is the full drawing of
:func:`conductor_nb.model.svg.render_svg`, legible at its natural size. Beyond
that a full drawing is both unreadable (labels shrink to specks when the
notebook scales it down) and heavy (about 1.3 kB a node), so the picture is an
overview that stays legible at any size: a count of nodes per state, the nodes
that need attention by name (failed, paused, running, cancelled), and one small
square per node in layer order, coloured by state (its id in a tooltip).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from html import escape
from typing import TYPE_CHECKING

from conductor_nb.model.layout import levels
from conductor_nb.model.states import style_of
from conductor_nb.model.svg import render_svg

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint

FULL_PICTURE_NODES = 120
COLUMNS = 50
CELL = 13
GAP = 3
NAMED = 12
"""Nodes named per attention state (the rest are counted)."""
ATTENTION = ("failed", "paused", "running", "cancelled")


def picture(
    bp: Blueprint, states: Mapping[str, str], details: Mapping[str, str] | None = None
) -> str:
    """The SVG a notebook keeps for a view of ``bp`` with these node states."""
    if len(bp.nodes) <= FULL_PICTURE_NODES:
        return render_svg(bp, states, details)
    return overview_svg(bp, states)


def overview_svg(bp: Blueprint, states: Mapping[str, str]) -> str:
    order = _layer_order(bp)
    counts = Counter(states.get(n, "pending") for n in order)
    lines = [f"{bp.name or bp.id}: {len(order)} nodes"]
    lines.append(" · ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda x: -x[1])))
    for name in ATTENTION:
        ids = [n for n in order if states.get(n) == name]
        if ids:
            more = f" and {len(ids) - NAMED} more" if len(ids) > NAMED else ""
            lines.append(f"{name}: {', '.join(ids[:NAMED])}{more}")
    top = 22 * len(lines) + 10
    rows = -(-len(order) // COLUMNS)
    width = max(COLUMNS * (CELL + GAP) + 20, 420)
    height = top + rows * (CELL + GAP) + 14
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cnb-static cnb-overview" '
        f'viewBox="0 0 {width} {height}" width="{width}" '
        f'font-family="Helvetica, Arial, sans-serif" font-size="13">',
    ]
    for i, text in enumerate(lines):
        weight = ' font-weight="bold" font-size="15"' if i == 0 else ""
        colour = _text_colour(text)
        parts.append(
            f'<text x="10" y="{20 + 22 * i}" fill="{colour}"{weight}>{escape(text)}</text>'
        )
    cells: dict[str, list[str]] = {}
    for i, node_id in enumerate(order):
        state = states.get(node_id, "pending")
        x, y = 10 + (i % COLUMNS) * (CELL + GAP), top + (i // COLUMNS) * (CELL + GAP)
        cells.setdefault(state, []).append(
            f'<rect data-node="{escape(node_id)}" data-state="{state}" x="{x}" y="{y}" '
            f'width="{CELL}" height="{CELL}"><title>{escape(node_id)}</title></rect>'
        )
    for state, rects in cells.items():  # colours once per state, not per square
        look = style_of(state)
        fill, stroke = look.fill, look.stroke
        parts.append(f'<g class="cnb-node" fill="{fill}" stroke="{stroke}">{"".join(rects)}</g>')
    parts.append("</svg>")
    return "".join(parts)


def _text_colour(text: str) -> str:
    for name in ATTENTION:
        if text.startswith(f"{name}:"):
            return style_of(name).text
    return "#24292f"


def _layer_order(bp: Blueprint) -> list[str]:
    ids = list(bp.nodes)
    edges = [
        (e.source, e.target) for e in bp.edges if e.source in bp.nodes and e.target in bp.nodes
    ]
    layer = levels(ids, edges)
    return sorted(ids, key=lambda n: layer[n])
