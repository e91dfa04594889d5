// What the page says about itself: the error next to each area, which buttons
// work right now, and "one action at a time".

import { ApiError } from "./api.js";
import { $, app, state, ui, wheel } from "./page.js";

// ------------------------------------------------------------------ errors

function errorBox(area) {
  return $(`[data-testid="error"][data-for="${area}"]`);
}

export function showError(area, err) {
  const text = typeof err === "string" ? err : err instanceof ApiError ? err.text : `Something went wrong: ${err.message}`;
  errorBox(area).textContent = text;
}

export function clearError(...areas) {
  for (const area of areas) errorBox(area).textContent = "";
}

function sessionGone(err) {
  return err instanceof ApiError && err.status === 404 && /session/i.test(`${err.title} ${err.message}`);
}

// Set by main.js: what to do when the session on screen no longer exists.
export const onSessionGone = { handler: () => {} };

// An API failure: shown where it happened. A session that no longer exists
// (anonymous sessions expire after an hour idle) sends the student back to Start.
export function fail(area, err) {
  if (err && err.name === "AbortError") return;
  if (sessionGone(err)) {
    onSessionGone.handler();
    showError(area, "This session no longer exists (sessions expire after an hour without use). Press Start to begin again.");
    return;
  }
  if (!(err instanceof ApiError)) console.error(err);
  showError(area, err);
}

// The API's answer to `request`, or null once its failure is shown in `area`.
export async function answer(area, request) {
  try {
    return await request;
  } catch (err) {
    fail(area, err);
    return null;
  }
}

// ------------------------------------------------------------------ a busy server

// Requests waiting out a 503 + Retry-After right now (a redraw asks for the
// probabilities and the statistics at once: the line stays while any waits).
let waiting = 0;

export function showBusy({ retry, of, seconds }) {
  if (retry === 1) waiting += 1;
  ui.busy.textContent = `Busy, retrying… The model has a queue of requests; trying again in ${Math.ceil(seconds)} s (${retry} of ${of}).`;
}

export function hideBusy() {
  waiting = Math.max(0, waiting - 1);
  if (waiting) return;
  ui.busy.textContent = "";
}

// ------------------------------------------------------------------ buttons

export function setEnabled(button, on) {
  // aria-disabled rather than disabled: a keyboard user's focus stays on the
  // button while a spin runs instead of falling back to the top of the page.
  button.setAttribute("aria-disabled", on ? "false" : "true");
}

function enabled(button) {
  return button.getAttribute("aria-disabled") !== "true";
}

export function updateButtons() {
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

export function setBusy(on) {
  state.busy = on;
  updateButtons();
}

// Run one user action at a time; a second click while the first runs is ignored.
export async function action(button, fn) {
  if (state.busy || (button && !enabled(button))) return;
  setBusy(true);
  try {
    await fn();
  } finally {
    setBusy(false);
  }
}
