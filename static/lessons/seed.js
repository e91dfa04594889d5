// Same seed, same story: the wheel page's seed input. A session with a seed
// draws each spin with a seed derived from it and the token's position (on
// the server), so the same seed, prompt and settings give the same tokens on
// any machine. The seed is the session's: set it on the server as soon as it
// is committed, send it with a new session, show it again on reload. In a
// lesson with a class seed the input starts with the class's seed.

import { api } from "../wheel/api.js";
import { $, classroom, state } from "../wheel/page.js";
import { clearError, fail, showError } from "../wheel/status.js";

const SEED_MAX = 2 ** 31 - 1;
const input = $("#seed");
const status = $("#seed-status");

// The input's seed: a whole number, null when empty, undefined when invalid.
function typedSeed() {
  const raw = input.value.trim();
  if (raw === "") return null;
  if (!/^\d+$/.test(raw) || Number(raw) > SEED_MAX) return undefined;
  return Number(raw);
}

function describe(seed, where) {
  status.dataset.seed = seed == null ? "" : String(seed);
  if (seed == null) status.textContent = "No seed: every spin is a fresh surprise.";
  else status.textContent = `Seed ${seed}${where}: the same prompt and settings spin the same tokens.`;
}

// The fields a new session is created with (api.createSession's `extra`);
// the line under the input now speaks of that session.
export function seedForNewSession() {
  const seed = typedSeed();
  if (seed === undefined) return {};
  describe(seed, "");
  return seed == null ? {} : { seed };
}

// A session from the server (a reload, a pushed step): show its seed.
export function showSessionSeed(session) {
  input.value = session.seed == null ? "" : String(session.seed);
  committed = input.value;
  describe(session.seed, classroom?.seed != null && session.seed === classroom.seed ? " (your class's seed)" : "");
}

let committed = null; // the input's text last committed (Enter, then leaving the field, commits once)

async function commit() {
  if (input.value === committed) return;
  committed = input.value;
  clearError("seed");
  const seed = typedSeed();
  if (seed === undefined) {
    showError("seed", `A seed is a whole number from 0 to ${SEED_MAX.toLocaleString("en-US")}, or empty for none.`);
    return;
  }
  if (!state.sessionId) {
    describe(seed, " will be used when you press Start");
    return;
  }
  try {
    const session = await api.setSeed(state.sessionId, seed);
    showSessionSeed(session);
  } catch (err) {
    fail("seed", err);
  }
}

export function initSeed() {
  input.max = String(SEED_MAX);
  if (classroom?.seed != null) {
    input.value = String(classroom.seed);
    describe(classroom.seed, " (your class's seed)");
    committed = input.value;
  } else {
    describe(null, "");
  }
  // "change" fires when the student commits the number (Enter, or leaving the field).
  input.addEventListener("change", commit);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      commit();
    }
  });
}
