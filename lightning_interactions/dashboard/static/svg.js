// The Interactions dashboard: TensorBoard's "Interactions" tab and the self-contained report page.
//
// Everything is drawn in hand-written SVG from the payload of lightning_interactions.dashboard.data;
// nothing is fetched from the network. Text from the data (run names, tokens, notes) only ever
// enters the page through textContent or SVG text nodes, never as markup.
//
// In TensorBoard, render() is called by the plugin's iframe and reads ./runs and ./data?run=...;
// in the report page, the payload is embedded as JSON in <script id="interactions-payload">.
//
// The page's script is the concatenation of svg.js, charts.js, samples.js and main.js, in that order,
// as one ES module (lightning_interactions/dashboard/page.py: module_source); this part: constants,
// DOM and SVG helpers, scales, axes and legends.

const SVG = "http://www.w3.org/2000/svg";
const TABLEAU = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const KIND = { and: "#1f77b4", or: "#ff7f0e" };
const OTHER = "#8c8c8c";
const COLORS = { complexity: "#222222", train: "#1f77b4", val: "#ff7f0e", gap: "#7f7f7f", onset: "#2ca02c", alert: "#d62728", best: "#9467bd" };

// ---------- small DOM helpers ----------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function svg(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, String(value));
  }
  if (parent) parent.append(node);
  return node;
}

function fmt(value, digits = 3) {
  if (value == null || Number.isNaN(value)) return "n/a";
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return value.toExponential(1);
  return String(Number(value.toPrecision(digits)));
}

function signed(value) {
  return value == null ? "?" : (value >= 0 ? "+" : "") + fmt(value);
}

// A run's name as shown: "." is the log directory TensorBoard was given, itself a run.
function runTitle(name) {
  return name === "." ? "(the log directory itself)" : name;
}

function orderColor(k, n) {
  if (n <= TABLEAU.length) return TABLEAU[k % TABLEAU.length];
  return `hsl(${Math.round((k * 360) / n)}, 65%, ${k % 2 ? 38 : 55}%)`;
}

// ---------- scales and axes ----------

function scale(domain, range) {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

function niceTicks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function extent(values, pad = 0.05) {
  const finite = values.filter((v) => v != null && Number.isFinite(v));
  if (!finite.length) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (hi === lo) { lo -= 0.5 * (Math.abs(lo) || 1); hi += 0.5 * (Math.abs(hi) || 1); }
  const margin = (hi - lo) * pad;
  return [lo - margin, hi + margin];
}

function epochDomain(epochs) {
  const lo = Math.min(...epochs);
  const hi = Math.max(...epochs);
  return hi > lo ? [lo, hi] : [lo - 0.5, hi + 0.5];
}

// A plot area inside an SVG: x and y scales, axes with ticks and labels.
function frame(root, box, xDomain, yDomain, labels) {
  const g = svg("g", { class: "frame" }, root);
  const sx = scale(xDomain, [box.x, box.x + box.w]);
  const sy = scale(yDomain, [box.y + box.h, box.y]);
  svg("rect", { x: box.x, y: box.y, width: box.w, height: box.h, fill: "#fff", stroke: "#ccc" }, g);
  for (const t of niceTicks(yDomain[0], yDomain[1], Math.max(2, Math.floor(box.h / 40)))) {
    svg("line", { x1: box.x, x2: box.x + box.w, y1: sy(t), y2: sy(t), stroke: "#eee" }, g);
    svg("text", { x: box.x - 6, y: sy(t) + 4, "text-anchor": "end", class: "tick", text: fmt(t) }, g);
  }
  const xTicks = niceTicks(xDomain[0], xDomain[1], Math.max(2, Math.floor(box.w / 70))).filter((t) => Number.isInteger(t));
  for (const t of xTicks) {
    svg("line", { x1: sx(t), x2: sx(t), y1: box.y + box.h, y2: box.y + box.h + 4, stroke: "#888" }, g);
    if (labels.xTicks !== false) svg("text", { x: sx(t), y: box.y + box.h + 17, "text-anchor": "middle", class: "tick", text: String(t) }, g);
  }
  if (labels.x) svg("text", { x: box.x + box.w / 2, y: box.y + box.h + 34, "text-anchor": "middle", class: "label", text: labels.x }, g);
  if (labels.y) {
    const y = box.y + box.h / 2;
    svg("text", { x: 14, y, transform: `rotate(-90 14 ${y})`, "text-anchor": "middle", class: "label", text: labels.y }, g);
  }
  return { g, sx, sy, box };
}

function polyline(plot, xs, ys, attrs) {
  let d = "";
  let pen = false;
  xs.forEach((x, i) => {
    const y = ys[i];
    if (y == null || !Number.isFinite(y)) { pen = false; return; }
    d += `${pen ? "L" : "M"}${plot.sx(x).toFixed(1)},${plot.sy(y).toFixed(1)}`;
    pen = true;
  });
  if (!d) return null;
  const path = svg("path", { d, fill: "none", "stroke-width": 2, ...attrs }, plot.g);
  if (xs.length === 1) svg("circle", { cx: plot.sx(xs[0]), cy: plot.sy(ys[0]), r: 3, fill: attrs.stroke }, plot.g);
  return path;
}

function vline(plot, x, color, label, dash, row = 0) {
  const { box } = plot;
  const px = plot.sx(x);
  svg("line", { x1: px, x2: px, y1: box.y, y2: box.y + box.h, stroke: color, "stroke-width": 2, "stroke-dasharray": dash || "none" }, plot.g);
  if (label) {
    const right = px < box.x + box.w - 90;
    svg("text", { x: px + (right ? 4 : -4), y: box.y + 14 + row * 15, "text-anchor": right ? "start" : "end", fill: color, class: "mark", text: label }, plot.g);
  }
}

function legend(root, x, y, items, width) {
  let cx = x;
  let cy = y;
  for (const item of items) {
    const w = 26 + item.label.length * 7.2 + 14;
    if (cx + w > x + width && cx > x) { cx = x; cy += 18; }
    if (item.area) svg("rect", { x: cx, y: cy - 9, width: 16, height: 11, fill: item.color }, root);
    else svg("line", { x1: cx, x2: cx + 18, y1: cy - 4, y2: cy - 4, stroke: item.color, "stroke-width": 2.5, "stroke-dasharray": item.dash || "none" }, root);
    svg("text", { x: cx + 23, y: cy, class: "legend", text: item.label }, root);
    cx += w;
  }
  return cy + 18;
}

function newSvg(width, height, label) {
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": label, class: "chart" });
}
