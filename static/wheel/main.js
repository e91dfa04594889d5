// The wheel page: one student's session, driven through the wheel API.
//
// The server is the truth: every change (prompt, append, undo) goes to the
// API and the page redraws from its answer. The session id lives in the URL
// (?session=...) so a reload, or a fork opened in a new tab, continues it.

import { api, ApiError } from "./api.js";
import {
  appendVisible,
  categoryWords,
  decimal,
  inlineToken,
  integer,
  methodWords,
  percent,
  probabilityColor,
  visibleToken,
} from "./format.js";
import { WheelView } from "./wheel-svg.js";

const $ = (selector, root = document) => root.querySelector(selector);
const config = JSON.parse($("#wheel-config").textContent);
// In a class (classrooms app), the page view narrows the limits and names the
// class; the API enforces the same rules, the page only stops offering the rest.
const classroom = config.classroom || null;

const state = {
  sessionId: null,
  modelName: config.default_model,
  hasPrompt: false,
  initialPrompt: "",
  history: [],
  params: {
    threshold: config.threshold.default,
    temperature: config.temperature.default,
    top_p: config.top_p.default,
  },
  dist: null, // the distribution on screen
  shown: null, // the parameters it was computed with (sent with every append)
  busy: false,
  spinning: false,
  distAbort: null,
  models: [],
};

const app = $("#wheel-app");
const ui = {
  promptForm: $("#prompt-form"),
  prompt: $("#prompt-input"),
  promptCount: $("#prompt-count"),
  submit: $("#prompt-submit"),
  picker: $("#model-picker"),
  modelStatus: $("#model-status"),
  modelNotes: $("#model-notes"),
  svg: $("#wheel"),
  wheelEmpty: $("#wheel-empty"),
  wheelLoading: $("#wheel-loading"),
  spin: $("#spin"),
  undo: $("#undo"),
  spinResult: $("#spin-result"),
  legend: $("#legend"),
  legendCount: $("#legend-count"),
  otherInfo: $("#other-info"),
  probMode: $("#prob-mode"),
  text: $("#text-so-far"),
  tokenDetail: $("#token-detail"),
  compareForm: $("#compare-form"),
  compareN: $("#compare-n"),
  compareRun: $("#compare-run"),
  compareResult: $("#compare-result"),
  fork: $("#fork"),
  forkResult: $("#fork-result"),
  exportJson: $("#export-json"),
  exportCsv: $("#export-csv"),
  tip: $("#tip"),
};

const sliders = {
  threshold: { input: $("#threshold"), out: $("#threshold-value"), show: (v) => percent(v) },
  temperature: { input: $("#temperature"), out: $("#temperature-value"), show: (v) => decimal(v, 2) },
  top_p: { input: $("#top-p"), out: $("#top-p-value"), show: (v) => decimal(v, 2) },
};

const wheel = new WheelView(ui.svg, { onChoose: (segment) => choose(segment) });

// ------------------------------------------------------------------ errors

function errorBox(area) {
  return $(`[data-testid="error"][data-for="${area}"]`);
}

function showError(area, err) {
  const text = typeof err === "string" ? err : err instanceof ApiError ? err.text : `Something went wrong: ${err.message}`;
  errorBox(area).textContent = text;
}

function clearError(...areas) {
  for (const area of areas) errorBox(area).textContent = "";
}

function sessionGone(err) {
  return err instanceof ApiError && err.status === 404 && /session/i.test(`${err.title} ${err.message}`);
}

// An API failure: shown where it happened. A session that no longer exists
// (anonymous sessions expire after an hour idle) sends the student back to Start.
function fail(area, err) {
  if (err && err.name === "AbortError") return;
  if (sessionGone(err)) {
    forgetSession();
    showError(area, "This session no longer exists (sessions expire after an hour without use). Press Start to begin again.");
    return;
  }
  if (!(err instanceof ApiError)) console.error(err);
  showError(area, err);
}

window.addEventListener("unhandledrejection", (event) => {
  showError("page", `Something went wrong: ${event.reason?.message || event.reason}. Reload the page if it stays stuck.`);
});

// ------------------------------------------------------------------ buttons

function setEnabled(button, on) {
  // aria-disabled rather than disabled: a keyboard user's focus stays on the
  // button while a spin runs instead of falling back to the top of the page.
  button.setAttribute("aria-disabled", on ? "false" : "true");
}

function enabled(button) {
  return button.getAttribute("aria-disabled") !== "true";
}

function updateButtons() {
  const live = Boolean(state.sessionId && state.hasPrompt);
  setEnabled(ui.spin, live && !state.busy && Boolean(state.dist));
  setEnabled(ui.undo, live && !state.busy && state.history.length > 0);
  setEnabled(ui.compareRun, live && !state.busy);
  setEnabled(ui.fork, live && !state.busy);
  setEnabled(ui.exportJson, live && !state.busy);
  setEnabled(ui.exportCsv, live && !state.busy);
  setEnabled(ui.submit, !state.busy);
  for (const b of [ui.spin, ui.undo, ui.compareRun, ui.fork, ui.exportJson, ui.exportCsv]) b.disabled = false;
  ui.submit.textContent = state.hasPrompt ? "Start over" : "Start";
  wheel.setInteractive(live && !state.busy && Boolean(state.dist));
  for (const item of ui.legend.querySelectorAll("button")) setEnabled(item, live && !state.busy);
  app.dataset.state = state.busy ? "busy" : live ? "ready" : "idle";
}

function setBusy(on) {
  state.busy = on;
  updateButtons();
}

// Run one user action at a time; a second click while the first runs is ignored.
async function action(button, fn) {
  if (state.busy || (button && !enabled(button))) return;
  setBusy(true);
  try {
    await fn();
  } finally {
    setBusy(false);
  }
}

// ------------------------------------------------------------------ session

function rememberSession(id) {
  const url = new URL(location.href);
  url.searchParams.set("session", id);
  history.replaceState(null, "", url);
  ui.svg.dataset.sessionId = id;
}

function forgetSession() {
  state.sessionId = null;
  state.hasPrompt = false;
  state.dist = null;
  state.history = [];
  const url = new URL(location.href);
  url.searchParams.delete("session");
  history.replaceState(null, "", url);
  delete ui.svg.dataset.sessionId;
  wheel.clear();
  renderLegend([]);
  renderText();
  ui.wheelEmpty.hidden = false;
  updateButtons();
}

async function newSession(model) {
  watchModelLoad(model);
  try {
    const created = await api.createSession(model);
    state.sessionId = created.session_id;
    state.modelName = created.model_name;
    state.hasPrompt = false;
    state.history = [];
    rememberSession(created.session_id);
  } finally {
    stopWatchingModel();
  }
  await loadModels(); // the model is loaded now: show it as ready
}

function adopt(session) {
  state.sessionId = session.session_id;
  state.modelName = session.model_name;
  state.initialPrompt = session.initial_prompt || "";
  state.hasPrompt = Boolean(session.initial_prompt);
  state.history = session.token_history || [];
  if (session.params) {
    for (const key of ["threshold", "temperature", "top_p"]) {
      if (typeof session.params[key] === "number") setSlider(key, session.params[key]);
    }
  }
  ui.prompt.value = state.initialPrompt;
  updatePromptCount();
  rememberSession(session.session_id);
  selectModelOption(session.model_name);
  renderText();
}

// ------------------------------------------------------------------ models

let modelWatch = null;

async function loadModels() {
  try {
    const { models } = await api.models();
    state.models = models;
    renderModels();
    clearError("model");
  } catch (err) {
    showError("model", err);
    if (!ui.picker.options.length || !ui.picker.value) {
      ui.picker.replaceChildren(new Option(config.default_model, config.default_model, true, true));
    }
  }
}

function modelLabel(m) {
  if (m.status === "unavailable") return `${m.name}: unavailable`;
  if (m.status === "loading") return `${m.name} (loading…)`;
  return m.name;
}

function renderModels() {
  const selected = ui.picker.value || state.modelName;
  ui.picker.replaceChildren();
  const allowed = classroom?.allowed_models?.length ? new Set(classroom.allowed_models) : null;
  for (const m of state.models) {
    const outsideClass = allowed && !allowed.has(m.id) && m.status !== "unavailable";
    const option = new Option(outsideClass ? `${m.name}: not used in this class` : modelLabel(m), m.id);
    option.disabled = m.status === "unavailable" || Boolean(outsideClass);
    option.dataset.status = m.status;
    option.title = m.status === "unavailable" ? m.reason || "This model cannot be loaded here." : m.description || "";
    ui.picker.appendChild(option);
  }
  selectModelOption(selected);
  ui.modelNotes.replaceChildren();
  const unavailable = state.models.filter((m) => m.status === "unavailable");
  $("#model-notes-box").hidden = unavailable.length === 0;
  $("#model-notes-summary").textContent = `Not available on this server: ${unavailable.map((m) => m.name).join(", ")}. Why?`;
  for (const m of unavailable) {
    const li = document.createElement("li");
    li.className = "model-unavailable";
    li.dataset.modelId = m.id;
    li.textContent = `${m.name} is unavailable: ${m.reason || "it cannot be loaded on this server."}`;
    ui.modelNotes.appendChild(li);
  }
  describeModel();
}

function selectModelOption(id) {
  const option = [...ui.picker.options].find((o) => o.value === id && !o.disabled);
  if (option) ui.picker.value = id;
  else {
    const fallback = [...ui.picker.options].find((o) => !o.disabled);
    if (fallback) ui.picker.value = fallback.value;
  }
}

function describeModel(loadingNow = false) {
  const m = state.models.find((x) => x.id === ui.picker.value);
  if (!m) {
    ui.modelStatus.textContent = "";
    return;
  }
  const loading = loadingNow || m.status === "loading";
  ui.modelStatus.classList.toggle("is-loading", loading);
  ui.modelStatus.dataset.status = loading ? "loading" : m.status;
  if (loading) {
    ui.modelStatus.innerHTML = `<span class="spinner" aria-hidden="true"></span> Loading ${escapeHtml(m.name)}… the first load can take half a minute.`;
  } else if (m.status === "ready") {
    ui.modelStatus.textContent = `${m.name}: ${m.parameters} parameters, ready. ${m.description || ""}`;
  } else if (m.status === "not_loaded") {
    ui.modelStatus.textContent = `${m.name}: ${m.parameters} parameters, loads when you press Start.`;
  } else {
    ui.modelStatus.textContent = "";
  }
}

// While a session for a not-yet-loaded model is being created, poll the model
// list so the loading state is visible, not a frozen button.
function watchModelLoad(model) {
  const m = state.models.find((x) => x.id === model);
  if (m && m.status === "ready") return;
  describeModel(true);
  modelWatch = setInterval(async () => {
    try {
      const { models } = await api.models();
      state.models = models;
      const now = models.find((x) => x.id === model);
      describeModel(!now || now.status !== "ready");
    } catch {
      /* the create call reports the failure */
    }
  }, 1500);
}

function stopWatchingModel() {
  if (modelWatch) clearInterval(modelWatch);
  modelWatch = null;
  describeModel(false);
}

function modelArea(err, fallback) {
  return err instanceof ApiError && (err.status === 503 || /model/i.test(err.title)) ? "model" : fallback;
}

// ------------------------------------------------------------------ prompt

function updatePromptCount() {
  const n = ui.prompt.value.length;
  const max = config.max_prompt_chars;
  ui.promptCount.textContent = `${integer(n)} / ${integer(max)} characters`;
  ui.promptCount.classList.toggle("over", n > max);
}

async function start() {
  const prompt = ui.prompt.value;
  clearError("prompt", "model", "page");
  if (!prompt.trim()) {
    showError("prompt", "Type a prompt first: the model needs some text to continue.");
    ui.prompt.focus();
    return;
  }
  const model = ui.picker.value || config.default_model;
  try {
    if (!state.sessionId || state.modelName !== model) await newSession(model);
  } catch (err) {
    fail(modelArea(err, "prompt"), err);
    return;
  }
  try {
    await api.setPrompt(state.sessionId, prompt);
  } catch (err) {
    fail("prompt", err);
    return;
  }
  state.initialPrompt = prompt;
  state.hasPrompt = true;
  state.history = [];
  ui.spinResult.textContent = "";
  ui.compareResult.hidden = true;
  ui.forkResult.textContent = "";
  renderText();
  await refreshDistribution("prompt");
  refreshStats();
}

async function switchModel() {
  const model = ui.picker.value;
  clearError("model");
  describeModel();
  if (!state.sessionId || !state.hasPrompt || model === state.modelName) return;
  // A session belongs to one model: start a new one with the same prompt.
  const previous = state.modelName;
  try {
    await newSession(model);
    await api.setPrompt(state.sessionId, state.initialPrompt);
    state.hasPrompt = true;
    state.history = [];
    renderText();
    ui.spinResult.textContent = `Switched to ${model}: same prompt, new wheel.`;
    await refreshDistribution("model");
    refreshStats();
  } catch (err) {
    fail("model", err);
    selectModelOption(previous);
  }
}

// ------------------------------------------------------------------ distribution

function currentParams() {
  return { ...state.params, other_top_k: config.other_top_k };
}

async function refreshDistribution(area = "wheel") {
  if (!state.sessionId || !state.hasPrompt) return;
  if (state.spinning) return; // redrawn when the spin ends
  state.distAbort?.abort();
  const controller = new AbortController();
  state.distAbort = controller;
  ui.wheelLoading.hidden = false;
  try {
    const dist = await api.nextTokenProbs(state.sessionId, currentParams(), controller.signal);
    if (state.distAbort !== controller) return; // a newer request is on its way
    state.dist = dist;
    state.shown = {
      threshold: dist.threshold,
      temperature: dist.temperature,
      top_p: dist.top_p ?? state.params.top_p,
    };
    renderDistribution(dist);
    clearError(area, "controls", "wheel");
  } catch (err) {
    if (state.distAbort === controller) fail(area, err);
  } finally {
    if (state.distAbort === controller) {
      ui.wheelLoading.hidden = true;
      state.distAbort = null;
      updateButtons();
    }
  }
}

function renderDistribution(dist) {
  const focus = rememberFocus();
  ui.wheelEmpty.hidden = true;
  const segments = wheel.render(dist);
  renderLegend(segments);
  renderOther(dist);
  renderProbMode();
  restoreFocus(focus);
  updateButtons();
}

// A keyboard user who chose a segment keeps their place after the redraw.
function rememberFocus() {
  const active = document.activeElement;
  if (!active) return null;
  if (active.matches?.('[data-testid="wheel-segment"]')) {
    return { kind: "segment", index: wheel.segments.findIndex((s) => s.el === active) };
  }
  if (active.closest?.("#legend")) {
    return { kind: "legend", index: [...ui.legend.querySelectorAll("button")].indexOf(active) };
  }
  return null;
}

function restoreFocus(focus) {
  if (!focus) return;
  const list =
    focus.kind === "segment" ? wheel.segments.map((s) => s.el) : [...ui.legend.querySelectorAll("button")];
  if (!list.length) return;
  list[Math.max(0, Math.min(focus.index, list.length - 1))].focus({ preventScroll: true });
}

function renderLegend(segments) {
  ui.legend.replaceChildren();
  ui.legendCount.textContent = segments.length ? `(${segments.length})` : "";
  for (const s of segments) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = s.isOther ? "legend-item legend-other" : "legend-item";
    button.dataset.testid = "legend-item";
    button.dataset.tokenId = String(s.tokenId);
    button.dataset.probability = String(s.probability);
    const name = s.isOther ? "Other" : visibleToken(s.text);
    button.dataset.tip = s.isOther
      ? `Other · ${percent(s.probability)} · ${integer(s.tokenCount)} tokens. Choose it to draw one at random.`
      : `${name} · ${percent(s.probability)} · token #${s.tokenId}${
          s.logProbability != null ? ` · log p ${s.logProbability.toFixed(2)}` : ""
        }. Choose it to add it.`;
    button.setAttribute("aria-label", `${s.isOther ? "Draw from Other" : `Add ${name}`}, ${percent(s.probability)}`);
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    if (!s.isOther) swatch.style.background = s.color;
    const token = document.createElement("span");
    token.className = "legend-token";
    if (s.isOther) token.textContent = `Other (${integer(s.tokenCount)})`;
    else appendVisible(token, s.text);
    const pct = document.createElement("span");
    pct.className = "legend-pct";
    pct.textContent = percent(s.probability);
    const bar = document.createElement("span");
    bar.className = "legend-bar";
    bar.style.width = `${Math.max(0.5, s.probability * 100).toFixed(2)}%`;
    if (!s.isOther) bar.style.background = s.color;
    button.append(swatch, token, pct, bar);
    button.addEventListener("click", () => choose(s));
    // Pointing at a legend entry lights up its segment, and the other way round.
    button.addEventListener("pointerenter", () => s.el.classList.add("hover"));
    button.addEventListener("pointerleave", () => s.el.classList.remove("hover"));
    button.addEventListener("focus", () => s.el.classList.add("hover"));
    button.addEventListener("blur", () => s.el.classList.remove("hover"));
    s.el.addEventListener("pointerenter", () => button.classList.add("hover"));
    s.el.addEventListener("pointerleave", () => button.classList.remove("hover"));
    li.appendChild(button);
    ui.legend.appendChild(li);
  }
}

function renderOther(dist) {
  const other = dist.other_category;
  const box = ui.otherInfo;
  box.hidden = false;
  box.replaceChildren();
  const h = document.createElement("h3");
  h.textContent = `Other: ${percent(other.total_probability)} of the wheel`;
  const p = document.createElement("p");
  const count = document.createElement("strong");
  count.dataset.testid = "other-count";
  count.textContent = `${integer(other.token_count)} other tokens`;
  if (other.token_count > 0) {
    p.append(
      count,
      ` each below ${percent(dist.threshold)}, out of ${integer(dist.vocabulary_size)} the model knows. ` +
        "Landing on Other draws one of them, weighted by its probability."
    );
  } else {
    h.textContent = "Other is empty";
    p.append(count, ": at these settings every token that can still be drawn has its own segment.");
  }
  box.append(h, p);
  if (dist.excluded_by_top_p) {
    const ex = document.createElement("p");
    ex.className = "muted";
    ex.textContent = `Top-p removed ${integer(dist.excluded_by_top_p)} tokens entirely: they cannot be drawn at all.`;
    box.append(ex);
  }
  if (other.sample_tokens?.length) {
    const intro = document.createElement("p");
    intro.className = "muted";
    intro.textContent = "The most likely of them:";
    const list = document.createElement("ol");
    list.className = "other-samples";
    list.dataset.testid = "other-samples";
    for (const t of other.sample_tokens) {
      const li = document.createElement("li");
      const tok = document.createElement("span");
      tok.className = "mono";
      appendVisible(tok, t.token_text);
      const pr = document.createElement("span");
      pr.className = "muted";
      pr.textContent = percent(t.probability);
      li.append(tok, " ", pr);
      li.dataset.tip = `${visibleToken(t.token_text)} · ${percent(t.probability)} · token #${t.token_id}`;
      list.append(li);
    }
    box.append(intro, list);
  }
}

function renderProbMode() {
  const shown = state.shown;
  if (!shown) return;
  const raw = shown.temperature === 1 && shown.top_p >= 1;
  ui.probMode.dataset.mode = raw ? "raw" : "adjusted";
  ui.probMode.textContent = raw
    ? "Showing the model's raw probabilities (temperature 1, top-p 1)."
    : `Showing adjusted probabilities: after temperature ${decimal(shown.temperature, 2)} and top-p ${decimal(
        shown.top_p,
        2
      )}, not the model's raw output.`;
}

// ------------------------------------------------------------------ sliders

function setSlider(key, value) {
  const s = sliders[key];
  const lim = config[key];
  const v = Math.min(lim.max, Math.max(lim.min, value));
  s.input.value = String(v);
  s.out.textContent = s.show(Number(s.input.value));
  state.params[key] = Number(s.input.value);
}

function initSliders() {
  for (const [key, s] of Object.entries(sliders)) {
    const lim = config[key];
    Object.assign(s.input, { min: lim.min, max: lim.max, step: lim.step });
    setSlider(key, lim.default);
    if (lim.min === lim.max) {
      // Fixed by the class: shown, not offered.
      s.input.disabled = true;
      const help = document.getElementById(s.input.getAttribute("aria-describedby"));
      help.textContent += ` Your class fixes it at ${s.show(lim.min)}.`;
    }
    let timer = null;
    s.input.addEventListener("input", () => {
      const value = Number(s.input.value);
      s.out.textContent = s.show(value);
      state.params[key] = value;
      clearTimeout(timer);
      timer = setTimeout(() => refreshDistribution("controls"), 200);
    });
  }
}

// ------------------------------------------------------------------ choosing tokens

async function spin() {
  await action(ui.spin, async () => {
    clearError("wheel", "undo");
    const shown = state.shown;
    ui.spinResult.textContent = "Spinning…";
    let result;
    try {
      result = await api.appendToken(state.sessionId, { category: "sample", ...shown });
    } catch (err) {
      ui.spinResult.textContent = "";
      fail("wheel", err);
      return;
    }
    const token = result.appended_token;
    state.spinning = true;
    try {
      await wheel.spinTo(token.category === "other" ? "other" : String(token.token_id));
    } finally {
      state.spinning = false;
    }
    afterAppend(result);
    await refreshDistribution("wheel");
    refreshStats();
  });
}

async function choose(segment) {
  await action(null, async () => {
    if (!state.dist) return;
    clearError("wheel", "undo");
    const body = segment.isOther ? { category: "other" } : { token_id: segment.tokenId };
    let result;
    try {
      result = await api.appendToken(state.sessionId, { ...body, ...state.shown });
    } catch (err) {
      fail("wheel", err);
      return;
    }
    afterAppend(result);
    await refreshDistribution("wheel");
    refreshStats();
  });
}

function afterAppend(result) {
  const t = result.appended_token;
  state.history = result.token_history;
  renderText();
  ui.spinResult.dataset.tokenId = String(t.token_id);
  ui.spinResult.dataset.method = t.method || "";
  const name = visibleToken(t.token_text);
  if (t.category === "other") {
    const info = result.other_category_info || {};
    const where = t.method === "spun" ? "The wheel landed on Other" : "You chose Other";
    ui.spinResult.textContent =
      `${where} (${percent(info.total_probability)}) and drew the rare token “${name}”: ` +
      `${percent(t.probability)}, number ${integer(info.selected_token_rank)} of ${integer(info.token_count)} in Other.`;
  } else if (t.method === "spun") {
    ui.spinResult.textContent = `The wheel landed on “${name}” (${percent(t.probability)}).`;
  } else {
    ui.spinResult.textContent = `You picked “${name}” (${percent(t.probability)}).`;
  }
}

async function undo() {
  await action(ui.undo, async () => {
    clearError("undo", "wheel");
    let result;
    try {
      result = await api.undo(state.sessionId);
    } catch (err) {
      fail("undo", err);
      return;
    }
    state.history = result.token_history;
    renderText();
    ui.spinResult.dataset.tokenId = "";
    ui.spinResult.textContent = result.removed_token
      ? `Undone: “${visibleToken(result.removed_token.token_text)}” was taken back.`
      : "Undone.";
    await refreshDistribution("undo");
    refreshStats();
  });
}

// ------------------------------------------------------------------ the text so far

function tokenTip(item) {
  return `${visibleToken(item.token_text)} · ${percent(item.probability)} · ${categoryWords(item.category)} · ${methodWords(item)}`;
}

function renderText() {
  ui.text.replaceChildren();
  if (!state.hasPrompt) {
    const empty = document.createElement("span");
    empty.className = "muted";
    empty.textContent = "Nothing yet.";
    ui.text.append(empty);
    updateButtons();
    return;
  }
  const prompt = document.createElement("span");
  prompt.className = "prompt-text";
  prompt.dataset.testid = "prompt-text";
  prompt.textContent = state.initialPrompt;
  prompt.dataset.tip = "Your prompt";
  ui.text.append(prompt);
  for (const item of state.history) {
    const span = document.createElement("span");
    span.className = "gen-token";
    if (item.category === "other") span.classList.add("from-other");
    if (item.method === "spun") span.classList.add("spun");
    span.dataset.testid = "history-token";
    span.dataset.tokenId = String(item.token_id);
    span.dataset.probability = String(item.probability);
    span.dataset.category = item.category;
    span.dataset.method = item.method || "";
    span.dataset.position = String(item.position ?? "");
    span.dataset.tip = tokenTip(item);
    span.tabIndex = 0;
    span.setAttribute("aria-label", tokenTip(item));
    span.style.setProperty("--tok", probabilityColor(item.probability));
    span.textContent = inlineToken(item.token_text);
    const detail = () => (ui.tokenDetail.textContent = `Token ${item.position ?? ""}: ${tokenTip(item)}.`);
    span.addEventListener("focus", detail);
    span.addEventListener("click", detail);
    ui.text.append(span);
  }
  updateButtons();
}

// ------------------------------------------------------------------ statistics, compare, fork, export

let statsAbort = null;

async function refreshStats() {
  if (!state.sessionId || !state.hasPrompt) return;
  statsAbort?.abort();
  const controller = new AbortController();
  statsAbort = controller;
  try {
    const s = await api.statistics(state.sessionId, controller.signal);
    const set = (key, text) => ($(`[data-stat="${key}"]`).textContent = text);
    set("generation_count", integer(s.generation_count));
    set("average_probability", s.generation_count ? percent(s.average_probability) : "–");
    set(
      "other_frequency",
      s.generation_count ? `${percent(s.other_frequency)} (${integer(s.other_count)} of ${integer(s.generation_count)})` : "–"
    );
    set("perplexity", s.perplexity == null ? "–" : decimal(s.perplexity, 2));
    set("spun_picked", `${integer(s.spun_count ?? 0)} / ${integer(s.picked_count ?? 0)}`);
    set("undo_count", integer(s.undo_count ?? 0));
    clearError("tools");
  } catch (err) {
    if (statsAbort === controller) fail("tools", err);
  }
}

function chip(token) {
  const span = document.createElement("span");
  span.className = "gen-token";
  span.style.setProperty("--tok", probabilityColor(token.probability));
  span.textContent = inlineToken(token.token_text);
  span.dataset.tip = `${visibleToken(token.token_text)} · ${percent(token.probability)}`;
  span.tabIndex = 0;
  return span;
}

async function compare() {
  await action(ui.compareRun, async () => {
    clearError("compare");
    const n = Number(ui.compareN.value);
    let result;
    try {
      result = await api.compare(state.sessionId, {
        n,
        temperature: state.shown?.temperature ?? state.params.temperature,
        top_p: state.shown?.top_p ?? state.params.top_p,
      });
    } catch (err) {
      fail("compare", err);
      return;
    }
    const tail = result.current_text.length > 60 ? `…${result.current_text.slice(-60)}` : result.current_text;
    for (const [kind, run] of [
      ["greedy", result.greedy],
      ["sampled", result.sampled],
    ]) {
      const box = $(`[data-testid="compare-${kind}"]`);
      const context = document.createElement("span");
      context.className = "prompt-text";
      context.textContent = tail;
      box.replaceChildren(context, ...run.tokens.map(chip));
    }
    ui.compareResult.hidden = false;
  });
}

async function fork() {
  await action(ui.fork, async () => {
    clearError("tools");
    let forked;
    try {
      forked = await api.fork(state.sessionId);
    } catch (err) {
      fail("tools", err);
      return;
    }
    const url = new URL(location.href);
    url.searchParams.set("session", forked.session_id);
    ui.forkResult.replaceChildren();
    const open = document.createElement("a");
    open.href = url.toString();
    open.target = "_blank";
    open.rel = "noopener";
    open.dataset.testid = "fork-link";
    open.textContent = "open the fork in a new tab";
    const go = document.createElement("a");
    go.href = url.toString();
    go.textContent = "switch to it here";
    ui.forkResult.append("Forked: a copy of this text to take another way. ", open, " or ", go, ".");
  });
}

async function exportAs(format, button) {
  await action(button, async () => {
    clearError("tools");
    try {
      const response = await api.exportFile(state.sessionId, format);
      const blob = await response.blob();
      const disposition = response.headers.get("Content-Disposition") || "";
      const match = /filename="?([^";]+)"?/.exec(disposition);
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      a.download = match ? match[1] : `token-wheel-${state.sessionId.slice(0, 8)}.${format}`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (err) {
      fail("tools", err);
    }
  });
}

// ------------------------------------------------------------------ tooltips

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// One tooltip for everything with data-tip: follows the mouse, appears on
// keyboard focus and on a tap, so it works without a hover-capable pointer.
function initTips() {
  let current = null;
  const place = (x, y) => {
    const tip = ui.tip;
    const w = tip.offsetWidth;
    const h = tip.offsetHeight;
    const left = Math.min(window.innerWidth - w - 8, Math.max(8, x + 14));
    const top = y + 18 + h > window.innerHeight ? y - h - 12 : y + 18;
    tip.style.left = `${left}px`;
    tip.style.top = `${Math.max(8, top)}px`;
  };
  const show = (target, x, y) => {
    current = target;
    ui.tip.textContent = target.dataset.tip;
    ui.tip.hidden = false;
    if (x == null) {
      const r = target.getBoundingClientRect();
      x = r.left + r.width / 2;
      y = r.bottom - 8;
    }
    place(x, y);
  };
  const hide = () => {
    current = null;
    ui.tip.hidden = true;
  };
  document.addEventListener("pointerover", (e) => {
    const t = e.target.closest?.("[data-tip]");
    if (t) show(t, e.clientX, e.clientY);
    else if (current) hide();
  });
  document.addEventListener("pointermove", (e) => {
    if (current) place(e.clientX, e.clientY);
  });
  document.addEventListener("focusin", (e) => {
    const t = e.target.closest?.("[data-tip]");
    if (t) show(t);
    else hide();
  });
  document.addEventListener("focusout", hide);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") hide();
  });
  window.addEventListener("scroll", hide, { passive: true });
}

// ------------------------------------------------------------------ start-up

async function boot() {
  initSliders();
  initTips();
  updatePromptCount();
  ui.prompt.addEventListener("input", updatePromptCount);
  ui.prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      ui.promptForm.requestSubmit();
    }
  });
  ui.promptForm.addEventListener("submit", (e) => {
    e.preventDefault();
    action(ui.submit, start);
  });
  ui.picker.addEventListener("change", () => {
    if (state.busy) {
      selectModelOption(state.modelName); // one thing at a time: the running action keeps its model
      return;
    }
    action(null, switchModel);
  });
  ui.spin.addEventListener("click", spin);
  ui.undo.addEventListener("click", undo);
  ui.compareN.max = String(config.max_compare_tokens);
  ui.compareForm.addEventListener("submit", (e) => {
    e.preventDefault();
    compare();
  });
  ui.fork.addEventListener("click", fork);
  ui.exportJson.addEventListener("click", () => exportAs("json", ui.exportJson));
  ui.exportCsv.addEventListener("click", () => exportAs("csv", ui.exportCsv));
  updateButtons();

  await loadModels();
  const id = new URLSearchParams(location.search).get("session");
  if (id) {
    setBusy(true);
    try {
      adopt(await api.getSession(id));
      await refreshDistribution("wheel");
      refreshStats();
    } catch (err) {
      fail("prompt", err);
    } finally {
      setBusy(false);
    }
  }
  app.dataset.booted = "true";
}

boot();
