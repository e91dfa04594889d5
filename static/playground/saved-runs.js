// Saved runs (signed in: save, list, load) and the exports anyone can take
// (JSON with every token's probabilities, or the plain text).

import { saveFile } from "../shared/download.js";
import { app, comparing, drawer, modelName, ui } from "./drawer-state.js";

export async function refreshRuns() {
  ui.signinNote.hidden = app.signedIn;
  ui.saveRow.hidden = ui.loadRow.hidden = !app.signedIn;
  if (!app.signedIn) return;
  try {
    const response = await fetch(drawer.dataset.runsUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const data = await response.json();
    const options = [new Option(data.runs.length ? "Saved runs…" : "No saved runs yet", "")];
    for (const run of data.runs) {
      const when = new Date(run.created_at).toLocaleString();
      options.push(new Option(`${run.title || run.input_text.slice(0, 40)} · ${run.tokens} tokens · ${when}`, run.id));
    }
    ui.runs.replaceChildren(...options);
  } catch (err) {
    console.warn("playground: could not list saved runs", err);
  }
}

function exportable(column) {
  return {
    model: column.model,
    input: column.text,
    settings: column.settings,
    finished_reason: column.finishedReason,
    prompt_tokens: column.promptTokens,
    tokens: column.tokens.map((t) => ({
      index: t.index,
      token_id: t.token_id,
      token: t.token,
      probability: t.probability,
      chosen_by: t.chosen_by,
      probabilities: t.probabilities,
    })),
    text: column.text + column.tokens.map((t) => t.token).join(""),
  };
}

export function exportJson() {
  const { columnA, columnB } = app;
  const data = { exported_at: new Date().toISOString(), run_id: columnA.runId, ...exportable(columnA) };
  if (comparing()) data.compare = exportable(columnB);
  saveFile("playground-run.json", new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
}

export function exportText() {
  const { columnA, columnB } = app;
  let text = exportable(columnA).text;
  if (comparing()) text = `[${modelName(columnA.model)}]\n${text}\n\n[${modelName(columnB.model)}]\n${exportable(columnB).text}`;
  saveFile("playground-run.txt", new Blob([text + "\n"], { type: "text/plain" }));
}
