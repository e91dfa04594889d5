// Small pure helpers for showing tokens and numbers in the playground drawer.

const SPECIAL = { " ": "(space)", "\n": "\\n", "\t": "\\t", "\r": "\\r", "": "(empty)" };

// A token as a label in the bars: special characters escaped, spaces visible.
export function tokenLabel(text) {
  if (text in SPECIAL) return SPECIAL[text];
  return text
    .replace(/\n/g, "\\n")
    .replace(/\t/g, "\\t")
    .replace(/\r/g, "\\r")
    .replace(/^ /, "␣");
}

export function percent(p) {
  if (p >= 0.995) return "100%";
  if (p >= 0.1) return `${Math.round(p * 100)}%`;
  if (p >= 0.001) return `${(p * 100).toFixed(1)}%`;
  return "<0.1%";
}

export function speedLabel(ms) {
  return Number(ms) === 0 ? "max" : `${ms} ms`;
}

export function counterText(count, window) {
  const noun = count === 1 ? "token" : "tokens";
  if (count <= window) return `${count} ${noun} (${count} in context)`;
  return `${count} ${noun} (last ${window} in context)`;
}

// The characters of `text` split into runs that are / are not in `bad`.
export function markCharacters(text, bad) {
  const set = new Set(bad);
  const parts = [];
  for (const ch of text) {
    const isBad = set.has(ch);
    const last = parts[parts.length - 1];
    if (last && last.bad === isBad) last.text += ch;
    else parts.push({ text: ch, bad: isBad });
  }
  return parts;
}

export function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
