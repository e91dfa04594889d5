// How a token and its probability are written, on every page (the wheel, the
// playground drawer, replays, the live class wheel, the dashboard). One module,
// so the same token reads the same everywhere. Pure functions, plus one that
// builds DOM nodes.

// Whitespace made visible: "␠" for a space, "↵" for a newline, "⇥" for a tab.
// Token texts from the API are decoded strings, but a byte-level BPE piece
// ("Ġ", "Ċ") must never reach a student either, so those are mapped too.
const VISIBLE = { " ": "␠", "\n": "↵", "\t": "⇥", "\r": "␍", "Ġ": "␠", "Ċ": "↵", "ĉ": "⇥", "\u00a0": "⍽" };

// A token as alternating runs: {mark: true} for whitespace, shown as symbols
// (a run of 3 or more of the same one as "␠×8", so code indentation stays
// readable), {mark: false} for everything else. The empty token is "∅".
export function visibleParts(text) {
  if (text === "" || text == null) return [{ mark: false, text: "∅" }];
  const parts = [];
  const chars = [...String(text)];
  for (let i = 0; i < chars.length; ) {
    const ch = chars[i];
    if (VISIBLE[ch]) {
      let j = i;
      while (j < chars.length && chars[j] === ch) j++;
      const n = j - i;
      parts.push({ mark: true, text: n >= 3 ? `${VISIBLE[ch]}×${n}` : VISIBLE[ch].repeat(n) });
      i = j;
      continue;
    }
    const code = ch.codePointAt(0);
    const shown = code < 32 || code === 127 ? `\\x${code.toString(16).padStart(2, "0")}` : ch;
    const last = parts[parts.length - 1];
    if (last && !last.mark) last.text += shown;
    else parts.push({ mark: false, text: shown });
    i += 1;
  }
  return parts;
}

// A token on its own (a label, a list entry, a tooltip): " mat" reads "␠mat".
export function visibleToken(text) {
  return visibleParts(text)
    .map((p) => p.text)
    .join("");
}

// The same, as DOM nodes: each whitespace mark in a <span class="ws"> (a
// <tspan> inside SVG) so the page can colour it apart from the letters.
// `max` shortens long tokens (wheel labels) with "…".
export function appendVisible(parent, text, { svg = false, max = Infinity } = {}) {
  let budget = max;
  for (const part of visibleParts(text)) {
    if (budget <= 0) break;
    let chunk = [...part.text];
    if (chunk.length > budget) chunk = [...chunk.slice(0, Math.max(0, budget - 1)), "…"];
    budget -= chunk.length;
    if (!part.mark) {
      parent.append(document.createTextNode(chunk.join("")));
      continue;
    }
    const mark = svg ? document.createElementNS("http://www.w3.org/2000/svg", "tspan") : document.createElement("span");
    mark.setAttribute("class", "ws");
    mark.textContent = chunk.join("");
    parent.append(mark);
  }
  return parent;
}

// A generated token inside running text: spaces stay spaces (the token's
// coloured background shows them), line breaks and tabs get a visible mark.
export function inlineToken(text) {
  if (text === "" || text == null) return "∅";
  return text.replace(/\t/g, "⇥\t").replace(/\r?\n/g, "↵\n");
}

// "18.0%", "0.42%", "<0.01%": enough digits that a small probability is not "0%".
export function percent(p) {
  if (p == null || Number.isNaN(p)) return "–";
  const x = p * 100;
  if (x === 0) return "0%";
  if (x < 0.01) return "<0.01%";
  if (x < 1) return `${x.toFixed(2)}%`;
  return `${x.toFixed(1)}%`;
}

export function integer(n) {
  return Number(n).toLocaleString("en-US");
}

export function decimal(x, digits = 2) {
  if (x == null || Number.isNaN(x)) return "–";
  return Number(x).toFixed(digits);
}

// Colour of a generated token by its probability, on a log scale from red
// (1 in 10,000 or rarer) through amber to green (certain). Light enough that
// dark text on it keeps a contrast of at least 5:1 at every hue (WCAG AA).
export function probabilityColor(p) {
  const t = Math.max(0, Math.min(1, (Math.log10(Math.max(p, 1e-4)) + 4) / 4));
  const hue = Math.round(t * 135);
  return `hsl(${hue} 70% 62%)`;
}
