// The statistics card: how many tokens, their average probability, how often
// Other was drawn, perplexity, spun/picked and undo counts, from the API.

import { decimal, integer, percent } from "../shared/token-format.js";
import { api } from "./api.js";
import { $, state } from "./page.js";
import { clearError, fail } from "./status.js";

let statsAbort = null;

export async function refreshStats() {
  if (!state.sessionId || !state.hasPrompt) return;
  statsAbort?.abort();
  const controller = new AbortController();
  statsAbort = controller;
  try {
    const s = await api.statistics(state.sessionId, controller.signal);
    const set = (key, text) => ($(`[data-stat="${key}"]`).textContent = text);
    set("generation_count", integer(s.generation_count));
    set("average_probability", s.generation_count ? percent(s.average_probability) : "–");
    set(
      "other_frequency",
      s.generation_count ? `${percent(s.other_frequency)} (${integer(s.other_count)} of ${integer(s.generation_count)})` : "–"
    );
    set("perplexity", s.perplexity == null ? "–" : decimal(s.perplexity, 2));
    set("spun_picked", `${integer(s.spun_count ?? 0)} / ${integer(s.picked_count ?? 0)}`);
    set("undo_count", integer(s.undo_count ?? 0));
    clearError("tools");
  } catch (err) {
    if (statsAbort === controller) fail("tools", err);
  }
}
