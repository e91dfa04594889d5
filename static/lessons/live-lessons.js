// The live projector's lesson parts: the class's guesses on the step and the
// class tree of the open lesson, both fed by the class socket that live.js
// holds (it re-dispatches each message as a "live:message" event).

import { ClassGuesses } from "./class-guesses.js";
import { mountTrees } from "./class-tree.js";

const state = JSON.parse(document.getElementById("live-state").textContent);
const classroomId = document.getElementById("live-root").dataset.classroom;
const guesses = new ClassGuesses(
  document.querySelector('[data-testid="class-predictions"]'),
  state,
  `/classes/${classroomId}/live/state/`
);
const trees = mountTrees();

document.addEventListener("live:message", (event) => {
  const msg = event.detail;
  if (msg.type === "guess") guesses.add(msg);
  if (msg.type === "tree") {
    for (const tree of trees) if (String(tree.lessonId) === String(msg.lesson)) tree.refreshSoon();
  }
});
