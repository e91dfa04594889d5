// The drawer's controls: which buttons work now (play, pause, step,
// regenerate, save, export), the slider labels, and the preview of the input
// as the model sees it (tokens outside the context window dimmed).

import { app, columns, drawer, modelReady, ui } from "./drawer-state.js";
import { counterText, markCharacters, speedLabel } from "./format.js";
import { showStatus } from "./messages.js";

export function renderControls() {
  const a = app.columnA;
  const ready = modelReady(ui.model.value);
  const hasInput = ui.input.value.length > 0;
  const playing = columns().some((c) => c.state === "playing" || c.state === "starting");
  ui.play.disabled = !ready || !hasInput || playing || (a.state === "finished" && a.text === ui.input.value);
  ui.pause.disabled = !playing;
  ui.step.disabled = !ready || !hasInput || (a.state === "finished" && a.text === ui.input.value);
  ui.regenerate.disabled = !ready || !hasInput;
  ui.play.setAttribute("aria-pressed", String(playing));
  drawer.dataset.state = a.state;
  ui.save.disabled = !app.signedIn || a.state === "idle";
  ui.exportJson.disabled = ui.exportText.disabled = a.state === "idle" && !a.tokens.length;
  if (a.state === "finished") {
    const message =
      a.finishedReason === "max_tokens"
        ? `✓ Reached max length (${a.maxTokens} tokens)`
        : a.finishedReason === "eos"
          ? "✓ Generation complete. Modify input to continue."
          : "■ Stopped. Modify input or regenerate to continue.";
    showStatus(message, true);
  } else if (!hasInput && a.state === "idle") {
    showStatus("Type something to get started...");
  } else if (ui.status.dataset.kind === "empty") {
    showStatus("");
  }
}

export function syncLabels() {
  ui.speedValue.textContent = speedLabel(ui.speed.value);
  ui.temperatureValue.textContent = Number(ui.temperature.value).toFixed(2);
  ui.temperatureBValue.textContent = Number(ui.temperatureB.value).toFixed(2);
  ui.topPValue.textContent = Number(ui.topP.value).toFixed(2);
}

export function renderPreview() {
  const { tokens, count } = app.inputTokens;
  const window = Number(ui.window.value) || 64;
  const first = Math.max(0, count - window);
  const out = document.createElement("span");
  const inView = document.createElement("span");
  out.className = "pg-out-of-view";
  out.title = "Outside the context window: the model does not see this";
  out.textContent = tokens.slice(0, first).join("");
  inView.textContent = tokens.slice(first).join("");
  ui.preview.replaceChildren(...(first ? [out, inView] : [inView]));
  ui.counter.textContent = counterText(count, window);
  ui.counter.title = count > window ? `The model only sees the last ${window} tokens` : "All of it is in view";
}

// The input with the characters the model's tokenizer cannot represent marked.
export function renderPreviewWithBadCharacters(bad) {
  const nodes = markCharacters(ui.input.value, bad).map((part) => {
    const span = document.createElement("span");
    span.textContent = part.text;
    if (part.bad) {
      span.className = "pg-bad-char";
      span.title = "The model's tokenizer cannot represent this character";
    }
    return span;
  });
  ui.preview.replaceChildren(...nodes);
}
