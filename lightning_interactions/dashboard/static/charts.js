// The charts over epochs and orders: (a) share of every order, (b) complexity, losses, gap and phases,
// (c) measured against predicted shape, and the complexity of the chosen runs overlaid. Part of the
// dashboard's module (svg.js explains how the parts are joined).

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


function overlayChart(runs, width) {
  const lines = [];
  runs.forEach((run, r) => run.monitors.forEach((m, j) => {
    if (m.epochs.length) lines.push({ label: `${runTitle(run.run)} · ${m.label}`, m, color: TABLEAU[r % TABLEAU.length], dash: j ? "6 3" : "none" });
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
