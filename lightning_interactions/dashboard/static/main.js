// (e) The alert's note and the summary in words; a monitor's section with its epoch slider; the runs
// picker; the entry points: render() for TensorBoard's iframe and the embedded payload of the report
// page. The last part of the dashboard's module (svg.js explains how the parts are joined).

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

// How to read each chart, under it.
const HOW = {
  share: "Each band is the share of the interactions' total strength held by interactions of one order (order k: k players acting together; 1: single players). High orders fade in phase 1 and grow again in phase 2.",
  complexity: "Complexity: the mean order of the interactions, weighted by strength. Phase 2 begins at its minimum (the onset); the over-fitting alert fires once it has risen clearly above that minimum and the gap between validation and training loss widens.",
  shape: "Bars: the share of each order measured at this epoch; line: the shape the two-phase theory predicts for it. Move the slider to see another epoch.",
};

function note(text) {
  return el("p", { class: "muted", text });
}

function card(title, ...content) {
  return el("section", { class: "card" }, el("h3", { text: title }), ...content);
}

function onsetAt(m, index) {
  const onset = m.emerging_onset ? m.emerging_onset[index] : null;
  return onset == null ? "" : ` (epoch ${onset})`;
}

function monitorView(run, m) {
  const root = el("section", { class: "monitor" });
  root.append(el("h2", { text: `${runTitle(run)} · ${m.label}` }));
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
      card("Share of every order", sharesChart(m, index, width), note(HOW.share)),
      card("Complexity, losses and phases", complexityChart(m, index, width), note(HOW.complexity)),
    );
    lower.replaceChildren(
      card(`Measured and predicted shape, epoch ${m.epochs[index]}`, shapeChart(m, index, width), note(`${HOW.shape} Prediction: ${m.prediction}.`)),
      card(`Interactions that grew most from the onset${onsetAt(m, index)} to epoch ${m.epochs[index]}`, emergingPanel(m, index, width)),
    );
  };
  slider.addEventListener("input", draw);
  root.redraw = draw;
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
    picker.append(el("label", { class: "run-choice" }, box, document.createTextNode(` ${runTitle(name)}`)));
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
