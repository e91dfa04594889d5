// The student's session: start one from the prompt (and the chosen model),
// continue one named in the URL, switch model, and forget one that expired.
// The session id lives in the URL (?session=...) so a reload, or a fork opened
// in a new tab, continues it.

import { integer } from "../shared/token-format.js";
import { api } from "./api.js";
import { refreshDistribution, setSlider } from "./distribution.js";
import { renderLegend } from "./legend.js";
import { describeModel, loadModels, modelArea, selectModelOption, stopWatchingModel, watchModelLoad } from "./model-picker.js";
import { config, state, ui, wheel } from "./page.js";
import { refreshStats } from "./statistics.js";
import { clearError, fail, showError, updateButtons } from "./status.js";
import { renderText } from "./text-so-far.js";
import { seedForNewSession } from "../lessons/seed.js";

function rememberSession(id) {
  const url = new URL(location.href);
  url.searchParams.set("session", id);
  history.replaceState(null, "", url);
  ui.svg.dataset.sessionId = id;
}

export function forgetSession() {
  state.sessionId = null;
  state.hasPrompt = false;
  state.dist = null;
  state.history = [];
  const url = new URL(location.href);
  url.searchParams.delete("session");
  history.replaceState(null, "", url);
  delete ui.svg.dataset.sessionId;
  wheel.clear();
  renderLegend([], () => {});
  renderText();
  ui.wheelEmpty.hidden = false;
  updateButtons();
}

async function newSession(model) {
  watchModelLoad(model);
  try {
    const created = await api.createSession(model, seedForNewSession());
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

// Continue a session the server already has (from the URL).
export function adopt(session) {
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

export function updatePromptCount() {
  const n = ui.prompt.value.length;
  const max = config.max_prompt_chars;
  ui.promptCount.textContent = `${integer(n)} / ${integer(max)} characters`;
  ui.promptCount.classList.toggle("over", n > max);
}

// Start (or start over): a session for the chosen model, the prompt, the wheel.
export async function start() {
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

export async function switchModel() {
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
