// The playground drawer: type text, watch the model continue it token by token.
//
// Each column (one model) is one websocket stream; the server generates and
// paces, this page only sends commands and draws what arrives. The protocol
// is in playground/protocol.py and the README.

import { counterText, download, markCharacters, percent, speedLabel, tokenLabel } from "./format.js";
import { PlaygroundSocket } from "./socket.js";

const $ = (selector, root = document) => root.querySelector(selector);
const drawer = $("#playground-drawer");
const openButton = $("#playground-open");
const backdrop = $("#pg-backdrop");
const TIMEOUT_MS = 5000;

const ui = {
  close: $(".pg-close", drawer),
  model: $("#pg-model"),
  modelIcon: $("#pg-model-icon"),
  modelInfo: $("#pg-model-info"),
  status: $("#pg-status"),
  error: $("#pg-error"),
  input: $("#pg-input"),
  preview: $("#pg-preview"),
  counter: $("#pg-counter"),
  play: $("#pg-play"),
  pause: $("#pg-pause"),
  step: $("#pg-step"),
  regenerate: $("#pg-regenerate"),
  speed: $("#pg-speed"),
  speedValue: $("#pg-speed-value"),
  temperature: $("#pg-temperature"),
  temperatureValue: $("#pg-temperature-value"),
  topK: $("#pg-top-k"),
  topP: $("#pg-top-p"),
  topPValue: $("#pg-top-p-value"),
  window: $("#pg-window"),
  maxTokens: $("#pg-max-tokens"),
  greedy: $("#pg-greedy"),
  seed: $("#pg-seed"),
  compare: $("#pg-compare"),
  modelB: $("#pg-model-b"),
  temperatureB: $("#pg-temperature-b"),
  temperatureBValue: $("#pg-temperature-b-value"),
  columns: $("#pg-columns"),
  columnB: $("#pg-column-b"),
  title: $("#pg-run-title"),
  save: $("#pg-save"),
  runs: $("#pg-runs"),
  load: $("#pg-load"),
  signinNote: $("#pg-signin-note"),
  exportJson: $("#pg-export-json"),
  exportText: $("#pg-export-text"),
};

const app = {
  open: false,
  signedIn: drawer.dataset.signedIn === "true",
  models: [],
  defaultModel: null,
  limits: null,
  rules: null,
  tokenizeTimer: null,
  modelPoll: null,
  inputTokens: { count: 0, tokens: [] },
};

// ------------------------------------------------------------------ a column = one stream

class Column {
  constructor(name, els) {
    this.name = name;
    this.els = els;
    this.socket = new PlaygroundSocket(drawer.dataset.wsPath, {
      onMessage: (msg) => this.handle(msg),
      onStatus: (status) => this.connection(status),
    });
    this.reset();
    this.needsRestore = false;
    this.watchdog = null;
    this.ignoreDone = 0; // "done" answers to stops nobody needs to see
  }

  reset() {
    this.state = "idle"; // idle | starting | playing | paused | finished
    this.model = null;
    this.text = "";
    this.promptTokens = [];
    this.tokens = [];
    this.contextWindow = Number(ui.window.value) || 64;
    this.maxTokens = Number(ui.maxTokens.value) || 500;
    this.finishedReason = null;
    this.barsIndex = -1; // the generated token whose distribution the bars show
    this.highlight = -1; // the highlighted bar
    this.settings = {};
    this.runId = null;
    this.stopWatchdog();
  }

  send(msg) {
    if (!this.socket.open && !["start", "tokenize", "models", "load"].includes(msg.type)) {
      this.socket.connect();
      return false;
    }
    this.socket.send(msg);
    return true;
  }

  // ---- commands

  start({ paused = false, text = ui.input.value } = {}) {
    this.reset();
    this.text = text;
    this.state = "starting";
    const msg = { type: "start", text, paused, ...startSettings(this.name) };
    this.model = msg.model;
    this.send(msg);
    this.expectSoon();
    render(this);
  }

  // After a dropped connection the server's stream is gone: start a new one
  // from the same input and the tokens we already have.
  restore({ paused }) {
    const msg = {
      type: "start",
      text: this.text,
      paused,
      ...this.settings,
      model: this.model,
      resume_tokens: this.tokens.map((t) => ({
        token_id: t.token_id,
        probability: t.probability,
        chosen_by: t.chosen_by,
        probabilities: t.probabilities || [],
      })),
    };
    this.needsRestore = false;
    this.state = "starting";
    this.send(msg);
    this.expectSoon();
  }

  play() {
    if (this.state === "idle" || this.text !== ui.input.value) return this.start();
    if (this.needsRestore) return this.restore({ paused: false });
    if (this.state === "paused" || this.state === "starting") {
      this.send({ type: "resume" });
      this.expectSoon();
    }
  }

  pause() {
    if (this.state === "playing" || this.state === "starting") this.send({ type: "pause" });
    this.stopWatchdog();
  }

  step(token_id = null, index = null) {
    if (this.state === "idle" || this.text !== ui.input.value) {
      this.start({ paused: true });
    } else if (this.needsRestore) {
      this.restore({ paused: true });
    }
    const msg = { type: "step" };
    if (token_id !== null) msg.token_id = token_id;
    if (index !== null) msg.index = index;
    if (this.send(msg)) this.expectSoon();
  }

  regenerate() {
    if (this.state === "idle" || this.needsRestore || this.text !== ui.input.value) return this.start();
    this.send({ type: "regenerate" });
    this.expectSoon();
  }

  // The input changed: the run is over, without a "stopped" message on screen.
  stopQuietly() {
    if (this.state !== "idle" && this.socket.open) {
      this.ignoreDone += 1;
      this.send({ type: "stop" });
    }
    this.reset();
    render(this);
  }

  // Enter on the highlighted bar: take it instead of the token the bars belong to
  // (the text then continues from it), or, if it is that token, go on by one.
  accept() {
    const bars = this.bars();
    if (this.highlight < 0 || !bars[this.highlight] || this.barsIndex < 0) return this.step();
    const chosen = bars[this.highlight];
    const token = this.tokens[this.barsIndex];
    if (this.barsIndex === this.tokens.length - 1 && chosen.token_id === token.token_id) return this.step();
    this.step(chosen.token_id, this.barsIndex);
  }

  bars() {
    const token = this.tokens[this.barsIndex];
    if (!token) return [];
    const list = (token.probabilities || []).map((p) => ({ ...p }));
    if (!list.some((p) => p.token_id === token.token_id)) {
      list.push({ token_id: token.token_id, token: token.token, prob: token.probability, extra: true });
    }
    return list;
  }

  moveHighlight(delta) {
    const n = this.bars().length;
    if (!n) return;
    this.highlight = Math.max(0, Math.min(n - 1, (this.highlight < 0 ? 0 : this.highlight) + delta));
    renderBars(this);
  }

  // ---- the 5-second timeout

  expectSoon(extraMs = 0) {
    this.stopWatchdog();
    this.awaiting = true;
    this.watchdog = setTimeout(() => this.timedOut(), TIMEOUT_MS + extraMs);
  }

  stopWatchdog() {
    this.awaiting = false;
    clearTimeout(this.watchdog);
    this.watchdog = null;
  }

  timedOut() {
    this.watchdog = null;
    if (!this.awaiting) return;
    this.send({ type: "pause" });
    this.state = this.state === "starting" && !this.tokens.length ? "idle" : "paused";
    showError("⚠️ Request timed out: no answer within 5 seconds. Paused.", this.name);
    render(this);
  }

  // ---- server messages

  connection(status) {
    if (status === "closed") {
      if (this.state !== "idle") {
        this.needsRestore = true;
        if (this.state === "playing" || this.state === "starting") {
          this.state = "paused";
          showStatus("⚠️ Connection lost: paused. Reconnecting…");
        }
      }
      this.stopWatchdog();
      render(this);
    } else if (status === "open" && this.needsRestore) {
      showStatus("Reconnected. Press Play to continue.", true);
    }
  }

  handle(msg) {
    switch (msg.type) {
      case "hello":
        if (this.name === "a") onHello(msg);
        break;
      case "models":
        if (this.name === "a") onModels(msg);
        break;
      case "tokens":
        if (this.name === "a") onTokens(msg);
        break;
      case "started":
        this.onStarted(msg);
        break;
      case "token":
        this.onToken(msg);
        break;
      case "paused":
        if (this.state !== "finished" && this.state !== "idle") this.state = "paused";
        this.stopWatchdog();
        render(this);
        break;
      case "resumed":
        this.state = "playing";
        this.expectSoon(Number(ui.speed.value));
        render(this);
        break;
      case "done":
        this.stopWatchdog();
        if (this.ignoreDone > 0) {
          this.ignoreDone -= 1;
          break;
        }
        this.state = "finished";
        this.finishedReason = msg.reason;
        render(this);
        break;
      case "speed":
        break;
      case "saved":
        this.runId = msg.run_id;
        showStatus(`✓ Saved as “${msg.title}”.`, true);
        refreshRuns();
        break;
      case "error":
        this.onError(msg);
        break;
      default:
        console.warn("playground: unknown message", msg);
    }
  }

  onStarted(msg) {
    this.state = msg.state;
    this.model = msg.model;
    this.text = msg.text;
    this.promptTokens = msg.prompt_tokens;
    this.contextWindow = msg.context_window;
    this.maxTokens = msg.max_tokens;
    this.finishedReason = msg.finished_reason;
    this.runId = msg.run_id;
    this.settings = {
      temperature: msg.temperature,
      top_k: msg.top_k,
      top_p: msg.top_p,
      greedy: msg.greedy,
      seed: msg.seed,
      speed_ms: msg.speed_ms,
      context_window: msg.context_window,
      max_tokens: msg.max_tokens,
    };
    this.tokens = msg.tokens.map((t) => ({ ...t }));
    this.barsIndex = this.tokens.length - 1;
    this.highlight = this.chosenBar();
    if (this.name === "a" && ui.input.value !== msg.text) {
      ui.input.value = msg.text; // a loaded run
      this.text = msg.text;
      scheduleTokenize();
    }
    if (this.state === "playing") this.expectSoon(Number(ui.speed.value));
    else this.stopWatchdog();
    clearMessages(this.name);
    render(this, { full: true });
  }

  onToken(msg) {
    if (msg.index < this.tokens.length) this.tokens.length = msg.index; // a token chosen by hand replaced these
    this.tokens.push({
      index: msg.index,
      position: msg.position,
      token_id: msg.token_id,
      token: msg.token,
      probability: msg.probability,
      probabilities: msg.probabilities,
      chosen_by: msg.chosen_by,
      context_start: msg.context_start,
      context_used: msg.context_used,
    });
    this.barsIndex = this.tokens.length - 1;
    this.highlight = this.chosenBar();
    if (this.state === "playing") this.expectSoon(Number(ui.speed.value));
    else this.stopWatchdog();
    if (this.name === "a") clearMessages("a");
    render(this, { appended: msg.index === this.tokens.length - 1 && msg.index > 0 });
  }

  onError(msg) {
    if (msg.in_reply_to === "stop" && this.ignoreDone > 0) {
      this.ignoreDone -= 1; // a quiet stop of a run the server never started
      return;
    }
    this.stopWatchdog();
    if (msg.code === "rate_limited" || msg.code === "not_playing") {
      console.warn("playground:", msg.message);
      return;
    }
    if (msg.code === "unknown_characters" && this.name === "a") {
      renderPreviewWithBadCharacters(msg.characters || []);
    }
    if (msg.code === "model_loading") pollModels();
    if (this.state === "starting" && msg.in_reply_to === "start") this.state = this.tokens.length ? "paused" : "idle";
    if (this.state === "playing" && ["timeout", "generation_failed", "quota_exceeded"].includes(msg.code)) {
      this.state = "paused";
    }
    const text = {
      model_loading: "⚠️ Model initializing, try again in a few seconds.",
      empty_input: "Type something to get started...",
      timeout: "⚠️ Request timed out. Paused.",
    }[msg.code] || `⚠️ ${msg.message}`;
    showError(text, this.name);
    render(this);
  }

  chosenBar() {
    const token = this.tokens[this.barsIndex];
    if (!token) return -1;
    return this.bars().findIndex((b) => b.token_id === token.token_id);
  }
}

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
  error: $("#pg-error-b"),
  barTestId: "playground-compare-bar",
});

function comparing() {
  return ui.compare.checked;
}

function columns() {
  return comparing() ? [columnA, columnB] : [columnA];
}

function startSettings(name) {
  const num = (el, fallback) => (el.value === "" ? fallback : Number(el.value));
  const settings = {
    model: name === "b" ? ui.modelB.value || app.defaultModel : ui.model.value || app.defaultModel,
    temperature: num(name === "b" ? ui.temperatureB : ui.temperature, 1),
    top_k: num(ui.topK, 0),
    top_p: num(ui.topP, 1),
    greedy: ui.greedy.checked,
    speed_ms: Number(ui.speed.value),
    context_window: num(ui.window, 64),
    max_tokens: num(ui.maxTokens, 500),
  };
  if (ui.seed.value !== "") settings.seed = Number(ui.seed.value);
  // A lesson opened in the playground (classrooms' header script sets it): its settings apply.
  if (drawer.dataset.lessonId) settings.lesson_id = Number(drawer.dataset.lessonId);
  return settings;
}

// ------------------------------------------------------------------ drawing

function render(column, { full = false, appended = false } = {}) {
  renderOutput(column, { full, appended });
  renderBars(column);
  renderControls();
}

function tokenSpan(t, generated) {
  const span = document.createElement("span");
  span.className = "pg-tok" + (generated ? " pg-gen" : "");
  span.textContent = t.token;
  if (generated) {
    span.style.setProperty("--p", String(t.probability));
    span.dataset.index = t.index;
    span.dataset.probability = t.probability;
    span.title = `${tokenLabel(t.token)}: ${percent(t.probability)}${t.chosen_by === "hand" ? " (chosen by hand)" : ""}`;
    if (t.chosen_by === "hand") span.classList.add("pg-hand");
  }
  return span;
}

function renderOutput(column, { full, appended }) {
  const out = column.els.output;
  out.dataset.empty =
    column.state === "idle" ? (ui.input.value ? "Press ▶ to generate." : "Type something to get started...") : "";
  out.dataset.playing = String(column.state === "playing" || column.state === "starting");
  column.els.label.textContent = column.model ? modelName(column.model) : "";
  if (column.state === "idle" && !column.tokens.length) {
    out.replaceChildren();
    return;
  }
  const cursor = out.querySelector(".pg-cursor");
  const generatedSpans = out.querySelectorAll(".pg-gen").length;
  const canAppend = appended && !full && cursor && generatedSpans === column.tokens.length - 1;
  if (canAppend) {
    const t = column.tokens[column.tokens.length - 1];
    const span = tokenSpan(t, true);
    span.classList.add("pg-new");
    out.insertBefore(span, cursor);
  } else {
    const nodes = column.promptTokens.map((t) => tokenSpan(t, false));
    column.tokens.forEach((t) => nodes.push(tokenSpan(t, true)));
    const c = document.createElement("span");
    c.className = "pg-cursor";
    c.setAttribute("aria-hidden", "true");
    nodes.push(c);
    out.replaceChildren(...nodes);
  }
  // What the model sees for the next token: the last `contextWindow` tokens.
  const spans = out.querySelectorAll(".pg-tok");
  const firstInView = Math.max(0, spans.length - column.contextWindow);
  spans.forEach((s, i) => s.classList.toggle("pg-dim", i < firstInView));
  out.scrollTop = out.scrollHeight;
}

function renderBars(column) {
  const list = column.els.bars;
  const bars = column.bars();
  list.dataset.empty = column.tokens.length ? "" : "Probabilities appear with the first token.";
  const token = column.tokens[column.barsIndex];
  const items = bars.map((bar, i) => {
    const li = document.createElement("li");
    li.className = "pg-bar" + (bar.extra ? " pg-extra" : "");
    li.dataset.testid = column.els.barTestId;
    li.setAttribute("data-testid", column.els.barTestId);
    li.dataset.tokenId = bar.token_id;
    li.dataset.probability = bar.prob;
    li.setAttribute("role", "option");
    li.setAttribute("aria-selected", String(i === column.highlight));
    const chosen = token && bar.token_id === token.token_id;
    if (chosen) li.dataset.chosen = "true";
    li.innerHTML =
      '<span class="pg-arrow" aria-hidden="true"></span><span class="pg-check-mark"></span>' +
      '<span class="pg-token"></span><span class="pg-track"><span class="pg-fill"></span></span><span class="pg-pct"></span>';
    li.querySelector(".pg-arrow").textContent = i === column.highlight ? "→" : "";
    li.querySelector(".pg-check-mark").textContent = chosen ? "✓" : "";
    li.querySelector(".pg-token").textContent = tokenLabel(bar.token);
    li.querySelector(".pg-fill").style.width = `${Math.max(0.5, bar.prob * 100)}%`;
    li.querySelector(".pg-pct").textContent = percent(bar.prob);
    li.title = chosen ? "The token that was chosen" : "Click (or Enter) to take this token instead";
    li.addEventListener("click", () => {
      column.highlight = i;
      column.accept();
    });
    return li;
  });
  // Keep the same <li> elements when the list has the same length so the bars animate.
  const old = list.children;
  if (old.length === items.length) {
    items.forEach((li, i) => {
      const fill = old[i].querySelector(".pg-fill");
      const width = li.querySelector(".pg-fill").style.width;
      old[i].replaceWith(li);
      if (fill) {
        li.querySelector(".pg-fill").style.width = fill.style.width;
        requestAnimationFrame(() => (li.querySelector(".pg-fill").style.width = width));
      }
    });
  } else {
    list.replaceChildren(...items);
  }
}

function renderControls() {
  const a = columnA;
  const ready = modelReady(ui.model.value);
  const hasInput = ui.input.value.length > 0;
  const playing = columns().some((c) => c.state === "playing" || c.state === "starting");
  ui.play.disabled = !ready || !hasInput || playing || (a.state === "finished" && a.text === ui.input.value);
  ui.pause.disabled = !playing;
  ui.step.disabled = !ready || !hasInput || (a.state === "finished" && a.text === ui.input.value);
  ui.regenerate.disabled = !ready || !hasInput;
  ui.play.setAttribute("aria-pressed", String(playing));
  drawer.dataset.state = a.state;
  ui.save.disabled = !app.signedIn || a.state === "idle";
  ui.exportJson.disabled = ui.exportText.disabled = a.state === "idle" && !a.tokens.length;
  if (a.state === "finished") {
    const message =
      a.finishedReason === "max_tokens"
        ? `✓ Reached max length (${a.maxTokens} tokens)`
        : a.finishedReason === "eos"
          ? "✓ Generation complete. Modify input to continue."
          : "■ Stopped. Modify input or regenerate to continue.";
    showStatus(message, true);
  } else if (!hasInput && a.state === "idle") {
    showStatus("Type something to get started...");
  } else if (ui.status.dataset.kind === "empty") {
    showStatus("");
  }
}

function renderPreview() {
  const { tokens, count } = app.inputTokens;
  const window = Number(ui.window.value) || 64;
  const first = Math.max(0, count - window);
  const out = document.createElement("span");
  const inView = document.createElement("span");
  out.className = "pg-out-of-view";
  out.title = "Outside the context window: the model does not see this";
  out.textContent = tokens.slice(0, first).join("");
  inView.textContent = tokens.slice(first).join("");
  ui.preview.replaceChildren(...(first ? [out, inView] : [inView]));
  ui.counter.textContent = counterText(count, window);
  ui.counter.title = count > window ? `The model only sees the last ${window} tokens` : "All of it is in view";
}

function renderPreviewWithBadCharacters(bad) {
  const nodes = markCharacters(ui.input.value, bad).map((part) => {
    const span = document.createElement("span");
    span.textContent = part.text;
    if (part.bad) {
      span.className = "pg-bad-char";
      span.title = "The model's tokenizer cannot represent this character";
    }
    return span;
  });
  ui.preview.replaceChildren(...nodes);
}

function showStatus(text, good = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("pg-good", good);
  ui.status.dataset.kind = text === "Type something to get started..." ? "empty" : "";
}

function showError(text, name = "a") {
  const el = name === "b" ? columnB.els.error : ui.error;
  el.textContent = text;
}

function clearMessages(name) {
  showError("", name);
  if (name === "a" && !ui.status.classList.contains("pg-good")) showStatus("");
  if (name === "a" && ui.status.textContent.startsWith("✓ Saved")) showStatus("");
}

// ------------------------------------------------------------------ models and limits

function modelName(id) {
  const m = app.models.find((x) => x.id === id);
  return m ? m.name : id;
}

function modelReady(id) {
  const m = app.models.find((x) => x.id === (id || app.defaultModel));
  return Boolean(m && m.status === "ready");
}

function onHello(msg) {
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
}

function onModels(msg) {
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

function describeModel() {
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

function pollModels() {
  if (app.modelPoll) return;
  app.modelPoll = setInterval(() => columnA.send({ type: "models" }), 2000);
}

function stopPollingModels() {
  clearInterval(app.modelPoll);
  app.modelPoll = null;
}

function onTokens(msg) {
  if (msg.model !== (ui.model.value || app.defaultModel)) return;
  app.inputTokens = { count: msg.count, tokens: msg.tokens };
  renderPreview();
}

function scheduleTokenize() {
  clearTimeout(app.tokenizeTimer);
  app.tokenizeTimer = setTimeout(() => {
    if (!ui.input.value) {
      app.inputTokens = { count: 0, tokens: [] };
      renderPreview();
      return;
    }
    if (!modelReady(ui.model.value)) return;
    columnA.send({
      type: "tokenize",
      text: ui.input.value,
      model: ui.model.value || app.defaultModel,
      context_window: Number(ui.window.value) || 64,
    });
  }, 250);
}

function syncLabels() {
  ui.speedValue.textContent = speedLabel(ui.speed.value);
  ui.temperatureValue.textContent = Number(ui.temperature.value).toFixed(2);
  ui.temperatureBValue.textContent = Number(ui.temperatureB.value).toFixed(2);
  ui.topPValue.textContent = Number(ui.topP.value).toFixed(2);
}

// ------------------------------------------------------------------ saved runs and export

async function refreshRuns() {
  ui.signinNote.hidden = app.signedIn;
  $("#pg-save-row").hidden = $("#pg-load-row").hidden = !app.signedIn;
  if (!app.signedIn) return;
  try {
    const response = await fetch(drawer.dataset.runsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const data = await response.json();
    const options = [new Option(data.runs.length ? "Saved runs…" : "No saved runs yet", "")];
    for (const run of data.runs) {
      const when = new Date(run.created_at).toLocaleString();
      options.push(new Option(`${run.title || run.input_text.slice(0, 40)} · ${run.tokens} tokens · ${when}`, run.id));
    }
    ui.runs.replaceChildren(...options);
  } catch (err) {
    console.warn("playground: could not list saved runs", err);
  }
}

function exportable(column) {
  return {
    model: column.model,
    input: column.text,
    settings: column.settings,
    finished_reason: column.finishedReason,
    prompt_tokens: column.promptTokens,
    tokens: column.tokens.map((t) => ({
      index: t.index,
      token_id: t.token_id,
      token: t.token,
      probability: t.probability,
      chosen_by: t.chosen_by,
      probabilities: t.probabilities,
    })),
    text: column.text + column.tokens.map((t) => t.token).join(""),
  };
}

function exportJson() {
  const data = { exported_at: new Date().toISOString(), run_id: columnA.runId, ...exportable(columnA) };
  if (comparing()) data.compare = exportable(columnB);
  download("playground-run.json", JSON.stringify(data, null, 2), "application/json");
}

function exportText() {
  let text = exportable(columnA).text;
  if (comparing()) text = `[${modelName(columnA.model)}]\n${text}\n\n[${modelName(columnB.model)}]\n${exportable(columnB).text}`;
  download("playground-run.txt", text + "\n", "text/plain");
}

// ------------------------------------------------------------------ open / close

function openDrawer() {
  app.open = true;
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
  app.open = false;
  for (const c of columns()) c.pause();
  backdrop.classList.remove("pg-visible");
  drawer.classList.remove("pg-open");
  drawer.setAttribute("aria-hidden", "true");
  openButton.setAttribute("aria-expanded", "false");
  setTimeout(() => {
    if (!app.open) backdrop.hidden = true;
  }, 300);
  openButton.focus({ preventScroll: true });
}

// ------------------------------------------------------------------ events

openButton.addEventListener("click", () => (app.open ? closeDrawer() : openDrawer()));
ui.close.addEventListener("click", closeDrawer);
backdrop.addEventListener("click", closeDrawer);

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

const TEXT_ENTRY = new Set(["TEXTAREA", "SELECT"]);
function typingIn(el) {
  if (!el) return false;
  if (TEXT_ENTRY.has(el.tagName)) return true;
  return el.tagName === "INPUT" && el.type !== "checkbox" && el.type !== "button";
}
// Buttons whose own Enter/Space must keep working.
function ownsKeys(el) {
  return el && el.closest && el.closest(".pg-runs, .pg-head, summary, .pg-settings, .pg-compare-settings");
}

document.addEventListener("keydown", (event) => {
  if (!app.open) return;
  if (event.key === "Escape") {
    event.preventDefault();
    closeDrawer();
    return;
  }
  if (!drawer.contains(event.target) && event.target !== document.body) return;
  if (typingIn(event.target) || ownsKeys(event.target) || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === " " || event.code === "Space") {
    event.preventDefault();
    const playing = columns().some((c) => c.state === "playing" || c.state === "starting");
    if (playing) ui.pause.click();
    else if (!ui.play.disabled) ui.play.click();
  } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    if (event.target.type === "range") return;
    event.preventDefault();
    columnA.moveHighlight(event.key === "ArrowDown" ? 1 : -1);
  } else if (event.key === "Enter") {
    if (!columnA.tokens.length || columnA.state === "idle") return;
    event.preventDefault();
    columnA.accept();
  }
});

// Switching to another browser tab pauses the stream (nobody is watching it).
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) return;
  const playing = columns().filter((c) => c.state === "playing" || c.state === "starting");
  if (!playing.length) return;
  playing.forEach((c) => c.pause());
  showStatus("⚠️ Paused while this tab was hidden. Press Play to continue.");
});

syncLabels();
renderControls();
renderPreview();
// ?playground_run=<id> opens the drawer on that saved run (links from "My runs").
const linkedRun = new URLSearchParams(location.search).get("playground_run");
if (document.getElementById("pg-autoopen") || linkedRun) openDrawer();
if (linkedRun && app.signedIn) columnA.send({ type: "load", run_id: linkedRun });
window.tokenwheelPlayground = { open: openDrawer, close: closeDrawer, columns: { a: columnA, b: columnB } };
