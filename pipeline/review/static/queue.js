// "Select all" for the batch confirm/reject checkboxes on the queue page.
(() => {
  "use strict";
  const all = document.getElementById("select-all");
  if (!all) return;
  all.addEventListener("change", () => {
    for (const box of document.querySelectorAll('input[name="ids"]')) box.checked = all.checked;
  });
})();
