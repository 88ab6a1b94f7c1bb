// The page of python -m mnistx.serve: a drawing pad, file drop, and every model's answer.
// The pad is white ink on black, like MNIST; what is sent is the pad as a PNG, which the
// server preprocesses exactly as python -m mnistx.predict does with a file.
"use strict";

const BRUSH = 22; // px on the 280 px pad: a stroke about as thick as MNIST's after scaling
const LIVE_MS = 150; // while drawing, ask at most this often

const pad = document.getElementById("canvas");
const ctx = pad.getContext("2d");
const view = document.getElementById("input-view");
const el = (id) => document.getElementById(id);

let strokes = []; // each a list of [x, y] points, for Undo
let current = null;
let models = [];
let limits = { max_upload_bytes: Infinity };
let seq = 0; // the newest request; older answers are dropped
let busy = false; // a drawing is on its way to the server
let again = false; // the drawing changed meanwhile: ask again when the answer comes
let pending = 0; // requests not answered yet
let lastAsked = 0;

// body[data-settled=yes]: nothing drawn, sent or coming that the page does not show yet.
function settle() {
  document.body.dataset.settled = pending === 0 && !again && !current ? "yes" : "no";
}

function blank() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
}

function paint(stroke) {
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineWidth = BRUSH;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  if (stroke.length === 1) {
    ctx.beginPath();
    ctx.arc(stroke[0][0], stroke[0][1], BRUSH / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(...stroke[0]);
  for (const p of stroke.slice(1)) ctx.lineTo(...p);
  ctx.stroke();
}

function redraw() {
  blank();
  strokes.forEach(paint);
  el("hint").hidden = strokes.length > 0;
  el("undo").disabled = strokes.length === 0;
  el("clear").disabled = strokes.length === 0;
}

function at(event) {
  const r = pad.getBoundingClientRect();
  return [
    ((event.clientX - r.left) * pad.width) / r.width,
    ((event.clientY - r.top) * pad.height) / r.height,
  ];
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  current = [at(event)];
  strokes.push(current);
  redraw();
  settle();
});

pad.addEventListener("pointermove", (event) => {
  if (!current) return;
  current.push(at(event));
  paint(current.slice(-2));
  if (performance.now() - lastAsked > LIVE_MS) askDrawing();
});

function endStroke() {
  if (!current) return;
  current = null;
  redraw(); // the pad as Undo will redraw it, so the same drawing always gets the same answer
  askDrawing();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

el("undo").addEventListener("click", () => {
  strokes.pop();
  redraw();
  askDrawing();
});

el("clear").addEventListener("click", () => {
  strokes = [];
  redraw();
  askDrawing();
});

function askDrawing() {
  if (strokes.length === 0) {
    seq += 1; // an answer still on its way is for a drawing that is gone
    reset();
    settle();
    return;
  }
  if (busy) {
    again = true;
    return;
  }
  lastAsked = performance.now();
  busy = true;
  pending += 1;
  settle();
  pad.toBlob((blob) => send(blob, "drawing", "your drawing"), "image/png");
}

async function send(body, name, source) {
  const id = ++seq;
  lastAsked = performance.now();
  try {
    const response = await fetch("/api/predict", {
      method: "POST",
      body,
      headers: { "X-Filename": encodeURIComponent(name) },
    });
    const answer = await response.json();
    if (id !== seq) return;
    if (!response.ok) showError(answer.error || `The server answered ${response.status}.`);
    else show(answer, source);
  } catch (err) {
    if (id === seq) showError(`No answer from the server (${err}). Is mnistx.serve still running?`);
  } finally {
    pending -= 1;
    if (name === "drawing") busy = false;
    if (again && !busy) {
      again = false;
      askDrawing();
    }
    settle();
  }
}

function sendFile(file) {
  if (!file) return;
  strokes = [];
  redraw();
  if (file.size > limits.max_upload_bytes) {
    seq += 1;
    const mb = Math.floor(limits.max_upload_bytes / 2 ** 20);
    showError(`${file.name}: the file is larger than ${mb} MB, the most this page reads. ` +
      `Send a smaller image of the digit (a crop, or a PNG/JPEG under ${mb} MB).`);
    return;
  }
  pending += 1;
  settle();
  send(file, file.name, file.name);
}

el("file").addEventListener("change", (event) => {
  sendFile(event.target.files[0]);
  event.target.value = "";
});
document.addEventListener("dragover", (event) => {
  event.preventDefault();
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (event) => {
  event.preventDefault();
  document.body.classList.remove("dragging");
  sendFile(event.dataTransfer.files[0]);
});

function reset() {
  el("error").hidden = true;
  el("prediction").textContent = "–";
  el("agreement").textContent = "";
  el("source").textContent = "";
  view.getContext("2d").clearRect(0, 0, 28, 28);
  models.forEach((m, i) => fillCard(i, null));
  document.body.dataset.answered = "no";
}

function showError(message) {
  reset();
  el("error").textContent = message;
  el("error").hidden = false;
  document.body.dataset.answered = "error";
}

function showInput(rows) {
  const image = new ImageData(28, 28);
  rows.flat().forEach((v, i) => {
    const g = Math.round(v * 255);
    image.data.set([g, g, g, 255], 4 * i);
  });
  view.getContext("2d").putImageData(image, 0, 0);
}

function show(answer, source) {
  el("error").hidden = true;
  el("source").textContent = `From ${source}.`;
  showInput(answer.input);
  answer.predictions.forEach((p, i) => fillCard(i, p));
  // The digit most models predict (the first model's on a tie), and how many agree.
  const votes = {};
  answer.predictions.forEach((p) => (votes[p.prediction] = (votes[p.prediction] || 0) + 1));
  const top = answer.predictions
    .map((p) => p.prediction)
    .reduce((a, b) => (votes[b] > votes[a] ? b : a));
  el("prediction").textContent = top;
  const n = answer.predictions.length;
  el("agreement").textContent =
    n === 1
      ? ""
      : votes[top] === n
        ? `${n === 2 ? "both" : `all ${n}`} models agree`
        : `${votes[top]} of ${n} models`;
  document.body.dataset.answered = String(seq);
}

function card(model, i) {
  const node = document.createElement("article");
  node.className = "model";
  node.dataset.index = String(i);
  const title = document.createElement("h2");
  title.textContent = model.label;
  title.title = model.run;
  const acc = document.createElement("div");
  acc.className = "acc";
  const tested =
    model.test_acc == null ? "not tested" : `test/acc ${(100 * model.test_acc).toFixed(2)}%`;
  acc.textContent = `${model.model} · ${tested}`;
  const digit = document.createElement("div");
  digit.className = "digit";
  const bars = document.createElement("div");
  bars.className = "bars";
  node.append(title, acc, digit, bars);
  return node;
}

function percent(p) {
  return p >= 0.9995 ? "100%" : `${(100 * p).toFixed(1)}%`;
}

function fillCard(i, p) {
  const node = el("models").children[i];
  node.querySelector(".digit").textContent = p ? p.prediction : "–";
  const bars = node.querySelector(".bars");
  bars.replaceChildren();
  for (const t of p ? p.top3 : []) {
    const row = document.createElement("div");
    row.className = "bar";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = t.name;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = `${100 * t.probability}%`;
    fill.style.display = "block";
    track.append(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = percent(t.probability);
    row.append(name, track, pct);
    bars.append(row);
  }
}

async function start() {
  redraw();
  el("endpoint").textContent = `${location.origin}/api/predict`;
  const response = await fetch("/api/models");
  const served = await response.json();
  models = served.models;
  limits = served.limits;
  el("models").replaceChildren(...models.map(card));
  reset();
  settle();
  document.body.dataset.ready = "yes";
}

start().catch((err) => showError(`Cannot reach the server (${err}).`));
