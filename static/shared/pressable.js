// Make an element that is not a <button> (an SVG segment, a token in running
// text, a box of the class tree) behave as one for keyboards and screen
// readers: focusable, named, pressed with a click, Enter or Space.
export function pressable(el, label, onPress) {
  el.setAttribute("tabindex", "0");
  el.setAttribute("role", "button");
  el.setAttribute("aria-label", label);
  el.addEventListener("click", onPress);
  el.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      onPress();
    }
  });
  return el;
}
