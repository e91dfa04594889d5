// The dashboard shows whitespace in chosen tokens visibly (␠ ↵ ⇥).
import { visible } from "./tokens.js";

for (const el of document.querySelectorAll("[data-testid=step-token]")) el.textContent = visible(el.dataset.tokenText);
