// Small DOM helpers shared by the toolbar and the inspector.
export function htmlEl(tag, cls, parent, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}

export function button(parent, cls, label, title) {
  const b = htmlEl("button", `cnb-btn ${cls}`, parent, label);
  b.type = "button";
  if (title) b.title = title;
  return b;
}

export function group(parent, cls, label) {
  const g = htmlEl("span", `cnb-group ${cls}`, parent);
  g.setAttribute("role", "group");
  g.setAttribute("aria-label", label);
  return g;
}

export function fmtSeconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)}s`;
  return `${Math.floor(s / 60)}m${Math.round(s % 60)}s`;
}
