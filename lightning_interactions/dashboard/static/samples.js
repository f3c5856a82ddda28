// (d) The emerging interactions drawn on their samples: image patches, tokens, signals, tabular features,
// point clouds, or a table. Part of the dashboard's module (svg.js explains how the parts are joined).

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
