// The model picker: which models the server has (ready, loading, or
// unavailable with the reason), the line under it describing the chosen one,
// and the "loading…" state while a first session loads its model.

import { api, ApiError } from "./api.js";
import { classroom, config, state, ui } from "./page.js";
import { clearError, showError } from "./status.js";

let modelWatch = null;

export async function loadModels() {
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
  ui.modelNotesBox.hidden = unavailable.length === 0;
  ui.modelNotesSummary.textContent = `Not available on this server: ${unavailable.map((m) => m.name).join(", ")}. Why?`;
  for (const m of unavailable) {
    const li = document.createElement("li");
    li.className = "model-unavailable";
    li.dataset.modelId = m.id;
    li.textContent = `${m.name} is unavailable: ${m.reason || "it cannot be loaded on this server."}`;
    ui.modelNotes.appendChild(li);
  }
  describeModel();
}

export function selectModelOption(id) {
  const option = [...ui.picker.options].find((o) => o.value === id && !o.disabled);
  if (option) ui.picker.value = id;
  else {
    const fallback = [...ui.picker.options].find((o) => !o.disabled);
    if (fallback) ui.picker.value = fallback.value;
  }
}

export function describeModel(loadingNow = false) {
  const m = state.models.find((x) => x.id === ui.picker.value);
  if (!m) {
    ui.modelStatus.textContent = "";
    return;
  }
  const loading = loadingNow || m.status === "loading";
  ui.modelStatus.classList.toggle("is-loading", loading);
  ui.modelStatus.dataset.status = loading ? "loading" : m.status;
  if (loading) {
    const spinner = document.createElement("span");
    spinner.className = "spinner";
    spinner.setAttribute("aria-hidden", "true");
    ui.modelStatus.replaceChildren(spinner, ` Loading ${m.name}… the first load can take half a minute.`);
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
export function watchModelLoad(model) {
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

export function stopWatchingModel() {
  if (modelWatch) clearInterval(modelWatch);
  modelWatch = null;
  describeModel(false);
}

// Where a failure belongs: a model that cannot serve goes under the picker.
export function modelArea(err, fallback) {
  return err instanceof ApiError && (err.status === 503 || /model/i.test(err.title)) ? "model" : fallback;
}
