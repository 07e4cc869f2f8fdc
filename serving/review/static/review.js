// Keyboard shortcuts for the review page. Everything also works without them: forms, links, Tab.
// An element with data-key="x" is clicked (buttons, links) or focused (text fields) when x is pressed.
"use strict";

function moveInQueue(step) {
  const links = Array.from(document.querySelectorAll("a.queue-item"));
  if (!links.length) return false;
  const at = links.indexOf(document.activeElement);
  const next = links[Math.min(Math.max(at + step, 0), links.length - 1)];
  next.focus();
  next.scrollIntoView({ block: "nearest" });
  return true;
}

document.addEventListener("keydown", (ev) => {
  const field = ev.target.closest("input, textarea, select");
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter" && field && field.form) {
    ev.preventDefault();
    field.form.requestSubmit(field.form.querySelector("button[type=submit]"));
    return;
  }
  if (field) {
    if (ev.key === "Escape") field.blur();
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if ((ev.key === "j" || ev.key === "k") && moveInQueue(ev.key === "j" ? 1 : -1)) {
    ev.preventDefault();
    return;
  }
  const target = document.querySelector(`[data-key="${CSS.escape(ev.key)}"]`);
  if (!target) return;
  ev.preventDefault();
  if (target.matches("textarea, input")) {
    target.focus();
    target.setSelectionRange(target.value.length, target.value.length);
  } else {
    target.click();
  }
});
