// Shared display helpers: whitespace made visible, percentages.
export function visible(text) {
  if (text === null || text === undefined) return "";
  return String(text).replace(/ /g, "␠").replace(/\n/g, "↵").replace(/\t/g, "⇥");
}

export function percent(p, digits = 1) {
  if (p === null || p === undefined) return "–";
  const v = p * 100;
  if (v > 0 && v < 0.1) return `${v.toFixed(2)}%`;
  return `${v.toFixed(digits)}%`;
}

export function chip(text, { className = "", title = "" } = {}) {
  const span = document.createElement("span");
  span.className = `token-chip ${className}`.trim();
  span.textContent = visible(text);
  if (title) span.title = title;
  return span;
}

export function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  if (m) return decodeURIComponent(m[1]);
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}
