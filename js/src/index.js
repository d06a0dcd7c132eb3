// conductor_nb BlueprintView front end (anywidget). Draws the model's traits (graph,
// state_patch, run_info, breakpoints, inspector, palette, error, state_styles) and sends small
// messages back ({event: "connect", ...}); Python owns every decision.
//
// The page around the canvas (toolbar, find, status line, inspector) is plain DOM; the canvas
// is React Flow (./canvas.jsx). Node states come through the per-model store (./store.js).
import { storeOf } from "./store.js";
import { mountCanvas, READABLE_ZOOM } from "./canvas.jsx";
import { drawValues } from "./values.js";
import { mountOverview } from "./overview.js";
import { expandGraph } from "./layout.js";
import { icon } from "./icons.js";
import { htmlEl, button, group, fmtSeconds } from "./dom.js";

const NARROW = 560, MEDIUM = 800; // view widths (px) below which the inspector makes room
// the overview map is on by default when the graph opens larger than the canvas, unless it is a
// handful of nodes (before the canvas has said: above OVERVIEW_NODES nodes)
const OVERVIEW_NODES = 30, HANDFUL = 12;
// below this zoom a node's box holds 3 letters of its label at most: the labels go (the
// node's title tells it on hover), the boxes keep their state colours
const SPECKS_ZOOM = 0.2;

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

// Sizes the user gave the view (height, inspector width, inspector folded), per notebook:
// the page's path names the notebook in JupyterLab and Notebook 7.
function prefKey(model, name) { return `cnb-view:${location.pathname}:${(model.get("graph") || {}).id}:${name}`; }
function loadPref(model, name) { try { return JSON.parse(localStorage.getItem(prefKey(model, name))); } catch { return null; } }
function savePref(model, name, value) { try { localStorage.setItem(prefKey(model, name), JSON.stringify(value)); } catch { /* private mode */ } }

// The front end draws a view again whenever its output is sent again (the kernel refreshes
// the static picture when a run ends, and the notebook then replaces the drawing). What the
// user set up in the last drawing of a model (viewport, selected edge, re-run inputs typed but
// not sent, the keyboard focus) is kept here, so the new drawing takes over where the old was.
const LAST = new Map(); // _front_key -> {viewport, selectedEdge, rerunDraft, focused}

function render({ model, el }) {
  const send = (msg) => model.send(msg);
  const store = storeOf(model);
  const detachStore = store.attach(model);
  const key = model.get("_front_key");
  const last = LAST.get(key) || {};
  const root = htmlEl("div", "cnb-view", el);
  root.tabIndex = -1; // focusable (not in the tab order): a click in the view gives it the keyboard

  // ---------------------------------------------------------------- toolbar
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
  button(viewGroup, "cnb-btn-fit", "Fit all", "Show the whole graph").onclick = () => canvas.api.fitAll();
  button(viewGroup, "cnb-btn-zoom-in", "+", "Zoom in").onclick = () => canvas.api.zoomBy(1.25);
  button(viewGroup, "cnb-btn-zoom-out", "−", "Zoom out").onclick = () => canvas.api.zoomBy(0.8);
  const overviewBtn = button(viewGroup, "cnb-btn-overview", "Map", "Show or hide the overview map (minimap)");
  overviewBtn.onclick = () => { overview = !showsOverview(); remember(); drawLayout(); };
  const inspBtn = button(viewGroup, "cnb-btn-inspector", "Inspector", "Show or hide the inspector");
  inspBtn.onclick = () => { folded = !folded; savePref(model, "folded", folded); drawLayout(); };

  const findGroup = group(bar, "cnb-group-find cnb-seg", "Find");
  const find = htmlEl("input", "cnb-find", findGroup);
  Object.assign(find, { type: "search", placeholder: "find node…", title: "Find a node by id, name or type (Enter: next)" });
  const findCount = htmlEl("span", "cnb-find-count", findGroup);
  let matches = [], matchAt = -1;
  const runFind = (next) => {
    const q = find.value.trim().toLowerCase();
    const g = model.get("graph") || { nodes: [] };
    matches = q ? g.nodes.filter((n) => [n.id, n.label, n.type].some((t) => (t || "").toLowerCase().includes(q))).map((n) => n.id) : [];
    if (!matches.length) { matchAt = -1; findCount.textContent = q ? "none" : ""; return; }
    matchAt = next ? (matchAt + 1) % matches.length : 0;
    findCount.textContent = `${matchAt + 1}/${matches.length}`;
    const id = matches[matchAt];
    canvas.api.focus(id);
    model.set("selected", id); model.save_changes();
  };
  find.addEventListener("input", () => runFind(false));
  find.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault(); ev.stopPropagation();
    runFind(true);
  });

  const editGroup = group(bar, "cnb-edit-group", "Edit");
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
    const c = canvas.api.center();
    send({ event: "add", type: palette.value, x: c.x - 90, y: c.y - 30 });
  };
  button(editGroup, "cnb-btn-delete", "Delete", "Delete the selected node or edge").onclick = () => deleteSelection();

  const progress = htmlEl("div", "cnb-progress", root);
  const progressBar = htmlEl("div", "cnb-progress-bar", progress);
  const progressText = htmlEl("span", "cnb-progress-text", progress);
  // at the right of the status line: the Dask dashboard, where the run is, its status
  const right = htmlEl("span", "cnb-progress-right", progress);
  const dashboard = htmlEl("a", "cnb-dashboard", right);
  const where = htmlEl("button", "cnb-where", right);
  where.type = "button";
  where.title = "Show this node";
  where.onclick = () => { const id = where.dataset.node; if (id) { canvas.api.focus(id); model.set("selected", id); model.save_changes(); } };
  const status = htmlEl("span", "cnb-run-status", right);
  dashboard.target = "_blank";
  dashboard.rel = "noopener";
  dashboard.textContent = "Dask dashboard";

  const errorBox = htmlEl("div", "cnb-error", root);
  const errorText = htmlEl("pre", "cnb-error-text", errorBox);
  button(errorBox, "cnb-error-close", "×", "Dismiss").onclick = () => { model.set("error", ""); model.save_changes(); };
  const notice = htmlEl("div", "cnb-notice", root);

  // ---------------------------------------------------------------- canvas + inspector
  const body = htmlEl("div", "cnb-body", root);
  const canvasEl = htmlEl("div", "cnb-canvas", body);
  canvasEl.tabIndex = 0;
  const splitter = htmlEl("div", "cnb-splitter", body);
  splitter.title = "Drag to resize the inspector";
  // beside the canvas: the overview map above the inspector, so the map never covers nodes
  // (with the inspector folded it floats in the canvas's corner)
  const side = htmlEl("div", "cnb-side", body);
  const overviewBox = htmlEl("div", "cnb-overview", side);
  overviewBox.title = "Overview: click or drag to move the view";
  const inspector = htmlEl("div", "cnb-inspector", side);
  const grip = htmlEl("div", "cnb-height-grip", root);
  grip.title = "Drag to resize the view (remembered for this notebook)";

  let selectedEdge = last.selectedEdge || null;
  let rerunDraft = last.rerunDraft || null; // {node, base, text}: re-run inputs not sent yet
  let focused = !!last.focused;
  let viewport = last.viewport || null;
  let overview = last.overview === undefined ? null : last.overview;
  let fits = null; // whether the whole graph shows at a readable zoom (the canvas says)
  let folded = !!loadPref(model, "folded");
  let inspWidth = loadPref(model, "inspector") || 300;
  let folds = last.folds || [];
  const remember = () => LAST.set(key, { viewport, selectedEdge, rerunDraft, focused, overview, folds });

  const t0 = performance.now();
  const on = {
    // how long the first drawing took (layout, React Flow, the browser's paint): a figure the
    // project's browser tests print
    drawn: () => { if (!root.dataset.drawMs) root.dataset.drawMs = String(Math.round(performance.now() - t0)); },
    select: (id) => { model.set("selected", id); model.save_changes(); canvasEl.focus({ preventScroll: true }); },
    edge: (id) => { selectedEdge = id; remember(); },
    move: (id, x, y) => { if (model.get("editable")) send({ event: "move", node: id, x, y }); },
    connect: (source, target) => send({ event: "connect", source, target }),
    breakpoint: (id) => send({ event: "toggle_breakpoint", node: id }),
    viewport: (v) => { viewport = v; remember(); },
    folds: (ids) => { folds = ids; remember(); },
    fits: (whole) => { if (fits !== whole) { fits = whole; if (map) drawLayout(); } },
    // the viewport, on the view's element: tests and tools read it there
    transform: ([x, y, k], size) => {
      if (map) map.setView({ x, y, k, w: size.w, h: size.h });
      root.dataset.viewport = `${x.toFixed(1)},${y.toFixed(1)},${k.toFixed(4)}`;
      root.dataset.zoom = k.toFixed(4);
      root.style.setProperty("--cnb-zoom", String(k));
      root.classList.toggle("cnb-zoom-low", k < 0.55);
      root.classList.toggle("cnb-zoom-tiny", k < 0.3);
      root.classList.toggle("cnb-zoom-specks", k < SPECKS_ZOOM);
    },
  };
  let map = null;
  const canvas = mountCanvas(canvasEl, { model, store, on, initial: { viewport, selectedEdge, folds } });
  map = mountOverview(overviewBox, { store, moveTo: (x, y) => canvas.api.centerOn && canvas.api.centerOn(x, y) });
  const drawGraph = () => map.setGraph(expandGraph(model.get("graph")));
  const showsOverview = () => {
    if (overview !== null && overview !== undefined) return overview;
    const count = ((model.get("graph") || {}).nodes || []).length;
    return fits === null ? count > OVERVIEW_NODES : !fits && count > HANDFUL;
  };

  // How each state looks comes from Python's one table (conductor_nb.model.states.STATE_STYLES,
  // the state_styles trait): turned into CSS variables here, never copied into view.css.
  const styleEl = htmlEl("style", "", root);
  function drawStyles() {
    const styles = model.get("state_styles") || {};
    map.setStyles(styles);
    styleEl.textContent = Object.entries(styles).map(([name, s]) =>
      `.cnb-view .cnb-state-${name} { --cnb-fill: ${s.fill}; --cnb-stroke: ${s.stroke}; --cnb-text: ${s.text}; }\n` +
      `.cnb-view[data-status="${name}"] .cnb-run-status { background: ${s.fill}; color: ${s.text}; }\n` +
      `.cnb-view[data-status="${name}"] .cnb-where, .cnb-insp-state[data-state="${name}"] { color: ${s.text}; }`).join("\n");
  }

  function drawRunInfo() {
    const info = model.get("run_info") || {};
    const st = info.status || "idle";
    status.textContent = st; // the node a paused run waits before: the link beside it names it
    status.dataset.status = st;
    root.dataset.status = st;
    const pct = info.total ? Math.round((100 * info.done) / info.total) : 0;
    progressBar.style.width = `${pct}%`;
    dashboard.style.display = info.dashboard ? "" : "none";
    if (info.dashboard) dashboard.href = info.dashboard;
    progress.dataset.status = st;
    progressText.textContent = info.total
      ? `${info.done}/${info.total} ${info.total === 1 ? "node" : "nodes"} · ${pct}%` + (info.eta !== null && info.eta !== undefined && info.done < info.total ? ` · ETA ${fmtSeconds(info.eta)}` : "")
      : "no run";
    // where am I: the node a paused run waits before (a link that shows it), else the failed ones
    const failed = st === "failed" ? store.failed() : [];
    const target = info.status === "paused" && info.paused_at ? info.paused_at : failed[0];
    where.style.display = target ? "" : "none";
    where.dataset.node = target || "";
    where.replaceChildren();
    if (target) {
      where.appendChild(icon(info.status === "paused" ? "paused" : "failed"));
      where.append(info.status === "paused" ? ` paused before ${target}`
        : ` ${failed.length} failed: ${failed.slice(0, 3).join(", ")}${failed.length > 3 ? "…" : ""}`);
    }
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

  function setHistoryButton(btn, label, verb, keyName) {
    // a focused button that gets disabled drops the keyboard focus out of the view (and the
    // next shortcut would go to JupyterLab): hand it to the canvas first
    if (!label && document.activeElement === btn) canvasEl.focus({ preventScroll: true });
    btn.disabled = !label;
    btn.title = label ? `${verb} ${label} (${keyName})` : `Nothing to ${verb.toLowerCase()} (${keyName})`;
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

    if (!d.nested) {
      const form = htmlEl("div", "cnb-params", inspector);
      htmlEl("div", "cnb-section", form, "Params");
      if (!d.fields.length) htmlEl("div", "cnb-muted", form, "no params");
      for (const f of d.fields) drawField(form, d.node, f);
    }

    const r = d.run;
    const runBox = htmlEl("div", "cnb-insp-run", inspector);
    htmlEl("div", "cnb-section", runBox, "Last run");
    if (!r) { htmlEl("div", "cnb-muted", runBox, "not run yet"); }
    else {
      const line = htmlEl("div", `cnb-insp-state cnb-state-text-${r.state}`, runBox,
        `${r.state}` + (r.attempts ? ` · attempt ${r.attempts}` : "") + (r.duration !== null ? ` · ${fmtSeconds(r.duration)}` : ""));
      line.dataset.state = r.state;
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
      if (d.nested) return; // an item's run inside a body: read-only here
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

  // ---------------------------------------------------------------- interaction
  function deleteSelection() {
    const edge = canvas.api.selectedEdge ? canvas.api.selectedEdge() : selectedEdge;
    if (edge) { send({ event: "disconnect", edge }); selectedEdge = null; canvas.api.clearEdge(); remember(); }
    else if (model.get("selected")) send({ event: "remove", node: model.get("selected") });
  }

  canvasEl.addEventListener("keydown", (ev) => {
    if (isTyping(ev.target)) return;
    if (ev.key === "Delete" || ev.key === "Backspace") { ev.preventDefault(); ev.stopPropagation(); deleteSelection(); }
  });

  // Undo/redo keys anywhere in the view. The listener is on the view, so JupyterLab keeps its
  // shortcuts whenever the focus is elsewhere; inside the view the keys never reach Lab (which
  // would take them even from a text field): in a form field they are the field's text undo,
  // elsewhere the view's.
  root.addEventListener("keydown", (ev) => {
    const action = historyKey(ev);
    if (!action) return;
    ev.stopPropagation();
    if (isTyping(ev.target) || !model.get("editable")) return;
    ev.preventDefault();
    send({ event: action });
  });

  // JupyterLab cancels the browser's own text undo inside a notebook, from a listener it puts on
  // the focused element when a key goes down: stop the undo event on its way down (capture).
  root.addEventListener("beforeinput", (ev) => {
    if ((ev.inputType === "historyUndo" || ev.inputType === "historyRedo") && isTyping(ev.target)) ev.stopPropagation();
  }, true);

  // ---------------------------------------------------------------- sizes
  function drawHeight() { canvasEl.style.height = `${model.get("height") || 480}px`; }
  function drawLayout() {
    side.style.flexBasis = `${inspWidth}px`;
    root.classList.toggle("cnb-inspector-folded", folded);
    inspBtn.setAttribute("aria-pressed", String(!folded));
    const shown = showsOverview();
    root.classList.toggle("cnb-overview-on", shown);
    overviewBtn.setAttribute("aria-pressed", String(shown));
    const home = folded ? canvasEl : side;
    if (overviewBox.parentElement !== home) home.insertBefore(overviewBox, home.firstChild);
    map.redraw();
  }
  function drag(ev, move, done) {
    ev.preventDefault();
    const mv = (e) => move(e);
    const up = () => { window.removeEventListener("pointermove", mv); window.removeEventListener("pointerup", up); done(); };
    window.addEventListener("pointermove", mv);
    window.addEventListener("pointerup", up);
  }
  splitter.addEventListener("pointerdown", (ev) => {
    const x0 = ev.clientX, w0 = side.getBoundingClientRect().width;
    drag(ev, (e) => { inspWidth = Math.max(180, Math.min(root.clientWidth - 200, w0 - (e.clientX - x0))); drawLayout(); },
      () => savePref(model, "inspector", inspWidth));
  });
  grip.addEventListener("pointerdown", (ev) => {
    const y0 = ev.clientY, h0 = canvasEl.getBoundingClientRect().height;
    let h = h0;
    drag(ev, (e) => { h = Math.max(200, Math.round(h0 + e.clientY - y0)); canvasEl.style.height = `${h}px`; },
      () => { savePref(model, "height", h); model.set("height", h); model.save_changes(); });
  });
  function drawEditable() { root.classList.toggle("cnb-readonly", !model.get("editable")); }

  const handlers = {
    "change:graph": () => { drawGraph(); drawLayout(); },
    "change:run_info": drawRunInfo,
    "change:state_styles": drawStyles,
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
  const offStates = store.subscribeAll(() => { if ((model.get("run_info") || {}).status === "failed") drawRunInfo(); });

  const savedHeight = loadPref(model, "height");
  if (savedHeight && savedHeight !== model.get("height")) { model.set("height", savedHeight); model.save_changes(); }
  drawGraph(); drawStyles(); drawHeight(); drawEditable(); drawLayout(); drawPalette(); drawRunInfo(); drawInspector(); drawError(); drawNotice(); drawUndo();
  slow.value = model.get("slow_motion");

  root.addEventListener("focusin", (ev) => { focused = !isTyping(ev.target); remember(); });
  root.addEventListener("focusout", (ev) => {
    if (root.contains(ev.relatedTarget)) return;
    setTimeout(() => { if (root.isConnected && !root.contains(document.activeElement)) { focused = false; remember(); } });
  });
  let tries = 0;
  const whenAttached = () => {
    if (!root.isConnected || !canvasEl.clientWidth) {
      if (tries++ < 100) requestAnimationFrame(whenAttached);
      return;
    }
    if (focused && !root.contains(document.activeElement)) canvasEl.focus({ preventScroll: true });
  };
  requestAnimationFrame(whenAttached);

  // On a narrow view the inspector gets less room (medium) or goes under the canvas (narrow).
  const sizes = new ResizeObserver(() => {
    const w = root.clientWidth;
    root.classList.toggle("cnb-narrow", w > 0 && w < NARROW);
    root.classList.toggle("cnb-medium", w >= NARROW && w < MEDIUM);
  });
  sizes.observe(root);

  return () => {
    sizes.disconnect();
    offStates();
    canvas.destroy();
    map.destroy();
    detachStore();
    for (const [evt, fn] of Object.entries(handlers)) model.off(evt, fn);
  };
}

export default { render };
export { READABLE_ZOOM };
