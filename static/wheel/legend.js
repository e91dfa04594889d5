// The legend beside the wheel: one button per segment (token, percentage, a
// bar), which chooses that segment like a click on the wheel does; pointing at
// one lights up the other. Below it, what "Other" holds.

import { appendVisible, integer, percent, visibleToken } from "../shared/token-format.js";
import { ui } from "./page.js";

// `onChoose(segment)` is what a press on an entry does.
export function renderLegend(segments, onChoose) {
  ui.legend.replaceChildren();
  ui.legendCount.textContent = segments.length ? `(${segments.length})` : "";
  for (const s of segments) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = s.isOther ? "legend-item legend-other" : "legend-item";
    button.dataset.testid = "legend-item";
    button.dataset.tokenId = String(s.tokenId);
    button.dataset.probability = String(s.probability);
    const name = visibleToken(s.text);
    button.dataset.tip = s.isOther
      ? `Other · ${percent(s.probability)} · ${integer(s.tokenCount)} tokens. Choose it to draw one at random.`
      : `${name} · ${percent(s.probability)} · token #${s.tokenId}${
          s.logProbability != null ? ` · log p ${s.logProbability.toFixed(2)}` : ""
        }. Choose it to add it.`;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    if (!s.isOther) swatch.style.background = s.color;
    const token = document.createElement("span");
    token.className = "legend-token";
    if (s.isOther) token.textContent = `Other (${integer(s.tokenCount)})`;
    else appendVisible(token, s.text);
    const pct = document.createElement("span");
    pct.className = "legend-pct";
    pct.textContent = percent(s.probability);
    const bar = document.createElement("span");
    bar.className = "legend-bar";
    bar.style.width = `${Math.max(0.5, s.probability * 100).toFixed(2)}%`;
    if (!s.isOther) bar.style.background = s.color;
    // Named by what it shows (screen readers hear "Add ␠cat, 7.1%"), so the
    // name a voice-control user reads off the screen works.
    const verb = document.createElement("span");
    verb.className = "sr-only";
    verb.textContent = s.isOther ? "Draw from " : "Add ";
    const comma = document.createElement("span");
    comma.className = "sr-only";
    comma.textContent = ", ";
    button.append(verb, swatch, token, comma, pct, bar);
    button.addEventListener("click", () => onChoose(s));
    // Pointing at a legend entry lights up its segment, and the other way round.
    button.addEventListener("pointerenter", () => s.el.classList.add("hover"));
    button.addEventListener("pointerleave", () => s.el.classList.remove("hover"));
    button.addEventListener("focus", () => s.el.classList.add("hover"));
    button.addEventListener("blur", () => s.el.classList.remove("hover"));
    s.el.addEventListener("pointerenter", () => button.classList.add("hover"));
    s.el.addEventListener("pointerleave", () => button.classList.remove("hover"));
    li.appendChild(button);
    ui.legend.appendChild(li);
  }
}

export function legendButtons() {
  return [...ui.legend.querySelectorAll("button")];
}

// What "Other" holds: how many tokens, below which threshold, the likeliest of them.
export function renderOther(dist) {
  const other = dist.other_category;
  const box = ui.otherInfo;
  box.hidden = false;
  box.replaceChildren();
  const h = document.createElement("h3");
  h.textContent = `Other: ${percent(other.total_probability)} of the wheel`;
  const p = document.createElement("p");
  const count = document.createElement("strong");
  count.dataset.testid = "other-count";
  count.textContent = `${integer(other.token_count)} other tokens`;
  if (other.token_count > 0) {
    p.append(
      count,
      ` each below ${percent(dist.threshold)}, out of ${integer(dist.vocabulary_size)} the model knows. ` +
        "Landing on Other draws one of them, weighted by its probability."
    );
  } else {
    h.textContent = "Other is empty";
    p.append(count, ": at these settings every token that can still be drawn has its own segment.");
  }
  box.append(h, p);
  if (dist.excluded_by_top_p) {
    const ex = document.createElement("p");
    ex.className = "muted";
    ex.textContent = `Top-p removed ${integer(dist.excluded_by_top_p)} tokens entirely: they cannot be drawn at all.`;
    box.append(ex);
  }
  if (other.sample_tokens?.length) {
    const intro = document.createElement("p");
    intro.className = "muted";
    intro.textContent = "The most likely of them:";
    const list = document.createElement("ol");
    list.className = "other-samples";
    list.dataset.testid = "other-samples";
    for (const t of other.sample_tokens) {
      const li = document.createElement("li");
      const tok = document.createElement("span");
      tok.className = "mono";
      appendVisible(tok, t.token_text);
      const pr = document.createElement("span");
      pr.className = "muted";
      pr.textContent = percent(t.probability);
      li.append(tok, " ", pr);
      li.dataset.tip = `${visibleToken(t.token_text)} · ${percent(t.probability)} · token #${t.token_id}`;
      list.append(li);
    }
    box.append(intro, list);
  }
}
