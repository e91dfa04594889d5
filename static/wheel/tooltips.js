// One tooltip for everything with data-tip: follows the mouse, appears on
// keyboard focus and on a tap, so it works without a hover-capable pointer.

export function initTips(tip) {
  let current = null;
  const place = (x, y) => {
    const w = tip.offsetWidth;
    const h = tip.offsetHeight;
    const left = Math.min(window.innerWidth - w - 8, Math.max(8, x + 14));
    const top = y + 18 + h > window.innerHeight ? y - h - 12 : y + 18;
    tip.style.left = `${left}px`;
    tip.style.top = `${Math.max(8, top)}px`;
  };
  const show = (target, x, y) => {
    current = target;
    tip.textContent = target.dataset.tip;
    tip.hidden = false;
    if (x == null) {
      const r = target.getBoundingClientRect();
      x = r.left + r.width / 2;
      y = r.bottom - 8;
    }
    place(x, y);
  };
  const hide = () => {
    current = null;
    tip.hidden = true;
  };
  document.addEventListener("pointerover", (e) => {
    const t = e.target.closest?.("[data-tip]");
    if (t) show(t, e.clientX, e.clientY);
    else if (current) hide();
  });
  document.addEventListener("pointermove", (e) => {
    if (current) place(e.clientX, e.clientY);
  });
  document.addEventListener("focusin", (e) => {
    const t = e.target.closest?.("[data-tip]");
    if (t) show(t);
    else hide();
  });
  document.addEventListener("focusout", hide);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") hide();
  });
  window.addEventListener("scroll", hide, { passive: true });
}
