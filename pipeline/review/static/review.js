// Keyboard review: j/k move, c confirm, x then 1-4 reject, 1/2/3 relabel, space play/pause,
// arrows seek 2 s, ? shortcut sheet. Keys are ignored while typing in a form field.
(() => {
  "use strict";
  const root = document.getElementById("review");
  if (!root) return;
  const video = document.getElementById("clip");
  const sheet = document.getElementById("shortcuts");
  const picker = document.getElementById("reject-picker");
  const clipStart = parseFloat(root.dataset.clipStart) || 0;
  let rejecting = false;
  let busy = false;

  const typing = (el) =>
    el instanceof HTMLElement && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));

  // Submit a decision form once; a second key press while the page is leaving does nothing.
  function submit(formId, button, fields) {
    const form = document.getElementById(formId);
    if (!form || busy) return;
    for (const [name, value] of Object.entries(fields || {})) form.elements[name].value = value;
    busy = true;
    form.requestSubmit(button || undefined);
  }

  function setRejecting(on) {
    rejecting = on;
    if (picker) picker.hidden = !on;
  }

  function seek(delta) {
    if (!video) return;
    const end = Number.isFinite(video.duration) ? video.duration : Infinity;
    video.currentTime = Math.min(Math.max(0, video.currentTime + delta), end);
  }

  function relabel(digit) {
    const button = document.querySelector(`#f-relabel button[data-key="${digit}"]`);
    if (button && !button.disabled) submit("f-relabel", button);
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    if (rejecting) {
      e.preventDefault();
      if (/^[1-4]$/.test(e.key)) {
        const select = document.querySelector("#f-reject select[name=reason]");
        submit("f-reject", null, { reason: select.options[Number(e.key) - 1].value });
      }
      setRejecting(false);
      return;
    }
    const go = (url) => { if (url) window.location.assign(url); };
    const actions = {
      j: () => go(root.dataset.next),
      k: () => go(root.dataset.prev),
      f: () => go(root.dataset.frame),
      c: () => submit("f-confirm"),
      x: () => { if (document.getElementById("f-reject")) setRejecting(true); },
      1: () => relabel(1), 2: () => relabel(2), 3: () => relabel(3),
      " ": () => { if (video) (video.paused ? video.play() : video.pause()); },
      ArrowLeft: () => seek(-2),
      ArrowRight: () => seek(2),
      "?": () => { sheet.hidden = !sheet.hidden; },
      Escape: () => { sheet.hidden = true; },
    };
    const run = actions[e.key];
    if (run) {
      e.preventDefault();
      run();
    }
  }

  document.addEventListener("keydown", onKey);
  document.getElementById("show-keys").addEventListener("click", () => { sheet.hidden = !sheet.hidden; });
  // "start = current" / "end = current": the clip's playhead as a time in the source footage
  for (const button of document.querySelectorAll("button[data-mark]")) {
    button.addEventListener("click", () => {
      if (video) document.getElementById(button.dataset.mark).value = (clipStart + video.currentTime).toFixed(2);
    });
  }
})();
