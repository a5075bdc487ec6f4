// The region editor: paint the area to repaint on <canvas id="mask"> over the image, then submit the mask as a
// black-and-white PNG (white = repaint). Pointer events cover mouse, pen and touch alike; the canvas has the image's
// own pixel size and is scaled by CSS, so every point is mapped back to image pixels. What it shows in words comes
// from the page, in the page's language: <script type="application/json" id="editor-text"> maps catalog keys
// (app.EDITOR_JS_KEYS) to their text.
"use strict";
(() => {
  const canvas = document.getElementById("mask");
  const form = document.getElementById("editor");
  if (!canvas || !form) return;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const size = document.getElementById("size");
  const errorLine = document.getElementById("error");
  const blob = document.getElementById("editor-text");
  const TEXT = blob ? JSON.parse(blob.textContent) : {};
  const PAINT = "rgb(255, 0, 110)";
  const UNDO_DEPTH = 30;
  const undo = [];
  let tool = "brush";
  let gesture = null; // { start, last, points, before }

  const tg = window.Telegram && window.Telegram.WebApp;
  if (tg) {
    document.getElementById("init-data").value = tg.initData || "";
    tg.ready();
    tg.expand();
  }

  const snapshot = () => ctx.getImageData(0, 0, canvas.width, canvas.height);
  const pixelsPerCssPixel = () => canvas.width / canvas.getBoundingClientRect().width;
  function at(event) {
    const r = canvas.getBoundingClientRect();
    return { x: ((event.clientX - r.left) * canvas.width) / r.width, y: ((event.clientY - r.top) * canvas.height) / r.height };
  }
  function remember() {
    undo.push(snapshot());
    if (undo.length > UNDO_DEPTH) undo.shift();
  }

  function line(a, b) {
    ctx.globalCompositeOperation = tool === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = PAINT;
    ctx.lineWidth = Number(size.value) * pixelsPerCssPixel();
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x + 0.01, b.y); // a zero-length line draws nothing: a tap still leaves a dot
    ctx.stroke();
  }
  function shape(points, fill) {
    ctx.globalCompositeOperation = "source-over";
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(p.x, p.y) : ctx.moveTo(p.x, p.y)));
    if (fill) {
      ctx.closePath();
      ctx.fillStyle = PAINT;
      ctx.fill();
    } else {
      ctx.strokeStyle = PAINT;
      ctx.lineWidth = 2 * pixelsPerCssPixel();
      ctx.stroke();
    }
  }
  function rectPoints(a, b) {
    return [a, { x: b.x, y: a.y }, b, { x: a.x, y: b.y }];
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    remember();
    const p = at(event);
    gesture = { start: p, last: p, points: [p], before: snapshot() };
    if (tool === "brush" || tool === "eraser") line(p, p);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!gesture) return;
    event.preventDefault();
    const p = at(event);
    if (tool === "brush" || tool === "eraser") {
      line(gesture.last, p);
    } else {
      ctx.putImageData(gesture.before, 0, 0);
      if (tool === "rect") shape(rectPoints(gesture.start, p), true);
      else {
        gesture.points.push(p);
        shape(gesture.points, false);
      }
    }
    gesture.last = p;
  });
  function finish(event) {
    if (!gesture) return;
    const p = event.type === "pointercancel" ? gesture.last : at(event);
    if (tool === "rect" || tool === "lasso") {
      ctx.putImageData(gesture.before, 0, 0);
      if (tool === "rect") shape(rectPoints(gesture.start, p), true);
      else if (gesture.points.length > 2) shape([...gesture.points, p], true);
    }
    gesture = null;
  }
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);

  document.querySelectorAll("[data-tool]").forEach((button) =>
    button.addEventListener("click", () => {
      tool = button.dataset.tool;
      document.querySelectorAll("[data-tool]").forEach((b) => {
        b.classList.toggle("active", b === button);
        b.setAttribute("aria-pressed", String(b === button));
      });
    })
  );
  document.getElementById("undo").addEventListener("click", () => {
    if (undo.length) ctx.putImageData(undo.pop(), 0, 0);
  });
  document.getElementById("clear").addEventListener("click", () => {
    remember();
    ctx.clearRect(0, 0, canvas.width, canvas.height);
  });

  // Submit: painted pixels (any alpha) become white, the rest black, in an opaque PNG of the image's size.
  form.addEventListener("submit", (event) => {
    const painted = snapshot();
    const out = document.createElement("canvas");
    out.width = canvas.width;
    out.height = canvas.height;
    const octx = out.getContext("2d");
    const mask = octx.createImageData(canvas.width, canvas.height);
    let any = false;
    for (let i = 0; i < painted.data.length; i += 4) {
      const v = painted.data[i + 3] >= 128 ? 255 : 0;
      any = any || v === 255;
      mask.data[i] = mask.data[i + 1] = mask.data[i + 2] = v;
      mask.data[i + 3] = 255;
    }
    if (!any) {
      event.preventDefault();
      errorLine.textContent = TEXT["web.js_paint_first"];
      return;
    }
    octx.putImageData(mask, 0, 0);
    document.getElementById("mask-data").value = out.toDataURL("image/png");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.textContent = TEXT["web.js_sending"];
  });
})();
