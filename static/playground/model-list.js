// What the server says about models and limits, in the drawer: the two model
// pickers, the line describing the chosen model, the class's (or lesson's)
// rules applied to the settings, and the input's tokenization for the preview.

import { app, drawer, modelReady, ui } from "./drawer-state.js";
import { renderControls, renderPreview, syncLabels } from "./controls.js";
import { showError, showStatus } from "./messages.js";

export function onHello(msg) {
  app.limits = msg.limits;
  app.defaultModel = msg.default_model;
  // A lesson opened in the playground narrows its class's settings: its own
  // rules (set by the classrooms header script) win over the class's.
  const lessonRules = drawer.dataset.lessonRules ? JSON.parse(drawer.dataset.lessonRules) : null;
  applyRules(lessonRules || msg.rules || {});
  ui.speed.min = 0;
  ui.speed.max = msg.limits.max_speed_ms;
  syncLabels();
}

function applyRules(rules) {
  app.rules = rules;
  if (rules.temperature_min != null) {
    for (const el of [ui.temperature, ui.temperatureB]) {
      el.min = rules.temperature_min;
      el.max = rules.temperature_max;
      if (Number(el.value) < rules.temperature_min || Number(el.value) > rules.temperature_max) {
        el.value = rules.default_temperature;
      }
    }
  }
  if (rules.context_window) {
    if (rules.classroom_id != null) ui.window.max = rules.context_window;
    if (!ui.window.dataset.touched) ui.window.value = rules.context_window;
  }
  if (rules.max_tokens) {
    ui.maxTokens.max = rules.max_tokens;
    if (!ui.maxTokens.dataset.touched) ui.maxTokens.value = rules.max_tokens;
  }
  ui.topP.disabled = rules.top_p_enabled === false;
  // A lesson's class seed: the same story for every student, unless they type another.
  if (rules.seed != null && ui.seed.value === "") ui.seed.value = String(rules.seed);
}

export function onModels(msg) {
  const allowed = app.rules && app.rules.allowed_models && app.rules.allowed_models.length ? app.rules.allowed_models : null;
  app.models = msg.models.filter((m) => !allowed || allowed.includes(m.id));
  app.defaultModel = (app.rules && app.rules.default_model) || msg.default_model;
  for (const select of [ui.model, ui.modelB]) {
    const current = select.value || app.defaultModel;
    const options = app.models.map((m) => {
      const o = document.createElement("option");
      o.value = m.id;
      o.textContent = m.status === "ready" ? m.name : `${m.name} (${m.status.replace("_", " ")})`;
      o.disabled = m.status === "unavailable" || m.status === "unknown";
      if (m.reason) o.title = m.reason;
      return o;
    });
    select.replaceChildren(...options);
    select.value = app.models.some((m) => m.id === current) ? current : app.defaultModel;
  }
  describeModel();
  renderControls();
  if (ui.input.value && modelReady(ui.model.value) && !app.inputTokens.count) scheduleTokenize();
  if (app.models.some((m) => ["loading", "not_loaded"].includes(m.status) && m.id === ui.model.value)) pollModels();
  else stopPollingModels();
}

export function describeModel() {
  const m = app.models.find((x) => x.id === ui.model.value);
  const anyReady = app.models.some((x) => x.status === "ready");
  ui.modelIcon.classList.toggle("pg-ready", Boolean(m && m.status === "ready"));
  ui.modelIcon.title = m ? m.status.replace("_", " ") : "";
  if (!anyReady && !app.models.some((x) => ["loading", "not_loaded"].includes(x.status))) {
    ui.modelInfo.textContent = "";
    showError("⚠️ No model available. Install a model (see the README) and reload.");
    return;
  }
  if (!m) return;
  const parts = [];
  if (m.parameters) parts.push(`${m.parameters} params`);
  if (m.max_context) parts.push(`up to ${m.max_context} tokens of context`);
  if (m.status === "ready") parts.push("ready");
  ui.modelInfo.textContent = `(${parts.join(", ")})`;
  if (m.status === "loading" || m.status === "not_loaded") {
    showStatus("⚠️ Model initializing, try again in a few seconds…");
  } else if (m.status === "unavailable") {
    showError(`⚠️ ${m.name} is unavailable: ${m.reason}`);
  } else if (ui.status.textContent.startsWith("⚠️ Model initializing")) {
    showStatus("");
  }
  if (m.max_context) ui.window.max = Math.min(Number(ui.window.max) || m.max_context, m.max_context);
}

// While a model loads, ask for the list every 2 s until it is ready.
export function pollModels() {
  if (app.modelPoll) return;
  app.modelPoll = setInterval(() => app.columnA.send({ type: "models" }), 2000);
}

function stopPollingModels() {
  clearInterval(app.modelPoll);
  app.modelPoll = null;
}

export function onTokens(msg) {
  if (msg.model !== (ui.model.value || app.defaultModel)) return;
  app.inputTokens = { count: msg.count, tokens: msg.tokens };
  renderPreview();
}

// Tokenize the input on the server 250 ms after the last keystroke.
export function scheduleTokenize() {
  clearTimeout(app.tokenizeTimer);
  app.tokenizeTimer = setTimeout(() => {
    if (!ui.input.value) {
      app.inputTokens = { count: 0, tokens: [] };
      renderPreview();
      return;
    }
    if (!modelReady(ui.model.value)) return;
    app.columnA.send({
      type: "tokenize",
      text: ui.input.value,
      model: ui.model.value || app.defaultModel,
      context_window: Number(ui.window.value) || 64,
    });
  }, 250);
}
