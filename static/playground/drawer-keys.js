// The drawer's keyboard: Esc closes it; Space plays or pauses; ↑/↓ move the
// highlight over the probability bars and Enter takes the highlighted token.
// Keys meant for a text field, a select or a button keep their own meaning.

import { app, columns, drawer, ui } from "./drawer-state.js";

const TEXT_ENTRY = new Set(["TEXTAREA", "SELECT"]);
function typingIn(el) {
  if (!el) return false;
  if (TEXT_ENTRY.has(el.tagName)) return true;
  return el.tagName === "INPUT" && el.type !== "checkbox" && el.type !== "button";
}
// Buttons whose own Enter/Space must keep working.
function ownsKeys(el) {
  return el && el.closest && el.closest(".pg-runs, .pg-head, summary, .pg-settings, .pg-compare-settings");
}

export function bindDrawerKeys({ close }) {
  document.addEventListener("keydown", (event) => {
    if (!app.open) return;
    if (event.key === "Escape") {
      event.preventDefault();
      close();
      return;
    }
    if (!drawer.contains(event.target) && event.target !== document.body) return;
    if (typingIn(event.target) || ownsKeys(event.target) || event.altKey || event.ctrlKey || event.metaKey) return;
    const columnA = app.columnA;
    if (event.key === " " || event.code === "Space") {
      event.preventDefault();
      const playing = columns().some((c) => c.state === "playing" || c.state === "starting");
      if (playing) ui.pause.click();
      else if (!ui.play.disabled) ui.play.click();
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (event.target.type === "range") return;
      event.preventDefault();
      columnA.moveHighlight(event.key === "ArrowDown" ? 1 : -1);
    } else if (event.key === "Enter") {
      if (!columnA.tokens.length || columnA.state === "idle") return;
      event.preventDefault();
      columnA.accept();
    }
  });
}
