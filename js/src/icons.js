// State icons as SVG paths (a 16x16 box), not font glyphs: a glyph the page's fonts lack (the
// pause sign in headless Chromium) shows as an empty box. Used by the node badges, the status
// line and the overview's legend.
export const ICONS = {
  pending: "M6.5 8a1.5 1.5 0 1 0 3 0a1.5 1.5 0 1 0 -3 0z",
  queued: "M2.5 8a1.5 1.5 0 1 0 3 0a1.5 1.5 0 1 0 -3 0zM6.5 8a1.5 1.5 0 1 0 3 0a1.5 1.5 0 1 0 -3 0zM10.5 8a1.5 1.5 0 1 0 3 0a1.5 1.5 0 1 0 -3 0z",
  running: "M5 3.5v9l7.5-4.5z",
  succeeded: "M3 8.5l3.2 3.2L13 4.8l-1.4-1.4-5.4 5.4-1.8-1.8z",
  cached: "M8 3a5 5 0 1 1-4.6 3h2.1A3 3 0 1 0 8 5v2L4.5 4 8 1z",
  failed: "M4.2 3 3 4.2 6.8 8 3 11.8 4.2 13 8 9.2l3.8 3.8 1.2-1.2L9.2 8 13 4.2 11.8 3 8 6.8z",
  skipped: "M3 11V8a4 4 0 0 1 7.5-2H8.5v1.8H13V3.3h-1.8v1.5A5.8 5.8 0 0 0 1.2 8v3z",
  cancelled: "M4 4h8v8H4z",
  paused: "M4.5 3h2.5v10H4.5zM9 3h2.5v10H9z",
  retrying: "M8 3a5 5 0 1 0 4.6 3h-2.1A3 3 0 1 1 8 5v2l3.5-3L8 1z",
};

// An <svg> icon for the DOM parts of the view (status line).
export function icon(name, cls = "cnb-icon") {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  svg.dataset.icon = name;
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", ICONS[name] || ICONS.pending);
  svg.appendChild(path);
  return svg;
}
