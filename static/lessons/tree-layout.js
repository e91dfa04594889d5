// Where each node of the class tree goes: depth left to right (as the text
// reads), one row per leaf, a parent midway between its first and last child.
// Pure: tree.json's node in, positions out; tree-svg.js draws them.

export const GEOMETRY = {
  col: 178, // from one depth to the next
  pill: 142, // a node's box: "44.8% · 25 students" at 11 px fits
  pillH: 36,
  row: 46, // from one leaf to the next
  pad: 16,
};

// Each branch is as wide as the number of students who took it; the widest
// (the root's) stays under ~40 px however big the class.
export function edgeWidth(count, students) {
  const unit = Math.min(6, 40 / Math.max(1, students));
  return Math.max(2, count * unit);
}

// `root`: tree.json's "node". Returns {items, width, height}; an item is
// {kind: "node", node, depth, x, y, parent} or, for collapsed branches,
// {kind: "more", branches, count, parent, depth, x, y}. `depth` counts from
// the drawn root.
export function layoutTree(root) {
  const { col, pill, row, pad, pillH } = GEOMETRY;
  const items = [];
  let rows = 0;
  let deepest = 0;
  const nextRowY = () => pad + pillH / 2 + row * rows++;

  function place(node, depth, parent) {
    deepest = Math.max(deepest, depth);
    const item = { kind: "node", node, depth, x: pad + depth * col, y: 0, parent };
    items.push(item);
    const below = (node.children || []).map((child) => place(child, depth + 1, item));
    if (node.more) {
      deepest = Math.max(deepest, depth + 1);
      const more = { kind: "more", ...node.more, parent: item, depth: depth + 1, x: pad + (depth + 1) * col, y: nextRowY() };
      items.push(more);
      below.push(more);
    }
    item.y = below.length ? (below[0].y + below[below.length - 1].y) / 2 : nextRowY();
    return item;
  }

  place(root, 0, null);
  return {
    items,
    width: pad * 2 + deepest * col + pill + 24, // room for a truncated node's "⋯"
    height: pad * 2 + pillH + row * Math.max(0, rows - 1),
  };
}

// A curve from the right edge of the parent's box to the left edge of the child's.
export function edgePath(parent, child) {
  const x0 = parent.x + GEOMETRY.pill;
  const x1 = child.x;
  const bend = (x1 - x0) / 2;
  return `M ${x0} ${parent.y} C ${x0 + bend} ${parent.y}, ${x1 - bend} ${child.y}, ${x1} ${child.y}`;
}
