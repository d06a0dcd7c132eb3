// The graph canvas: React Flow (pan, zoom, drag, connect, minimap) over the kernel's layout.
// Nodes and edges read their run state from the per-model store, each subscribed to its own
// node: a patch re-renders only the nodes it names. Python owns every decision; the canvas
// reports what the user did through `on` (select, move, connect, breakpoint).
import { createRoot } from "react-dom/client";
import { memo, useEffect, useMemo, useReducer, useRef, useState } from "react";
import {
  ReactFlow, ReactFlowProvider, Handle, Position, MarkerType,
  useReactFlow, useStore, getBezierPath, applyNodeChanges,
} from "@xyflow/react";
import { expandGraph, nodeHeight, portTop, foldTop, makeRoom, unshifted, BODY_GAP, NODE_W } from "./layout.js";
import { ICONS } from "./icons.js";

export const READABLE_ZOOM = 0.9; // labels are 13 px at zoom 1: 11.7 px on screen here
const FIT_ZOOM_MIN = 0.78; // a graph that fits at this zoom or more opens fitted (labels >= 10 px)
const MAX_ZOOM = 3;
const PAD = 24;

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
  const { store, on, n } = data;
  const s = useNodeState(store, id);
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
  const badge = s.state === "pending" || !ICONS[s.state] ? null : (
    <svg viewBox="0 0 16 16" className="cnb-icon" data-icon={s.state} aria-hidden="true">
      <path d={ICONS[s.state]} />
    </svg>);
  return (
    <div className={cls.join(" ")} data-node={id} data-state={s.state}
      data-x={Math.round(positionAbsoluteX)} data-y={Math.round(positionAbsoluteY)}
      title={`${id} (${n.type})`} style={{ "--cnb-label-chars": Math.max(4, n.label.length) }}>
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
        {n.body ? <FoldToggle id={id} top={foldTop(n)} body={n.body} open={data.open} fold={data.fold} /> : null}
      </div>
    </div>
  );
});

// A loop/parallel/group node's body: folded, a toggle on the node; unfolded, a sub-flow under
// the node (a React Flow group node holding the body's nodes and edges, the graph below and
// beside it moved to make room), with the items run so far: pick one to see its nodes' states.
function FoldToggle({ id, top, body, open, fold }) {
  const count = body.nodes.length;
  return (
    <div className={`cnb-body-fold nodrag${open ? " cnb-open" : ""}`} data-node={id} style={{ top }}>
      <button type="button" className="cnb-fold-toggle" aria-expanded={open ? "true" : "false"}
        onClick={(ev) => { ev.stopPropagation(); fold(id); }}>
        {open ? "▾" : "▸"} body · {count} {count === 1 ? "node" : "nodes"}
      </button>
    </div>
  );
}

const BODY_PAD = 12, BODY_HEAD = 58;

function bodyLayout(owner, kind, body, types) {
  const inner = body.nodes.map((b) => {
    const t = types[b.type] || { inputs: [], outputs: [] };
    const n = { ...b, label: b.id, inputs: t.inputs, outputs: t.outputs };
    const [x, y] = b.pos || [0, 0];
    return { n, x: x + BODY_PAD, y: y + BODY_HEAD, h: nodeHeight(n) };
  });
  const w = Math.max(NODE_W + 2 * BODY_PAD, 260, ...inner.map((i) => i.x + NODE_W + BODY_PAD));
  const h = Math.max(BODY_HEAD + 40, ...inner.map((i) => i.y + i.h + BODY_PAD));
  return { owner, kind, inner, w, h };
}

// the id a body node's record has in the run for the item shown: each[3].fetch, grp.fetch
function nestedId(store, owner, kind, inner) {
  if (kind === "group") return `${owner}.${inner}`;
  let index = store.picked(owner);
  if (index === null) { const items = store.items(owner); index = items.length ? items[items.length - 1].index : null; }
  return index === null ? null : `${owner}[${index}].${inner}`;
}

function useBodyTick(store, owner) {
  const [, bump] = useReducer((x) => x + 1, 0);
  useEffect(() => store.subscribeAll((ids) => {
    for (const id of ids) if (id.startsWith(owner)) { bump(); return; }
  }), [store, owner]);
}

const BodyGroup = memo(function BodyGroup({ data }) {
  const { store, owner, kind, count } = data;
  useBodyTick(store, owner);
  const items = kind === "group" ? [] : store.items(owner);
  const picked = store.picked(owner);
  const shown = picked === null ? (items.length ? items[items.length - 1].index : null) : picked;
  return (
    <div className="cnb-body-group" data-body={owner}>
      <div className="cnb-body-title">{kind} body of <b>{owner}</b> · {count} {count === 1 ? "node" : "nodes"}</div>
      {kind === "group" ? null : (
        <div className="cnb-body-items nodrag nowheel" data-body={owner}>
          {items.length ? <span className="cnb-muted">items:</span> : <span className="cnb-muted">no items run yet</span>}
          {items.map((it) => (
            <button type="button" key={it.index} data-item={it.index} data-state={it.state}
              className={`cnb-item cnb-state-${it.state}${it.index === shown ? " cnb-item-shown" : ""}`}
              title={`item ${it.index}: ${it.state}`}
              onClick={(ev) => { ev.stopPropagation(); store.pickItem(owner, it.index); }}>{it.index}</button>
          ))}
        </div>
      )}
    </div>
  );
});

const InnerNode = memo(function InnerNode({ data }) {
  const { store, owner, kind, n } = data;
  useBodyTick(store, owner);
  const nested = nestedId(store, owner, kind, n.id);
  const s = nested ? store.node(nested) : { state: "pending", attempts: 0, duration: null, raw: false };
  const cls = ["cnb-node", "cnb-inner", `cnb-state-${s.state}`];
  if (s.selected) cls.push("cnb-selected");
  const detail = [];
  if (s.raw && s.state !== "pending") detail.push(s.state);
  if (s.duration !== null && s.duration !== undefined) detail.push(fmtSeconds(s.duration));
  return (
    <div className={cls.join(" ")} data-node={nested || ""} data-inner={n.id} data-body={owner} data-state={s.state}
      title={nested ? `${nested} (${n.type}): click to inspect` : `${n.id} (${n.type}): not run yet`}>
      <div className="cnb-node-box" style={{ width: NODE_W, minHeight: nodeHeight(n) }}>
        <div className="cnb-node-head"><span className="cnb-node-label">{n.id}</span></div>
        <div className="cnb-node-type">{n.type}</div>
        {n.inputs.map((p, i) => (
          <div key={`i-${p.name}`}>
            <Handle type="target" position={Position.Left} id={p.name} style={{ top: portTop(i) }}
              className="cnb-port cnb-port-in" isConnectable={false} />
            <span className="cnb-port-label cnb-port-label-in" style={{ top: portTop(i) }}>{p.name}</span>
          </div>
        ))}
        {n.outputs.map((p, i) => (
          <div key={`o-${p.name}`}>
            <Handle type="source" position={Position.Right} id={p.name} style={{ top: portTop(i) }}
              className="cnb-port cnb-port-out" isConnectable={false} />
            <span className="cnb-port-label cnb-port-label-out" style={{ top: portTop(i) }}>{p.name}</span>
          </div>
        ))}
        <div className="cnb-node-detail">{detail.join(" · ")}</div>
      </div>
    </div>
  );
});

const GraphEdge = memo(function GraphEdge(props) {
  const { id, source, sourceX, sourceY, targetX, targetY, sourcePosition, targetPosition, markerEnd, data } = props;
  const { store, selectedEdge, inner } = data;
  const [, bump] = useReducer((x) => x + 1, 0);
  // a body's edge: coloured by its source's run in the item shown
  useEffect(() => (inner
    ? store.subscribeAll((ids) => { for (const i of ids || []) if (i.startsWith(inner.owner)) { bump(); return; } })
    : store.subscribe(source, bump)), [store, source, inner]);
  const nested = inner && nestedId(store, inner.owner, inner.kind, inner.source);
  const st = inner ? (nested ? store.stateOf(nested) : "pending") : store.stateOf(source);
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

const nodeTypes = { cnb: GraphNode, cnbBody: BodyGroup, cnbInner: InnerNode };
const edgeTypes = { cnb: GraphEdge };

// Where the ports are, given up front: React Flow then draws only the nodes in view from the
// start (without them it draws every node once to measure its ports: 1,000 nodes took 1.5 s).
const PORT = 10;
function handlesOf(n) {
  const port = (p, i, type, position, x) => ({ id: p.name, type, position, x, y: portTop(i) - PORT / 2, width: PORT, height: PORT });
  return [
    ...n.inputs.map((p, i) => port(p, i, "target", Position.Left, -PORT / 2)),
    ...n.outputs.map((p, i) => port(p, i, "source", Position.Right, NODE_W - PORT / 2)),
  ];
}

// A viewport offset on one axis that leaves no empty band at an edge of the graph while more of
// it lies beyond the other edge (a node in the graph's first row shown at the top, not mid-way
// down under nothing); a graph that fits across the view on this axis is centred on it.
function clampAxis(t, lo, hi, k, view) {
  if ((hi - lo) * k + 2 * PAD <= view) return (view - (lo + hi) * k) / 2;
  return Math.min(PAD - lo * k, Math.max(view - PAD - hi * k, t));
}

// The least move of a viewport offset t that shows [lo, hi] (its start, when it is too long).
function reveal(t, lo, hi, k, view) {
  if (lo * k + t >= PAD && hi * k + t <= view - PAD) return t;
  if ((hi - lo) * k > view - 2 * PAD || lo * k + t < PAD) return PAD - lo * k;
  return view - PAD - hi * k;
}

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
  const [selectedEdge, setSelectedEdge] = useState(initial.selectedEdge || null);
  const [editable, setEditable] = useState(() => !!model.get("editable"));
  // read once (a layout read at every render forced the page's layout at every pan step)
  const [size, setSize] = useState(() => ({ w: host.clientWidth, h: host.clientHeight }));
  const placed = useRef(!!initial.viewport);
  useEffect(() => { if (placed.current) requestAnimationFrame(() => on.drawn()); }, []);

  useEffect(() => {
    const onGraph = () => setGraph(expandGraph(model.get("graph")));
    const onEditable = () => setEditable(!!model.get("editable"));
    model.on("change:graph", onGraph);
    model.on("change:editable", onEditable);
    const sizes = new ResizeObserver(() => setSize({ w: host.clientWidth, h: host.clientHeight }));
    sizes.observe(host);
    return () => {
      model.off("change:graph", onGraph);
      model.off("change:editable", onEditable); sizes.disconnect();
    };
  }, [model, host]);

  // bodies unfolded (loop/parallel/group nodes): their sub-flows go under them
  const [folds, setFolds] = useState(() => new Set(initial.folds || []));
  const revealed = useRef(null); // a body just unfolded: shown whole once it is laid out
  const fold = useMemo(() => (id) => setFolds((was) => {
    const next = new Set(was);
    if (next.has(id)) next.delete(id); else { next.add(id); revealed.current = id; }
    on.folds([...next]);
    return next;
  }), [on]);

  const [laidOut, rooms] = useMemo(() => {
    const base = graph.nodes.map((n) => {
      const [x, y] = n.pos || [0, 0];
      return { id: n.id, n, x, y, h: nodeHeight(n) };
    });
    const subs = base.filter((b) => b.n.body && folds.has(b.n.id))
      .map((at) => ({ at, sub: bodyLayout(at.n.id, at.n.type, at.n.body, graph.types || {}) }));
    const made = makeRoom(base, subs.map(({ at, sub }) => ({ at, w: sub.w, h: sub.h })));
    const out = base.map(({ n, x, y, h }) => ({ id: n.id, type: "cnb", position: { x, y }, width: NODE_W, height: h,
      handles: handlesOf(n), data: { n, store, on, fold, open: folds.has(n.id) } }));
    for (const { sub, at } of subs) {
      const groupId = `${sub.owner}::body`;
      out.push({ id: groupId, type: "cnbBody", position: { x: at.x, y: at.y + at.h + BODY_GAP }, width: sub.w, height: sub.h,
        draggable: false, selectable: false, className: "cnb-body-node",
        data: { store, owner: sub.owner, kind: sub.kind, count: sub.inner.length } });
      for (const i of sub.inner) {
        out.push({ id: `${sub.owner}::${i.n.id}`, type: "cnbInner", parentId: groupId, extent: "parent",
          position: { x: i.x, y: i.y }, width: NODE_W, height: i.h, draggable: false, connectable: false,
          handles: handlesOf(i.n), data: { store, owner: sub.owner, kind: sub.kind, n: i.n } });
      }
    }
    return [out, made];
  }, [graph, store, on, folds, fold]);
  const [nodes, setNodes] = useState(laidOut);
  useEffect(() => setNodes(laidOut), [laidOut]);

  // an unfolded body is brought into view with its node (the least move; zoom unchanged)
  useEffect(() => {
    const id = revealed.current;
    revealed.current = null;
    const owner = id && laidOut.find((n) => n.id === id), body = id && laidOut.find((n) => n.id === `${id}::body`);
    if (!owner || !body) return;
    const v = flow.getViewport();
    const x = reveal(v.x, owner.position.x, body.position.x + body.width, v.zoom, size.w);
    const y = reveal(v.y, owner.position.y, body.position.y + body.height, v.zoom, size.h);
    if (x !== v.x || y !== v.y) flow.setViewport({ x, y, zoom: v.zoom }, { duration: 250 });
  }, [laidOut]);

  const edges = useMemo(() => {
    const marker = { type: MarkerType.ArrowClosed, width: 14, height: 14, color: "#7d8590" };
    const out = graph.edges.map((e) => ({
      id: e.id, source: e.source, target: e.target, sourceHandle: e.source_port, targetHandle: e.target_port,
      type: "cnb", markerEnd: marker, data: { store, selectedEdge },
    }));
    for (const n of graph.nodes) {
      if (!n.body || !folds.has(n.id)) continue;
      for (const e of expandGraph({ nodes: [], edges: n.body.edges }).edges) {
        out.push({ id: `${n.id}::${e.id}`, source: `${n.id}::${e.source}`, target: `${n.id}::${e.target}`,
          sourceHandle: e.source_port, targetHandle: e.target_port, type: "cnb", markerEnd: marker,
          selectable: false, zIndex: 1, data: { store, selectedEdge, inner: { owner: n.id, kind: n.type, source: e.source } } });
      }
    }
    return out;
  }, [graph, store, selectedEdge, folds]);

  const box = useMemo(() => bounds(laidOut.filter((n) => !n.parentId)), [laidOut]);
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
    const k = placed.current ? Math.max(flow.getViewport().zoom, READABLE_ZOOM) : READABLE_ZOOM;
    const x = size.w / 2 - (node.position.x + node.width / 2) * k;
    const y = size.h / 2 - (node.position.y + node.height / 2) * k;
    flow.setViewport({ zoom: k, x: clampAxis(x, box.x0, box.x1, k, size.w), y: clampAxis(y, box.y0, box.y1, k, size.h) },
      { duration: animate ? 250 : 0 });
    return true;
  }

  // whether the whole graph shows at a readable zoom (the page then leaves the overview off), said once
  const saidFits = useRef(false);
  useEffect(() => {
    if (saidFits.current || !size.w || !size.h || !laidOut.length) return;
    saidFits.current = true;
    on.fits(fitZoom >= FIT_ZOOM_MIN);
  }, [size, laidOut]);

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
  // the graph position at the canvas's centre (what an unfolded body moved down is moved back)
  api.center = () => {
    const r = host.getBoundingClientRect();
    const c = flow.screenToFlowPosition({ x: r.left + size.w / 2, y: r.top + size.h / 2 });
    return unshifted(rooms, "", c.x, c.y, 0);
  };
  api.selectedEdge = () => selectedEdge;
  api.clearEdge = () => setSelectedEdge(null);

  api.centerOn = (x, y) => flow.setCenter(x, y, { zoom: flow.getViewport().zoom, duration: 0 });
  const transform = useStore((s) => s.transform);
  useEffect(() => { on.transform(transform, size); }, [transform, size]);

  return (
    <ReactFlow
      nodes={nodes} edges={edges} nodeTypes={nodeTypes} edgeTypes={edgeTypes}
      onNodesChange={(changes) => setNodes((ns) => applyNodeChanges(changes.filter((c) => c.type === "position" || c.type === "dimensions"), ns))}
      onNodeClick={(_, node) => {
        if (node.type === "cnbBody") return;
        setSelectedEdge(null); on.edge(null);
        if (node.type !== "cnbInner") { on.select(node.id); return; }
        const d = node.data, nested = nestedId(store, d.owner, d.kind, d.n.id);
        if (nested) on.select(nested);
      }}
      onEdgeClick={(_, edge) => { setSelectedEdge(edge.id); on.edge(edge.id); on.select(""); }}
      onPaneClick={() => { setSelectedEdge(null); on.edge(null); on.select(""); }}
      onNodeDragStop={(_, node) => {
        if (node.type !== "cnb") return;
        // saved as seen in the graph itself: the room an unfolded body takes is not saved
        const p = unshifted(rooms, node.id, node.position.x, node.position.y, node.height);
        on.move(node.id, p.x, p.y);
      }}
      onConnect={(c) => on.connect(`${c.source}.${c.sourceHandle}`, `${c.target}.${c.targetHandle}`)}
      onMoveEnd={(_, v) => on.viewport(v)}
      defaultViewport={initial.viewport || { x: 0, y: 0, zoom: 1 }}
      minZoom={minZoom} maxZoom={MAX_ZOOM}
      nodesDraggable={editable} nodesConnectable={editable} elementsSelectable
      selectNodesOnDrag={false} deleteKeyCode={null} selectionKeyCode={null} multiSelectionKeyCode={null}
      onlyRenderVisibleElements={laidOut.length > 150}
      proOptions={{ hideAttribution: true }}
      nodeDragThreshold={0}
    />
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
