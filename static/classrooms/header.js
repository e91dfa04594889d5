// The header's classroom parts, on every page for a signed-in user:
// * the class picker submits when changed (the form works without JS too);
// * "Save run" on the wheel page names the current session and keeps it in My runs;
// * the class socket: when the instructor pushes a step, it reaches this screen;
// * a lesson opened in the playground fills the drawer with the lesson's prompt.
import { csrfToken } from "../shared/csrf.js";

const form = document.getElementById("class-picker-form");

// A <select data-autosubmit> (the class filter of My runs) submits its form when
// changed: no inline onchange, which the Content-Security-Policy refuses.
for (const select of document.querySelectorAll("select[data-autosubmit]")) {
  select.addEventListener("change", () => select.form.submit());
}

if (form) {
  form.querySelector("select").addEventListener("change", () => form.submit());
  setupSaveRun();
  const acting = form.dataset.acting;
  if (acting && document.body.dataset.page !== "live") connectClass(acting);
  setupPlaygroundLesson();
}

function currentSession() {
  return new URLSearchParams(location.search).get("session");
}

function setupSaveRun() {
  if (document.body.dataset.page !== "wheel") return;
  const box = document.getElementById("save-run-box");
  const button = document.getElementById("save-run");
  const pop = document.getElementById("save-run-form");
  const input = document.getElementById("save-run-title");
  const status = document.getElementById("save-run-status");
  box.hidden = false;
  button.addEventListener("click", () => {
    const open = pop.hidden;
    pop.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) {
      status.textContent = "";
      input.focus();
    }
  });
  const save = async () => {
    const id = currentSession();
    if (!id) {
      status.textContent = "Start the wheel first: there is nothing to save yet.";
      return;
    }
    try {
      const res = await fetch(`/runs/wheel/${id}/rename/`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ title: input.value }),
        credentials: "same-origin",
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.message || "This run could not be saved (is it yours?).");
      pop.hidden = true;
      button.setAttribute("aria-expanded", "false");
      status.replaceChildren(Object.assign(document.createElement("a"), { href: "/runs/", textContent: "Saved ✓", title: "Open My runs" }));
      status.dataset.state = "saved";
    } catch (err) {
      status.textContent = err.message;
      status.dataset.state = "error";
    }
  };
  document.getElementById("save-run-submit").addEventListener("click", save);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); save(); }
    if (e.key === "Escape") { pop.hidden = true; button.focus(); }
  });
}

function openPushed(url) {
  const f = document.createElement("form");
  f.method = "post";
  f.action = url;
  const token = document.createElement("input");
  token.type = "hidden";
  token.name = "csrfmiddlewaretoken";
  token.value = csrfToken();
  f.appendChild(token);
  document.body.appendChild(f);
  f.submit();
}

function showPushBanner(msg) {
  document.getElementById("live-push-banner")?.remove();
  const banner = document.createElement("div");
  banner.id = "live-push-banner";
  banner.className = "live-banner";
  banner.dataset.testid = "live-push-banner";
  banner.setAttribute("role", "status");
  const text = document.createElement("span");
  text.textContent = `Your teacher opened step ${msg.step + 1} of “${msg.lesson_title}”. `;
  const open = Object.assign(document.createElement("button"), { type: "button", className: "btn btn-accent", textContent: "Open it" });
  open.dataset.testid = "live-push-open";
  open.addEventListener("click", () => openPushed(msg.url));
  const later = Object.assign(document.createElement("button"), { type: "button", className: "btn btn-link", textContent: "Not now" });
  later.addEventListener("click", () => banner.remove());
  banner.append(text, open, later);
  document.body.appendChild(banner);
}

function connectClass(classroomId, delay = 1000) {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  let role = null;
  const socket = new WebSocket(`${proto}://${location.host}/ws/classes/${classroomId}/live/`);
  socket.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "hello") role = msg.role;
    if (msg.type === "push" && role === "student") {
      // On the wheel page the pushed step replaces the wheel at once; elsewhere
      // (the student may be typing) it asks first.
      if (document.body.dataset.page === "wheel") openPushed(msg.url);
      else showPushBanner(msg);
    }
  });
  socket.addEventListener("close", (event) => {
    if (event.code === 4404 || event.code === 1006 && role === null && delay > 30000) return;
    setTimeout(() => connectClass(classroomId, Math.min(delay * 2, 60000)), delay);
  });
}

function setupPlaygroundLesson() {
  const el = document.getElementById("playground-lesson");
  if (!el) return;
  const lesson = JSON.parse(el.textContent);
  const drawer = document.getElementById("playground-drawer");
  if (drawer) {
    drawer.dataset.lessonId = String(lesson.id);
    drawer.dataset.classroomId = String(lesson.classroom_id);
    if (lesson.rules) drawer.dataset.lessonRules = JSON.stringify(lesson.rules);
  }
  const fill = () => {
    const input = document.querySelector('[data-testid="playground-input"]');
    if (!input) return;
    input.value = lesson.prompt;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  };
  const opener = document.getElementById("playground-open");
  if (!opener) return;
  // After every module (the drawer's included) has run and bound its handlers.
  const go = () => {
    if (opener.getAttribute("aria-expanded") !== "true") opener.click();
    fill();
  };
  if (document.readyState === "complete") go();
  else window.addEventListener("load", go, { once: true });
}
