// The inspector's values, drawn by kind (see conductor_nb.widgets.state.preview): tables with
// row count, columns and types; nested JSON as a collapsible tree; images; long text wrapped at
// word boundaries; anything else as its (clipped) repr.
import { htmlEl } from "./dom.js";

export function drawValues(parent, cls, title, items) {
  const box = htmlEl("div", cls, parent);
  htmlEl("div", "cnb-label", box, title);
  if (!items || !items.length) { htmlEl("div", "cnb-muted", box, "—"); return; }
  for (const it of items) {
    const row = htmlEl("div", "cnb-preview", box);
    row.dataset.name = it.name;
    row.dataset.kind = it.table ? "table" : it.tree ? "tree" : it.image ? "image" : it.long_text ? "long_text" : "text";
    htmlEl("span", "cnb-preview-name", row, `${it.name} (${it.kind})`);
    if (it.table) drawTable(row, it.table);
    else if (it.image) { const img = htmlEl("img", "cnb-preview-img", row); img.src = it.image; img.alt = it.name; }
    else if (it.tree !== undefined) drawTree(htmlEl("div", "cnb-tree", row), it.tree, 0);
    else if (it.long_text) htmlEl("div", "cnb-preview-long", row, it.long_text);
    else if (it.html) htmlEl("div", "cnb-preview-html", row).innerHTML = it.html;
    else htmlEl("pre", "cnb-preview-text", row, it.text);
  }
}

function drawTable(parent, t) {
  const cols = t.columns.length;
  htmlEl("div", "cnb-table-meta", parent,
    `${t.rows.toLocaleString()} ${t.rows === 1 ? "row" : "rows"} × ${cols} ${cols === 1 ? "column" : "columns"}` +
    (t.rows > t.head.length ? ` · first ${t.head.length} shown` : ""));
  const wrap = htmlEl("div", "cnb-table-wrap", parent);
  const table = htmlEl("table", "cnb-table", wrap);
  const head = htmlEl("tr", "", htmlEl("thead", "", table));
  for (const c of t.columns) {
    const th = htmlEl("th", "", head);
    htmlEl("div", "cnb-col-name", th, c.name);
    htmlEl("div", "cnb-col-type", th, c.type);
  }
  const body = htmlEl("tbody", "", table);
  for (const r of t.head) {
    const tr = htmlEl("tr", "", body);
    for (const cell of r) htmlEl("td", "", tr, cell);
  }
}

function drawTree(parent, value, depth) {
  if (value === null || typeof value !== "object") {
    htmlEl("span", `cnb-tree-leaf cnb-tree-${value === null ? "null" : typeof value}`, parent,
      typeof value === "string" ? JSON.stringify(value) : String(value));
    return;
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  const det = htmlEl("details", "cnb-tree-node", parent);
  det.open = depth < 1;
  htmlEl("summary", "", det, Array.isArray(value) ? `[${entries.length}]` : `{${entries.length}}`);
  for (const [k, v] of entries) {
    const row = htmlEl("div", "cnb-tree-row", det);
    htmlEl("span", "cnb-tree-key", row, `${k}: `);
    drawTree(row, v, depth + 1);
  }
}
