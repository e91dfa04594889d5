// Predict, then reveal, on the wheel page. When it is on (the toggle, or a
// lesson that asks for it), each new wheel stays hidden until the student
// commits a guess for the next token: typed, or picked from a short list the
// server offers (the top tokens shuffled with decoys). The server judges the
// guess against the distribution; the wheel is then revealed with the guess
// marked (its probability, its rank, a segment of its own or inside Other)
// and the running score below it.
//
// Hidden means display:none (CSS on #wheel-app[data-predict="guessing"]): the
// wheel, its buttons and the legend leave the page and the tab order.

import { appendVisible, integer, percent, visibleToken } from "../shared/token-format.js";
import { api } from "../wheel/api.js";
import { $, app, classroom, state, ui, wheel } from "../wheel/page.js";
import { action, clearError, fail, showError } from "../wheel/status.js";

const SVG = "http://www.w3.org/2000/svg";
const STORE = "tokenwheel.predict";
const forced = Boolean(classroom?.predict_first);

const el = {
  toggle: $("#predict-toggle"),
  toggleHelp: $("#predict-toggle-help"),
  panel: $("#predict-panel"),
  form: $("#predict-form"),
  input: $("#predict-input"),
  submit: $("#predict-submit"),
  options: $("#predict-options"),
  result: $("#predict-result"),
  score: $("#predict-score"),
};

// The guess made at each context (prompt + token ids), so undo and redraws
// find it again; the server keeps one guess per session and context too.
const guesses = new Map();
let score = null;
let optionsFor = null; // the context the options list was fetched for

const keyOf = (session, prompt, ids) => `${session}\u0000${prompt}\u0000${ids.join(",")}`;
const currentKey = () => keyOf(state.sessionId, state.initialPrompt, state.history.map((t) => t.token_id));
const isOn = () => forced || el.toggle.checked;

function setMode(mode) {
  app.dataset.predict = mode;
  el.panel.hidden = mode !== "guessing";
}

// ------------------------------------------------------------------ hooks from the wheel page

// After every wheel drawing (a new step, an undo, a slider): hide it until
// this step is guessed, or mark the guess already made.
export function drawn() {
  if (!isOn() || !state.dist) {
    setMode("off");
    return;
  }
  const guess = guesses.get(currentKey());
  if (guess) {
    setMode("revealed");
    markGuess(guess);
  } else {
    veil();
  }
}

// A session from the server (a reload, a pushed step): its guesses and score.
export function adoptGuesses(session) {
  guesses.clear();
  optionsFor = null;
  const prompt = session.initial_prompt || "";
  const ids = [];
  for (const item of session.token_history || []) {
    if (item.guess) guesses.set(keyOf(session.session_id, prompt, ids), item.guess);
    ids.push(item.token_id);
  }
  // The step on screen: its guess, if one was made at exactly this text.
  if (session.current_guess) guesses.set(keyOf(session.session_id, prompt, ids), session.current_guess);
  score = session.predict_score || null;
  renderScore();
}

export function resetPredict() {
  guesses.clear();
  optionsFor = null;
  score = null;
  el.result.textContent = "";
  setMode("off");
  renderScore();
}

// ------------------------------------------------------------------ guessing

function veil() {
  const wasRevealed = app.dataset.predict !== "guessing";
  setMode("guessing");
  if (wasRevealed) {
    el.input.value = "";
    el.result.textContent = "";
    clearError("predict");
  }
  loadOptions();
  // The control the student used (spin, a segment) has just left the page:
  // the guess is the next thing to do.
  const active = document.activeElement;
  if (!active || active === document.body || active.getClientRects().length === 0) el.input.focus();
}

async function loadOptions() {
  const key = currentKey();
  if (optionsFor === key) return;
  optionsFor = key;
  const waiting = document.createElement("li");
  waiting.className = "muted";
  waiting.textContent = "Loading a few tokens to choose from…";
  el.options.replaceChildren(waiting);
  let body;
  try {
    body = await api.guessOptions(state.sessionId);
  } catch (err) {
    if (optionsFor === key) {
      optionsFor = null;
      el.options.replaceChildren();
      fail("predict", err);
    }
    return;
  }
  if (optionsFor !== key) return;
  el.options.replaceChildren(
    ...body.options.map((o) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "btn predict-option";
      button.dataset.testid = "predict-option";
      button.dataset.tokenId = String(o.token_id);
      button.setAttribute("aria-label", `Guess ${visibleToken(o.token_text)}`);
      appendVisible(button, o.token_text);
      button.addEventListener("click", () => commit({ token_id: o.token_id }, null));
      li.append(button);
      return li;
    })
  );
}

function commit(body, button) {
  return action(button, async () => {
    clearError("predict");
    const key = currentKey();
    let made;
    try {
      made = await api.guess(state.sessionId, body);
    } catch (err) {
      if (err.status === 409) await recover(key);
      else fail("predict", err);
      return;
    }
    guesses.set(key, made.guess);
    score = made.score;
    renderScore();
    if (key !== currentKey()) return;
    setMode("revealed");
    markGuess(made.guess);
    announce(made.guess, "");
    ui.spin.focus({ preventScroll: true }); // the next thing to do: spin (or pick)
  });
}

// The server already has a guess for this step (made in another tab, or
// before a reload it could not tell apart): reveal with that one.
async function recover(key) {
  let session;
  try {
    session = await api.getSession(state.sessionId);
  } catch (err) {
    fail("predict", err);
    return;
  }
  const here = session.current_guess;
  score = session.predict_score || score;
  renderScore();
  if (!here || key !== currentKey()) {
    showError("predict", "You already guessed this step.");
    return;
  }
  guesses.set(key, here);
  setMode("revealed");
  markGuess(here);
  announce(here, "You had already guessed this step. ");
}

function announce(guess, prefix) {
  const name = `“${visibleToken(guess.token_text)}”`;
  const where =
    guess.category === "other"
      ? "inside Other (below the threshold, no segment of its own)"
      : "a segment of its own (above the threshold)";
  const verdict = guess.is_top ? " You matched the model's top token!" : guess.in_top3 ? " In the model's top 3." : "";
  el.result.dataset.tokenId = String(guess.token_id);
  el.result.dataset.rank = String(guess.rank);
  el.result.dataset.category = guess.category;
  el.result.textContent =
    `${prefix}Your guess ${name}: the model gives it ${percent(guess.probability)}, ` +
    `its number ${integer(guess.rank)} token: ${where}.${verdict}${guess.note ? ` ${guess.note}` : ""}`;
}

// ------------------------------------------------------------------ the marker on the wheel

function svg(name, attrs, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  parent.append(node);
  return node;
}

function markGuess(guess) {
  for (const old of ui.svg.querySelectorAll(".guessed")) old.classList.remove("guessed");
  ui.svg.querySelector('[data-testid="guess-marker"]')?.remove();
  for (const old of ui.legend.querySelectorAll(".guessed")) old.classList.remove("guessed");
  const segment = wheel.segmentFor(String(guess.token_id)) || wheel.segmentFor("other");
  if (!segment) return;
  segment.el.classList.add("guessed");
  ui.legend.querySelector(`[data-token-id="${segment.tokenId}"]`)?.classList.add("guessed");
  // A pin from the hub into the guessed segment; it turns with the wheel.
  const mid = ((segment.start + segment.end) / 2) * (Math.PI / 180);
  const at = (r) => [200 + r * Math.sin(mid), 200 - r * Math.cos(mid)];
  const g = svg(
    "g",
    {
      class: "guess-marker",
      "data-testid": "guess-marker",
      "data-token-id": String(guess.token_id),
      "data-rank": String(guess.rank),
      "data-category": guess.category,
      role: "img",
      "aria-label": `Your guess: ${visibleToken(guess.token_text)}, ${percent(guess.probability)}, rank ${guess.rank}${
        segment.isOther ? ", inside Other" : ""
      }`,
    },
    wheel.rotor
  );
  wheel.rotor.insertBefore(g, wheel.rotor.querySelector(".labels")); // under the labels: they stay readable
  const [x1, y1] = at(30);
  const [x2, y2] = at(182);
  svg("line", { x1, y1, x2, y2, class: "guess-marker-line" }, g);
  const [cx, cy] = at(44);
  svg("circle", { cx, cy, r: 8, class: "guess-marker-dot" }, g);
  svg("title", {}, g).textContent = `Your guess: ${visibleToken(guess.token_text)} · ${percent(guess.probability)} · rank ${guess.rank}`;
}

// ------------------------------------------------------------------ the score

function renderScore() {
  const s = score || { guesses: 0, top1: 0, top3: 0, above_threshold: 0, average_probability: null };
  el.score.hidden = !isOn() && !s.guesses;
  el.score.dataset.guesses = String(s.guesses);
  el.score.dataset.top1 = String(s.top1);
  el.score.dataset.top3 = String(s.top3);
  el.score.dataset.aboveThreshold = String(s.above_threshold);
  el.score.dataset.averageProbability = s.average_probability == null ? "" : String(s.average_probability);
  const share = (n) => (s.guesses ? ` (${Math.round((100 * n) / s.guesses)}%)` : "");
  const rows = [
    ["Guesses", integer(s.guesses)],
    ["The model's top token", `${integer(s.top1)}${share(s.top1)}`],
    ["In its top 3", `${integer(s.top3)}${share(s.top3)}`],
    ["Above the threshold", `${integer(s.above_threshold)}${share(s.above_threshold)}`],
    ["Average probability the model gave your guesses", percent(s.average_probability)],
  ];
  el.score.replaceChildren(
    ...rows.map(([term, value]) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      div.append(dt, dd);
      return div;
    })
  );
}

// ------------------------------------------------------------------ start

export function initPredict() {
  if (forced) {
    el.toggle.checked = true;
    el.toggle.disabled = true;
    el.toggleHelp.textContent = "Your lesson asks you to predict each token before the wheel shows it.";
  } else {
    el.toggle.checked = localStorage.getItem(STORE) === "on";
  }
  el.toggle.addEventListener("change", () => {
    localStorage.setItem(STORE, el.toggle.checked ? "on" : "off");
    renderScore();
    drawn();
  });
  el.form.addEventListener("submit", (e) => {
    e.preventDefault();
    const typed = el.input.value;
    if (!typed.trim()) {
      showError("predict", "Type your guess first (or pick one of the tokens below).");
      el.input.focus();
      return;
    }
    commit({ token_text: typed }, el.submit);
  });
  setMode("off");
  renderScore();
}
