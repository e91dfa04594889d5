// Small pure helpers for the playground drawer's own labels. Tokens and
// percentages are written by the shared module (static/shared/token-format.js).

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
