// The Interactions dashboard: TensorBoard's "Interactions" tab and the self-contained report page.
//
// Everything is drawn in hand-written SVG from the payload of lightning_interactions.dashboard.data;
// nothing is fetched from the network. Text from the data (run names, tokens, notes) only ever
// enters the page through textContent or SVG text nodes, never as markup.
//
// In TensorBoard, render() is called by the plugin's iframe and reads ./runs and ./data?run=...;
// in the report page, the payload is embedded as JSON in <script id="interactions-payload">.

const SVG = "http://www.w3.org/2000/svg";
const TABLEAU = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];
const KIND = { and: "#1f77b4", or: "#ff7f0e" };
const OTHER = "#8c8c8c";
const COLORS = { complexity: "#222222", train: "#1f77b4", val: "#d62728", gap: "#7f7f7f", onset: "#2ca02c", alert: "#d62728", best: "#9467bd" };
const FONT = 13;

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

// ---------- (a) share of every order ----------

function sharesChart(m, index, width) {
  const n = m.share[0].length;
  const root = newSvg(width, 330, "share of every order over the epochs");
  const box = { x: 58, y: 12, w: width - 70, h: 220 };
  const plot = frame(root, box, epochDomain(m.epochs), [0, 1], { x: "epoch", y: "share of the strength" });
  const below = new Array(m.epochs.length).fill(0);
  for (let k = 0; k < n; k++) {
    const top = m.share.map((s, i) => below[i] + (s[k] || 0));
    const xs = m.epochs.length === 1 ? [m.epochs[0] - 0.4, m.epochs[0] + 0.4] : m.epochs;
    const up = m.epochs.length === 1 ? [top[0], top[0]] : top;
    const down = m.epochs.length === 1 ? [below[0], below[0]] : below;
    let d = xs.map((x, i) => `${i ? "L" : "M"}${plot.sx(x).toFixed(1)},${plot.sy(up[i]).toFixed(1)}`).join("");
    d += xs.map((x, i) => i).reverse().map((i) => `L${plot.sx(xs[i]).toFixed(1)},${plot.sy(down[i]).toFixed(1)}`).join("") + "Z";
    const area = svg("path", { d, fill: orderColor(k, n), stroke: "#fff", "stroke-width": 0.5, class: "area" }, plot.g);
    svg("title", { text: `order ${k + 1}` }, area);
    top.forEach((v, i) => { below[i] = v; });
  }
  vline(plot, m.epochs[index], "#000", `epoch ${m.epochs[index]}`, "4 3");
  const items = m.share[index].map((s, k) => ({ label: `${k + 1}: ${fmt(s, 2)}`, color: orderColor(k, n), area: true }));
  svg("text", { x: 58, y: 290, class: "legend", text: `order: share at epoch ${m.epochs[index]}` }, root);
  const bottom = legend(root, 58, 310, items, width - 70);
  root.setAttribute("viewBox", `0 0 ${width} ${bottom + 4}`);
  return root;
}

// ---------- (b) complexity, losses and their gap, phases ----------

function shadePhases(plot, m) {
  const { box } = plot;
  const first = m.epochs[0];
  const last = m.epochs[m.epochs.length - 1];
  const onset = m.alert_epoch != null ? m.onset_epoch : null;
  const end = onset != null ? onset : last;
  const x0 = plot.sx(first);
  svg("rect", { x: x0, y: box.y, width: Math.max(plot.sx(end) - x0, 1), height: box.h, fill: "#e8f0fb", class: "phase1" }, plot.g);
  if (onset != null) svg("rect", { x: plot.sx(onset), y: box.y, width: Math.max(plot.sx(last) - plot.sx(onset), 1), height: box.h, fill: "#fbe9e7", class: "phase2" }, plot.g);
}

function labelPhases(plot, m) {
  const { box } = plot;
  const onset = m.alert_epoch != null ? m.onset_epoch : null;
  const last = m.epochs[m.epochs.length - 1];
  const regions = onset == null ? [["phase 1 (no alert yet)", m.epochs[0], last]] : [["phase 1", m.epochs[0], onset], ["phase 2", onset, last]];
  for (const [label, a, b] of regions) {
    const wide = plot.sx(b) - plot.sx(a);
    if (wide > label.length * 7.5) svg("text", { x: (plot.sx(a) + plot.sx(b)) / 2, y: box.y + box.h - 8, "text-anchor": "middle", class: "phase-label", text: label }, plot.g);
  }
}

function markEpochs(plot, m, index, withLabels) {
  if (m.alert_epoch != null && m.onset_epoch != null) vline(plot, m.onset_epoch, COLORS.onset, withLabels && `onset (epoch ${m.onset_epoch})`, "6 3");
  if (m.alert_epoch != null) vline(plot, m.alert_epoch, COLORS.alert, withLabels && `alert (epoch ${m.alert_epoch})`, null, 1);
  vline(plot, m.epochs[index], "#000", null, "4 3");
}

function complexityChart(m, index, width) {
  const root = newSvg(width, 470, "complexity, losses and their gap over the epochs");
  const xDomain = epochDomain(m.epochs);
  const top = { x: 58, y: 12, w: width - 70, h: 170 };
  const plot = frame(root, top, xDomain, extent(m.complexity), { y: "complexity (mean order)", xTicks: false });
  shadePhases(plot, m);
  labelPhases(plot, m);
  polyline(plot, m.epochs, m.complexity, { stroke: COLORS.complexity, class: "series complexity" });
  markEpochs(plot, m, index, true);
  const losses = [...m.train_loss, ...m.val_loss, ...m.gap];
  const bottom = { x: 58, y: 198, w: width - 70, h: 170 };
  const lossPlot = frame(root, bottom, xDomain, extent(losses), { x: "epoch", y: "loss" });
  shadePhases(lossPlot, m);
  const hasLoss = losses.some((v) => v != null);
  if (hasLoss) {
    polyline(lossPlot, m.epochs, m.train_loss, { stroke: COLORS.train, class: "series train" });
    polyline(lossPlot, m.epochs, m.val_loss, { stroke: COLORS.val, class: "series val" });
    polyline(lossPlot, m.epochs, m.gap, { stroke: COLORS.gap, "stroke-dasharray": "5 3", class: "series gap" });
  } else {
    svg("text", { x: bottom.x + bottom.w / 2, y: bottom.y + bottom.h / 2, "text-anchor": "middle", class: "label", text: "no losses logged" }, lossPlot.g);
  }
  markEpochs(lossPlot, m, index, false);
  if (m.best_val_epoch != null) {
    const i = m.epochs.indexOf(m.best_val_epoch);
    svg("circle", { cx: lossPlot.sx(m.best_val_epoch), cy: lossPlot.sy(m.val_loss[i]), r: 5, fill: COLORS.best, stroke: "#fff" }, lossPlot.g);
  }
  const items = [
    { label: "complexity (mean order)", color: COLORS.complexity },
    { label: "training loss", color: COLORS.train },
    { label: "validation loss", color: COLORS.val },
    { label: "gap (val - train)", color: COLORS.gap, dash: "5 3" },
    { label: "phase 1", color: "#c9dbf3", area: true },
    { label: "phase 2", color: "#f6cdc6", area: true },
    { label: "onset", color: COLORS.onset, dash: "6 3" },
    { label: "alert", color: COLORS.alert },
    { label: "best validation epoch (dot)", color: COLORS.best },
  ];
  const end = legend(root, 58, 420, items, width - 70);
  root.setAttribute("viewBox", `0 0 ${width} ${end + 4}`);
  return root;
}

// ---------- (c) measured against predicted shape ----------

function shapeChart(m, index, width) {
  const measured = m.measured[index] || m.share[index];
  const predicted = m.predicted[index];
  const n = measured.length;
  const root = newSvg(width, 300, `measured and predicted shape at epoch ${m.epochs[index]}`);
  const box = { x: 58, y: 12, w: width - 70, h: 210 };
  const hi = Math.max(...measured, ...(predicted || [0]), 0.05);
  const plot = frame(root, box, [0.5, n + 0.5], [0, hi * 1.08], { x: "order", y: "share of the strength" });
  const bw = (box.w / n) * 0.6;
  measured.forEach((v, k) => {
    const x = plot.sx(k + 1);
    const bar = svg("rect", { x: x - bw / 2, y: plot.sy(v), width: bw, height: Math.max(plot.sy(0) - plot.sy(v), 0), fill: "#4e79a7", class: "bar" }, plot.g);
    svg("title", { text: `order ${k + 1}: measured ${fmt(v)}` }, bar);
    svg("text", { x, y: box.y + box.h + 17, "text-anchor": "middle", class: "tick", text: String(k + 1) }, plot.g);
  });
  if (predicted) {
    const xs = predicted.map((_, k) => k + 1);
    polyline(plot, xs, predicted, { stroke: "#e15759", class: "series predicted" });
    xs.forEach((x, k) => svg("circle", { cx: plot.sx(x), cy: plot.sy(predicted[k]), r: 3.5, fill: "#e15759" }, plot.g));
  }
  const label = m.measured[index] ? `measured (epoch ${m.epochs[index]}'s fit target)` : `measured at epoch ${m.epochs[index]}`;
  const end = legend(root, 58, 284, [{ label, color: "#4e79a7", area: true }, { label: predicted ? "predicted" : "no prediction", color: "#e15759" }], width - 70);
  root.setAttribute("viewBox", `0 0 ${width} ${end + 4}`);
  return root;
}

// ---------- (d) emerging interactions on their samples ----------

function regionStyle(kind) {
  return { fill: KIND[kind], "fill-opacity": 0.35, stroke: KIND[kind], "stroke-width": 2.5, "stroke-dasharray": kind === "or" ? "5 3" : "none" };
}

function drawImage(root, d, change, size) {
  const { height, width, rgb, pixels } = d.image;
  const cell = size / Math.max(height, width);
  const g = svg("g", { class: "sample-image" }, root);
  pixels.forEach((row, r) => row.forEach((p, c) => {
    const [R, G, B] = (rgb ? p : [p, p, p]).map((v) => Math.round(255 * v));
    svg("rect", { x: c * cell, y: r * cell, width: cell + 0.3, height: cell + 0.3, fill: `rgb(${R},${G},${B})` }, g);
  }));
  const chosen = new Set(change[2]);
  d.regions.forEach(([x, y, w, h], player) => {
    const attrs = chosen.has(player) ? regionStyle(change[1]) : { fill: "none", stroke: OTHER, "stroke-width": 1 };
    svg("rect", { x: x * cell, y: y * cell, width: w * cell, height: h * cell, ...attrs, class: chosen.has(player) ? "player chosen" : "player" }, g);
  });
  return size;
}

function drawTokens(root, d, change, size) {
  const chosen = new Set(change[2].map((p) => d.positions[p]));
  const others = new Set(d.positions);
  let x = 0;
  let y = 0;
  d.tokens.forEach((word, position) => {
    const shown = word.length > 14 ? word.slice(0, 13) + "…" : word;
    const w = 12 + shown.length * 7.5;
    if (x + w > size && x > 0) { x = 0; y += 36; }
    const attrs = chosen.has(position) ? regionStyle(change[1]) : { fill: "#fff", stroke: others.has(position) ? OTHER : "none" };
    const box = svg("rect", { x, y, width: w, height: 22, rx: 4, ...attrs, class: chosen.has(position) ? "token chosen" : "token" }, root);
    svg("title", { text: `position ${position}: ${word}` }, box);
    svg("text", { x: x + w / 2, y: y + 15, "text-anchor": "middle", class: "token-text", text: shown }, root);
    svg("text", { x: x + w / 2, y: y + 32, "text-anchor": "middle", class: "small", text: String(position) }, root);
    x += w + 4;
  });
  return y + 38;
}

function drawSignal(root, d, change, size) {
  const h = size * 0.6;
  const values = d.values;
  const length = values[0].length;
  const plot = { g: root, sx: scale([-0.5, length - 0.5], [0, size]), sy: scale(extent(values.flat()), [h, 0]) };
  const chosen = new Set(change[2]);
  d.segments.forEach((runs, player) => runs.forEach(([first, last]) => {
    if (chosen.has(player)) svg("rect", { x: plot.sx(first - 0.5), y: 0, width: plot.sx(last + 0.5) - plot.sx(first - 0.5), height: h, ...regionStyle(change[1]), class: "player chosen" }, root);
    else svg("line", { x1: plot.sx(first - 0.5), x2: plot.sx(first - 0.5), y1: 0, y2: h, stroke: OTHER, "stroke-width": 0.8 }, root);
  }));
  const xs = values[0].map((_, i) => i);
  values.forEach((channel) => polyline(plot, xs, channel, { stroke: "#000", "stroke-width": 1.2, class: "series signal" }));
  return h + 4;
}

function drawFeatures(root, d, change, size) {
  const chosen = new Set(change[2]);
  const rowH = 18;
  const labelW = size * 0.55;
  const sx = scale(extent([...d.values, 0], 0.02), [labelW, size]);
  d.values.forEach((v, i) => {
    const player = d.owner[i];
    const inside = player != null && chosen.has(player);
    const label = d.names[i] + (player == null ? "" : ` (p${player})`);
    svg("text", { x: labelW - 4, y: i * rowH + 13, "text-anchor": "end", class: "small", text: label.length > 24 ? label.slice(0, 23) + "…" : label }, root);
    const x0 = Math.min(sx(0), sx(v));
    const attrs = inside ? regionStyle(change[1]) : { fill: player == null ? "#ddd" : OTHER };
    svg("rect", { x: x0, y: i * rowH + 3, width: Math.max(Math.abs(sx(v) - sx(0)), 1), height: rowH - 6, ...attrs, class: inside ? "bar chosen" : "bar" }, root);
  });
  svg("line", { x1: sx(0), x2: sx(0), y1: 0, y2: d.values.length * rowH, stroke: "#000", "stroke-width": 0.8 }, root);
  return d.values.length * rowH + 4;
}

function drawPoints(root, d, change, size) {
  const xs = d.points.map((p) => p[0]);
  const ys = d.points.map((p) => p[1]);
  const sx = scale(extent(xs), [4, size - 4]);
  const sy = scale(extent(ys), [size - 4, 4]);
  const chosen = new Set(change[2]);
  d.points.forEach((p, i) => {
    const inside = d.clusters[i] != null && chosen.has(d.clusters[i]);
    svg("circle", { cx: sx(p[0]), cy: sy(p[1]), r: inside ? 3 : 1.8, fill: inside ? KIND[change[1]] : OTHER, "fill-opacity": inside ? 1 : 0.5, class: inside ? "point chosen" : "point" }, root);
  });
  return size;
}

const DRAW = { patches: drawImage, tokens: drawTokens, signal: drawSignal, features: drawFeatures, point_clouds: drawPoints };

function changeTitle(change) {
  const [sample, kind, players, order] = change;
  return `sample ${sample}: ${kind.toUpperCase()} {${players.join(", ")}} (order ${order})`;
}

function changeValues(change, m) {
  return [`value ${signed(change[5])}, at the onset ${signed(change[4])}`, `grew by ${fmt(change[6], 2)} of the sample's total`];
}

function emergingPanel(m, index, width) {
  const changes = (m.emerging && m.emerging[index]) || [];
  const box = el("div", { class: "emerging" });
  if (!changes.length) {
    const onset = m.emerging_onset ? m.emerging_onset[index] : null;
    const why = onset == null || m.epochs[index] <= onset ? "this epoch is the onset (the lowest complexity so far) or before it" : "nothing grew since the onset";
    box.append(el("p", { class: "muted", text: `No emerging interactions at epoch ${m.epochs[index]}: ${why}.` }));
    return box;
  }
  const drawable = changes.filter((c) => DRAW[(m.samples[String(c[0])] || {}).kind]);
  const perRow = Math.max(1, Math.min(drawable.length, Math.floor(width / 200)));
  const size = Math.min(220, Math.floor(width / perRow) - 16);
  const grid = el("div", { class: "panels" });
  for (const change of drawable) {
    const d = m.samples[String(change[0])];
    const panel = el("figure", { class: "panel" });
    const root = svg("svg", { class: "sample", width: size });
    const height = DRAW[d.kind](root, d, change, size);
    root.setAttribute("viewBox", `0 0 ${size} ${height}`);
    root.setAttribute("height", height);
    panel.style.width = `${size}px`;
    const [now, growth] = changeValues(change, m);
    panel.append(el("figcaption", { text: changeTitle(change) }), root, el("div", { class: "small", text: now }), el("div", { class: "small", text: growth }));
    grid.append(panel);
  }
  box.append(grid);
  if (drawable.length < changes.length) box.append(changesTable(changes.filter((c) => !drawable.includes(c))));
  const key = el("p", { class: "muted" });
  key.append(keySwatch("and", "AND"), keySwatch("or", "OR"), document.createTextNode(" the interaction's players; grey outlines: the sample's other players. Value: the interaction's effect on the output at this epoch and at the onset; growth: the rise of its size as a share of the sample's total interaction strength. Orders >= 2 first."));
  box.append(key);
  return box;
}

function keySwatch(kind, label) {
  const s = el("span", { class: `swatch ${kind}`, text: label });
  return s;
}

function changesTable(changes) {
  const table = el("table", { class: "changes" });
  table.append(el("tr", {}, ...["sample", "kind", "players", "order", "at onset", "then", "growth"].map((h) => el("th", { text: h }))));
  for (const c of changes) {
    const cells = [String(c[0]), c[1].toUpperCase(), `{${c[2].join(", ")}}`, String(c[3]), signed(c[4]), signed(c[5]), fmt(c[6], 3)];
    table.append(el("tr", {}, ...cells.map((v) => el("td", { text: v }))));
  }
  return table;
}

// ---------- (e) words: the alert's note and the summary ----------

function inlineMarkdown(parent, line) {
  line.split(/(\*\*[^*]+\*\*)/).forEach((part) => {
    if (part.startsWith("**") && part.endsWith("**") && part.length > 4) parent.append(el("strong", { text: part.slice(2, -2) }));
    else if (part) parent.append(document.createTextNode(part));
  });
  return parent;
}

function markdownBlock(text) {
  const box = el("div", { class: "words" });
  let list = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("## ")) { box.append(el("h4", { text: line.slice(3) })); list = null; }
    else if (line.startsWith("- ")) { list = list || box.appendChild(el("ul")); list.append(inlineMarkdown(el("li"), line.slice(2))); }
    else if (line.trim()) { box.append(inlineMarkdown(el("p"), line)); list = null; }
  }
  return box;
}

function wordsPanel(m) {
  const box = el("div", { class: "words-panel" });
  box.append(el("h4", { text: "Over-fitting alert" }));
  box.append(m.alert_note ? markdownBlock(m.alert_note) : el("p", { class: "muted", text: "No alert fired in this run." }));
  if (m.summary) box.append(markdownBlock(m.summary));
  return box;
}

// ---------- a monitor, a run, the page ----------

function card(title, ...content) {
  return el("section", { class: "card" }, el("h3", { text: title }), ...content);
}

function onsetAt(m, index) {
  const onset = m.emerging_onset ? m.emerging_onset[index] : null;
  return onset == null ? "" : ` (epoch ${onset})`;
}

function monitorView(run, m) {
  const root = el("section", { class: "monitor" });
  root.append(el("h2", { text: `${run} · ${m.label}` }));
  if (!m.epochs.length) { root.append(el("p", { class: "muted", text: `${m.file}: no measurement yet.` })); return root; }
  const facts = [`${m.epochs.length} measured epochs`, `${m.num_players} players`, `${m.num_samples} samples`, `onset ${m.onset_epoch ?? "n/a"}`, `alert ${m.alert_epoch ?? "none"}`, `best validation loss at epoch ${m.best_val_epoch ?? "n/a"}`];
  root.append(el("p", { class: "facts", text: facts.join(" · ") }));
  const slider = el("input", { type: "range", min: 0, max: m.epochs.length - 1, step: 1, value: m.epochs.length - 1, class: "epoch-slider", "aria-label": "epoch" });
  const sliderLabel = el("span", { class: "slider-label" });
  const grid = el("div", { class: "grid" });
  const lower = el("div", { class: "grid" });
  root.append(grid, el("div", { class: "slider-row" }, el("label", { text: "Epoch for the shape and the emerging interactions: " }), slider, sliderLabel), lower, wordsPanel(m));
  const draw = () => {
    const index = Number(slider.value);
    const phase = m.phase[index] == null ? "" : `, phase ${m.alert_epoch != null && m.epochs[index] >= m.onset_epoch ? 2 : 1}`;
    sliderLabel.textContent = `epoch ${m.epochs[index]}${phase}`;
    const width = Math.max(320, Math.floor((grid.clientWidth || 1200) / (grid.clientWidth > 900 ? 2 : 1)) - 30);
    grid.replaceChildren(
      card("Share of every order", sharesChart(m, index, width)),
      card("Complexity, losses and phases", complexityChart(m, index, width)),
    );
    lower.replaceChildren(
      card(`Measured and predicted shape, epoch ${m.epochs[index]}`, shapeChart(m, index, width), el("p", { class: "muted", text: `Prediction: ${m.prediction}.` })),
      card(`Interactions that grew most from the onset${onsetAt(m, index)} to epoch ${m.epochs[index]}`, emergingPanel(m, index, width)),
    );
  };
  slider.addEventListener("input", draw);
  root.redraw = draw;
  return root;
}

function overlayChart(runs, width) {
  const lines = [];
  runs.forEach((run, r) => run.monitors.forEach((m, j) => {
    if (m.epochs.length) lines.push({ label: `${run.run} · ${m.label}`, m, color: TABLEAU[r % TABLEAU.length], dash: j ? "6 3" : "none" });
  }));
  const root = newSvg(width, 300, "complexity of the chosen runs");
  if (!lines.length) return root;
  const box = { x: 58, y: 12, w: width - 70, h: 200 };
  const plot = frame(root, box, epochDomain(lines.flatMap((l) => l.m.epochs)), extent(lines.flatMap((l) => l.m.complexity)), { x: "epoch", y: "complexity" });
  for (const line of lines) {
    polyline(plot, line.m.epochs, line.m.complexity, { stroke: line.color, "stroke-dasharray": line.dash, class: "series overlay" });
    if (line.m.alert_epoch != null) {
      const i = line.m.epochs.indexOf(line.m.alert_epoch);
      if (i >= 0) svg("circle", { cx: plot.sx(line.m.alert_epoch), cy: plot.sy(line.m.complexity[i]), r: 5, fill: "none", stroke: line.color, "stroke-width": 2 }, plot.g);
    }
  }
  const end = legend(root, 58, 268, lines.map((l) => ({ label: l.label, color: l.color, dash: l.dash })), width - 70);
  svg("text", { x: 58, y: end + 4, class: "small", text: "circles: over-fitting alerts; dashed: other monitors (e.g. training samples)" }, root);
  root.setAttribute("viewBox", `0 0 ${width} ${end + 12}`);
  return root;
}

const STYLE_ID = "interactions-style";

function showError(message) {
  let box = document.getElementById("dashboard-error");
  if (!box) {
    box = el("pre", { id: "dashboard-error", class: "error" });
    document.body.prepend(box);
  }
  box.textContent += `Dashboard error: ${message}\n`;
}

function watchErrors() {
  window.addEventListener("error", (event) => showError(event.message || String(event.error)));
  window.addEventListener("unhandledrejection", (event) => showError(String(event.reason)));
}

// source: { names: string[], load(name) -> Promise<run payload> }
async function mount(root, source) {
  root.classList.add("interactions-dashboard");
  // Every run is shown at first when there are few; else the first three (tick more in "Runs").
  const chosen = new Set(source.names.length <= 6 ? source.names : source.names.slice(0, 3));
  const picker = el("fieldset", { class: "runs" }, el("legend", { text: "Runs" }));
  const overlay = el("section", { class: "card" }, el("h3", { text: "Complexity of the chosen runs" }));
  const overlayBody = el("div");
  overlay.append(overlayBody);
  const details = el("div", { class: "details" });
  root.append(el("h1", { text: "Interactions" }), picker, overlay, details);
  if (!source.names.length) { details.append(el("p", { class: "muted", text: "No run with an interaction history (interaction_history*.jsonl) in this log directory." })); return; }
  const cache = new Map();
  const load = (name) => { if (!cache.has(name)) cache.set(name, source.load(name)); return cache.get(name); };
  let views = [];
  const update = async () => {
    const runs = await Promise.all([...source.names].filter((n) => chosen.has(n)).map(load));
    overlayBody.replaceChildren(overlayChart(runs, Math.max(320, (overlay.clientWidth || 1200) - 30)));
    views = runs.flatMap((run) => run.monitors.map((m) => monitorView(run.run, m)));
    details.replaceChildren(...views);
    views.forEach((v) => v.redraw && v.redraw());
  };
  for (const name of source.names) {
    const box = el("input", { type: "checkbox" });
    box.checked = chosen.has(name);
    box.addEventListener("change", () => { if (box.checked) chosen.add(name); else chosen.delete(name); update().catch((e) => showError(e)); });
    picker.append(el("label", { class: "run-choice" }, box, document.createTextNode(` ${name}`)));
  }
  let pending = null;
  window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(() => update().catch((e) => showError(e)), 200); });
  await update();
  root.setAttribute("data-ready", "true");
}

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// TensorBoard calls this in the plugin's iframe (base href: the plugin's routes).
export async function render() {
  watchErrors();
  try {
    await renderTab();
  } catch (e) {
    showError(e && e.stack ? e.stack : e);
  }
}

async function renderTab() {
  const link = el("link", { rel: "stylesheet", href: "./style.css", id: STYLE_ID });
  document.head.append(link);
  const listing = await fetchJson("./runs");
  const names = listing.map((run) => run.run);
  await mount(document.body, { names, load: (name) => fetchJson(`./data?run=${encodeURIComponent(name)}`) });
}

// The report page: the payload embedded in the page itself.
export async function renderEmbedded(element) {
  watchErrors();
  const payload = JSON.parse(element.textContent);
  const runs = new Map(payload.runs.map((run) => [run.run, run]));
  await mount(document.getElementById("interactions-root") || document.body, { names: [...runs.keys()], load: async (name) => runs.get(name) });
}

const embedded = typeof document !== "undefined" && document.getElementById("interactions-payload");
if (embedded) renderEmbedded(embedded).catch((e) => showError(e && e.stack ? e.stack : e));
