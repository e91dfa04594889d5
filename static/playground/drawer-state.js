// The playground drawer's shared state: its elements, what the server told us
// (models, limits, class rules), and the two columns (set by drawer.js). No
// behaviour here beyond small lookups; each feature has its own module.

export const $ = (selector, root = document) => root.querySelector(selector);
export const drawer = $("#playground-drawer");
export const openButton = $("#playground-open");
export const backdrop = $("#pg-backdrop");

export const ui = {
  close: $(".pg-close", drawer),
  model: $("#pg-model"),
  modelIcon: $("#pg-model-icon"),
  modelInfo: $("#pg-model-info"),
  status: $("#pg-status"),
  error: $("#pg-error"),
  announcer: $("#pg-announcer"),
  errorB: $("#pg-error-b"),
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
  saveRow: $("#pg-save-row"),
  runs: $("#pg-runs"),
  load: $("#pg-load"),
  loadRow: $("#pg-load-row"),
  signinNote: $("#pg-signin-note"),
  exportJson: $("#pg-export-json"),
  exportText: $("#pg-export-text"),
};

export const app = {
  open: false,
  signedIn: drawer.dataset.signedIn === "true",
  models: [],
  defaultModel: null,
  limits: null,
  rules: null,
  tokenizeTimer: null,
  modelPoll: null,
  inputTokens: { count: 0, tokens: [] },
  columnA: null, // the main column (always shown)
  columnB: null, // the second model, when comparing
};

export function comparing() {
  return ui.compare.checked;
}

export function columns() {
  return comparing() ? [app.columnA, app.columnB] : [app.columnA];
}

export function modelName(id) {
  const m = app.models.find((x) => x.id === id);
  return m ? m.name : id;
}

export function modelReady(id) {
  const m = app.models.find((x) => x.id === (id || app.defaultModel));
  return Boolean(m && m.status === "ready");
}
