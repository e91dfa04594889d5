// The projector view of the live class wheel: the model's probabilities for
// this step beside the share of the class's spins that landed on each token,
// updated over the class's websocket as spins arrive.
import { fmt, hbarChart } from "./charts.js";
import { percent, visibleToken } from "../shared/token-format.js";

const state = JSON.parse(document.getElementById("live-state").textContent);
const classroomId = document.getElementById("live-root").dataset.classroom;
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);
const chartEl = $("live-class-chart");
const spins = [...(state.spins || [])];

const above = state.distribution ? state.distribution.above_threshold_tokens : [];
const other = state.distribution ? state.distribution.other_category : null;
const aboveIds = new Set(above.map((t) => t.token_id));

function counts() {
  const byToken = new Map();
  let otherCount = 0;
  for (const s of spins) {
    if (aboveIds.has(s.token_id)) byToken.set(s.token_id, (byToken.get(s.token_id) || 0) + 1);
    else otherCount += 1;
  }
  return { byToken, otherCount };
}

function draw() {
  const total = spins.length;
  const { byToken, otherCount } = counts();
  const items = above.map((t) => ({
    key: t.token_id,
    label: visibleToken(t.token_text),
    value: [t.probability, total ? (byToken.get(t.token_id) || 0) / total : 0],
  }));
  if (other) items.push({ key: "other", label: `Other`, value: [other.total_probability, total ? otherCount / total : 0] });
  hbarChart(chartEl, { items, format: fmt.pct, max: 1, seriesNames: ["model", "class"], label: "Class spins beside the model's probabilities" });
  chartEl.dataset.spins = String(total);
  $("live-spin-count").textContent = String(total);
  const students = new Set(spins.map((s) => s.user_id).filter(Boolean));
  $("live-student-count").textContent = String(students.size);
  const list = $("live-spinners");
  list.replaceChildren(...spins.slice(-50).reverse().map((s) => {
    const li = document.createElement("li");
    li.textContent = `${s.user || "someone"}: ${visibleToken(s.token_text)}`;
    return li;
  }));
  fillNextChoices(byToken);
}

function fillNextChoices(byToken) {
  const select = $("live-next-token");
  const previous = select.dataset.touched ? select.value : null;
  const landedOther = new Map();
  for (const s of spins) if (!aboveIds.has(s.token_id)) landedOther.set(s.token_id, s);
  const options = [
    ...above.map((t) => ({ id: t.token_id, text: t.token_text, n: byToken.get(t.token_id) || 0, p: t.probability })),
    ...[...landedOther.values()].map((s) => ({ id: s.token_id, text: s.token_text, n: spins.filter((x) => x.token_id === s.token_id).length, p: s.probability })),
  ].sort((a, b) => b.n - a.n || b.p - a.p);
  select.replaceChildren(...options.map((o) => new Option(`${visibleToken(o.text)} · ${o.n} spin${o.n === 1 ? "" : "s"} · ${percent(o.p)}`, o.id)));
  if (previous !== null) select.value = previous;
}
$("live-next-token").addEventListener("change", (e) => { e.target.dataset.touched = "1"; });

function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${proto}://${location.host}/ws/classes/${classroomId}/live/`);
  const status = $("live-connection");
  socket.addEventListener("open", () => { status.textContent = "live"; status.dataset.state = "open"; });
  socket.addEventListener("close", () => {
    status.textContent = "reconnecting…";
    status.dataset.state = "closed";
    setTimeout(connect, 2000);
  });
  socket.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data);
    // The projector's other parts (static/lessons/live-lessons.js: guesses, class tree) hear it too.
    document.dispatchEvent(new CustomEvent("live:message", { detail: msg }));
    if (msg.type === "spin" && msg.round === state.round) {
      spins.push(msg);
      draw();
    } else if (msg.type === "round" && msg.round !== state.round) {
      location.reload(); // another instructor moved the class on
    }
  });
}

draw();
connect();
