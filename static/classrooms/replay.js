// Replay a saved run step by step: what was offered, what was chosen, how
// (spun, picked, drawn from Other, sampled by the model) and its probability.
import { percent } from "../shared/token-format.js";
import { chip } from "./token-chip.js";

const data = JSON.parse(document.getElementById("run-data").textContent);
const steps = data.steps;
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const textEl = $("replay-text");
const detail = $("replay-detail");
const stepLabel = $("replay-step");
const errorEl = document.getElementById("replay-error");
const offeredCache = new Map();
let k = 0;

const METHOD = {
  spun: "spun (the wheel drew it)",
  picked: "picked by hand",
  other: "drawn from Other",
  sampled: "sampled by the model",
};

function renderText() {
  const prompt = document.createElement("span");
  prompt.className = "prompt";
  prompt.textContent = data.prompt;
  const parts = [prompt];
  steps.forEach((s, i) => {
    const span = document.createElement("span");
    span.className = `tok${i === k ? " current" : ""}${i > k ? " future" : ""}`;
    span.textContent = s.token_text;
    span.title = `${percent(s.probability)} · ${METHOD[s.method] || s.method}`;
    parts.push(span);
  });
  textEl.replaceChildren(...parts);
}

async function offeredFor(step) {
  if (step.offered) return step.offered;
  if (!data.offered_url) return null;
  if (offeredCache.has(step.position)) return offeredCache.get(step.position);
  const res = await fetch(`${data.offered_url}${step.position}/`, { headers: { Accept: "application/json" } });
  const body = await res.json();
  if (!res.ok) throw new Error(body.message || "Could not recompute what was offered.");
  const offered = body.above_threshold_tokens.map((t) => ({ token_id: t.token_id, token_text: t.token_text, probability: t.probability }));
  offered.push({ token_id: "other", token_text: `Other (${body.other_category.token_count.toLocaleString()} tokens)`, probability: body.other_category.total_probability });
  offeredCache.set(step.position, offered);
  return offered;
}

async function renderDetail() {
  errorEl.textContent = "";
  if (!steps.length) {
    detail.textContent = "This run has no generated tokens yet.";
    stepLabel.textContent = "";
    return;
  }
  const s = steps[k];
  stepLabel.textContent = `Step ${k + 1} of ${steps.length}`;
  const chosen = document.createElement("p");
  chosen.dataset.testid = "replay-chosen";
  chosen.append("Chosen: ", chip(s.token_text, { className: s.category === "other" ? "other" : "" }),
    ` with probability ${percent(s.probability)}, ${METHOD[s.method] || s.method}`);
  if (s.other_rank) chosen.append(` (rank ${s.other_rank} within Other)`);
  if (s.threshold !== undefined) chosen.append(` · threshold ${percent(s.threshold)}, temperature ${s.temperature}, top-p ${s.top_p}`);
  const parts = [chosen];
  if (s.guess) {
    // Predict, then reveal: what the student guessed before the wheel showed this step.
    const guess = document.createElement("p");
    guess.dataset.testid = "replay-guess";
    guess.append("Guessed first: ", chip(s.guess.token_text, { className: s.guess.token_id === s.token_id ? "chosen" : "" }),
      ` (the model's number ${s.guess.rank}, ${percent(s.guess.probability)})`);
    parts.push(guess);
  }
  const offeredBox = document.createElement("div");
  offeredBox.className = "offered";
  offeredBox.dataset.testid = "replay-offered";
  offeredBox.textContent = "Loading what the wheel offered…";
  detail.replaceChildren(...parts, offeredBox);
  const at = k;
  try {
    const offered = await offeredFor(s);
    if (at !== k) return;
    if (!offered) { offeredBox.textContent = ""; return; }
    const label = document.createElement("span");
    label.className = "muted";
    label.textContent = "Offered: ";
    const chips = offered.map((o) => {
      const isChosen = o.token_id === s.token_id || (o.token_id === "other" && s.category === "other");
      const c = chip(`${o.token_text} ${percent(o.probability)}`, { className: isChosen ? "chosen" : "" });
      c.dataset.tokenId = o.token_id;
      if (isChosen) c.dataset.chosen = "true";
      return c;
    });
    offeredBox.replaceChildren(label, ...chips);
  } catch (err) {
    offeredBox.textContent = "";
    errorEl.textContent = err.message;
  }
}

function go(where) {
  if (!steps.length) return;
  if (where === "first") k = 0;
  else if (where === "last") k = steps.length - 1;
  else if (where === "next") k = Math.min(steps.length - 1, k + 1);
  else if (where === "prev") k = Math.max(0, k - 1);
  renderText();
  renderDetail();
}

for (const button of document.querySelectorAll("[data-go]")) button.addEventListener("click", () => go(button.dataset.go));
document.addEventListener("keydown", (e) => {
  if (e.target.closest("input, textarea, select")) return;
  if (e.key === "ArrowRight") go("next");
  if (e.key === "ArrowLeft") go("prev");
});
renderText();
renderDetail();
