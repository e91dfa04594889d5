// Drawing one column of the drawer: the input and the generated tokens
// (coloured by probability, dimmed outside the context window, a blinking
// cursor while playing) and the top-10 probability bars of the token in view.

import { percent, visibleToken } from "../shared/token-format.js";
import { modelName, ui } from "./drawer-state.js";
import { renderControls } from "./controls.js";

export function render(column, { full = false, appended = false } = {}) {
  renderOutput(column, { full, appended });
  renderBars(column);
  renderControls();
}

function tokenSpan(t, generated) {
  const span = document.createElement("span");
  span.className = "pg-tok" + (generated ? " pg-gen" : "");
  span.textContent = t.token;
  if (generated) {
    span.style.setProperty("--p", String(t.probability));
    span.dataset.index = t.index;
    span.dataset.probability = t.probability;
    span.title = `${visibleToken(t.token)}: ${percent(t.probability)}${t.chosen_by === "hand" ? " (chosen by hand)" : ""}`;
    if (t.chosen_by === "hand") span.classList.add("pg-hand");
  }
  return span;
}

export function renderOutput(column, { full, appended }) {
  const out = column.els.output;
  out.dataset.empty =
    column.state === "idle" ? (ui.input.value ? "Press ▶ to generate." : "Type something to get started...") : "";
  out.dataset.playing = String(column.state === "playing" || column.state === "starting");
  column.els.label.textContent = column.model ? modelName(column.model) : "";
  if (column.state === "idle" && !column.tokens.length) {
    out.replaceChildren();
    return;
  }
  const cursor = out.querySelector(".pg-cursor");
  const generatedSpans = out.querySelectorAll(".pg-gen").length;
  const canAppend = appended && !full && cursor && generatedSpans === column.tokens.length - 1;
  if (canAppend) {
    const t = column.tokens[column.tokens.length - 1];
    const span = tokenSpan(t, true);
    span.classList.add("pg-new");
    out.insertBefore(span, cursor);
  } else {
    const nodes = column.promptTokens.map((t) => tokenSpan(t, false));
    column.tokens.forEach((t) => nodes.push(tokenSpan(t, true)));
    const c = document.createElement("span");
    c.className = "pg-cursor";
    c.setAttribute("aria-hidden", "true");
    nodes.push(c);
    out.replaceChildren(...nodes);
  }
  // What the model sees for the next token: the last `contextWindow` tokens.
  const spans = out.querySelectorAll(".pg-tok");
  const firstInView = Math.max(0, spans.length - column.contextWindow);
  spans.forEach((s, i) => s.classList.toggle("pg-dim", i < firstInView));
  out.scrollTop = out.scrollHeight;
}

function barItem(column, bar, i, token) {
  const li = document.createElement("li");
  li.className = "pg-bar" + (bar.extra ? " pg-extra" : "");
  li.setAttribute("data-testid", column.els.barTestId);
  li.dataset.tokenId = bar.token_id;
  li.dataset.probability = bar.prob;
  li.setAttribute("role", "option");
  li.setAttribute("aria-selected", String(i === column.highlight));
  const chosen = token && bar.token_id === token.token_id;
  if (chosen) li.dataset.chosen = "true";
  const part = (className, text = "") => {
    const span = document.createElement("span");
    span.className = className;
    span.textContent = text;
    return span;
  };
  const arrow = part("pg-arrow", i === column.highlight ? "→" : "");
  arrow.setAttribute("aria-hidden", "true");
  const track = part("pg-track");
  const fill = part("pg-fill");
  fill.style.width = `${Math.max(0.5, bar.prob * 100)}%`;
  track.append(fill);
  li.append(arrow, part("pg-check-mark", chosen ? "✓" : ""), part("pg-token", visibleToken(bar.token)), track, part("pg-pct", percent(bar.prob)));
  li.title = chosen ? "The token that was chosen" : "Click (or Enter) to take this token instead";
  li.addEventListener("click", () => {
    column.highlight = i;
    column.accept();
  });
  return li;
}

export function renderBars(column) {
  const list = column.els.bars;
  const bars = column.bars();
  list.dataset.empty = column.tokens.length ? "" : "Probabilities appear with the first token.";
  const token = column.tokens[column.barsIndex];
  const items = bars.map((bar, i) => barItem(column, bar, i, token));
  // Keep the same <li> elements when the list has the same length so the bars animate.
  const old = list.children;
  if (old.length === items.length) {
    items.forEach((li, i) => {
      const fill = old[i].querySelector(".pg-fill");
      const width = li.querySelector(".pg-fill").style.width;
      old[i].replaceWith(li);
      if (fill) {
        li.querySelector(".pg-fill").style.width = fill.style.width;
        requestAnimationFrame(() => (li.querySelector(".pg-fill").style.width = width));
      }
    });
  } else {
    list.replaceChildren(...items);
  }
}
