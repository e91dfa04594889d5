// How tokens and numbers are written on the wheel page. Pure functions.

// A token's text with its whitespace made visible: "␠" for a space, "↵" for a
// newline, "⇥" for a tab. Token texts from the API are decoded strings, but a
// byte-level BPE piece ("Ġ", "Ċ") must never reach a student either, so those
// are mapped too.
const VISIBLE = { " ": "␠", "\n": "↵", "\t": "⇥", "\r": "␍", "Ġ": "␠", "Ċ": "↵", "ĉ": "⇥", "\u00a0": "⍽" };

export function visibleToken(text) {
  if (text === "" || text == null) return "∅";
  let out = "";
  for (const ch of text) {
    if (VISIBLE[ch]) out += VISIBLE[ch];
    else if (ch.charCodeAt(0) < 32) out += `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out;
}

// The same, as DOM nodes: each whitespace mark in a <span class="ws"> (a
// <tspan> inside SVG) so the page can colour it apart from the letters.
export function appendVisible(parent, text, { svg = false, max = Infinity } = {}) {
  let chars = [...visibleToken(text)];
  if (chars.length > max) chars = [...chars.slice(0, max - 1), "…"];
  const marks = new Set(Object.values(VISIBLE));
  let run = "";
  const flush = () => {
    if (run) parent.append(document.createTextNode(run));
    run = "";
  };
  for (const ch of chars) {
    if (!marks.has(ch) || text === "" || text == null) {
      run += ch;
      continue;
    }
    flush();
    const mark = svg ? document.createElementNS("http://www.w3.org/2000/svg", "tspan") : document.createElement("span");
    mark.setAttribute("class", "ws");
    mark.textContent = ch;
    parent.append(mark);
  }
  flush();
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
// (1 in 10,000 or rarer) through amber to green (certain).
export function probabilityColor(p) {
  const t = Math.max(0, Math.min(1, (Math.log10(Math.max(p, 1e-4)) + 4) / 4));
  const hue = Math.round(t * 135);
  return `hsl(${hue} 70% 42%)`;
}

// Distinct segment colours that read well on the dark background (golden-angle hues).
export function segmentColor(i) {
  const hue = Math.round((205 + i * 137.508) % 360);
  const light = i % 2 ? 50 : 58;
  return `hsl(${hue} 68% ${light}%)`;
}

export function methodWords(item) {
  if (item.method === "spun") return item.sampled_from_other ? "spun (landed on Other)" : "spun";
  if (item.method === "other") return "picked Other (drawn at random inside Other)";
  return "picked";
}

export function categoryWords(category) {
  return category === "other" ? "from Other (below the threshold)" : "above the threshold";
}
