// Sizes of a drawn node, shared with conductor_nb/widgets/layout.py (which places the nodes:
// igraph's layered layout, in the kernel, sent as each node's `pos`).
export const NODE_W = 180;
const HEAD = 30, PORT_GAP = 18, FOOTER = 16;

export function nodeHeight(n) {
  return HEAD + PORT_GAP * Math.max(1, n.inputs.length, n.outputs.length) + FOOTER;
}

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
