// The wheel API over fetch(). Every failure becomes an ApiError whose
// `message` is fit to show a student: the API's own words when it sent
// {"error", "message"}, a plain sentence otherwise (network down, HTML error page).

import { csrfToken } from "../shared/csrf.js";

export class ApiError extends Error {
  constructor(status, title, message, body = {}) {
    super(message);
    this.status = status;
    this.title = title;
    this.body = body;
  }
  // What a student reads: "Model unavailable: ...", or just the sentence when
  // the title adds nothing ("Invalid request"), without DRF's "field: " prefix.
  get text() {
    const message = this.message.replace(/^[a-z_]+: (?=\S)/, "");
    const generic = /^(invalid request|bad request|error \d+)$/i.test(this.title || "");
    if (!this.title || generic || message.toLowerCase().startsWith(this.title.toLowerCase())) return message;
    return `${this.title}: ${message}`;
  }
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

async function send(method, path, { body, signal, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  if (!SAFE.has(method)) headers["X-CSRFToken"] = csrfToken(); // as Django expects
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "Network error", "Could not reach the server. Check the connection and try again.");
  }
  if (response.ok && raw) return response;
  let data = null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  if (response.ok) return data ?? {};
  if (data && (data.message || data.error)) {
    let message = data.message || data.error;
    if (response.status === 429 && data.retry_after) message += ` Try again in ${Math.ceil(data.retry_after)} s.`;
    throw new ApiError(response.status, data.error || "", message, data);
  }
  const fallback = {
    404: "That was not found on the server.",
    429: "Too many requests: wait a moment and try again.",
    502: "The server is not answering (bad gateway). Try again in a moment.",
    503: "The server is busy or still starting. Try again in a moment.",
  }[response.status];
  throw new ApiError(response.status, `Error ${response.status}`, fallback || `The server failed with HTTP ${response.status}.`);
}

const q = (params) =>
  Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");

export const api = {
  models: () => send("GET", "/models"),
  // `extra`: more of the new session's fields (its story seed).
  createSession: (modelName, extra = {}) =>
    send("POST", "/sessions", { body: { ...(modelName ? { model_name: modelName } : {}), ...extra } }),
  getSession: (id) => send("GET", `/sessions/${id}`),
  setPrompt: (id, prompt) => send("POST", `/sessions/${id}/set-prompt`, { body: { prompt } }),
  nextTokenProbs: (id, params, signal) => send("GET", `/sessions/${id}/next-token-probs?${q(params)}`, { signal }),
  appendToken: (id, body) => send("POST", `/sessions/${id}/append-token`, { body }),
  undo: (id) => send("POST", `/sessions/${id}/undo`, { body: {} }),
  statistics: (id, signal) => send("GET", `/sessions/${id}/statistics`, { signal }),
  fork: (id) => send("POST", `/sessions/${id}/fork`, { body: {} }),
  compare: (id, body) => send("POST", `/sessions/${id}/compare`, { body }),
  exportFile: (id, format) => send("GET", `/sessions/${id}/export?format=${format}`, { raw: true }),
  // Predict, then reveal; same seed, same story (static/lessons/).
  guessOptions: (id) => send("GET", `/sessions/${id}/guess-options`),
  guess: (id, body) => send("POST", `/sessions/${id}/guess`, { body }),
  setSeed: (id, seed) => send("POST", `/sessions/${id}/seed`, { body: { seed } }),
};
