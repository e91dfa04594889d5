// While the drawer is open it is a modal dialog: the page behind it is inert
// (neither the keyboard nor a screen reader reaches it), Tab and Shift+Tab
// cycle through the drawer's own controls, and closing it gives focus back to
// where it was before (the Playground button, usually).

import { app, backdrop, drawer, openButton } from "./drawer-state.js";

const FOCUSABLE = 'button, [href], input, select, textarea, summary, [tabindex]:not([tabindex="-1"])';
let returnTo = null;
let madeInert = [];

function focusables() {
  return [...drawer.querySelectorAll(FOCUSABLE)].filter(
    (el) => !el.disabled && !el.closest("[hidden], [inert]") && el.getClientRects().length > 0
  );
}

export function trapFocus() {
  const active = document.activeElement;
  returnTo = active && active !== document.body && !drawer.contains(active) ? active : openButton;
  for (const el of document.body.children) {
    if (el === drawer || el === backdrop || el.inert || el.tagName === "SCRIPT") continue;
    el.inert = true;
    madeInert.push(el);
  }
}

export function releaseFocus() {
  for (const el of madeInert) el.inert = false;
  madeInert = [];
  const target = returnTo && returnTo.isConnected ? returnTo : openButton;
  returnTo = null;
  target.focus({ preventScroll: true });
}

export function bindFocusTrap() {
  document.addEventListener("keydown", (event) => {
    if (!app.open || event.key !== "Tab") return;
    const items = focusables();
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    const active = document.activeElement;
    const outside = !drawer.contains(active) || active === drawer;
    if (event.shiftKey && (active === first || outside)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (active === last || outside)) {
      event.preventDefault();
      first.focus();
    }
  });
}
