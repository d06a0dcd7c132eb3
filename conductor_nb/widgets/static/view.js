// conductor_nb BlueprintView front end: a plain ES module for anywidget (no build step, no CDN).
// Draws model traits (graph, states, run_info, breakpoints, inspector, palette, error) and sends
// small messages back ({event: "connect", ...}); Python owns every decision.

const NS = "http://www.w3.org/2000/svg";
const FOOTER = 12; // extra height under the ports for the state / attempts / duration line
const NARROW = 560, MEDIUM = 800; // view widths (px) below which the inspector makes room
// How each state looks (fill, stroke, text colour, icon, label) comes from Python's one table,
// conductor_nb.model.states.STATE_STYLES, in the `state_styles` trait: never copied here.
function styleOf(model, state) {
  const table = model.get("state_styles") || {};
  return table[state] || table.pending || {};
}

function svgEl(tag, attrs, parent) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function htmlEl(tag, cls, parent, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

function button(parent, cls, label, title) {
  const b = htmlEl("button", `cnb-btn ${cls}`, parent, label);
  b.type = "button";
  if (title) b.title = title;
  return b;
}

function group(parent, cls, label) {
  const g = htmlEl("span", `cnb-group ${cls}`, parent);
  g.setAttribute("role", "group");
  g.setAttribute("aria-label", label);
  return g;
}

function edgePath(sx, sy, tx, ty) {
  const dx = Math.max(40, Math.abs(tx - sx) / 2);
  return `M ${sx} ${sy} C ${sx + dx} ${sy} ${tx - dx} ${ty} ${tx} ${ty}`;
}

// Shortcut names as the user's platform writes them (the keys themselves work on both).
const IS_MAC = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent || "");
const UNDO_KEY = IS_MAC ? "⌘Z" : "Ctrl+Z";
const REDO_KEY = IS_MAC ? "⇧⌘Z" : "Ctrl+Shift+Z";

// Ctrl/Cmd+Z -> "undo", Ctrl/Cmd+Shift+Z or Ctrl+Y -> "redo", anything else -> null.
function historyKey(ev) {
  if (!(ev.ctrlKey || ev.metaKey) || ev.altKey) return null;
  const key = (ev.key || "").toLowerCase();
  if (key === "z") return ev.shiftKey ? "redo" : "undo";
  if (key === "y" && ev.ctrlKey && !ev.shiftKey) return "redo";
  return null;
}

// Keys typed into a form field belong to the field (its own text undo included).
function isTyping(target) {
  return !!(target && target.closest && target.closest("input, textarea, select, [contenteditable]"));
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}

// The front end draws a view again whenever its output is sent again: the kernel refreshes
// the static picture when a run pauses or ends, and the notebook then replaces the drawing.
// What the user set up in the last drawing of a model (zoom and pan, the selected edge,
// re-run inputs typed but not sent, the keyboard focus) is kept here, so the new drawing
// takes over where the old one was.
// (Keyed by a name the Python side gives each widget: views get a model proxy of their own.)
const LAST = new Map(); // _front_key -> {T, selectedEdge, rerunDraft, focused}

function render({ model, el }) {
  const send = (msg) => model.send(msg);
  const key = model.get("_front_key");
  const last = LAST.get(key) || {};
  const root = htmlEl("div", "cnb-view", el);
  // focusable (not in the tab order), so a click anywhere in the view gives it the keyboard
  root.tabIndex = -1;

  // ---------------------------------------------------------------- toolbar
  // Controls come in groups that never break inside (a group is a row of joined buttons);
  // on a narrow notebook the groups wrap onto more lines, each line still reading as groups.
  const bar = htmlEl("div", "cnb-toolbar", root);
  bar.setAttribute("role", "toolbar");
  const runGroup = group(bar, "cnb-group-run cnb-seg", "Run controls");
  button(runGroup, "cnb-btn-run", "▶ Run", "Run in the background (or resume)").onclick = () => send({ event: "run" });
  button(runGroup, "cnb-btn-step", "Step", "Run exactly one more node, then pause").onclick = () => send({ event: "step" });
  button(runGroup, "cnb-btn-pause", "Pause", "Dispatch nothing new").onclick = () => send({ event: "pause" });
  button(runGroup, "cnb-btn-resume", "Resume").onclick = () => send({ event: "resume" });
  button(runGroup, "cnb-btn-stop", "■ Stop", "Cancel the run").onclick = () => send({ event: "stop" });
  button(runGroup, "cnb-btn-reset", "↺ Reset", "Forget the run").onclick = () => send({ event: "reset" });
  const slowLabel = htmlEl("label", "cnb-group cnb-slow-label", bar, "slow-motion");
  const slow = htmlEl("input", "cnb-slow", slowLabel);
  Object.assign(slow, { type: "number", min: "0", max: "10", step: "0.1", title: "seconds before each node" });
  slow.onchange = () => { model.set("slow_motion", parseFloat(slow.value) || 0); model.save_changes(); };

  const viewGroup = group(bar, "cnb-group-view cnb-seg", "View");
  button(viewGroup, "cnb-btn-fit", "Fit", "Fit the graph to the view").onclick = () => fit();
  button(viewGroup, "cnb-btn-zoom-in", "+", "Zoom in").onclick = () => zoomBy(1.25);
  button(viewGroup, "cnb-btn-zoom-out", "−", "Zoom out").onclick = () => zoomBy(0.8);

  const editGroup = group(bar, "cnb-edit-group", "Edit");
  // the universal arrows keep the toolbar short; the name is in aria-label and title
  const historyGroup = htmlEl("span", "cnb-seg", editGroup);
  const undoBtn = button(historyGroup, "cnb-btn-undo cnb-btn-icon", "↶");
  undoBtn.setAttribute("aria-label", "Undo");
  undoBtn.onclick = () => send({ event: "undo" });
  const redoBtn = button(historyGroup, "cnb-btn-redo cnb-btn-icon", "↷");
  redoBtn.setAttribute("aria-label", "Redo");
  redoBtn.onclick = () => send({ event: "redo" });
  const addGroup = htmlEl("span", "cnb-seg", editGroup);
  const palette = htmlEl("select", "cnb-palette", addGroup);
  palette.setAttribute("aria-label", "Node type to add");
  button(addGroup, "cnb-btn-add", "+ Add node", "Add a node of the chosen type").onclick = () => {
    if (!palette.value) return;
    const c = toGraph(canvas.clientWidth / 2, canvas.clientHeight / 2);
    send({ event: "add", type: palette.value, x: c.x - 85, y: c.y - 28 });
  };
  button(editGroup, "cnb-btn-delete", "Delete", "Delete the selected node or edge").onclick = () => deleteSelection();

  const progress = htmlEl("div", "cnb-progress", root);
  const progressBar = htmlEl("div", "cnb-progress-bar", progress);
  const progressText = htmlEl("span", "cnb-progress-text", progress);
  const status = htmlEl("span", "cnb-run-status", progress);
  const dashboard = htmlEl("a", "cnb-dashboard", progress);
  dashboard.target = "_blank";
  dashboard.rel = "noopener";
  dashboard.textContent = "Dask dashboard";

  const errorBox = htmlEl("div", "cnb-error", root);
  const errorText = htmlEl("pre", "cnb-error-text", errorBox);
  button(errorBox, "cnb-error-close", "×", "Dismiss").onclick = () => { model.set("error", ""); model.save_changes(); };
  const notice = htmlEl("div", "cnb-notice", root);

  // ---------------------------------------------------------------- canvas + inspector
  const body = htmlEl("div", "cnb-body", root);
  const canvas = htmlEl("div", "cnb-canvas", body);
  canvas.tabIndex = 0;
  const svg = svgEl("svg", { class: "cnb-svg", width: "100%", height: "100%" }, canvas);
  const defs = svgEl("defs", {}, svg);
  const marker = svgEl("marker", { id: `cnb-arrow-${model.cid || Math.random().toString(36).slice(2)}`, viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs);
  svgEl("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "cnb-arrow" }, marker);
  const arrowRef = `url(#${marker.id})`;
  const viewport = svgEl("g", { class: "cnb-viewport" }, svg);
  const edgeLayer = svgEl("g", { class: "cnb-edges" }, viewport);
  const nodeLayer = svgEl("g", { class: "cnb-nodes" }, viewport);
  const dragEdge = svgEl("path", { class: "cnb-drag-edge", d: "" }, viewport);
  const inspector = htmlEl("div", "cnb-inspector", body);

  let T = last.T || { x: 20, y: 20, k: 1 };
  let fitted = !!last.T;   // fitted, or placed by the user: no automatic fit any more
  let nodes = {};          // id -> graph node
  let nodeEls = {};        // id -> <g>
  let edgeEls = [];        // [{edge, path, hit}]
  let selectedEdge = last.selectedEdge || null;
  let rerunDraft = last.rerunDraft || null; // {node, base, text}: re-run inputs not sent yet
  let focused = !!last.focused;
  const remember = () => LAST.set(key, { T: fitted ? T : null, selectedEdge, rerunDraft, focused });

  const applyT = () => {
    viewport.setAttribute("transform", `translate(${T.x},${T.y}) scale(${T.k})`);
    remember();
  };
  const toGraph = (cx, cy) => ({ x: (cx - T.x) / T.k, y: (cy - T.y) / T.k });
  const clientToGraph = (ev) => {
    const r = svg.getBoundingClientRect();
    return toGraph(ev.clientX - r.left, ev.clientY - r.top);
  };

  function zoomBy(f, cx, cy) {
    if (cx === undefined) { cx = canvas.clientWidth / 2; cy = canvas.clientHeight / 2; }
    const k = Math.min(4, Math.max(0.05, T.k * f));
    T = { x: cx - (cx - T.x) * (k / T.k), y: cy - (cy - T.y) * (k / T.k), k };
    fitted = true;
    applyT();
  }

  function fit() {
    const list = Object.values(nodes);
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!list.length || !w || !h) return false;
    const x0 = Math.min(...list.map((n) => n.x)), y0 = Math.min(...list.map((n) => n.y));
    const x1 = Math.max(...list.map((n) => n.x + n.w)), y1 = Math.max(...list.map((n) => n.y + n.h + FOOTER));
    const pad = 24;
    const k = Math.min(1.2, (w - 2 * pad) / Math.max(1, x1 - x0), (h - 2 * pad) / Math.max(1, y1 - y0));
    T = { k, x: (w - (x1 - x0) * k) / 2 - x0 * k, y: (h - (y1 - y0) * k) / 2 - y0 * k };
    fitted = true;
    applyT();
    return true;
  }

  function portXY(nodeId, port, side) {
    const n = nodes[nodeId];
    if (!n) return null;
    const list = side === "out" ? n.outputs : n.inputs;
    const p = list.find((q) => q.name === port) || list[0];
    return { x: side === "out" ? n.x + n.w : n.x, y: n.y + (p ? p.dy : n.h / 2) };
  }

  // ---------------------------------------------------------------- drawing
  function drawGraph() {
    const g = model.get("graph") || { nodes: [], edges: [] };
    nodes = Object.fromEntries(g.nodes.map((n) => [n.id, { ...n }]));
    nodeLayer.replaceChildren();
    edgeLayer.replaceChildren();
    nodeEls = {};
    edgeEls = [];
    for (const e of g.edges) drawEdge(e);
    for (const n of g.nodes) drawNode(nodes[n.id]);
    if (selectedEdge && !edgeEls.some((x) => x.edge.id === selectedEdge)) { selectedEdge = null; remember(); }
    markSelection();
    drawStates();
    if (!fitted) fitted = fit();
  }

  function drawEdge(e) {
    const path = svgEl("path", { class: "cnb-edge", "data-edge": e.id, "marker-end": arrowRef }, edgeLayer);
    const hit = svgEl("path", { class: "cnb-edge-hit", "data-edge": e.id }, edgeLayer);
    svgEl("title", {}, hit).textContent = e.id;
    hit.addEventListener("pointerdown", (ev) => ev.stopPropagation());
    hit.addEventListener("click", (ev) => {
      ev.stopPropagation();
      selectedEdge = e.id;
      remember();
      model.set("selected", ""); model.save_changes();
      markSelection();
    });
    const item = { edge: e, path, hit };
    edgeEls.push(item);
    placeEdge(item);
  }

  function placeEdge(item) {
    const s = portXY(item.edge.source, item.edge.source_port, "out");
    const t = portXY(item.edge.target, item.edge.target_port, "in");
    if (!s || !t) return;
    const d = edgePath(s.x, s.y, t.x, t.y);
    item.path.setAttribute("d", d);
    item.hit.setAttribute("d", d);
  }

  function drawNode(n) {
    const g = svgEl("g", { class: "cnb-node", "data-node": n.id, transform: `translate(${n.x},${n.y})` }, nodeLayer);
    if (!n.enabled) g.classList.add("cnb-disabled");
    svgEl("title", {}, g).textContent = `${n.id} (${n.type})`;
    svgEl("rect", { class: "cnb-node-box", width: n.w, height: n.h + FOOTER, rx: 7 }, g);
    svgEl("text", { class: "cnb-node-label", x: 26, y: 18 }, g).textContent = clip(n.label, 17);
    svgEl("text", { class: "cnb-node-type", x: n.w - 8, y: 18 }, g).textContent = clip(n.type, 12);
    const badge = svgEl("g", { class: "cnb-badge", "data-node": n.id, transform: "translate(13,13)" }, g);
    svgEl("title", {}, badge).textContent = "click: toggle breakpoint";
    svgEl("circle", { class: "cnb-badge-ring", r: 8 }, badge);
    svgEl("text", { class: "cnb-badge-text", y: 4 }, badge);
    badge.addEventListener("pointerdown", (ev) => ev.stopPropagation());
    badge.addEventListener("click", (ev) => { ev.stopPropagation(); send({ event: "toggle_breakpoint", node: n.id }); });
    svgEl("text", { class: "cnb-node-detail", x: 10, y: n.h + FOOTER - 7 }, g);
    for (const [side, list] of [["in", n.inputs], ["out", n.outputs]]) {
      for (const p of list) {
        const x = side === "in" ? 0 : n.w;
        const port = svgEl("circle", { class: `cnb-port cnb-port-${side}`, cx: x, cy: p.dy, r: 5, "data-node": n.id, "data-port": p.name }, g);
        if (p.required) port.classList.add("cnb-port-required");
        svgEl("title", {}, port).textContent = `${n.id}.${p.name}: ${p.type}${p.many ? " (many)" : ""}`;
        const label = svgEl("text", { class: `cnb-port-label cnb-port-label-${side}`, x: side === "in" ? 9 : n.w - 9, y: p.dy + 4 }, g);
        label.textContent = clip(p.name, 12);
        if (side === "out") port.addEventListener("pointerdown", (ev) => startConnect(ev, n.id, p.name));
        else port.addEventListener("pointerdown", (ev) => ev.stopPropagation());
      }
    }
    g.addEventListener("pointerdown", (ev) => startNodeDrag(ev, n.id));
    nodeEls[n.id] = g;
  }

  function clip(text, n) { return text.length <= n ? text : text.slice(0, n - 1) + "…"; }

  function drawStates() {
    const states = model.get("states") || {};
    const info = model.get("run_info") || {};
    const bps = new Set(model.get("breakpoints") || []);
    for (const [id, g] of Object.entries(nodeEls)) {
      const s = states[id] || {};
      let st = s.state || "pending";
      if (info.status === "paused" && info.paused_at === id && st === "pending") st = "paused";
      if (g.dataset.state !== st) {
        if (g.dataset.state) g.classList.remove(`cnb-state-${g.dataset.state}`);
        g.classList.add(`cnb-state-${st}`);
        g.dataset.state = st;
      }
      g.classList.toggle("cnb-has-breakpoint", bps.has(id));
      const look = styleOf(model, st);
      const box = g.querySelector(".cnb-node-box");
      box.style.fill = look.fill || "";
      box.style.stroke = look.stroke || "";
      g.querySelector(".cnb-node-detail").style.fill = st === "pending" ? "" : look.text || "";
      g.querySelector(".cnb-badge-text").textContent = st === "pending" ? "" : look.icon || "";
      const parts = [];
      if (s.state && s.state !== "pending") parts.push(st);
      if (s.attempts > 1) parts.push(`attempt ${s.attempts}`);
      if (s.duration !== null && s.duration !== undefined) parts.push(fmtSeconds(s.duration));
      g.querySelector(".cnb-node-detail").textContent = parts.join(" · ");
    }
    const flowedFrom = (id) => ["succeeded", "cached"].includes((states[id] || {}).state);
    for (const item of edgeEls) item.path.classList.toggle("cnb-flowed", flowedFrom(item.edge.source));
    drawRunInfo();
  }

  function drawRunInfo() {
    const info = model.get("run_info") || {};
    const st = info.status || "idle";
    status.textContent = st + (info.status === "paused" && info.paused_at ? ` before ${info.paused_at}` : "");
    status.dataset.status = st;
    const runLook = (model.get("state_styles") || {})[st];
    status.style.background = runLook ? runLook.fill : "";
    status.style.color = runLook ? runLook.text : "";
    root.dataset.status = st;
    const pct = info.total ? Math.round((100 * info.done) / info.total) : 0;
    progressBar.style.width = `${pct}%`;
    dashboard.style.display = info.dashboard ? "" : "none";
    if (info.dashboard) dashboard.href = info.dashboard;
    progress.dataset.status = st;
    progressText.textContent = info.total
      ? `${info.done}/${info.total} ${info.total === 1 ? "node" : "nodes"} · ${pct}%` + (info.eta !== null && info.eta !== undefined && info.done < info.total ? ` · ETA ${fmtSeconds(info.eta)}` : "")
      : "no run";
  }

  function markSelection() {
    const sel = model.get("selected");
    for (const [id, g] of Object.entries(nodeEls)) g.classList.toggle("cnb-selected", id === sel);
    for (const item of edgeEls) item.path.classList.toggle("cnb-selected", item.edge.id === selectedEdge);
  }

  function drawError() {
    const text = model.get("error") || "";
    errorText.textContent = text;
    errorBox.classList.toggle("cnb-visible", !!text);
  }

  function drawNotice() { notice.textContent = model.get("notice") || ""; }

  function drawUndo() {
    const u = model.get("undo_state") || {};
    setHistoryButton(undoBtn, u.undo, "Undo", UNDO_KEY);
    setHistoryButton(redoBtn, u.redo, "Redo", REDO_KEY);
  }

  function setHistoryButton(btn, label, verb, key) {
    // a focused button that gets disabled drops the keyboard focus out of the view (and the
    // next shortcut would go to JupyterLab): hand it to the canvas first
    if (!label && document.activeElement === btn) canvas.focus({ preventScroll: true });
    btn.disabled = !label;
    btn.title = label ? `${verb} ${label} (${key})` : `Nothing to ${verb.toLowerCase()} (${key})`;
  }

  function drawPalette() {
    const keep = palette.value;
    palette.replaceChildren();
    htmlEl("option", "", palette, "node type…").value = "";
    for (const t of model.get("palette") || []) {
      const o = htmlEl("option", "", palette, t.name);
      o.value = t.name;
      o.title = t.description || "";
    }
    palette.value = keep;
  }

  // ---------------------------------------------------------------- inspector
  function drawInspector() {
    const d = model.get("inspector") || {};
    inspector.replaceChildren();
    inspector.classList.toggle("cnb-empty", !d.node);
    if (!d.node) {
      htmlEl("div", "cnb-insp-hint", inspector, `Click a node to inspect it. Drag from an output port to an input port to connect. Click a node's badge to set a breakpoint. Delete removes the selected node or edge; ${UNDO_KEY} undoes, ${REDO_KEY} redoes.`);
      return;
    }
    const head = htmlEl("div", "cnb-insp-head", inspector);
    htmlEl("span", "cnb-insp-title", head, d.label);
    htmlEl("span", "cnb-insp-type", head, d.type);
    if (d.description) htmlEl("div", "cnb-insp-desc", inspector, d.description);

    const form = htmlEl("div", "cnb-params", inspector);
    htmlEl("div", "cnb-section", form, "Params");
    if (!d.fields.length) htmlEl("div", "cnb-muted", form, "no params");
    for (const f of d.fields) drawField(form, d.node, f);

    const r = d.run;
    const runBox = htmlEl("div", "cnb-insp-run", inspector);
    htmlEl("div", "cnb-section", runBox, "Last run");
    if (!r) { htmlEl("div", "cnb-muted", runBox, "not run yet"); }
    else {
      const line = htmlEl("div", `cnb-insp-state cnb-state-text-${r.state}`, runBox,
        `${r.state}` + (r.attempts ? ` · attempt ${r.attempts}` : "") + (r.duration !== null ? ` · ${fmtSeconds(r.duration)}` : ""));
      line.dataset.state = r.state;
      line.style.color = styleOf(model, r.state).text || "";
      drawValues(runBox, "cnb-inputs", "inputs", r.inputs);
      drawValues(runBox, "cnb-outputs", "outputs", r.outputs);
      if (r.error) {
        const err = htmlEl("div", "cnb-insp-error", runBox);
        htmlEl("div", "cnb-insp-error-message", err, r.error);
        if (r.traceback) {
          const det = htmlEl("details", "cnb-traceback-box", err);
          htmlEl("summary", "", det, "traceback");
          htmlEl("pre", "cnb-traceback", det, r.traceback);
        }
      }
      if (r.logs) { htmlEl("div", "cnb-label", runBox, "logs"); htmlEl("pre", "cnb-logs", runBox, r.logs); }
      const actions = htmlEl("div", "cnb-insp-actions", runBox);
      button(actions, "cnb-btn-retry", "Retry node", "Run it again with the function's current definition").onclick = () => send({ event: "retry", node: d.node });
      let area = null;
      if (r.inputs_json !== null && r.inputs_json !== undefined) {
        htmlEl("div", "cnb-label", runBox, "inputs for re-run (JSON)");
        // the inspector is redrawn whenever the node's record changes: inputs edited here stay
        // (a draft per node, until they are sent or the recorded inputs change)
        area = htmlEl("textarea", "cnb-rerun-inputs", runBox);
        const draft = rerunDraft && rerunDraft.node === d.node && rerunDraft.base === r.inputs_json;
        area.value = draft ? rerunDraft.text : r.inputs_json;
        area.rows = Math.min(8, r.inputs_json.split("\n").length + 1);
        area.oninput = () => { rerunDraft = { node: d.node, base: r.inputs_json, text: area.value }; remember(); };
      }
      button(actions, "cnb-btn-rerun", "Rerun with these inputs").onclick = () => {
        rerunDraft = null;
        remember();
        send({ event: "rerun", node: d.node, inputs: area ? area.value : null });
      };
    }
    const tail = htmlEl("div", "cnb-insp-actions", inspector);
    button(tail, "cnb-btn-delete-node", "Delete node").onclick = () => send({ event: "remove", node: d.node });
  }

  function drawField(form, nodeId, f) {
    const row = htmlEl("label", "cnb-param", form);
    row.dataset.param = f.name;
    const name = htmlEl("span", "cnb-param-name", row, f.name + (f.required ? " *" : ""));
    name.title = `${f.type}${f.input ? " input" : ""}${f.description ? ": " + f.description : ""}`;
    let input;
    const commit = (value) => send({ event: "set_param", node: nodeId, name: f.name, value });
    if (f.kind === "bool") {
      input = htmlEl("input", "cnb-param-input", row);
      input.type = "checkbox";
      input.checked = f.bool_value;
      input.onchange = () => commit(input.checked);
    } else if (f.kind === "choice") {
      input = htmlEl("select", "cnb-param-input", row);
      htmlEl("option", "", input, f.default !== null ? `(default ${f.default})` : "").value = "";
      for (const c of f.choices) htmlEl("option", "", input, c).value = c;
      input.value = f.value !== null ? f.value : "";
      input.onchange = () => commit(input.value);
    } else {
      input = htmlEl("input", "cnb-param-input", row);
      input.type = "text";
      input.value = f.value !== null ? f.value : "";
      input.placeholder = f.default !== null ? f.default : f.type;
      commitOnEnter(input, commit);
    }
    input.name = f.name;
  }

  // A text field commits on Enter as well as on leaving it. In JupyterLab the notebook takes
  // Enter (command mode: "edit the cell") before the browser turns it into a change event, so
  // Enter is handled here, and each value is sent once however it is committed.
  function commitOnEnter(input, commit) {
    let sent = input.value;
    const commitText = () => { if (input.value !== sent) { sent = input.value; commit(input.value); } };
    input.onchange = commitText;
    input.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter") return;
      ev.preventDefault();
      ev.stopPropagation();
      commitText();
    });
  }

  function drawValues(parent, cls, title, items) {
    const box = htmlEl("div", cls, parent);
    htmlEl("div", "cnb-label", box, title);
    if (!items || !items.length) { htmlEl("div", "cnb-muted", box, "—"); return; }
    for (const it of items) {
      const row = htmlEl("div", "cnb-preview", box);
      row.dataset.name = it.name;
      htmlEl("span", "cnb-preview-name", row, `${it.name} (${it.kind})`);
      if (it.html) htmlEl("div", "cnb-preview-html", row).innerHTML = it.html;
      else htmlEl("pre", "cnb-preview-text", row, it.text);
    }
  }

  // ---------------------------------------------------------------- interaction
  function onWindowDrag(move, up) {
    const mv = (ev) => move(ev);
    const done = (ev) => {
      window.removeEventListener("pointermove", mv);
      window.removeEventListener("pointerup", done);
      up(ev);
    };
    window.addEventListener("pointermove", mv);
    window.addEventListener("pointerup", done);
  }

  function startNodeDrag(ev, id) {
    if (ev.button !== 0) return;
    ev.stopPropagation();
    ev.preventDefault();
    canvas.focus({ preventScroll: true });
    const n = nodes[id];
    const start = clientToGraph(ev);
    const x0 = n.x, y0 = n.y;
    let moved = false;
    onWindowDrag((e) => {
      const p = clientToGraph(e);
      if (!moved && Math.hypot(p.x - start.x, p.y - start.y) * T.k < 4) return;
      moved = model.get("editable");
      if (!moved) return;
      n.x = x0 + p.x - start.x; n.y = y0 + p.y - start.y;
      nodeEls[id].setAttribute("transform", `translate(${n.x},${n.y})`);
      for (const item of edgeEls) if (item.edge.source === id || item.edge.target === id) placeEdge(item);
    }, () => {
      if (moved) send({ event: "move", node: id, x: n.x, y: n.y });
      else { selectedEdge = null; remember(); model.set("selected", id); model.save_changes(); markSelection(); }
    });
  }

  function startConnect(ev, nodeId, port) {
    if (ev.button !== 0) return;
    ev.stopPropagation();
    ev.preventDefault();
    const s = portXY(nodeId, port, "out");
    root.classList.add("cnb-connecting");
    onWindowDrag((e) => {
      const p = clientToGraph(e);
      dragEdge.setAttribute("d", edgePath(s.x, s.y, p.x, p.y));
    }, (e) => {
      dragEdge.setAttribute("d", "");
      root.classList.remove("cnb-connecting");
      const target = document.elementFromPoint(e.clientX, e.clientY);
      if (target && target.classList && target.classList.contains("cnb-port-in")) {
        send({ event: "connect", source: `${nodeId}.${port}`, target: `${target.dataset.node}.${target.dataset.port}` });
      }
    });
  }

  svg.addEventListener("pointerdown", (ev) => {
    if (ev.button !== 0) return;
    canvas.focus({ preventScroll: true });
    const x0 = T.x, y0 = T.y, cx = ev.clientX, cy = ev.clientY;
    let moved = false;
    onWindowDrag((e) => {
      if (Math.abs(e.clientX - cx) + Math.abs(e.clientY - cy) > 3) moved = true;
      T = { ...T, x: x0 + e.clientX - cx, y: y0 + e.clientY - cy };
      fitted = true;
      applyT();
    }, () => {
      if (!moved) { selectedEdge = null; remember(); model.set("selected", ""); model.save_changes(); markSelection(); }
    });
  });

  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = svg.getBoundingClientRect();
    zoomBy(ev.deltaY < 0 ? 1.1 : 1 / 1.1, ev.clientX - r.left, ev.clientY - r.top);
  }, { passive: false });

  function deleteSelection() {
    if (selectedEdge) { send({ event: "disconnect", edge: selectedEdge }); selectedEdge = null; remember(); }
    else if (model.get("selected")) send({ event: "remove", node: model.get("selected") });
  }

  canvas.addEventListener("keydown", (ev) => {
    if (ev.key === "Delete" || ev.key === "Backspace") { ev.preventDefault(); ev.stopPropagation(); deleteSelection(); }
  });

  // Undo/redo keys anywhere in the view (canvas, toolbar, inspector). The listener is on the
  // view, so JupyterLab keeps its shortcuts whenever the focus is elsewhere. Inside the view
  // the keys never reach Lab, which would take them even from a text field (as a notebook
  // undo, cancelling the field's own): in a form field they are the field's text undo,
  // elsewhere the view's.
  root.addEventListener("keydown", (ev) => {
    const action = historyKey(ev);
    if (!action) return;
    ev.stopPropagation();
    if (isTyping(ev.target) || !model.get("editable")) return;
    ev.preventDefault();
    send({ event: action });
  });

  // JupyterLab cancels the browser's own text undo inside a notebook (whose cells have their
  // undoer), from a listener it puts on the focused element when a key goes down. Our form
  // fields are plain inputs with nothing else to undo them: stop the undo event on its way
  // down (capture phase), before it reaches that listener.
  root.addEventListener("beforeinput", (ev) => {
    if ((ev.inputType === "historyUndo" || ev.inputType === "historyRedo") && isTyping(ev.target)) ev.stopPropagation();
  }, true);

  function drawHeight() { canvas.style.height = `${model.get("height") || 480}px`; }
  function drawEditable() { root.classList.toggle("cnb-readonly", !model.get("editable")); }

  const handlers = {
    "change:graph": drawGraph,
    "change:states": drawStates,
    "change:run_info": drawStates,
    "change:breakpoints": drawStates,
    "change:state_styles": drawStates,
    "change:selected": () => { markSelection(); },
    "change:inspector": drawInspector,
    "change:error": drawError,
    "change:notice": drawNotice,
    "change:palette": drawPalette,
    "change:slow_motion": () => { slow.value = model.get("slow_motion"); },
    "change:height": drawHeight,
    "change:editable": drawEditable,
    "change:undo_state": drawUndo,
  };
  for (const [evt, fn] of Object.entries(handlers)) model.on(evt, fn);

  drawHeight(); drawEditable(); applyT(); drawPalette(); drawGraph(); drawInspector(); drawError(); drawNotice(); drawUndo();
  slow.value = model.get("slow_motion");
  // Whether the keyboard is in the view. The element the focus was in can be removed with the
  // whole drawing (a refreshed output): that is not the user leaving, so the flag stays. Not
  // when a form field had it: keys meant for the field must not land on the canvas (where
  // Backspace deletes the selected node).
  root.addEventListener("focusin", (ev) => { focused = !isTyping(ev.target); remember(); });
  root.addEventListener("focusout", (ev) => {
    if (root.contains(ev.relatedTarget)) return;
    setTimeout(() => { if (root.isConnected && !root.contains(document.activeElement)) { focused = false; remember(); } });
  });

  // Once the element has a size (it has none until it is attached to the page): fit the graph
  // (unless a former drawing left a zoom), and take the keyboard back if the former had it.
  let tries = 0;
  const whenAttached = () => {
    if (!root.isConnected || !canvas.clientWidth) {
      if (tries++ < 100) requestAnimationFrame(whenAttached);
      return;
    }
    if (!fitted) fit();
    if (focused && !root.contains(document.activeElement)) canvas.focus({ preventScroll: true });
  };
  requestAnimationFrame(whenAttached);

  // On a narrow view the inspector gets less room (medium) or goes under the canvas (narrow),
  // so the graph keeps a usable width. A class, not a container query: containment would
  // collapse the view inside a shrink-to-fit parent (an HBox).
  const sizes = new ResizeObserver(() => {
    const w = root.clientWidth;
    root.classList.toggle("cnb-narrow", w > 0 && w < NARROW);
    root.classList.toggle("cnb-medium", w >= NARROW && w < MEDIUM);
  });
  sizes.observe(root);

  return () => {
    sizes.disconnect();
    for (const [evt, fn] of Object.entries(handlers)) model.off(evt, fn);
  };
}

export default { render };
