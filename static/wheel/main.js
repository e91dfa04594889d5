// The wheel page: one student's session, driven through the wheel API.
//
// The server is the truth: every change (prompt, append, undo) goes to the
// API and the page redraws from its answer. This module only starts the page
// and wires the features together; each lives in its own module:
//   page.js (state and elements), status.js (errors, buttons), session.js,
//   model-picker.js, distribution.js (wheel + sliders), legend.js,
//   choosing.js (spin, pick, undo), text-so-far.js, statistics.js,
//   compare-fork-export.js, tooltips.js; wheel-svg.js draws, api.js talks.

import { api, busyRetry } from "./api.js";
import { choose, spin, undo } from "./choosing.js";
import { compare, exportAs, fork } from "./compare-fork-export.js";
import { initSliders, onDrawn, refreshDistribution } from "./distribution.js";
import { loadModels, selectModelOption } from "./model-picker.js";
import { app, config, state, ui, wheel } from "./page.js";
import { adopt, forgetSession, start, switchModel, updatePromptCount } from "./session.js";
import { refreshStats } from "./statistics.js";
import { action, fail, hideBusy, onSessionGone, setBusy, showBusy, showError, updateButtons } from "./status.js";
import { initTips } from "./tooltips.js";
import { adoptGuesses, drawn, initPredict, resetPredict } from "../lessons/predict.js";
import { initSeed, showSessionSeed } from "../lessons/seed.js";

wheel.onChoose = choose;
busyRetry.onBusy = showBusy;
busyRetry.onRecovered = hideBusy;
onSessionGone.handler = () => {
  forgetSession();
  resetPredict();
};
onDrawn.handler = drawn;

window.addEventListener("unhandledrejection", (event) => {
  showError("page", `Something went wrong: ${event.reason?.message || event.reason}. Reload the page if it stays stuck.`);
});

async function boot() {
  initSliders();
  initSeed();
  initPredict();
  initTips(ui.tip);
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
      const session = await api.getSession(id);
      adopt(session);
      showSessionSeed(session);
      adoptGuesses(session);
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
