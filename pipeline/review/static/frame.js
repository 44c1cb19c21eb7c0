// Frame labelling keys: [ / ] previous / next sampled frame, m marks the frame fully labelled.
// n (draw a missed violation) is draw.js's. Keys are ignored while typing in a form field.
(() => {
  "use strict";
  const root = document.getElementById("frame");
  if (!root) return;
  let busy = false;
  const typing = (el) =>
    el instanceof HTMLElement && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    const go = (url) => { if (url) window.location.assign(url); };
    const form = document.getElementById("f-complete");
    const actions = {
      "[": () => go(root.dataset.prev),
      "]": () => go(root.dataset.next),
      m: () => { if (form && !busy) { busy = true; form.requestSubmit(); } },
    };
    const run = actions[e.key];
    if (run) {
      e.preventDefault();
      run();
    }
  });
})();
