// The drawer's two message lines: a status (progress, "✓ done") and an error
// (one per column), each an ARIA live region in the template.

import { ui } from "./drawer-state.js";

export function showStatus(text, good = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("pg-good", good);
  ui.status.dataset.kind = text === "Type something to get started..." ? "empty" : "";
}

export function showError(text, name = "a") {
  (name === "b" ? ui.errorB : ui.error).textContent = text;
}

export function clearMessages(name) {
  showError("", name);
  if (name === "a" && !ui.status.classList.contains("pg-good")) showStatus("");
  if (name === "a" && ui.status.textContent.startsWith("✓ Saved")) showStatus("");
}
