// One column of the drawer = one websocket stream on the server, for one
// model. The server generates and paces; a column sends commands (start, play,
// pause, step, regenerate, a token chosen by hand), follows the run's state
// (idle | starting | playing | paused | finished), pauses itself when no answer
// comes within 5 s, and restores its stream after a dropped connection.
// The protocol is in playground/protocol.py and the README.

import { render, renderBars } from "./column-view.js";
import { renderPreviewWithBadCharacters } from "./controls.js";
import { app, drawer, ui } from "./drawer-state.js";
import { clearMessages, showError, showStatus } from "./messages.js";
import { onHello, onModels, onTokens, pollModels, scheduleTokenize } from "./model-list.js";
import { refreshRuns } from "./saved-runs.js";
import { PlaygroundSocket } from "./socket.js";
import { ThrottledAnnouncer } from "../shared/announcer.js";

const TIMEOUT_MS = 5000;
// Screen readers hear the main column's new tokens, gathered, every 2 s at most.
const spoken = new ThrottledAnnouncer(ui.announcer, { everyMs: 2000 });

// The settings a new stream starts with, from the drawer's controls.
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

export class Column {
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
        if (this.name === "a") spoken.flush();
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
        if (this.name === "a") spoken.flush();
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
    if (this.name === "a") spoken.clear();
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
    if (this.name === "a") {
      clearMessages("a");
      spoken.add(msg.token);
    }
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
