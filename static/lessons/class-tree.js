// The class tree of a lesson (instructors): every student's path from the
// lesson's prompt merged into one tree, fetched from tree.json and drawn by
// tree-svg.js. Select a node to read its text, show the tree from there
// (re-root, with a way back) or open the wheel at that text; "… N more" shows
// more branches; the depth is capped. Exported as JSON (tree.json) or SVG.
// On the projector it grows live: a "tree" message on the class socket
// (relayed by live-lessons.js) refetches, at most every REFRESH_MS.

import { saveFile } from "../shared/download.js";
import { percent, visibleToken } from "../shared/token-format.js";
import { drawTree, serializeTree } from "./tree-svg.js";

const REFRESH_MS = 1500;
const KEEP_STEP = 4;
const KEEP_MAX = 30;

export class ClassTree {
  constructor(card) {
    this.card = card;
    this.classroomId = card.dataset.classroom;
    this.lessonId = card.dataset.lesson;
    this.base = `/classes/${this.classroomId}/lessons/${this.lessonId}`;
    const $ = (sel) => card.querySelector(sel);
    this.ui = {
      view: $('[data-testid="class-tree"]'),
      status: $('[data-testid="tree-status"]'),
      crumbs: $(".tree-crumbs"),
      detail: $('[data-testid="tree-detail"]'),
      depth: $('[data-testid="tree-depth"]'),
      error: $('[data-testid="error"][data-for="tree"]'),
      form: $(".tree-open-form"),
    };
    this.root = []; // [{token_id, token_text}] from the prompt to the drawn root
    this.keep = KEEP_STEP;
    this.data = null;
    this.svg = null;
    this.selected = null; // the selected node's path, "1,2,3"
    this.texts = new Map(); // path key -> the token texts along it
    this.timer = null;
    this.inFlight = null;
    this.again = false;
    this.ui.depth.addEventListener("change", () => this.load());
    $('[data-testid="tree-export-json"]').addEventListener("click", () => this.exportJson());
    $('[data-testid="tree-export-svg"]').addEventListener("click", () => this.exportSvg());
  }

  // ---------------------------------------------------------------- fetching

  async load() {
    if (this.inFlight) {
      this.again = true; // one more fetch when this one is back: the tree grew meanwhile
      return this.inFlight;
    }
    this.inFlight = this._fetch();
    try {
      await this.inFlight;
    } finally {
      this.inFlight = null;
    }
    if (this.again) {
      this.again = false;
      await this.load();
    }
  }

  async _fetch() {
    const query = new URLSearchParams({ depth: this.ui.depth.value, keep: String(this.keep) });
    if (this.root.length) query.set("root", this.root.map((t) => t.token_id).join(","));
    let body;
    try {
      const response = await fetch(`${this.base}/tree.json?${query}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      body = await response.json().catch(() => null);
      if (!response.ok) throw new Error(body?.message || `The tree could not be loaded (HTTP ${response.status}).`);
    } catch (err) {
      this.ui.error.textContent = err.message;
      return;
    }
    this.ui.error.textContent = "";
    this.data = body;
    this.prompt = body.prompt;
    this.render();
  }

  // Live growth: many appends in a burst cost one fetch per REFRESH_MS.
  refreshSoon() {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.load();
    }, REFRESH_MS);
  }

  // ---------------------------------------------------------------- drawing

  render() {
    const focusedPath = document.activeElement?.closest?.('[data-testid="tree-node"]')?.dataset.path ?? null;
    const hadFocus = this.ui.view.contains(document.activeElement);
    this.indexTexts(this.data.node, this.root.map((t) => t.token_text));
    this.svg = drawTree(this.ui.view, this.data, {
      rootDepth: this.root.length,
      rootLabel: this.root.length ? visibleToken(this.root[this.root.length - 1].token_text) : "the prompt",
      selectedKey: this.selected,
      onSelect: (item) => this.select(item.node),
      onMore: () => this.showMore(),
    });
    const n = this.data.students;
    this.ui.view.dataset.students = String(n);
    this.ui.status.textContent = n
      ? `${n} student${n === 1 ? "" : "s"} on this lesson's tree${this.card.dataset.live === "true" ? ", growing live as they add tokens" : ""}.`
      : "No student has added a token in this lesson yet.";
    this.renderCrumbs();
    if (hadFocus && focusedPath !== null) {
      this.ui.view.querySelector(`[data-testid="tree-node"][data-path="${focusedPath}"]`)?.focus({ preventScroll: true });
    }
    if (this.selected !== null) {
      const node = this.findNode(this.data.node, this.selected);
      if (node) this.showDetail(node);
    }
  }

  // The token texts along every drawn node's path, for the detail line.
  indexTexts(node, before) {
    const texts = node.token_id == null ? before : [...before, node.token_text];
    this.texts.set(this.fullKey(node.path), texts);
    for (const child of node.children || []) this.indexTexts(child, texts);
  }

  // Paths in tree.json run from the prompt, through the drawn root, to the node.
  fullKey(path) {
    return (path || []).join(",");
  }

  findNode(node, key) {
    if ((node.path || []).join(",") === key) return node;
    for (const child of node.children || []) {
      const found = this.findNode(child, key);
      if (found) return found;
    }
    return null;
  }

  renderCrumbs() {
    const crumbs = [{ label: "Whole tree", depth: 0 }, ...this.root.map((t, i) => ({ label: visibleToken(t.token_text), depth: i + 1 }))];
    this.ui.crumbs.hidden = this.root.length === 0;
    this.ui.crumbs.replaceChildren(
      ...crumbs.map((c, i) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "btn btn-small tree-crumb";
        button.dataset.testid = "tree-root-crumb";
        button.textContent = c.label;
        if (i === crumbs.length - 1) button.setAttribute("aria-current", "true");
        else button.addEventListener("click", () => this.reroot(this.root.slice(0, c.depth)));
        return button;
      })
    );
  }

  // ---------------------------------------------------------------- actions

  select(node) {
    this.selected = (node.path || []).join(",");
    for (const g of this.ui.view.querySelectorAll("[data-selected]")) g.removeAttribute("data-selected");
    this.ui.view.querySelector(`[data-testid="tree-node"][data-path="${this.selected}"]`)?.setAttribute("data-selected", "true");
    this.showDetail(node);
  }

  showDetail(node) {
    const texts = this.texts.get(this.fullKey(node.path)) || [];
    const box = this.ui.detail;
    box.hidden = false;
    const text = document.createElement("p");
    text.className = "tree-detail-text";
    const prompt = document.createElement("span");
    prompt.className = "muted";
    prompt.textContent = this.prompt;
    const tail = document.createElement("strong");
    tail.textContent = texts.map(visibleToken).join("");
    text.append(prompt, tail);
    const facts = document.createElement("p");
    const n = node.count;
    facts.textContent =
      node.token_id == null
        ? `${n} student${n === 1 ? "" : "s"} reached this text.`
        : `${n} student${n === 1 ? "" : "s"} took “${visibleToken(node.token_text)}” here; the model gave it ${percent(node.probability)}` +
          `${node.greedy ? ", its top choice (greedy)." : ", not its top choice."}`;
    const buttons = document.createElement("div");
    buttons.className = "button-row";
    const deeper = document.createElement("button");
    deeper.type = "button";
    deeper.className = "btn";
    deeper.dataset.testid = "tree-reroot";
    deeper.textContent = "Show the tree from here";
    deeper.disabled = node.token_id == null;
    deeper.addEventListener("click", () => this.rerootAt(node));
    const open = document.createElement("button");
    open.type = "button";
    open.className = "btn btn-accent";
    open.dataset.testid = "tree-open";
    open.textContent = "Open the wheel at this text";
    open.addEventListener("click", () => this.open(node));
    buttons.append(deeper, open);
    box.replaceChildren(text, facts, buttons);
  }

  rerootAt(node) {
    const path = node.path || [];
    const texts = this.texts.get(this.fullKey(path)) || [];
    this.reroot(path.map((id, i) => ({ token_id: id, token_text: texts[i] ?? "" })));
  }

  reroot(root) {
    this.root = root;
    this.selected = null;
    this.ui.detail.hidden = true;
    this.load();
  }

  showMore() {
    this.keep = Math.min(KEEP_MAX, this.keep + KEEP_STEP);
    this.load();
  }

  // A new wheel session of the instructor's at the node's text, in a new tab.
  open(node) {
    const form = this.ui.form;
    form.elements.path.value = (node.path || []).join(","); // the form carries its CSRF token
    form.submit();
  }

  exportJson() {
    if (!this.data) return;
    saveFile(`class-tree-lesson-${this.lessonId}.json`, new Blob([JSON.stringify(this.data, null, 2)], { type: "application/json" }));
  }

  exportSvg() {
    if (!this.svg) return;
    saveFile(`class-tree-lesson-${this.lessonId}.svg`, new Blob([serializeTree(this.svg)], { type: "image/svg+xml" }));
  }
}

// Every class tree on the page ([data-tree] cards), loaded one after another
// in the background.
export function mountTrees() {
  const trees = [...document.querySelectorAll("[data-tree]")].map((card) => new ClassTree(card));
  (async () => {
    for (const tree of trees) await tree.load();
  })();
  return trees;
}
