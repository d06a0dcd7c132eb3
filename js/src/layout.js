// Sizes of a drawn node, shared with conductor_nb/widgets/layout.py (which places the nodes:
// igraph's layered layout, in the kernel, sent as each node's `pos`).
export const NODE_W = 180;
const HEAD = 30, PORT_GAP = 18, FOOTER = 16;
const FOLD_ROW = 20; // a loop/parallel/group node's own row for its fold toggle, under its ports

const portRows = (n) => Math.max(1, n.inputs.length, n.outputs.length);

export function nodeHeight(n) {
  return HEAD + PORT_GAP * portRows(n) + (n.body !== undefined ? FOLD_ROW : 0) + FOOTER;
}

// where the fold toggle's row starts (below the last port label, above the state line)
export function foldTop(n) { return HEAD + PORT_GAP * portRows(n) + 1; }

export function portTop(i) { return HEAD + PORT_GAP * i + PORT_GAP / 2; }

// The compact graph Python sends (conductor_nb.widgets.state.graph_payload) -> nodes with
// their ports and label, edges as {id, source, source_port, target, target_port}.
export function expandGraph(g) {
  if (!g || !g.nodes) return { id: "", nodes: [], edges: [], types: {} };
  const types = g.types || {};
  const nodes = g.nodes.map((n) => {
    const t = types[n.ports || n.type] || { inputs: [], outputs: [] };
    return { ...n, label: n.label || n.id, inputs: t.inputs, outputs: t.outputs };
  });
  const edges = (g.edges || []).map((text) => {
    const [src, tgt] = text.split(" -> ");
    const i = src.indexOf("."), j = tgt.indexOf(".");
    return { id: text, source: src.slice(0, i), source_port: src.slice(i + 1), target: tgt.slice(0, j), target_port: tgt.slice(j + 1) };
  });
  return { id: g.id, name: g.name, nodes, edges, types };
}

// Room for unfolded bodies. Each body goes under its node; what lies under that place (in the
// node's columns, from the node down) moves down by the body's height. `places` ({id, x, y, h},
// the graph's own positions) are moved in place; the rooms returned say how, so that a
// position seen on the canvas can be turned back into the graph's own (`unshifted`).
export const BODY_GAP = 14;

export function makeRoom(places, bodies) {
  const rooms = [];
  for (const { at, w, h } of bodies) {
    const room = { owner: at.id, x0: at.x, x1: at.x + w, top: at.y + at.h + BODY_GAP, y: at.y, dy: h + BODY_GAP };
    for (const o of places) if (o !== at && shifts(room, o.x, o.y, o.h)) o.y += room.dy;
    rooms.push(room);
  }
  return rooms;
}

function shifts(room, x, y, h) {
  return x < room.x1 && x + NODE_W > room.x0 && y + h > room.top - BODY_GAP && y >= room.y;
}

// where a node of height h placed at (x, y) in the graph is drawn, given the rooms
function shifted(rooms, id, x, y, h) {
  for (const r of rooms) if (r.owner !== id && shifts(r, x, y, h)) y += r.dy;
  return y;
}

// The graph position of a node drawn at (x, y): the one that is drawn there (or, for a place
// inside a body's room, which no graph position is drawn at, the nearest).
export function unshifted(rooms, id, x, y, h) {
  const mine = rooms.filter((r) => r.owner !== id);
  if (!mine.length || mine.length > 10) return { x, y };
  let sums = [0];
  for (const r of mine) sums = sums.concat(sums.map((s) => s + r.dy));
  let best = y, miss = Infinity;
  for (const s of [...new Set(sums)].sort((a, b) => a - b)) {
    const off = Math.abs(shifted(rooms, id, x, y - s, h) - y);
    if (off < miss) { best = y - s; miss = off; }
  }
  return { x, y: best };
}
