// The class dashboard: each lesson's class tree, read-only (no live growth).
import { mountTrees } from "./class-tree.js";

mountTrees();
