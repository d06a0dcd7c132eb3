// The graph canvas: React Flow (pan, zoom, drag, connect, minimap) over the kernel's layout.
// Nodes and edges read their run state from the per-model store, each subscribed to its own
// node: a patch re-renders only the nodes it names. Python owns every decision; the canvas
// reports what the user did through `on` (select, move, connect, breakpoint).
import { createRoot } from "react-dom/client";
import { memo, useEffect, useMemo, useReducer, useRef, useState } from "react";
import {
  ReactFlow, ReactFlowProvider, MiniMap, Handle, Position, MarkerType,
  useReactFlow, useStore, getBezierPath, applyNodeChanges,
} from "@xyflow/react";
import { expandGraph, nodeHeight, portTop, NODE_W } from "./layout.js";

export const READABLE_ZOOM = 0.9; // labels are 13 px at zoom 1: 11.7 px on screen here
const FIT_ZOOM_MIN = 0.78; // a graph that fits at this zoom or more opens fitted (labels >= 10 px)
const MAX_ZOOM = 3;
const PAD = 24;
const OVERVIEW_NODES = 30;

function useNodeState(store, id) {
  const [, bump] = useReducer((x) => x + 1, 0);
  useEffect(() => store.subscribe(id, bump), [store, id]);
  return store.node(id);
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

const GraphNode = memo(function GraphNode({ id, data, positionAbsoluteX, positionAbsoluteY }) {
  const { store, styles, on, n } = data;
  const s = useNodeState(store, id);
  const [open, setOpen] = useState(false);
  const cls = ["cnb-node", `cnb-state-${s.state}`];
  if (s.breakpoint) cls.push("cnb-has-breakpoint");
  if (s.selected) cls.push("cnb-selected");
  if (s.pausedHere) cls.push("cnb-paused-here");
  if (n.enabled === false) cls.push("cnb-disabled");
  if (n.known === false) cls.push("cnb-unknown");
  const detail = [];
  if (s.raw && s.state !== "pending") detail.push(s.state);
  if (s.attempts > 1) detail.push(`attempt ${s.attempts}`);
  if (s.duration !== null && s.duration !== undefined) detail.push(fmtSeconds(s.duration));
  const badge = s.state === "pending" ? "" : (styles[s.state] || {}).icon || "";
  return (
    <div className={cls.join(" ")} data-node={id} data-state={s.state}
      data-x={Math.round(positionAbsoluteX)} data-y={Math.round(positionAbsoluteY)}
      title={`${id} (${n.type})`}>
      <div className="cnb-node-box" style={{ width: NODE_W, minHeight: nodeHeight(n) }}>
        <div className="cnb-node-head">
          <span className="cnb-badge nodrag" data-node={id} title="click: toggle breakpoint"
            onClick={(ev) => { ev.stopPropagation(); on.breakpoint(id); }}>{badge}</span>
          <span className="cnb-node-label">{n.label}</span>
        </div>
        <div className="cnb-node-type">{n.type}</div>
        {n.inputs.map((p, i) => (
          <div key={`i-${p.name}`}>
            <Handle type="target" position={Position.Left} id={p.name} style={{ top: portTop(i) }}
              className={`cnb-port cnb-port-in${p.required ? " cnb-port-required" : ""}`}
              data-node={id} data-port={p.name} title={`${id}.${p.name}: ${p.type}${p.many ? " (many)" : ""}`} />
            <span className="cnb-port-label cnb-port-label-in" style={{ top: portTop(i) }}>{p.name}</span>
          </div>
        ))}
        {n.outputs.map((p, i) => (
          <div key={`o-${p.name}`}>
            <Handle type="source" position={Position.Right} id={p.name} style={{ top: portTop(i) }}
              className="cnb-port cnb-port-out" data-node={id} data-port={p.name}
              title={`${id}.${p.name}: ${p.type}`} />
            <span className="cnb-port-label cnb-port-label-out" style={{ top: portTop(i) }}>{p.name}</span>
          </div>
        ))}
        <div className="cnb-node-detail">{detail.join(" · ")}</div>
        {n.body ? <Body id={id} body={n.body} open={open} setOpen={setOpen} /> : null}
      </div>
    </div>
  );
});

// A loop/parallel/group body, folded into its node: expand to see its nodes and edges.
function Body({ id, body, open, setOpen }) {
  return (
    <div className={`cnb-body-fold nodrag${open ? " cnb-open" : ""}`} data-node={id}>
      <button type="button" className="cnb-fold-toggle"
        onClick={(ev) => { ev.stopPropagation(); setOpen(!open); }}>
        {open ? "▾" : "▸"} body · {body.nodes.length} {body.nodes.length === 1 ? "node" : "nodes"}
      </button>
      {open ? (
        <ul className="cnb-body-nodes">
          {body.nodes.map((b) => <li key={b.id}><b>{b.id}</b> <span>{b.type}</span></li>)}
          {body.edges.map((e) => <li key={e} className="cnb-body-edge">{e}</li>)}
        </ul>
      ) : null}
    </div>
  );
}

const GraphEdge = memo(function GraphEdge(props) {
  const { id, source, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, markerEnd, data } = props;
  const { store, selectedEdge } = data;
  const [, bump] = useReducer((x) => x + 1, 0);
  useEffect(() => store.subscribe(source, bump), [store, source]);
  const st = store.stateOf(source);
  const [d] = getBezierPath({ sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition });
  let cls = "cnb-edge";
  if (st === "succeeded" || st === "cached") cls += " cnb-flowed";
  if (selectedEdge === id) cls += " cnb-selected";
  return (
    <>
      <path className={cls} d={d} data-edge={id} markerEnd={markerEnd} />
      <path className="cnb-edge-hit" d={d} data-edge={id}><title>{id}</title></path>
    </>
  );
});

// The minimap draws every node in its state's colour (and follows the store, node by node).
const MiniNode = memo(function MiniNode({ id, x, y, width, height, styles, store }) {
  const s = useNodeState(store, id);
  const style = styles[s.state] || {};
  // the state's strong colour fills the square (the pale fills vanish at minimap scale)
  const mark = s.pausedHere || s.state === "running" || s.state === "failed";
  return <rect className="cnb-mini-node" data-node={id} data-state={s.state} x={x} y={y} width={width} height={height} rx={6}
    fill={style.stroke || "#9aa3ad"} stroke={mark ? "#24292f" : "none"} strokeWidth={mark ? 40 : 0} />;
});

const nodeTypes = { cnb: GraphNode };
const edgeTypes = { cnb: GraphEdge };

function bounds(list) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const n of list) {
    x0 = Math.min(x0, n.position.x); y0 = Math.min(y0, n.position.y);
    x1 = Math.max(x1, n.position.x + n.width); y1 = Math.max(y1, n.position.y + n.height);
  }
  return list.length ? { x0, y0, x1, y1 } : { x0: 0, y0: 0, x1: 1, y1: 1 };
}

function Canvas({ model, store, host, api, on, initial }) {
  const flow = useReactFlow();
  const [graph, setGraph] = useState(() => expandGraph(model.get("graph")));
  const [styles, setStyles] = useState(() => model.get("state_styles") || {});
  const [selectedEdge, setSelectedEdge] = useState(initial.selectedEdge || null);
  const [editable, setEditable] = useState(() => !!model.get("editable"));
  const [size, setSize] = useState({ w: host.clientWidth, h: host.clientHeight });
  // the minimap: on by default for graphs too big to take in at a glance; Overview toggles it
  const [overview, setOverview] = useState(initial.overview);
  const showOverview = overview === null || overview === undefined ? graph.nodes.length > OVERVIEW_NODES : overview;
  api.toggleOverview = () => { const next = !showOverview; setOverview(next); return next; };
  const placed = useRef(!!initial.viewport);
  useEffect(() => { if (placed.current) requestAnimationFrame(() => on.drawn()); }, []);

  useEffect(() => {
    const onGraph = () => setGraph(expandGraph(model.get("graph")));
    const onStyles = () => setStyles(model.get("state_styles") || {});
    const onEditable = () => setEditable(!!model.get("editable"));
    model.on("change:graph", onGraph);
    model.on("change:state_styles", onStyles);
    model.on("change:editable", onEditable);
    const sizes = new ResizeObserver(() => setSize({ w: host.clientWidth, h: host.clientHeight }));
    sizes.observe(host);
    return () => {
      model.off("change:graph", onGraph); model.off("change:state_styles", onStyles);
      model.off("change:editable", onEditable); sizes.disconnect();
    };
  }, [model, host]);

  const laidOut = useMemo(() => {
    return graph.nodes.map((n) => {
      const [x, y] = n.pos || [0, 0];
      const h = nodeHeight(n);
      return { id: n.id, type: "cnb", position: { x, y }, width: NODE_W, height: h,
        data: { n, store, styles, on } };
    });
  }, [graph, styles, store, on]);
  const [nodes, setNodes] = useState(laidOut);
  useEffect(() => setNodes(laidOut), [laidOut]);

  const edges = useMemo(() => graph.edges.map((e) => ({
    id: e.id, source: e.source, target: e.target, sourceHandle: e.source_port, targetHandle: e.target_port,
    type: "cnb", markerEnd: { type: MarkerType.ArrowClosed, width: 14, height: 14, color: "#7d8590" },
    data: { store, selectedEdge },
  })), [graph, store, selectedEdge]);

  const box = useMemo(() => bounds(laidOut), [laidOut]);
  const fitZoom = size.w && size.h
    ? Math.min((size.w - 2 * PAD) / Math.max(1, box.x1 - box.x0), (size.h - 2 * PAD) / Math.max(1, box.y1 - box.y0))
    : 1;
  const minZoom = Math.min(READABLE_ZOOM, fitZoom) * 0.8;

  // the first view: everything when it fits at a readable zoom, else the action at that zoom
  function place() {
    const k = Math.min(fitZoom, 1.25);
    if (fitZoom >= FIT_ZOOM_MIN) {
      flow.setViewport({ zoom: k, x: (size.w - (box.x1 + box.x0) * k) / 2, y: (size.h - (box.y1 + box.y0) * k) / 2 });
      return;
    }
    const target = store.pausedAt() || store.running()[0];
    const node = target && laidOut.find((n) => n.id === target);
    if (node) focusNode(node.id, false);
    else flow.setViewport({ zoom: READABLE_ZOOM, x: PAD - box.x0 * READABLE_ZOOM, y: PAD - box.y0 * READABLE_ZOOM });
  }

  function focusNode(id, animate = true) {
    const node = nodes.find((n) => n.id === id) || laidOut.find((n) => n.id === id);
    if (!node) return false;
    const zoom = Math.max(flow.getViewport().zoom, READABLE_ZOOM);
    flow.setCenter(node.position.x + node.width / 2, node.position.y + node.height / 2,
      { zoom: placed.current ? zoom : READABLE_ZOOM, duration: animate ? 250 : 0 });
    return true;
  }

  useEffect(() => {
    if (placed.current || !size.w || !size.h || !laidOut.length) return;
    placed.current = true;
    place();
    requestAnimationFrame(() => requestAnimationFrame(() => on.drawn()));
  }, [size, laidOut]);

  // what the page's toolbar and find box call
  api.fitAll = () => flow.setViewport({
    zoom: Math.min(fitZoom, 1.25),
    x: (size.w - (box.x1 + box.x0) * Math.min(fitZoom, 1.25)) / 2,
    y: (size.h - (box.y1 + box.y0) * Math.min(fitZoom, 1.25)) / 2,
  });
  api.zoomBy = (f) => {
    const v = flow.getViewport();
    const k = Math.min(MAX_ZOOM, Math.max(minZoom, v.zoom * f));
    const cx = size.w / 2, cy = size.h / 2;
    flow.setViewport({ zoom: k, x: cx - (cx - v.x) * (k / v.zoom), y: cy - (cy - v.y) * (k / v.zoom) });
  };
  api.focus = (id) => focusNode(id);
  api.center = () => { const c = flow.screenToFlowPosition({ x: host.getBoundingClientRect().left + size.w / 2, y: host.getBoundingClientRect().top + size.h / 2 }); return c; };
  api.selectedEdge = () => selectedEdge;
  api.clearEdge = () => setSelectedEdge(null);

  const miniNode = useMemo(() => (p) => <MiniNode {...p} styles={styles} store={store} />, [styles, store]);
  const transform = useStore((s) => s.transform);
  useEffect(() => { on.transform(transform); }, [transform]);

  return (
    <ReactFlow
      nodes={nodes} edges={edges} nodeTypes={nodeTypes} edgeTypes={edgeTypes}
      onNodesChange={(changes) => setNodes((ns) => applyNodeChanges(changes.filter((c) => c.type === "position" || c.type === "dimensions"), ns))}
      onNodeClick={(_, node) => { setSelectedEdge(null); on.edge(null); on.select(node.id); }}
      onEdgeClick={(_, edge) => { setSelectedEdge(edge.id); on.edge(edge.id); on.select(""); }}
      onPaneClick={() => { setSelectedEdge(null); on.edge(null); on.select(""); }}
      onNodeDragStop={(_, node) => on.move(node.id, node.position.x, node.position.y)}
      onConnect={(c) => on.connect(`${c.source}.${c.sourceHandle}`, `${c.target}.${c.targetHandle}`)}
      onMoveEnd={(_, v) => on.viewport(v)}
      defaultViewport={initial.viewport || { x: 0, y: 0, zoom: 1 }}
      minZoom={minZoom} maxZoom={MAX_ZOOM}
      nodesDraggable={editable} nodesConnectable={editable} elementsSelectable
      selectNodesOnDrag={false} deleteKeyCode={null} selectionKeyCode={null} multiSelectionKeyCode={null}
      onlyRenderVisibleElements={laidOut.length > 150}
      proOptions={{ hideAttribution: true }}
      nodeDragThreshold={0}
    >
      {showOverview ? (
        <MiniMap pannable zoomable className="cnb-minimap" ariaLabel="overview"
          nodeComponent={miniNode} />
      ) : null}
    </ReactFlow>
  );
}

// Mount the canvas in `host`; returns {api, destroy}. api: fitAll, zoomBy, focus, center.
export function mountCanvas(host, { model, store, on, initial }) {
  const api = {};
  const root = createRoot(host);
  root.render(
    <ReactFlowProvider>
      <Canvas model={model} store={store} host={host} api={api} on={on} initial={initial} />
    </ReactFlowProvider>,
  );
  return { api, destroy: () => root.unmount() };
}
