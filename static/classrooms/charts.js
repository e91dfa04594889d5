// Small SVG charts drawn by the app (no CDN): line, stacked bars, horizontal bars.
// Each takes a container element and plain data; every mark carries a <title>
// so hovering (or a screen reader) gives the exact figure.

import { percent } from "../shared/token-format.js";

const NS = "http://www.w3.org/2000/svg";
export const PALETTE = ["#4fd1ff", "#a78bfa", "#34d399", "#fbbf24", "#f87171", "#60a5fa", "#f472b6", "#a3e635", "#fb923c", "#94a3b8"];

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svgFor(container, width, height, label) {
  container.replaceChildren();
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart-svg" });
  container.appendChild(svg);
  return svg;
}

function niceMax(value) {
  if (!(value > 0)) return 1;
  const exp = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= value) return m * exp;
  return 10 * exp;
}

export const fmt = {
  int: (v) => (v === null || v === undefined ? "–" : Math.round(v).toLocaleString()),
  pct: percent,
  ms: (v) => (v === null || v === undefined ? "–" : `${v.toFixed(1)} ms`),
};

function shortDate(iso) {
  return iso.length === 10 ? iso.slice(5) : iso;
}

function axes(svg, { x0, y0, x1, y1, max, format, ticks = 4 }) {
  for (let i = 0; i <= ticks; i++) {
    const v = (max * i) / ticks;
    const y = y0 - ((y0 - y1) * i) / ticks;
    svg.appendChild(el("line", { x1: x0, x2: x1, y1: y, y2: y, class: "chart-grid" }));
    svg.appendChild(el("text", { x: x0 - 6, y: y + 4, "text-anchor": "end", class: "chart-tick" }, format(v)));
  }
}

function legend(container, series) {
  if (series.length < 2) return;
  const list = document.createElement("ul");
  list.className = "chart-legend";
  series.forEach((s, i) => {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = s.color || PALETTE[i % PALETTE.length];
    li.append(sw, document.createTextNode(s.name));
    list.appendChild(li);
  });
  container.appendChild(list);
}

function xLabels(svg, labels, xAt, y, every) {
  labels.forEach((label, i) => {
    if (i % every !== 0 && i !== labels.length - 1) return;
    svg.appendChild(el("text", { x: xAt(i), y, "text-anchor": "middle", class: "chart-tick" }, shortDate(label)));
  });
}

export function lineChart(container, { labels, series, format = fmt.int, max, label = "chart" }) {
  const W = 640, H = 240, L = 52, R = 24, T = 12, B = 28;
  const svg = svgFor(container, W, H, label);
  const values = series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined));
  const top = max ?? niceMax(Math.max(0, ...values));
  axes(svg, { x0: L, y0: H - B, x1: W - R, y1: T, max: top, format });
  const n = labels.length;
  const xAt = (i) => (n <= 1 ? (L + W - R) / 2 : L + ((W - R - L) * i) / (n - 1));
  const yAt = (v) => H - B - ((H - B - T) * v) / top;
  xLabels(svg, labels, xAt, H - 8, Math.max(1, Math.ceil(n / 8)));
  series.forEach((s, si) => {
    const color = s.color || PALETTE[si % PALETTE.length];
    let d = "";
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      d += `${d && s.values[i - 1] !== null && s.values[i - 1] !== undefined ? "L" : "M"}${xAt(i).toFixed(1)},${yAt(v).toFixed(1)}`;
    });
    svg.appendChild(el("path", { d, fill: "none", stroke: color, "stroke-width": 2 }));
    s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const dot = el("circle", { cx: xAt(i), cy: yAt(v), r: 3.5, fill: color, class: "chart-point" });
      dot.appendChild(el("title", {}, `${s.name} ${labels[i]}: ${format(v)}`));
      svg.appendChild(dot);
    });
  });
  legend(container, series);
}

export function barChart(container, { labels, series, format = fmt.int, label = "chart" }) {
  const W = 640, H = 240, L = 52, R = 24, T = 12, B = 28;
  const svg = svgFor(container, W, H, label);
  const totals = labels.map((_, i) => series.reduce((a, s) => a + (s.values[i] || 0), 0));
  const top = niceMax(Math.max(0, ...totals));
  axes(svg, { x0: L, y0: H - B, x1: W - R, y1: T, max: top, format });
  const n = labels.length;
  const slot = (W - R - L) / Math.max(1, n);
  const bw = Math.max(2, slot * 0.7);
  const xAt = (i) => L + slot * i + slot / 2;
  xLabels(svg, labels, xAt, H - 8, Math.max(1, Math.ceil(n / 8)));
  labels.forEach((lab, i) => {
    let acc = 0;
    series.forEach((s, si) => {
      const v = s.values[i] || 0;
      if (!v) return;
      const h = ((H - B - T) * v) / top;
      const y = H - B - ((H - B - T) * (acc + v)) / top;
      const rect = el("rect", { x: xAt(i) - bw / 2, y, width: bw, height: h, fill: s.color || PALETTE[si % PALETTE.length], class: "chart-bar" });
      rect.appendChild(el("title", {}, `${s.name} ${lab}: ${format(v)}`));
      svg.appendChild(rect);
      acc += v;
    });
  });
  legend(container, series);
}

// Horizontal bars, optionally two values per row (e.g. observed vs expected).
export function hbarChart(container, { items, format = fmt.pct, max, label = "chart", seriesNames }) {
  const rowH = 26, L = 150, R = 70, T = 8;
  const W = 640, H = T * 2 + rowH * Math.max(1, items.length);
  const svg = svgFor(container, W, H, label);
  const values = items.flatMap((it) => (Array.isArray(it.value) ? it.value : [it.value])).filter((v) => v !== null && v !== undefined);
  const top = max ?? (Math.max(0, ...values) || 1);
  const width = W - L - R;
  items.forEach((it, i) => {
    const y = T + i * rowH;
    const text = el("text", { x: L - 8, y: y + rowH / 2 + 4, "text-anchor": "end", class: "chart-label" }, it.label);
    svg.appendChild(text);
    const vals = Array.isArray(it.value) ? it.value : [it.value];
    const bh = (rowH - 8) / vals.length;
    vals.forEach((v, vi) => {
      const w = v ? (width * v) / top : 0;
      const rect = el("rect", {
        x: L, y: y + 4 + vi * bh, width: Math.max(0, w), height: bh - 1,
        fill: PALETTE[vi % PALETTE.length], class: "chart-bar",
        "data-token-id": it.key ?? "", "data-series": seriesNames ? seriesNames[vi] : "", "data-value": v ?? "",
      });
      rect.appendChild(el("title", {}, `${it.label}${seriesNames ? ` (${seriesNames[vi]})` : ""}: ${format(v)}`));
      svg.appendChild(rect);
    });
    svg.appendChild(el("text", { x: L + 6 + Math.max(...vals.map((v) => (v ? (width * v) / top : 0))), y: y + rowH / 2 + 4, class: "chart-value" }, vals.map(format).join(" / ")));
  });
  if (seriesNames) legend(container, seriesNames.map((name) => ({ name })));
}
