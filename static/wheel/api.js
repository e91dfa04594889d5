// The wheel API over fetch(). Every failure becomes an ApiError whose
// `message` is fit to show a student: the API's own words when it sent
// {"error", "message"}, a plain sentence otherwise (network down, HTML error page).
// A 503 with Retry-After (the model's queue is full) is waited out and tried
// again a few times before it becomes an error (see `busyRetry`).

import { csrfToken } from "../shared/csrf.js";

export class ApiError extends Error {
  constructor(status, title, message, body = {}, retryAfter = null) {
    super(message);
    this.status = status;
    this.title = title;
    this.body = body;
    this.retryAfter = retryAfter; // seconds, from a Retry-After header
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

// Retry-After: seconds, or an HTTP date.
function retryAfterSeconds(response) {
  const value = response.headers.get("Retry-After");
  if (!value) return null;
  const seconds = /^\d+$/.test(value.trim()) ? Number(value) : (Date.parse(value) - Date.now()) / 1000;
  return Number.isFinite(seconds) ? Math.max(0, seconds) : null;
}

// When the server says it is busy (503 + Retry-After), wait as long as it
// asks and try again, up to `attempts` times; `onBusy` / `onRecovered` let
// the page say "Busy, retrying…" meanwhile. A busy server refuses a request
// before doing anything, so trying a POST again is safe.
export const busyRetry = {
  attempts: 3,
  maxWaitSeconds: 30,
  onBusy: (_info) => {},
  onRecovered: () => {},
};

function pause(seconds, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, seconds * 1000);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("Aborted", "AbortError"));
    });
  });
}

async function send(method, path, options = {}) {
  for (let retries = 0; ; retries++) {
    try {
      const result = await sendOnce(method, path, options);
      if (retries) busyRetry.onRecovered();
      return result;
    } catch (err) {
      const busy = err instanceof ApiError && err.status === 503 && err.retryAfter != null;
      if (!busy || retries >= busyRetry.attempts) {
        if (retries) busyRetry.onRecovered();
        throw err;
      }
      const seconds = Math.min(err.retryAfter, busyRetry.maxWaitSeconds);
      busyRetry.onBusy({ retry: retries + 1, of: busyRetry.attempts, seconds, message: err.message });
      try {
        await pause(seconds, options.signal);
      } catch (abort) {
        busyRetry.onRecovered();
        throw abort;
      }
    }
  }
}

async function sendOnce(method, path, { body, signal, raw = false } = {}) {
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
    throw new ApiError(response.status, data.error || "", message, data, retryAfterSeconds(response));
  }
  const fallback = {
    404: "That was not found on the server.",
    429: "Too many requests: wait a moment and try again.",
    502: "The server is not answering (bad gateway). Try again in a moment.",
    503: "The server is busy or still starting. Try again in a moment.",
  }[response.status];
  const message = fallback || `The server failed with HTTP ${response.status}.`;
  throw new ApiError(response.status, `Error ${response.status}`, message, {}, retryAfterSeconds(response));
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
