// The tools under the wheel: compare greedy with sampled continuations (neither
// changes the text), fork the session into a new one, export it as JSON or CSV.

import { saveFile } from "../shared/download.js";
import { api } from "./api.js";
import { $, state, ui } from "./page.js";
import { action, answer, clearError, fail } from "./status.js";
import { tokenChip } from "./text-so-far.js";

export async function compare() {
  await action(ui.compareRun, async () => {
    clearError("compare");
    const result = await answer(
      "compare",
      api.compare(state.sessionId, {
        n: Number(ui.compareN.value),
        temperature: state.shown?.temperature ?? state.params.temperature,
        top_p: state.shown?.top_p ?? state.params.top_p,
      })
    );
    if (!result) return;
    const tail = result.current_text.length > 60 ? `…${result.current_text.slice(-60)}` : result.current_text;
    for (const [kind, run] of [
      ["greedy", result.greedy],
      ["sampled", result.sampled],
    ]) {
      const box = $(`[data-testid="compare-${kind}"]`);
      const context = document.createElement("span");
      context.className = "prompt-text";
      context.textContent = tail;
      box.replaceChildren(context, ...run.tokens.map(tokenChip));
    }
    ui.compareResult.hidden = false;
  });
}

export async function fork() {
  await action(ui.fork, async () => {
    clearError("tools");
    const forked = await answer("tools", api.fork(state.sessionId));
    if (!forked) return;
    const url = new URL(location.href);
    url.searchParams.set("session", forked.session_id);
    ui.forkResult.replaceChildren();
    const open = document.createElement("a");
    open.href = url.toString();
    open.target = "_blank";
    open.rel = "noopener";
    open.dataset.testid = "fork-link";
    open.textContent = "open the fork in a new tab";
    const go = document.createElement("a");
    go.href = url.toString();
    go.textContent = "switch to it here";
    ui.forkResult.append("Forked: a copy of this text to take another way. ", open, " or ", go, ".");
  });
}

export async function exportAs(format, button) {
  await action(button, async () => {
    clearError("tools");
    try {
      const response = await api.exportFile(state.sessionId, format);
      const blob = await response.blob();
      const disposition = response.headers.get("Content-Disposition") || "";
      const match = /filename="?([^";]+)"?/.exec(disposition);
      saveFile(match ? match[1] : `token-wheel-${state.sessionId.slice(0, 8)}.${format}`, blob);
    } catch (err) {
      fail("tools", err);
    }
  });
}
