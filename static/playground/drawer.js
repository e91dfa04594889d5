// The playground drawer: type text, watch the model continue it token by token.
//
// This module builds the two columns (column.js: one websocket stream each),
// opens and closes the drawer, and wires its controls. The rest, by feature:
// drawer-state.js (elements, shared state), column-view.js (drawing a column),
// controls.js (buttons, sliders, input preview), model-list.js (models, class
// rules, tokenization), saved-runs.js (save, load, export), messages.js,
// drawer-keys.js (keyboard), drawer-focus.js (a modal dialog: focus stays
// inside, returns on close). The protocol is in playground/protocol.py and the README.

import { Column } from "./column.js";
import { renderBars, renderOutput } from "./column-view.js";
import { renderControls, renderPreview, syncLabels } from "./controls.js";
import { $, app, backdrop, columns, comparing, drawer, openButton, ui } from "./drawer-state.js";
import { bindFocusTrap, releaseFocus, trapFocus } from "./drawer-focus.js";
import { bindDrawerKeys } from "./drawer-keys.js";
import { showError, showStatus } from "./messages.js";
import { describeModel, scheduleTokenize } from "./model-list.js";
import { exportJson, exportText, refreshRuns } from "./saved-runs.js";

const columnA = new Column("a", {
  output: $("#pg-output"),
  bars: $("#pg-bars"),
  label: $("#pg-column-model-a"),
  error: ui.error,
  barTestId: "prob-bar",
});
const columnB = new Column("b", {
  output: $("#pg-output-b"),
  bars: $("#pg-bars-b"),
  label: $("#pg-column-model-b"),
  error: ui.errorB,
  barTestId: "playground-compare-bar",
});
app.columnA = columnA;
app.columnB = columnB;

// ------------------------------------------------------------------ open / close

function openDrawer() {
  if (app.open) return;
  app.open = true;
  trapFocus();
  backdrop.hidden = false;
  requestAnimationFrame(() => backdrop.classList.add("pg-visible"));
  drawer.classList.add("pg-open");
  drawer.setAttribute("aria-hidden", "false");
  openButton.setAttribute("aria-expanded", "true");
  columnA.socket.connect();
  if (comparing()) columnB.socket.connect();
  refreshRuns();
  renderControls();
  (ui.input.value ? drawer : ui.input).focus({ preventScroll: true });
}

function closeDrawer() {
  if (!app.open) return;
  app.open = false;
  for (const c of columns()) c.pause();
  backdrop.classList.remove("pg-visible");
  drawer.classList.remove("pg-open");
  drawer.setAttribute("aria-hidden", "true");
  openButton.setAttribute("aria-expanded", "false");
  setTimeout(() => {
    if (!app.open) backdrop.hidden = true;
  }, 300);
  releaseFocus();
}

// ------------------------------------------------------------------ events

openButton.addEventListener("click", () => (app.open ? closeDrawer() : openDrawer()));
ui.close.addEventListener("click", closeDrawer);
backdrop.addEventListener("click", closeDrawer);
bindDrawerKeys({ close: closeDrawer });
bindFocusTrap();

ui.play.addEventListener("click", () => columns().forEach((c) => c.play()));
ui.pause.addEventListener("click", () => columns().forEach((c) => c.pause()));
ui.step.addEventListener("click", () => {
  columnA.accept();
  if (comparing()) columnB.step();
});
ui.regenerate.addEventListener("click", () => columns().forEach((c) => c.regenerate()));

ui.speed.addEventListener("input", () => {
  syncLabels();
  for (const c of columns()) if (c.state !== "idle") c.send({ type: "set_speed", speed_ms: Number(ui.speed.value) });
});
for (const el of [ui.temperature, ui.temperatureB, ui.topP]) el.addEventListener("input", syncLabels);
for (const el of [ui.window, ui.maxTokens]) el.addEventListener("change", () => (el.dataset.touched = "true"));
ui.window.addEventListener("input", renderPreview);

ui.input.addEventListener("input", () => {
  // Modifying the input clears the generated tokens (the old run is stopped).
  for (const c of [columnA, columnB]) if (c.state !== "idle") c.stopQuietly();
  showError("");
  scheduleTokenize();
  renderControls();
  renderOutput(columnA, {});
});
ui.model.addEventListener("change", () => {
  describeModel();
  scheduleTokenize();
  renderControls();
});

ui.compare.addEventListener("change", () => {
  const on = comparing();
  ui.columnB.hidden = !on;
  ui.columns.dataset.compare = String(on);
  if (on) columnB.socket.connect();
  else {
    columnB.stopQuietly();
    columnB.socket.close();
  }
  renderControls();
});

ui.save.addEventListener("click", () => {
  columnA.send({ type: "save", title: ui.title.value });
});
ui.load.addEventListener("click", () => {
  if (!ui.runs.value) return;
  columnA.send({ type: "load", run_id: ui.runs.value });
});
ui.exportJson.addEventListener("click", exportJson);
ui.exportText.addEventListener("click", exportText);

// Clicking a generated token shows the probabilities it was chosen from; Enter
// on another bar then rewrites the text from that point.
columnA.els.output.addEventListener("click", (event) => {
  const span = event.target.closest(".pg-gen");
  if (!span) return;
  columnA.barsIndex = Number(span.dataset.index);
  columnA.highlight = columnA.chosenBar();
  renderBars(columnA);
});
// Hovering a generated token outlines what the model saw when it chose it.
columnA.els.output.addEventListener("mouseover", (event) => {
  const span = event.target.closest(".pg-gen");
  const spans = columnA.els.output.querySelectorAll(".pg-tok");
  spans.forEach((s) => s.classList.remove("pg-in-view", "pg-hovered"));
  if (!span) return;
  const t = columnA.tokens[Number(span.dataset.index)];
  if (!t || t.context_start == null) return;
  span.classList.add("pg-hovered");
  for (let i = t.context_start; i < t.position && i < spans.length; i++) spans[i].classList.add("pg-in-view");
});
columnA.els.output.addEventListener("mouseleave", () => {
  columnA.els.output.querySelectorAll(".pg-tok").forEach((s) => s.classList.remove("pg-in-view", "pg-hovered"));
});

// Switching to another browser tab pauses the stream (nobody is watching it).
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) return;
  const playing = columns().filter((c) => c.state === "playing" || c.state === "starting");
  if (!playing.length) return;
  playing.forEach((c) => c.pause());
  showStatus("⚠️ Paused while this tab was hidden. Press Play to continue.");
});

// ------------------------------------------------------------------ start-up

syncLabels();
renderControls();
renderPreview();
// ?playground_run=<id> opens the drawer on that saved run (links from "My runs").
const linkedRun = new URLSearchParams(location.search).get("playground_run");
if (document.getElementById("pg-autoopen") || linkedRun) openDrawer();
if (linkedRun && app.signedIn) columnA.send({ type: "load", run_id: linkedRun });
window.tokenwheelPlayground = { open: openDrawer, close: closeDrawer, columns: { a: columnA, b: columnB } };
