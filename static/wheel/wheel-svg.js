// The wheel itself: SVG segments sized by probability, a fixed pointer at the
// top, and a spin that decelerates to land inside a chosen segment.
//
// Angles are degrees clockwise from 12 o'clock, in the wheel's own frame. The
// rotor (segments + labels) is turned by `rotation` degrees; the pointer does
// not turn, so it points at wheel angle `-rotation` (mod 360).

import { pressable } from "../shared/pressable.js";
import { appendVisible, percent, visibleToken } from "../shared/token-format.js";

const SVG = "http://www.w3.org/2000/svg";
const C = 200; // centre of the 400x400 viewBox
const R = 184; // segment radius
const SPIN_MS = 4200;
const LANDED_HOLD_MS = 900; // how long the wheel rests on the drawn segment before the next one appears

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function point(angle, r) {
  const a = (angle * Math.PI) / 180;
  return [C + r * Math.sin(a), C - r * Math.cos(a)];
}

const fmt = (x) => x.toFixed(3);

// Text on segment `s`'s middle line, `radius` from the centre, turned to read
// along it and kept upright on the left half.
function segmentText(s, radius, className, size, parent) {
  const mid = (s.start + s.end) / 2;
  const [x, y] = point(mid, radius);
  return el(
    "text",
    {
      x: fmt(x),
      y: fmt(y),
      class: s.isOther ? `${className} on-other` : className,
      "font-size": size,
      "text-anchor": "middle",
      "dominant-baseline": "central",
      transform: `rotate(${fmt(mid > 180 ? mid + 90 : mid - 90)} ${fmt(x)} ${fmt(y)})`,
    },
    parent
  );
}

// A pie slice from `start` to `end` degrees: "M centre L start A ... end Z".
export function slicePath(start, end) {
  const span = end - start;
  if (span >= 359.999) {
    // A full circle cannot be one arc: two half circles.
    const [x1, y1] = point(0, R);
    const [x2, y2] = point(180, R);
    return `M ${fmt(x1)} ${fmt(y1)} A ${R} ${R} 0 1 1 ${fmt(x2)} ${fmt(y2)} A ${R} ${R} 0 1 1 ${fmt(x1)} ${fmt(y1)} Z`;
  }
  const [x1, y1] = point(start, R);
  const [x2, y2] = point(end, R);
  const large = span > 180 ? 1 : 0;
  return `M ${C} ${C} L ${fmt(x1)} ${fmt(y1)} A ${R} ${R} 0 ${large} 1 ${fmt(x2)} ${fmt(y2)} Z`;
}

export function prefersReducedMotion() {
  return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Distinct segment colours that read well on the dark background (golden-angle hues).
export function segmentColor(i) {
  const hue = Math.round((205 + i * 137.508) % 360);
  const light = i % 2 ? 50 : 58;
  return `hsl(${hue} 68% ${light}%)`;
}

export class WheelView {
  constructor(svg, { onChoose }) {
    this.svg = svg;
    this.rotor = svg.querySelector("#wheel-rotor");
    this.onChoose = onChoose;
    this.rotation = 0;
    this.segments = [];
    this.interactive = true;
  }

  // Build segments from a next-token-probs response. Returns the segment list
  // (key, tokenId, text, probability, start, end, color) for the legend.
  render(dist) {
    const items = dist.above_threshold_tokens.map((t, i) => ({
      key: String(t.token_id),
      tokenId: t.token_id,
      text: t.token_text,
      probability: t.probability,
      logProbability: t.log_probability,
      color: segmentColor(i),
      isOther: false,
    }));
    const other = dist.other_category;
    if (other && other.total_probability > 0) {
      items.push({
        key: "other",
        tokenId: "other",
        text: "Other",
        probability: other.total_probability,
        tokenCount: other.token_count,
        color: "url(#other-hatch)",
        isOther: true,
      });
    }
    // Floating-point sums are 1 ± 1e-6; spread the rounding so the wheel closes.
    const total = items.reduce((sum, s) => sum + s.probability, 0) || 1;
    let angle = 0;
    for (const s of items) {
      s.start = angle;
      s.end = angle + (360 * s.probability) / total;
      angle = s.end;
    }
    if (items.length) items[items.length - 1].end = 360;

    this.rotor.replaceChildren();
    const slices = el("g", { class: "slices" }, this.rotor);
    const labels = el("g", { class: "labels", "aria-hidden": "true" }, this.rotor);
    for (const s of items) this._drawSegment(s, slices, labels);
    this.segments = items;
    // A new wheel starts upright (most likely token from 12 o'clock, labels
    // readable); only a spin turns it.
    this._setRotation(0);
    this.svg.dataset.state = items.length ? "ready" : "empty";
    this.svg.setAttribute(
      "aria-label",
      items.length
        ? `The next-token wheel: ${items.length} segments. Most likely: ${visibleToken(items[0].text)} ${percent(items[0].probability)}.`
        : "The next-token wheel (empty)"
    );
    return items;
  }

  clear() {
    this.rotor.replaceChildren();
    this.segments = [];
    this.svg.dataset.state = "empty";
  }

  _drawSegment(s, slices, labels) {
    const name = s.isOther ? `Other (${s.tokenCount.toLocaleString("en-US")} tokens)` : visibleToken(s.text);
    const path = el(
      "path",
      {
        d: slicePath(s.start, s.end),
        fill: s.color,
        class: s.isOther ? "segment segment-other" : "segment",
        "data-testid": "wheel-segment",
        "data-token-id": String(s.tokenId),
        "data-probability": String(s.probability),
        "data-start-angle": s.start.toFixed(4),
        "data-end-angle": s.end.toFixed(4),
        "data-tip": s.isOther
          ? `Other · ${percent(s.probability)} · ${s.tokenCount.toLocaleString("en-US")} tokens below the threshold. Click to draw one at random.`
          : `${name} · ${percent(s.probability)} · token #${s.tokenId}. Click to add it.`,
      },
      slices
    );
    pressable(
      path,
      s.isOther
        ? `Other: ${percent(s.probability)}, ${s.tokenCount.toLocaleString("en-US")} tokens. Press Enter to draw one of them.`
        : `${name}: ${percent(s.probability)}. Press Enter to add it.`,
      () => this._choose(s)
    );
    s.el = path;

    // Labels only where they fit; thinner segments live in the legend and tooltip.
    const span = s.end - s.start;
    if (span < 8) return;
    const label = segmentText(s, R * 0.58, "segment-label", span >= 16 ? 14 : 11, labels);
    if (s.isOther) label.textContent = "Other";
    else appendVisible(label, s.text, { svg: true, max: span >= 16 ? 11 : 7 });
    if (span >= 16) segmentText(s, R * 0.87, "segment-percent", 11, labels).textContent = percent(s.probability);
  }

  _choose(s) {
    if (!this.interactive) return;
    this.onChoose(s);
  }

  setInteractive(on) {
    this.interactive = on;
    this.svg.classList.toggle("is-busy", !on);
    for (const s of this.segments) s.el.setAttribute("aria-disabled", on ? "false" : "true");
  }

  segmentFor(key) {
    return this.segments.find((s) => s.key === String(key)) || null;
  }

  _setRotation(deg) {
    this.rotation = deg;
    this.rotor.setAttribute("transform", `rotate(${fmt(deg)} ${C} ${C})`);
    this.svg.dataset.rotation = (((deg % 360) + 360) % 360).toFixed(3);
  }

  // Turn the wheel so the pointer ends inside `key`'s segment, decelerating
  // (ease-out); instantly when the student prefers reduced motion. Resolves
  // once the wheel has rested on the segment for a moment.
  async spinTo(key) {
    const seg = this.segmentFor(key) || this.segmentFor("other");
    if (!seg) return null;
    const span = seg.end - seg.start;
    const margin = Math.min(span * 0.2, 3);
    const target = seg.start + margin + Math.random() * (span - 2 * margin);
    const start = this.rotation;
    const delta = (((-target - start) % 360) + 360) % 360;
    const reduced = prefersReducedMotion();
    const end = start + delta + (reduced ? 0 : 360 * (4 + Math.floor(Math.random() * 2)));

    this.svg.dataset.state = "spinning";
    this.svg.dataset.landedTokenId = "";
    if (!reduced) {
      await new Promise((resolve) => {
        const t0 = performance.now();
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          resolve();
        };
        const frame = (now) => {
          const t = Math.min(1, (now - t0) / SPIN_MS);
          const eased = 1 - Math.pow(1 - t, 4); // fast start, long slow finish
          this._setRotation(start + (end - start) * eased);
          if (t < 1) requestAnimationFrame(frame);
          else finish();
        };
        requestAnimationFrame(frame);
        setTimeout(finish, SPIN_MS + 1500); // a background tab pauses animation frames
      });
    }
    this._setRotation(end);
    seg.el.classList.add("landed");
    this.svg.dataset.state = "landed";
    this.svg.dataset.landedTokenId = String(seg.tokenId);
    await sleep(reduced ? LANDED_HOLD_MS / 2 : LANDED_HOLD_MS);
    return seg;
  }
}
