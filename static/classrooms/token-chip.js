// A token as a small chip (replays): whitespace made visible by the shared module.
import { visibleToken } from "../shared/token-format.js";

export function chip(text, { className = "", title = "" } = {}) {
  const span = document.createElement("span");
  span.className = `token-chip ${className}`.trim();
  span.textContent = visibleToken(text);
  if (title) span.title = title;
  return span;
}
