// Boxes from the keyboard and mouse. n: add a violation the model missed (the clip pauses; drag a box
// over the picture, then 1-3 picks its category). b: correct this violation's box on its keyframe (drag,
// then Enter). Esc cancels. Boxes are sent in the source's own pixels (data-width / data-height), so a
// scaled proxy or keyframe draws the same box as the original. While drawing, this handler takes every
// key first (capture phase), so 1-3 never relabel by accident.
(() => {
  "use strict";
  // boxes already known are placed here, not by style attributes (the CSP allows no inline styles)
  for (const el of document.querySelectorAll("[data-pos]")) {
    const [left, top, width, height] = el.dataset.pos.split(",").map(Number);
    Object.assign(el.style, { left: `${left}%`, top: `${top}%`, width: `${width}%`, height: `${height}%` });
  }
  const addForm = document.getElementById("f-add");
  const boxForm = document.getElementById("f-box");
  const targets = { add: document.querySelector("[data-draw=add]"), box: document.querySelector("[data-draw=box]") };
  if (!addForm && !boxForm) return;
  const root = document.getElementById("review");
  const clipStart = root ? parseFloat(root.dataset.clipStart) || 0 : 0;
  const categories = addForm ? addForm.dataset.categories.split(",") : [];
  let mode = null;
  let layer = null;
  let rect = null;
  let origin = null;
  let drawn = null; // fractions of the picture: [x1, y1, x2, y2]
  let busy = false;
  const hint = document.createElement("div");
  hint.className = "draw-hint";
  hint.id = "draw-hint";
  hint.hidden = true;
  document.body.appendChild(hint);

  const typing = (el) =>
    el instanceof HTMLElement && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));

  // The picture inside the element: a video letterboxes its frame inside its box.
  function picture(el) {
    const r = el.getBoundingClientRect();
    const nw = el.videoWidth || el.naturalWidth;
    const nh = el.videoHeight || el.naturalHeight;
    if (!nw || !nh) return { left: r.left, top: r.top, width: r.width, height: r.height };
    const s = Math.min(r.width / nw, r.height / nh);
    return { left: r.left + (r.width - nw * s) / 2, top: r.top + (r.height - nh * s) / 2, width: nw * s, height: nh * s };
  }

  function say(text) {
    hint.textContent = text;
    hint.hidden = !text;
  }

  function cancel() {
    if (layer) layer.remove();
    layer = rect = origin = drawn = null;
    mode = null;
    say("");
  }

  function begin(which) {
    const el = targets[which];
    const form = which === "add" ? addForm : boxForm;
    if (!el || !form) return;
    if (el.tagName === "VIDEO") el.pause();
    cancel();
    mode = which;
    const p = picture(el);
    layer = document.createElement("div");
    layer.className = "draw-layer";
    layer.id = "draw-layer";
    Object.assign(layer.style, { left: `${p.left + window.scrollX}px`, top: `${p.top + window.scrollY}px`,
                                 width: `${p.width}px`, height: `${p.height}px` });
    layer.addEventListener("mousedown", down);
    document.body.appendChild(layer);
    say(which === "add" ? "拖动鼠标框出漏检的违规（Esc 取消）" : "拖动鼠标画出正确的框（Esc 取消）");
  }

  function at(e) {
    const r = layer.getBoundingClientRect();
    return [Math.min(Math.max(0, (e.clientX - r.left) / r.width), 1), Math.min(Math.max(0, (e.clientY - r.top) / r.height), 1)];
  }

  function down(e) {
    e.preventDefault();
    origin = at(e);
    drawn = null;
    if (!rect) {
      rect = document.createElement("div");
      rect.className = "draw-rect";
      layer.appendChild(rect);
    }
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up, { once: true });
  }

  function corners(e) {
    const [x, y] = at(e);
    return [Math.min(origin[0], x), Math.min(origin[1], y), Math.max(origin[0], x), Math.max(origin[1], y)];
  }

  function move(e) {
    const [x1, y1, x2, y2] = corners(e);
    Object.assign(rect.style, { left: `${x1 * 100}%`, top: `${y1 * 100}%`, width: `${(x2 - x1) * 100}%`,
                                height: `${(y2 - y1) * 100}%` });
  }

  function up(e) {
    window.removeEventListener("mousemove", move);
    move(e);
    const box = corners(e);
    if (box[2] - box[0] < 0.005 || box[3] - box[1] < 0.005) {
      say("框太小，请重新拖动（Esc 取消）");
      return;
    }
    drawn = box;
    say(mode === "add" ? "按 1 暴露垃圾 / 2 违规停车 / 3 占道经营 保存（Esc 取消）" : "按 Enter 保存修正后的框（Esc 取消）");
  }

  function fill(form, el) {
    const w = parseFloat(el.dataset.width);
    const h = parseFloat(el.dataset.height);
    const px = [drawn[0] * w, drawn[1] * h, drawn[2] * w, drawn[3] * h].map((v) => v.toFixed(1));
    ["x1", "y1", "x2", "y2"].forEach((k, i) => { form.elements[k].value = px[i]; });
  }

  function save(category) {
    if (busy || !drawn) return;
    const el = targets[mode];
    if (mode === "add") {
      fill(addForm, el);
      const t = el.tagName === "VIDEO" ? clipStart + el.currentTime : parseFloat(el.dataset.t);
      addForm.elements.t_s.value = t.toFixed(3);
      addForm.elements.category.value = category;
      busy = true;
      say("正在生成证据片段…");
      addForm.requestSubmit();
    } else {
      fill(boxForm, el);
      busy = true;
      boxForm.requestSubmit();
    }
  }

  window.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e.target)) return;
    if (mode === null) {
      if ((e.key === "n" && addForm && targets.add) || (e.key === "b" && boxForm && targets.box)) {
        e.preventDefault();
        e.stopImmediatePropagation();
        begin(e.key === "n" ? "add" : "box");
      }
      return;
    }
    e.preventDefault();
    e.stopImmediatePropagation();
    if (e.key === "Escape") cancel();
    else if (mode === "add" && /^[1-9]$/.test(e.key) && categories[Number(e.key) - 1]) save(categories[Number(e.key) - 1]);
    else if (mode === "box" && e.key === "Enter") save(null);
  }, true);
})();
