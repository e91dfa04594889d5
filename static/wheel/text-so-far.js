// The text so far: the prompt, then each generated token coloured by its
// probability, with a tooltip (and a line below on focus or tap) saying how it
// was chosen. Also the small token chips the compare panel reuses.

import { pressable } from "../shared/pressable.js";
import { inlineToken, percent, probabilityColor, visibleToken } from "../shared/token-format.js";
import { state, ui } from "./page.js";
import { updateButtons } from "./status.js";

function methodWords(item) {
  if (item.method === "spun") return item.sampled_from_other ? "spun (landed on Other)" : "spun";
  if (item.method === "other") return "picked Other (drawn at random inside Other)";
  return "picked";
}

function categoryWords(category) {
  return category === "other" ? "from Other (below the threshold)" : "above the threshold";
}

function tokenTip(item) {
  return `${visibleToken(item.token_text)} · ${percent(item.probability)} · ${categoryWords(item.category)} · ${methodWords(item)}`;
}

export function renderText() {
  ui.text.replaceChildren();
  if (!state.hasPrompt) {
    const empty = document.createElement("span");
    empty.className = "muted";
    empty.textContent = "Nothing yet.";
    ui.text.append(empty);
    updateButtons();
    return;
  }
  const prompt = document.createElement("span");
  prompt.className = "prompt-text";
  prompt.dataset.testid = "prompt-text";
  prompt.textContent = state.initialPrompt;
  prompt.dataset.tip = "Your prompt";
  ui.text.append(prompt);
  for (const item of state.history) {
    const span = document.createElement("span");
    span.className = "gen-token";
    if (item.category === "other") span.classList.add("from-other");
    if (item.method === "spun") span.classList.add("spun");
    span.dataset.testid = "history-token";
    span.dataset.tokenId = String(item.token_id);
    span.dataset.probability = String(item.probability);
    span.dataset.category = item.category;
    span.dataset.method = item.method || "";
    span.dataset.position = String(item.position ?? "");
    span.dataset.tip = tokenTip(item);
    span.style.setProperty("--tok", probabilityColor(item.probability));
    span.textContent = inlineToken(item.token_text);
    // A button: pressing it (or focusing it) says how the token was chosen.
    const detail = () => (ui.tokenDetail.textContent = `Token ${item.position ?? ""}: ${tokenTip(item)}.`);
    pressable(span, tokenTip(item), detail);
    span.addEventListener("focus", detail);
    ui.text.append(span);
  }
  updateButtons();
}

// A token as a coloured chip with its probability in the tooltip (and, for
// screen readers, after the token).
export function tokenChip(token) {
  const span = document.createElement("span");
  span.className = "gen-token";
  span.style.setProperty("--tok", probabilityColor(token.probability));
  span.textContent = inlineToken(token.token_text);
  span.dataset.tip = `${visibleToken(token.token_text)} · ${percent(token.probability)}`;
  const p = document.createElement("span");
  p.className = "sr-only";
  p.textContent = ` (${percent(token.probability)})`;
  span.append(p);
  return span;
}
