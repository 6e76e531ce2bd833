// cnnlab serve: the page. Plain JavaScript, no build step, no request to any other host.
// Every picture comes from the JSON API beside the page; every text from the server is set with
// textContent (never parsed as HTML).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { info: null, file: null, seq: { explain: 0, features: 0, unit: 0 }, photoOk: true };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function setStatus(text, isError = false) {
  const s = $("status");
  s.textContent = text;
  s.classList.toggle("error", isError);
}

function detailText(detail) {
  if (Array.isArray(detail)) return detail.map((d) => `${(d.loc || []).slice(-1)[0]}: ${d.msg}`).join("; ");
  return String(detail);
}

async function post(path, fields) {
  const form = new FormData();
  form.append("file", state.file);
  for (const [k, v] of Object.entries(fields)) form.append(k, String(v));
  const response = await fetch(path, { method: "POST", body: form });
  let body;
  try { body = await response.json(); } catch { body = { detail: `${response.status} ${response.statusText}` }; }
  if (!response.ok) throw new Error(detailText(body.detail));
  return body;
}

function pct(p) { return `${(100 * p).toFixed(1)}%`; }

function fill(select, options) {
  for (const [value, text] of options) select.append(el("option", { value, textContent: text }));
}

async function init() {
  const response = await fetch("/api/info");
  const info = await response.json();
  state.info = info;
  $("model").textContent = `${info.model} · ${info.input_size.join("×")} input · ${info.classes.length} classes` +
    (info.learned ? "" : " · random weights: nothing learned to explain");
  for (const n of info.notices) $("notices").append(el("li", { textContent: n }));
  $("limits").textContent = `up to ${(info.max_upload_bytes / 1048576).toFixed(0)} MB: JPEG, PNG, WebP, BMP, GIF or TIFF`;
  $("file").accept = info.accepted_types.join(",");
  fill($("method"), info.methods.map((m) => [m, m]));
  $("method").value = info.default_method;
  fill($("target"), info.classes.map((c, i) => [String(i), c]));
  fill($("cam-layer"), [["auto", `auto (${info.cam_layer})`], ...info.layers.map((l) => [l.name, l.name])]);
  fill($("fm-layer"), info.layers.map((l) => [l.name, `${l.name} (${l.shape[0] > 64 ? `64 of ${l.shape[0]}` : `all ${l.shape[0]}`} channels)`]));
  examples();
}

function dataUrlFile(url, name) {
  // a data: URL as a File, without fetch (the page's CSP allows no data: connections)
  const [head, data] = url.split(",");
  const type = head.slice(5).split(";")[0];
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  return new File([bytes], name, { type });
}

async function examples() {
  // Photos of the run's own validation set, one click each.
  const response = await fetch("/api/examples");
  if (!response.ok) return;
  const r = await response.json();
  if (!r.examples.length) return;
  $("examples").replaceChildren(...r.examples.map((ex) => {
    const b = el("button", { type: "button", className: "example", title: `${ex.name} (${ex.class})` },
      el("img", { src: ex.image, alt: `example: ${ex.class}` }));
    b.addEventListener("click", () => usePhoto(dataUrlFile(ex.image, ex.name)));
    return b;
  }));
  $("examples-box").hidden = false;
}

function clearAnswer() {
  // Nothing of the previous photo may stay beside a new one (nor beside an error).
  $("top-class").textContent = "";
  $("bars").replaceChildren();
  $("caption").textContent = "";
  $("photo-notice").textContent = "";
  $("heatmap").hidden = true;
  $("heatmap").removeAttribute("src");
  $("region").setAttribute("hidden", "");
  clearUnit();
  $("strips").replaceChildren();
}

function clearUnit() {
  $("rf-box").setAttribute("hidden", "");
  $("unit-info").hidden = true;
  $("unit-info").replaceChildren();
  document.querySelectorAll(".tile .unit").forEach((u) => u.remove());
}

function usePhoto(file) {
  if (!file) return;
  state.file = file;
  state.photoOk = true;
  state.seq.unit++;  // an answer still on its way belongs to the previous photo
  clearAnswer();
  $("viewer").hidden = false;
  $("photo").hidden = false;
  $("photo").src = URL.createObjectURL(file);
  explain();
  features();
}

function failed(message) {
  // The error replaces the answer: no class, bars or heatmap of an earlier photo stay.
  clearAnswer();
  if (!state.photoOk) $("photo").hidden = true;  // the browser could not show it either
  setStatus(message, true);
}

function frame(size, region) {
  const [w, h] = size;
  $("marks").setAttribute("viewBox", `0 0 ${w} ${h}`);
  const r = $("region");
  const whole = region[0] <= 0 && region[1] <= 0 && region[2] >= w && region[3] >= h;
  if (whole) { r.setAttribute("hidden", ""); return; }
  r.removeAttribute("hidden");
  r.setAttribute("x", region[0]); r.setAttribute("y", region[1]);
  r.setAttribute("width", region[2] - region[0]); r.setAttribute("height", region[3] - region[1]);
}

async function explain() {
  if (!state.file) return;
  const seq = ++state.seq.explain;
  setStatus("computing the heatmap…");
  try {
    const r = await post("/api/explain", {
      method: $("method").value, target: $("target").value, layer: $("cam-layer").value, top_k: 5,
      overlay: !state.photoOk, scale: $("same-scale").checked ? "probability" : "own",
    });
    if (seq !== state.seq.explain) return;
    $("photo-notice").textContent = r.notice || "";
    const top = r.predictions[0];
    $("top-class").textContent = `${top.class} · ${pct(top.probability)}`;
    $("bars").replaceChildren(...r.predictions.map((p) => el("li", {},
      el("span", { className: "name", textContent: p.class, title: p.class }),
      el("span", { className: "bar", style: `width:${Math.max(0.5, 100 * p.probability)}%` }),
      el("span", { className: "p", textContent: pct(p.probability) }))));
    frame(r.size, r.region);
    const heat = $("heatmap");
    heat.dataset.method = r.method;
    heat.dataset.target = r.target_class;
    if (state.photoOk) { heat.src = r.heatmap; heat.hidden = false; } else { $("photo").src = r.overlay; }
    $("caption").textContent = `${r.method} on ${r.layer} for “${r.target_class}”, probability ` +
      `${pct(r.probability)}${r.scale === "probability" ? " (colour scaled by it)" : " (colour: this map's own max)"}; ` +
      `photo ${r.size[0]}×${r.size[1]} px`;
    setStatus("");
  } catch (err) {
    if (seq === state.seq.explain) failed(err.message);
  }
}

function fieldText(l) {
  const j = l.jump[0] === l.jump[1] ? l.jump[0] : l.jump.join("×");
  return `${l.shape.join("×")} · field ${l.receptive_field.join("×")} px · jump ${j}`;
}

async function features() {
  if (!state.file) return;
  const seq = ++state.seq.features;
  const layer = $("fm-layer").value;
  $("strips").replaceChildren(el("p", { className: "hint", textContent: "computing the feature maps…" }));
  try {
    const r = await post("/api/features", { layer, channels: layer ? 64 : 8 });
    if (seq !== state.seq.features) return;
    $("strips").replaceChildren(...r.stages.map((st) => el("div", { className: "strip" },
      el("h3", {}, `${st.name} `, el("span", { textContent: `${st.type} · ${fieldText(st)} · ` +
        (st.channels.length < st.shape[0] ? `${st.channels.length} of ${st.shape[0]} channels, strongest first`
          : `all ${st.shape[0]} channels`) })),
      el("div", { className: "tiles" }, ...st.channels.map((c) => tile(st, c))))));
  } catch (err) {
    if (seq === state.seq.features) $("strips").replaceChildren(el("p", { className: "hint error", textContent: err.message }));
  }
}

function tile(stage, channel) {
  const img = el("img", {
    src: channel.image, alt: `${stage.name} channel ${channel.index}`,
    title: `channel ${channel.index}: mean ${channel.mean.toFixed(3)}, max ${channel.max.toFixed(3)}`,
    dataset: { layer: stage.name, channel: String(channel.index), rows: String(stage.shape[1]), cols: String(stage.shape[2]) },
  });
  const box = el("div", { className: "tile" + (channel.dead ? " dead" : "") }, img,
    el("span", { className: "label", textContent: `#${channel.index}` }));
  img.addEventListener("click", (ev) => {
    const rect = img.getBoundingClientRect();
    const rows = stage.shape[1], cols = stage.shape[2];
    const row = Math.min(rows - 1, Math.floor((ev.clientY - rect.top) / rect.height * rows));
    const col = Math.min(cols - 1, Math.floor((ev.clientX - rect.left) / rect.width * cols));
    markUnit(box, img, rows, cols, row, col);
    unit(stage.name, channel.index, row, col);
  });
  return box;
}

function markUnit(box, img, rows, cols, row, col) {
  document.querySelectorAll(".tile .unit").forEach((u) => u.remove());
  const w = img.clientWidth / cols, h = img.clientHeight / rows;
  box.append(el("div", { className: "unit", style: `left:${img.offsetLeft + col * w}px;top:${img.offsetTop + row * h}px;` +
    `width:${Math.max(w, 4)}px;height:${Math.max(h, 4)}px` }));
}

async function unit(layer, channel, row, col) {
  const seq = ++state.seq.unit;
  try {
    const r = await post("/api/unit", { layer, channel, row, col, inputs: 6 });
    if (seq !== state.seq.unit) return;
    const b = $("rf-box");
    const [x0, y0, x1, y1] = r.box;
    b.setAttribute("x", x0); b.setAttribute("y", y0);
    b.setAttribute("width", x1 - x0); b.setAttribute("height", y1 - y0);
    Object.assign(b.dataset, {
      layer: r.layer, rows: String(r.box_size[0]), cols: String(r.box_size[1]),
      fieldRows: String(r.receptive_field[0]), fieldCols: String(r.receptive_field[1]),
    });
    b.removeAttribute("hidden");
    const bi = r.box_input, fi = r.field_input;
    const clipped = bi.top !== fi.top || bi.left !== fi.left || bi.bottom !== fi.bottom || bi.right !== fi.right;
    const info = $("unit-info");
    info.replaceChildren(
      el("p", { textContent: `${r.layer}, channel ${r.channel}, unit (row ${r.row}, col ${r.col}): activation ${r.activation.toFixed(3)}` }),
      el("p", { textContent: `Sees input rows ${bi.top}–${bi.bottom}, cols ${bi.left}–${bi.right}: ` +
        `${r.box_size[0]}×${r.box_size[1]} input pixels (receptive field ${r.receptive_field.join("×")}` +
        `${clipped ? ", clipped at the border" : ""}), outlined on the photo.` }),
      el("p", { textContent: `Strongest inputs from ${r.inputs_from} (gradient × input, summed over each channel):` }),
      el("div", { className: "tiles" }, ...r.strongest_inputs.map((c) => el("div", { className: "tile" },
        el("img", { src: c.image, alt: `input channel ${c.channel}`, title: `channel ${c.channel}` }),
        el("span", { className: "label", textContent: `#${c.channel} ${c.contribution >= 0 ? "+" : ""}${c.contribution.toFixed(2)}` })))));
    info.hidden = false;
  } catch (err) {
    if (seq === state.seq.unit) setStatus(err.message, true);
  }
}

function wire() {
  $("file").addEventListener("change", (ev) => usePhoto(ev.target.files[0]));
  const drop = $("drop");
  drop.addEventListener("keydown", (ev) => {
    // the zone is a button for the keyboard: Enter or Space opens the file chooser
    if (ev.target !== drop || (ev.key !== "Enter" && ev.key !== " ")) return;
    ev.preventDefault();
    $("file").click();
  });
  drop.addEventListener("dragover", (ev) => { ev.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    usePhoto(ev.dataTransfer.files[0]);
  });
  for (const id of ["method", "target", "cam-layer", "same-scale"]) $(id).addEventListener("change", explain);
  $("fm-layer").addEventListener("change", () => { state.seq.unit++; clearUnit(); features(); });
  $("opacity").addEventListener("input", (ev) => { $("heatmap").style.opacity = ev.target.value / 100; });
  $("photo").addEventListener("error", () => {
    // A format the browser cannot show (TIFF, say): show the server's own decoding, blended.
    if (!state.photoOk) return;
    state.photoOk = false;
    $("heatmap").hidden = true;
    explain();
  });
}

wire();
init().catch((err) => setStatus(`cannot reach the server: ${err.message}`, true));
