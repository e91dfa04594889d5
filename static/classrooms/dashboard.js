// The dashboard shows whitespace in chosen tokens visibly (␠ ↵ ⇥).
import { visibleToken } from "../shared/token-format.js";

for (const el of document.querySelectorAll("[data-testid=step-token]")) el.textContent = visibleToken(el.dataset.tokenText);
