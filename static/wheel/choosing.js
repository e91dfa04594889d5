// Choosing the next token: spin the wheel (the server draws, the wheel turns
// to land on it), pick a segment or legend entry by hand, or undo the last one.
// The result line under the wheel says what happened.

import { integer, percent, visibleToken } from "../shared/token-format.js";
import { api } from "./api.js";
import { refreshDistribution } from "./distribution.js";
import { state, ui, wheel } from "./page.js";
import { refreshStats } from "./statistics.js";
import { action, answer, clearError, fail } from "./status.js";
import { renderText } from "./text-so-far.js";

export async function spin() {
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

// A segment (or its legend entry) chosen by hand.
export async function choose(segment) {
  await action(null, async () => {
    if (!state.dist) return;
    clearError("wheel", "undo");
    const body = segment.isOther ? { category: "other" } : { token_id: segment.tokenId };
    const result = await answer("wheel", api.appendToken(state.sessionId, { ...body, ...state.shown }));
    if (!result) return;
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

export async function undo() {
  await action(ui.undo, async () => {
    clearError("undo", "wheel");
    const result = await answer("undo", api.undo(state.sessionId));
    if (!result) return;
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
