// The class tree as SVG: a box per node (its token with visible whitespace,
// the model's probability, how many students took it), an edge into it as
// wide as that number of students, solid where the class took the model's
// top token (greedy) and dashed where it did not, and "… N more" where rare
// branches collapse. Colours and fonts are attributes, not CSS, so the
// exported file looks the same on its own.

import { pressable } from "../shared/pressable.js";
import { appendVisible, percent } from "../shared/token-format.js";
import { GEOMETRY, edgePath, edgeWidth, layoutTree } from "./tree-layout.js";

const NS = "http://www.w3.org/2000/svg";
const INK = { bg: "#0b1020", box: "#151d3b", text: "#e6ebff", muted: "#9aa6d6", edge: "#4fd1ff", greedy: "#4fd1ff", other: "#a78bfa", root: "#fbbf24" };
const FONT = '"Token Wheel Marks", "DejaVu Sans Mono", ui-monospace, Menlo, Consolas, monospace';

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.append(node);
  return node;
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

// What a node says to a screen reader (and in its tooltip): its visible
// text first, word for word, then what the picture shows beside it.
function describeNode(node, shown, isRoot) {
  if (isRoot) return `${shown}: where the tree starts`;
  const choice = node.greedy ? "the model's top choice (greedy)" : "not the model's top choice";
  const more = node.truncated ? " More below: show the tree from here to see it." : "";
  return `${shown}: the model's probability and the students who took it; ${choice}.${more}`;
}

function drawEdge(parentItem, item, students, layer) {
  const node = item.node;
  const greedy = Boolean(node.greedy);
  el(
    "path",
    {
      d: edgePath(parentItem, item),
      fill: "none",
      stroke: greedy ? INK.greedy : INK.other,
      "stroke-width": edgeWidth(node.count, students).toFixed(2),
      "stroke-dasharray": greedy ? "none" : "10 6",
      "stroke-linecap": "butt",
      "stroke-opacity": 0.75,
      "data-testid": "tree-edge",
      "data-token-id": node.token_id,
      "data-count": node.count,
      "data-greedy": greedy,
    },
    layer
  );
}

function drawNode(item, { students, rootDepth, rootLabel, onSelect, selectedKey }, layer) {
  const { node, x, y } = item;
  const { pill, pillH } = GEOMETRY;
  const isRoot = item.parent === null;
  const g = el(
    "g",
    {
      class: "tree-node",
      "data-testid": "tree-node",
      "data-token-id": node.token_id ?? "",
      "data-count": node.count,
      "data-depth": rootDepth + item.depth,
      "data-greedy": Boolean(node.greedy),
      "data-path": (node.path || []).join(","),
    },
    layer
  );
  if ((node.path || []).join(",") === selectedKey) g.setAttribute("data-selected", "true");
  const stroke = isRoot ? INK.root : node.greedy ? INK.greedy : INK.other;
  el("rect", {
    class: "tree-pill", x, y: y - pillH / 2, width: pill, height: pillH, rx: 8,
    fill: INK.box, stroke, "stroke-width": 2, "stroke-dasharray": isRoot || node.greedy ? "none" : "6 4",
  }, g);
  // Two lines in one <text>, a space between them, so the text reads as it is
  // named ("␠mat 12% · 3 students").
  const text = el("text", { x: x + 8, y: y - 3, fill: INK.text, "font-family": FONT, "font-size": 13 }, g);
  const title = el("tspan", { "font-weight": 700 }, text);
  if (isRoot) title.textContent = rootLabel.length > 14 ? `…${rootLabel.slice(-13)}` : rootLabel;
  else appendVisible(title, node.token_text, { svg: true, max: 13 });
  for (const mark of title.querySelectorAll(".ws")) mark.setAttribute("fill", INK.muted);
  text.append(" ");
  const line = isRoot ? plural(node.count, "student") : `${percent(node.probability)} · ${plural(node.count, "student")}`;
  el("tspan", { x: x + 8, dy: 16, fill: INK.muted, "font-size": 11 }, text).textContent = line;
  if (node.truncated) {
    el("text", { x: x + pill + 5, y: y + 5, fill: INK.muted, "font-family": FONT, "font-size": 16, "aria-hidden": "true" }, g).textContent = "⋯";
  }
  const label = describeNode(node, `${title.textContent} ${line}`, isRoot);
  el("title", {}, g).textContent = label;
  pressable(g, label, () => onSelect(item));
}

function drawMore(item, { onMore }, edges, layer) {
  const { pill, pillH } = GEOMETRY;
  el("path", { d: edgePath(item.parent, item), fill: "none", stroke: INK.muted, "stroke-width": 2, "stroke-dasharray": "2 4" }, edges);
  const g = el("g", { class: "tree-more", "data-testid": "tree-more", "data-branches": item.branches, "data-count": item.count }, layer);
  el("rect", { class: "tree-pill", x: item.x, y: item.y - pillH / 2, width: pill, height: pillH, rx: 8, fill: INK.bg, stroke: INK.muted, "stroke-width": 1.5, "stroke-dasharray": "2 3" }, g);
  const text = el("text", { x: item.x + 8, y: item.y - 3, fill: INK.text, "font-family": FONT, "font-size": 12 }, g);
  el("tspan", {}, text).textContent = `… ${item.branches} more`;
  text.append(" ");
  el("tspan", { x: item.x + 8, dy: 16, fill: INK.muted, "font-size": 11 }, text).textContent = plural(item.count, "student");
  const label = `… ${item.branches} more ${plural(item.count, "student")}: show more branches`;
  el("title", {}, g).textContent = label;
  pressable(g, label, onMore);
}

// Draw tree.json (`tree`) into `container`, replacing what was there.
// Options: rootDepth (how deep the drawn root is), rootLabel, selectedKey
// (the selected node's path, "1,2,3"), onSelect(item), onMore().
export function drawTree(container, tree, options) {
  const layout = layoutTree(tree.node);
  const students = Math.max(1, tree.node.count);
  const svg = el("svg", {
    xmlns: NS,
    viewBox: `0 0 ${layout.width} ${layout.height}`,
    width: layout.width,
    height: layout.height,
    role: "group",
    "aria-label": `Class tree: ${plural(tree.node.count, "student")} from “${options.rootLabel}”. Each box is a token; its line is as wide as the number of students who took it.`,
    class: "tree-svg",
  });
  el("rect", { x: 0, y: 0, width: layout.width, height: layout.height, fill: INK.bg }, svg);
  const edges = el("g", { class: "tree-edges", "aria-hidden": "true" }, svg);
  const nodes = el("g", { class: "tree-nodes" }, svg);
  const drawOptions = { ...options, students };
  for (const item of layout.items) {
    if (item.kind === "more") {
      drawMore(item, drawOptions, edges, nodes);
      continue;
    }
    if (item.parent) drawEdge(item.parent, item, students, edges);
    drawNode(item, drawOptions, nodes);
  }
  container.replaceChildren(svg);
  return svg;
}

// The drawn tree as a standalone SVG file's text.
export function serializeTree(svg) {
  const copy = svg.cloneNode(true);
  copy.removeAttribute("class");
  for (const node of copy.querySelectorAll("[tabindex]")) node.removeAttribute("tabindex");
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(copy)}\n`;
}
