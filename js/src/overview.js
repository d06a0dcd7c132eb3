// The overview map: every node of the graph as a box in its state's colour, and a frame on the
// part the canvas shows; click or drag in it to move the canvas there. Drawn on a <canvas>
// (one fillRect a node, about a millisecond for 1,000 nodes), at most once a frame, when the
// states, the graph or the viewport change: React Flow's MiniMap drew a component per node,
// each woken by every state patch, which made a 1,000-node view slow to open.
import { nodeHeight, NODE_W } from "./layout.js";

const PAD = 6;

export function mountOverview(box, { store, moveTo }) {
  const cv = document.createElement("canvas");
  cv.className = "cnb-overview-canvas";
  cv.setAttribute("role", "img");
  cv.setAttribute("aria-label", "overview of the graph");
  box.appendChild(cv);
  let nodes = []; // [{id, x, y, w, h}]
  let styles = {};
  let view = null; // {x, y, k, w, h}: the canvas's transform and size
  let scale = null; // {s, ox, oy}: graph units -> overview pixels
  let frame = 0;

  const schedule = () => { if (!frame) frame = requestAnimationFrame(draw); };
  const off = store.subscribeAll(schedule);
  const sizes = new ResizeObserver(schedule);
  sizes.observe(box);

  function fitScale(w, h) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const n of nodes) {
      x0 = Math.min(x0, n.x); y0 = Math.min(y0, n.y);
      x1 = Math.max(x1, n.x + n.w); y1 = Math.max(y1, n.y + n.h);
    }
    if (!nodes.length) return null;
    const s = Math.min((w - 2 * PAD) / Math.max(1, x1 - x0), (h - 2 * PAD) / Math.max(1, y1 - y0));
    return { s, ox: (w - (x1 + x0) * s) / 2, oy: (h - (y1 + y0) * s) / 2 };
  }

  function draw() {
    frame = 0;
    const w = box.clientWidth, h = box.clientHeight;
    if (!w || !h) return;
    const dpr = window.devicePixelRatio || 1;
    if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
      cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr);
      cv.style.width = `${w}px`; cv.style.height = `${h}px`;
    }
    const ctx = cv.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    scale = fitScale(w, h);
    if (!scale) return;
    const { s, ox, oy } = scale;
    const pausedAt = store.pausedAt();
    const marked = [];
    for (const n of nodes) {
      const state = n.id === pausedAt ? "paused" : store.stateOf(n.id);
      // the state's strong colour (the pale fills vanish at this scale)
      ctx.fillStyle = (styles[state] || {}).stroke || "#9aa3ad";
      const r = [ox + n.x * s, oy + n.y * s, Math.max(2, n.w * s), Math.max(2, n.h * s)];
      ctx.fillRect(...r);
      if (state === "paused" || state === "running" || state === "failed") marked.push(r);
    }
    ctx.strokeStyle = "#24292f";
    ctx.lineWidth = 2;
    for (const r of marked) ctx.strokeRect(r[0] - 2, r[1] - 2, r[2] + 4, r[3] + 4);
    if (view && view.k) {
      ctx.strokeStyle = "#0969da";
      ctx.lineWidth = 1.5;
      ctx.fillStyle = "rgba(9, 105, 218, 0.08)";
      const fx = ox + (-view.x / view.k) * s, fy = oy + (-view.y / view.k) * s;
      const fw = (view.w / view.k) * s, fh = (view.h / view.k) * s;
      ctx.fillRect(fx, fy, fw, fh);
      ctx.strokeRect(fx, fy, fw, fh);
    }
    // what the map shows, on its element: tests and tools read it there
    box.dataset.nodes = String(nodes.length);
    box.dataset.paused = pausedAt || "";
    box.dataset.running = String(marked.length);
  }

  function toGraph(ev) {
    const rect = cv.getBoundingClientRect();
    if (!scale) return null;
    return { x: (ev.clientX - rect.left - scale.ox) / scale.s, y: (ev.clientY - rect.top - scale.oy) / scale.s };
  }
  cv.addEventListener("pointerdown", (ev) => {
    ev.preventDefault();
    cv.setPointerCapture(ev.pointerId);
    const go = (e) => { const p = toGraph(e); if (p) moveTo(p.x, p.y); };
    go(ev);
    const up = () => { cv.removeEventListener("pointermove", go); cv.removeEventListener("pointerup", up); };
    cv.addEventListener("pointermove", go);
    cv.addEventListener("pointerup", up);
  });

  return {
    setGraph(g) {
      nodes = g.nodes.map((n) => {
        const [x, y] = n.pos || [0, 0];
        return { id: n.id, x, y, w: NODE_W, h: nodeHeight(n) };
      });
      schedule();
    },
    setStyles(st) { styles = st || {}; schedule(); },
    setView(v) { view = v; schedule(); },
    redraw: schedule,
    destroy() { off(); sizes.disconnect(); if (frame) cancelAnimationFrame(frame); },
  };
}
