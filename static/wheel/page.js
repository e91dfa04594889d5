// The wheel page's shared state: its settings from the server, what is on
// screen, and the elements every feature module works with. No behaviour here;
// each feature (session, model picker, distribution, legend, choosing, tools)
// lives in its own module and main.js wires them together.

import { WheelView } from "./wheel-svg.js";

export const $ = (selector, root = document) => root.querySelector(selector);

export const config = JSON.parse($("#wheel-config").textContent);
// In a class (classrooms app), the page view narrows the limits and names the
// class; the API enforces the same rules, the page only stops offering the rest.
export const classroom = config.classroom || null;

export const state = {
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

export const app = $("#wheel-app");
export const ui = {
  promptForm: $("#prompt-form"),
  prompt: $("#prompt-input"),
  promptCount: $("#prompt-count"),
  submit: $("#prompt-submit"),
  picker: $("#model-picker"),
  modelStatus: $("#model-status"),
  modelNotes: $("#model-notes"),
  modelNotesBox: $("#model-notes-box"),
  modelNotesSummary: $("#model-notes-summary"),
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
  busy: $("#busy-status"),
};

// The SVG wheel; main.js tells it what a click on a segment does.
export const wheel = new WheelView(ui.svg, { onChoose: () => {} });
