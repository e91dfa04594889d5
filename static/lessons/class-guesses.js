// The projector's predict-then-reveal round: what the class predicted for the
// live step beside what the model predicted, updated as guesses arrive on the
// class socket, and a "beat the model" summary. The model's side can stay
// hidden until the teacher reveals it (hidden at first when the lesson asks
// students to predict first), so the class guesses before it sees the answer.
// A student's first guess on the step counts. The summary is the server's
// (guess_summary in the live state), refetched at most every SUMMARY_MS while
// guesses arrive; the bars count the guesses as they come.

import { percent, visibleToken } from "../shared/token-format.js";

const MODEL_ROWS = 8;
const SUMMARY_MS = 1000;

function bar(share) {
  const track = document.createElement("span");
  track.className = "guess-bar";
  const fill = document.createElement("span");
  fill.className = "guess-bar-fill";
  fill.style.width = `${Math.max(0, Math.min(100, share * 100)).toFixed(1)}%`; // CSSOM: allowed by the CSP
  track.append(fill);
  return track;
}

function row(testid, tokenId, text, share, figure) {
  const li = document.createElement("li");
  li.dataset.testid = testid;
  li.dataset.tokenId = String(tokenId);
  const token = document.createElement("span");
  token.className = "guess-token mono";
  token.textContent = visibleToken(text);
  const value = document.createElement("span");
  value.className = "guess-value";
  value.textContent = figure;
  li.append(token, bar(share), value);
  return li;
}

export class ClassGuesses {
  constructor(card, state, stateUrl) {
    this.card = card;
    this.stateUrl = stateUrl;
    this.summary = state.guess_summary || null;
    this.timer = null;
    this.round = state.round;
    this.model = state.distribution ? state.distribution.above_threshold_tokens : [];
    this.guesses = [...(state.guesses || [])];
    const $ = (id) => card.querySelector(`[data-testid="${id}"]`);
    this.ui = {
      count: $("live-guess-count"),
      classList: $("class-guesses"),
      modelList: $("model-predictions"),
      modelVeil: $("model-veiled"),
      summary: $("guess-summary"),
      reveal: $("reveal-model"),
    };
    this.ui.reveal.addEventListener("click", () => this.setVeiled(!this.veiled));
    this.setVeiled(card.dataset.predictFirst === "true");
  }

  add(guess) {
    if (guess.round !== this.round) return;
    this.guesses.push(guess);
    this.render();
    if (!this.timer) this.timer = setTimeout(() => this.refreshSummary(), SUMMARY_MS);
  }

  async refreshSummary() {
    try {
      const response = await fetch(this.stateUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      const state = response.ok ? await response.json() : null;
      if (state && state.round === this.round) {
        this.guesses = state.guesses;
        this.summary = state.guess_summary;
        this.render();
      }
    } finally {
      this.timer = null;
    }
  }

  setVeiled(on) {
    this.veiled = on;
    document.body.dataset.modelVeiled = String(on); // the spins chart's model bars hide too (lessons.css)
    this.ui.reveal.setAttribute("aria-pressed", String(!on));
    this.ui.modelList.hidden = on;
    this.ui.modelVeil.hidden = !on;
    this.render();
  }

  // Each student's first guess on this step.
  firstGuesses() {
    const first = new Map();
    for (const g of this.guesses) if (!first.has(g.user)) first.set(g.user, g);
    return [...first.values()];
  }

  render() {
    const counted = this.firstGuesses();
    const n = counted.length;
    this.ui.count.textContent = String(n);
    this.card.dataset.guessers = String(n);
    const tally = new Map();
    for (const g of counted) {
      const t = tally.get(g.token_id) || { token_id: g.token_id, token_text: g.token_text, count: 0, probability: g.probability, rank: g.rank };
      t.count += 1;
      tally.set(g.token_id, t);
    }
    const ranked = [...tally.values()].sort((a, b) => b.count - a.count || a.rank - b.rank);
    this.ui.classList.replaceChildren(
      ...ranked.map((t) => {
        const li = row("class-guess", t.token_id, t.token_text, n ? t.count / n : 0, `${t.count} (${percent(t.count / n)})`);
        li.dataset.count = String(t.count);
        return li;
      })
    );
    if (!ranked.length) {
      const empty = document.createElement("li");
      empty.className = "muted";
      empty.textContent = "No guesses yet.";
      this.ui.classList.append(empty);
    }
    this.ui.modelList.replaceChildren(
      ...this.model.slice(0, MODEL_ROWS).map((t) => {
        const li = row("model-prediction", t.token_id, t.token_text, t.probability, percent(t.probability));
        li.dataset.probability = String(t.probability);
        if (tally.has(t.token_id)) li.classList.add("guessed-by-class");
        return li;
      })
    );
    this.renderSummary(tally);
  }

  renderSummary(tally) {
    const summary = this.summary;
    const box = this.ui.summary;
    const n = summary ? summary.guessers : 0;
    box.dataset.guessers = String(n);
    if (!n) {
      box.replaceChildren(Object.assign(document.createElement("p"), { className: "muted", textContent: "Beat the model: the summary appears as guesses arrive." }));
      return;
    }
    const { class_top: classTop, model_top: modelTop, top_guessed: top } = summary;
    box.dataset.topGuessed = String(top);
    const name = (t) => `“${visibleToken(t.token_text)}”`;
    const lines = [`${n} student${n === 1 ? "" : "s"} guessed. The class's favourite: ${name(classTop)} (${classTop.count}).`];
    if (this.veiled || !modelTop) {
      lines.push("Show the model's prediction to see who beat it.");
    } else {
      lines.push(`${top} of ${n} guessed the model's top token, ${name(modelTop)} (${percent(modelTop.probability)}).`);
      const favourite = tally.get(classTop.token_id);
      lines.push(
        classTop.token_id === modelTop.token_id
          ? "The class predicted like the model: both favour the same token."
          : `The class and the model disagree${favourite ? `: the model gives the class's favourite ${percent(favourite.probability)} (its number ${favourite.rank})` : ""}.`
      );
      lines.push(`On average the model gave the class's guesses ${percent(summary.average_probability)}.`);
    }
    box.replaceChildren(...lines.map((text) => Object.assign(document.createElement("p"), { textContent: text })));
  }
}
