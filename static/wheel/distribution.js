// The distribution on screen: ask the API for the next-token probabilities at
// the current settings, draw the wheel, its legend and the Other box from the
// answer, and keep the settings sliders (threshold, temperature, top-p).

import { decimal, percent } from "../shared/token-format.js";
import { api } from "./api.js";
import { legendButtons, renderLegend, renderOther } from "./legend.js";
import { $, config, state, ui, wheel } from "./page.js";
import { clearError, fail, updateButtons } from "./status.js";

const sliders = {
  threshold: { input: $("#threshold"), out: $("#threshold-value"), show: (v) => percent(v) },
  temperature: { input: $("#temperature"), out: $("#temperature-value"), show: (v) => decimal(v, 2) },
  top_p: { input: $("#top-p"), out: $("#top-p-value"), show: (v) => decimal(v, 2) },
};

// Set by main.js: what else happens when a distribution is drawn (predict-then-reveal).
export const onDrawn = { handler: () => {} };

function currentParams() {
  return { ...state.params, other_top_k: config.other_top_k };
}

export async function refreshDistribution(area = "wheel") {
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
  // A legend entry does what a click on its segment does.
  renderLegend(segments, (segment) => wheel.onChoose(segment));
  renderOther(dist);
  renderProbMode();
  restoreFocus(focus);
  updateButtons();
  onDrawn.handler(dist);
}

// A keyboard user who chose a segment keeps their place after the redraw.
function rememberFocus() {
  const active = document.activeElement;
  if (!active) return null;
  if (active.matches?.('[data-testid="wheel-segment"]')) {
    return { kind: "segment", index: wheel.segments.findIndex((s) => s.el === active) };
  }
  if (active.closest?.("#legend")) {
    return { kind: "legend", index: legendButtons().indexOf(active) };
  }
  return null;
}

function restoreFocus(focus) {
  if (!focus) return;
  const list = focus.kind === "segment" ? wheel.segments.map((s) => s.el) : legendButtons();
  if (!list.length) return;
  list[Math.max(0, Math.min(focus.index, list.length - 1))].focus({ preventScroll: true });
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

export function setSlider(key, value) {
  const s = sliders[key];
  const lim = config[key];
  const v = Math.min(lim.max, Math.max(lim.min, value));
  s.input.value = String(v);
  s.out.textContent = s.show(Number(s.input.value));
  state.params[key] = Number(s.input.value);
}

// Each slider redraws the wheel 200 ms after the student stops moving it.
export function initSliders() {
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
