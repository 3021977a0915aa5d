// Miragen studio: the page. Plain JavaScript, no build step; every asset is served by
// `miragen web` itself. Data comes from the JSON API under /api/ and one event stream
// (/api/events): the page never polls.
"use strict";

const RATE = 29411; // the Mirage's default sample rate (1 MHz / 34)
const NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined) e.setAttribute(k, v);
  }
  for (const kid of kids.flat()) e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return e;
};
const noteName = (n) => NOTE_NAMES[n % 12] + (Math.floor(n / 12) - 1);
const enc = encodeURIComponent;

const S = { csrf: "", status: null, classes: [], candidates: [], triggers: null, learnId: "",
  waitingDelivery: "", player: { ctx: null, src: null, current: null } };

// ------------------------------------------------------------------ API
async function api(method, url, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") opts.headers["x-csrf-token"] = S.csrf;
  if (body instanceof FormData) opts.body = body;
  else if (body !== undefined) { opts.headers["content-type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(url, opts);
  if (r.status === 401) { location.href = "/login"; throw new Error("log in first"); }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.error || `${r.status} ${r.statusText}`);
  return data;
}
function toast(text, bad = false) {
  const t = el("div", { class: bad ? "bad" : "" }, text);
  $("toast").append(t);
  setTimeout(() => t.remove(), bad ? 9000 : 4000);
}
const guard = (fn) => async (...a) => { try { await fn(...a); } catch (e) { toast(e.message, true); } };

// ------------------------------------------------------------------ tabs
function showTab() {
  const name = (location.hash || "#status").slice(1);
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("active", s.id === name);
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("active", a.dataset.tab === name);
  window.scrollTo(0, 0);
}

// ------------------------------------------------------------------ status
function facts(dl, pairs) {
  dl.replaceChildren(...pairs.filter(([, v]) => v !== undefined && v !== null && v !== "")
    .flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}
function renderStatus(st) {
  S.status = st;
  const d = st.daemon || {};
  facts($("daemon-facts"), [
    ["state", d.running ? `running (pid ${d.pid})` : "not running"],
    ["since", d.started], ["folder", st.state_dir], ["problem", st.error],
    ["rejected inputs", st.rejected],
    ...Object.entries(d.workers || {}).map(([k, w]) => [k, w.activity || ""]),
  ]);
  const t = st.transport || {}, mi = st.midi_input || {};
  facts($("transport-facts"), [
    ["Mirage", `${t.spec || "?"} — ${t.state || "unknown"}`], ["last error", t.last_error],
    ["MIDI input", mi.spec ? `${mi.spec} (${mi.messages ?? 0} messages, ${mi.fired ?? 0} fired)` : "not configured"],
    ["trigger problem", mi.triggers_error],
  ]);
  const q = st.queue || {};
  $("queue").replaceChildren(...(Object.keys(q).length ? Object.entries(q).map(([kind, states]) =>
    el("tr", {}, el("td", {}, kind), el("td", {}, Object.entries(states).map(([s, n]) => `${n} ${s}`).join(", "))))
    : [el("tr", {}, el("td", {}, "empty"))]));
  $("failed").replaceChildren(...(st.failed || []).slice(0, 5).map((j) =>
    el("p", { class: "error" }, `#${j.id} ${j.kind} ${j.subject}: ${(j.error || "").slice(0, 200)}`)));
  const dl = (st.deliveries || {}).last || [];
  $("deliveries").replaceChildren(...(dl.length ? dl.map((x) => el("tr", {}, el("td", {}, x.id), el("td", {}, x.route),
    el("td", {}, x.ok ? "ok" : (x.state || "")), el("td", {}, x.error || (x.elapsed_s ? `${x.elapsed_s} s` : ""))))
    : [el("tr", {}, el("td", {}, "none yet"))]));
  renderTraining(st.training || {});
  // a class gained sounds or a model, or its verdict changed: redraw what shows it
  const sig = JSON.stringify(Object.entries(st.classes || {}).map(([k, c]) => [k, c.sounds, (c.model || {}).path, (c.model || {}).verdict]));
  if (S.classSig !== undefined && sig !== S.classSig) guard(async () => { await loadClasses(); await loadCandidates(); })();
  S.classSig = sig;
}
function renderTraining(tr) {
  const rows = Object.values(tr);
  if (!rows.length) { $("training").replaceChildren(el("p", { class: "hint" }, "No training yet: add sounds to a class.")); return; }
  $("training").replaceChildren(...rows.map((t) => {
    const c = el("canvas", { class: "plot", width: 600, height: 90 });
    drawSnapshots(c, t);
    const sps = t.steps_per_s ? `${Number(t.steps_per_s).toFixed(2)} steps/s` : "";
    const budget = t.budget_s ? ` of ${Math.round(t.budget_s)} s` : "";
    const title = t.class === "@kit" ? "kit (every class, one model)" : t.class;
    return el("div", { class: "card" }, el("h2", {}, title, " ", el("span", { class: "verdict " + (t.verdict || "") }, t.verdict || t.state || "")),
      el("p", {}, `step ${t.step ?? 0} · ${Math.round(t.run_s || 0)} s${budget} · ${sps}`), c,
      el("p", { class: "hint" }, "each snapshot the trainer judged (height: recall against the class): green passes every rule of the judge, red fails one"));
  }));
}
function snapshotPassed(s) {
  if (typeof s.passed === "boolean") return s.passed;
  if (s.verdict) return s.verdict === "pass" || s.verdict === "inconclusive";
  return null;
}
function drawSnapshots(canvas, t) {
  const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height, snaps = t.snapshots || [];
  g.clearRect(0, 0, w, h);
  const maxStep = Math.max(1, t.step || 0, ...snaps.map((s) => s.step || 0));
  const vals = snaps.map((s) => { const m = s.metrics || {}; return m.recall ?? m.diversity ?? m.coverage ?? null; });
  g.strokeStyle = "#2f384a"; g.beginPath(); g.moveTo(0, h - 10); g.lineTo(w, h - 10); g.stroke();
  snaps.forEach((s, i) => {
    const x = 6 + (w - 12) * (s.step || 0) / maxStep;
    const v = vals[i] === null ? 0.5 : Math.max(0, Math.min(1, vals[i]));
    const ok = snapshotPassed(s);
    g.fillStyle = ok === null ? "#9aa3b5" : ok ? "#57c47a" : "#e5625c";
    g.beginPath(); g.arc(x, h - 10 - v * (h - 20), 4, 0, 7); g.fill();
  });
}

// ------------------------------------------------------------------ sounds
async function loadClasses() {
  const data = await api("GET", "/api/classes");
  S.classes = data.classes;
  const names = S.classes.filter((c) => !c.pool).map((c) => c.class);
  $("class-names").replaceChildren(...names.map((n) => el("option", { value: n })));
  for (const id of ["req-class", "trig-class"]) {
    const keep = $(id).value;
    $(id).replaceChildren(el("option", { value: "" }, "first class with a model"), ...names.map((n) => el("option", { value: n }, n)));
    $(id).value = names.includes(keep) ? keep : "";
  }
  $("class-list").replaceChildren(...S.classes.map((c) => {
    const grid = el("div", { class: "sounds" });
    const head = el("h2", {}, c.pool ? "unsorted (waiting for k-means)" : c.class, " ",
      c.verdict ? el("span", { class: "verdict " + c.verdict }, c.verdict) : el("span", { class: "verdict" }, "no model"));
    const card = el("div", { class: "card" }, head, el("p", { class: "hint" }, `${c.sounds} sounds · ${c.models} models`), grid);
    api("GET", `/api/classes/${enc(c.class)}/sounds`).then((d) => {
      for (const s of d.sounds.slice(0, 24)) {
        const url = `/api/sounds/${enc(c.class)}/${enc(s.name)}`;
        const cv = el("canvas", { width: 300, height: 64 });
        const tile = el("div", { class: "tile", title: s.name }, cv, el("div", { class: "name" }, s.name));
        // a corpus cycle is a .pcm page of a cycle class; anything else plays as recorded
        tile.addEventListener("click", guard(() => play(url, s.name, tile, c.cycle && s.name.endsWith(".pcm"))));
        grid.append(tile);
        fetchSamples(url).then((x) => drawWave(cv, x)).catch(() => {});
      }
    }).catch((e) => toast(e.message, true));
    return card;
  }));
}
function setupUpload() {
  const drop = $("drop");
  const send = guard(async (files) => {
    if (!files.length) return;
    const fd = new FormData();
    fd.append("class", $("upload-class").value.trim());
    for (const f of files) fd.append("files", f, f.name);
    $("upload-progress").hidden = false;
    const res = await new Promise((resolve, reject) => {
      const x = new XMLHttpRequest();
      x.open("POST", "/api/upload");
      x.setRequestHeader("x-csrf-token", S.csrf);
      x.upload.onprogress = (e) => { if (e.lengthComputable) $("upload-progress").value = e.loaded / e.total; };
      x.onload = () => { const b = JSON.parse(x.responseText || "{}"); x.status < 300 ? resolve(b) : reject(new Error(b.error || x.statusText)); };
      x.onerror = () => reject(new Error("upload failed"));
      x.send(fd);
    }).finally(() => { $("upload-progress").hidden = true; });
    toast(`${res.saved.length} file(s) dropped into ${res.class || "the unsorted pool"}`);
  });
  for (const ev of ["dragenter", "dragover"]) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const ev of ["dragleave", "drop"]) drop.addEventListener(ev, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); send([...e.dataTransfer.files]); });
  $("upload-files").addEventListener("change", (e) => { send([...e.target.files]); e.target.value = ""; });
  $("upload-form").addEventListener("submit", (e) => e.preventDefault());
}

// ------------------------------------------------------------------ audio
async function fetchSamples(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  const buf = await r.arrayBuffer();
  if (url.toLowerCase().endsWith(".pcm")) {
    const u8 = new Uint8Array(buf), f = new Float32Array(u8.length);
    for (let i = 0; i < u8.length; i++) f[i] = (u8[i] - 128) / 128;
    return { samples: f, rate: RATE };
  }
  const ctx = audioCtx();
  const ab = await ctx.decodeAudioData(buf);
  return { samples: ab.getChannelData(0), rate: ab.sampleRate };
}
function drawWave(canvas, { samples }) {
  const g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h); g.strokeStyle = "#f2b33d"; g.beginPath();
  const step = samples.length / w;
  for (let x = 0; x < w; x++) {
    let lo = 1, hi = -1;
    for (let i = Math.floor(x * step); i < Math.max(Math.floor((x + 1) * step), Math.floor(x * step) + 1) && i < samples.length; i++) {
      lo = Math.min(lo, samples[i]); hi = Math.max(hi, samples[i]);
    }
    g.moveTo(x + .5, h / 2 - hi * h / 2.1); g.lineTo(x + .5, h / 2 - lo * h / 2.1 + 1);
  }
  g.stroke();
}
function audioCtx() {
  if (!S.player.ctx) S.player.ctx = new AudioContext();
  return S.player.ctx;
}
function stop() {
  try { S.player.src && S.player.src.stop(); } catch (e) { /* already stopped */ }
  S.player.src = null;
  document.querySelectorAll(".tile.playing").forEach((t) => t.classList.remove("playing"));
}
// cycle: true loops the whole sound as one cycle at the key; false plays it once (a
// one-shot, transposed from C3 = key 48).
async function play(url, label, tile, cycle) {
  const x = await fetchSamples(url);
  S.player.current = { url, label, tile, cycle, x };
  $("now-playing").textContent = `${label} · ${x.samples.length} samples · ${(x.samples.length / x.rate).toFixed(3)} s`;
  $("now-playing").dataset.duration = String(x.samples.length / x.rate);
  playKey(Number($("key").value));
}
function playKey(key) {
  const cur = S.player.current;
  if (!cur) return;
  stop();
  const ctx = audioCtx();
  const buf = ctx.createBuffer(1, cur.x.samples.length, cur.x.rate);
  buf.copyToChannel(Float32Array.from(cur.x.samples), 0);
  const src = ctx.createBufferSource();
  src.buffer = buf;
  const hz = 440 * Math.pow(2, (key - 69) / 12);
  if (cur.cycle) { src.loop = true; src.playbackRate.value = hz * cur.x.samples.length / cur.x.rate; }
  else src.playbackRate.value = Math.pow(2, (key - 48) / 12);
  const gain = ctx.createGain(); gain.gain.value = 0.5;
  src.connect(gain).connect(ctx.destination);
  src.start();
  if (cur.cycle) src.stop(ctx.currentTime + 1.5);
  src.onended = () => { if (S.player.src === src) stop(); };
  S.player.src = src;
  if (cur.tile) cur.tile.classList.add("playing");
  $("key-name").textContent = noteName(key);
}
function setupKeyboard() {
  const kb = $("keyboard");
  for (let n = 36; n <= 84; n++) {
    const black = [1, 3, 6, 8, 10].includes(n % 12);
    const k = el("div", { class: "k" + (black ? " black" : ""), "data-note": n, title: noteName(n) });
    k.addEventListener("pointerdown", (e) => { e.preventDefault(); $("key").value = n; k.classList.add("down"); playKey(n); });
    for (const ev of ["pointerup", "pointerleave"]) k.addEventListener(ev, () => k.classList.remove("down"));
    kb.append(k);
  }
  $("key").addEventListener("change", () => playKey(Number($("key").value)));
  $("stop").addEventListener("click", stop);
  if (navigator.requestMIDIAccess) {
    navigator.requestMIDIAccess().then((m) => {
      const hook = () => { for (const i of m.inputs.values()) i.onmidimessage = (e) => {
        const [st, note, vel] = e.data;
        if ((st & 0xf0) === 0x90 && vel > 0) { $("key").value = note; playKey(note); }
      }; $("midi-state").textContent = m.inputs.size ? `Web MIDI: ${m.inputs.size} input(s)` : ""; };
      hook(); m.onstatechange = hook;
    }).catch(() => { $("midi-state").textContent = ""; });
  }
}

// ------------------------------------------------------------------ candidates
async function loadCandidates() {
  const data = await api("GET", "/api/candidates");
  S.candidates = data.requests;
  $("candidate-list").replaceChildren(...(S.candidates.length ? S.candidates.map((r) => el("div", { class: "card" },
    el("h2", {}, `${r.class} · ${r.request}`, " ", el("span", { class: "hint" }, `${r.gate} · ${r.updated}`)),
    judgeLine(r.class),
    el("div", { class: "sounds" }, r.candidates.map((c) => candidateTile(c, r.cycle)))))
    : [el("p", { class: "hint" }, "No candidates yet: make a request (Requests) or trigger one by MIDI.")]));
  const sel = $("deliver-candidate"), keep = sel.value;
  const all = S.candidates.flatMap((r) => r.candidates.map((c) => ({ ...c, cls: r.class })))
    .filter((c) => c.choice !== "discard").sort((a, b) => (b.choice === "keep") - (a.choice === "keep"));
  sel.replaceChildren(...all.map((c) => el("option", { value: c.id }, `${c.choice === "keep" ? "★ " : ""}${c.cls}: ${c.id}`)));
  if (all.some((c) => c.id === keep)) sel.value = keep;
}
// the judge's verdict on the model serving the class, and its main figures
function judgeLine(cls) {
  const c = S.classes.find((x) => x.class === cls);
  if (!c || !c.verdict) return el("p", { class: "hint" }, "model not judged");
  const m = c.metrics || {}, fmt = (k, label) => (typeof m[k] === "number" ? `${label} ${m[k].toFixed(2)}` : null);
  const figs = [fmt("diversity", "diversity"), fmt("recall", "recall"), fmt("frechet", "Fréchet"), fmt("novelty", "novelty")].filter(Boolean);
  return el("p", { class: "hint", title: (c.reasons || []).join("\n") }, "judge: ", el("span", { class: "verdict " + c.verdict }, c.verdict), " ", figs.join(" · "));
}
function candidateTile(c, cycle) {
  const url = `/api/requests/${enc(c.request)}/files/${enc(c.file)}`;
  const pic = c.png ? el("img", { src: `/api/requests/${enc(c.request)}/files/${enc(c.png)}`, alt: c.file, loading: "lazy" }) : el("canvas", { width: 300, height: 64 });
  const f = c.figures || {};
  const figs = typeof f.distance === "number" ? `${f.distance.toFixed(2)}× typical distance to the training set` : "";
  const tile = el("div", { class: `tile ${c.choice}`, title: c.id, "data-candidate": c.id }, pic,
    el("div", { class: "name" }, `${c.file}${c.delivered ? " · sent" : ""}`),
    el("div", { class: "figures" }, figs || `${c.bytes} bytes`));
  const choose = (choice) => guard(async (e) => {
    e.stopPropagation();
    await api("POST", "/api/candidates/choice", { candidate: c.id, choice: c.choice === choice ? "" : choice });
    await loadCandidates();
  });
  tile.append(el("div", { class: "actions" },
    el("button", { class: "quiet" + (c.choice === "keep" ? " on" : ""), type: "button", onclick: choose("keep") }, "Keep"),
    el("button", { class: "quiet" + (c.choice === "discard" ? " on" : ""), type: "button", onclick: choose("discard") }, "Discard"),
    el("button", { class: "quiet", type: "button", onclick: (e) => { e.stopPropagation(); $("deliver-candidate").value = c.id; location.hash = "#deliver"; } }, "Send…")));
  tile.addEventListener("click", guard(() => play(url, c.id, tile, cycle)));
  if (!c.png) fetchSamples(url).then((x) => drawWave(pic, x)).catch(() => {});
  return tile;
}

// ------------------------------------------------------------------ deliver
function setupDeliver() {
  $("deliver-form").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const res = await api("POST", "/api/deliver", { candidate: $("deliver-candidate").value, half: $("deliver-half").value,
      wavesample: Number($("deliver-ws").value), route: $("deliver-route").value });
    S.waitingDelivery = res.name;
    setProgress(0, "queued: " + res.name);
    $("deliver-progress").dataset.phase = "queued";
    $("deliver-progress").dataset.request = res.name;
    $("deliver-result").replaceChildren();
  }));
}
function setProgress(frac, label) {
  document.querySelector("#deliver-progress .bar").style.width = `${Math.round(100 * frac)}%`;
  document.querySelector("#deliver-progress .label").textContent = label;
}
function onDelivery(d) {
  if (!d || !d.request) return;
  const frac = d.total ? d.done / d.total : (d.phase === "done" ? 1 : 0);
  const label = d.phase === "sending" && d.total && d.done >= d.total ? `${d.request}: sent ${d.total} bytes, waiting for the ACK and the read-back`
    : d.phase === "sending" ? `${d.request}: sending ${d.done} / ${d.total} bytes`
    : d.phase === "verifying" ? `${d.request}: reading back` : `${d.request}: ${d.phase}${d.error ? " — " + d.error : ""}`;
  if (d.request !== $("deliver-progress").dataset.request) $("deliver-result").replaceChildren();
  setProgress(frac, label);
  $("deliver-progress").dataset.phase = d.phase;
  $("deliver-progress").dataset.request = d.request;
  if ((d.phase === "done" || d.phase === "failed") && d.result) showResult(d.route, d.result);
}
function showResult(route, r) {
  const rows = route === "sysex" ? [
    ["route", "SysEx"], ["result", r.ok ? "ACK" : "failed"], ["read back", r.verified ? "equal (verified)" : (r.verify === false ? "off" : "not verified")],
    ["time", r.elapsed_s !== undefined ? `${r.elapsed_s} s (wire floor ${r.wire_floor_s} s)` : ""],
    ["tries / NAKs", `${r.tries ?? "?"} / ${r.naks ?? 0}`], ["where", `${r.half || ""} wavesample ${r.wavesample || ""}`], ["error", r.error]]
    : [["route", "disk image"], ["result", r.ok ? "written" : "failed"], ["image", r.image], ["USB stick", r.usb_stick], ["error", r.error]];
  const dl = el("dl", { "data-route": route });
  facts(dl, rows);
  $("deliver-result").append(dl);
}

// ------------------------------------------------------------------ requests
async function loadRequests() {
  const data = await api("GET", "/api/requests");
  $("request-list").replaceChildren(el("tr", {}, ["name", "class", "state", "source", "result"].map((h) => el("th", {}, h))),
    ...data.requests.map((r) => el("tr", {}, el("td", {}, r.name), el("td", {}, r.class || (r.request || {}).class || ""),
      el("td", {}, r.state || ""), el("td", {}, r.source || ""),
      el("td", {}, r.reason || (r.kit ? `kit: ${Object.values(r.kit).join(", ")}` : r.delivered ? `delivered ${r.delivered.split("/").pop()}` : r.gate || "")))));
}
function setupRequests() {
  $("request-form").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const body = { count: Number($("req-count").value), half: $("req-half").value, wavesample: Number($("req-ws").value),
      route: $("req-route").value };
    if ($("req-class").value) body.class = $("req-class").value;
    if ($("req-name").value.trim()) body.name = $("req-name").value.trim();
    if ($("req-kit").checked) { body.kit = true; delete body.class; }
    if ($("req-keyboard").value) { body.keyboard = $("req-keyboard").value; body.octaves = Number($("req-octaves").value); }
    const res = await api("POST", "/api/requests", body);
    toast(`request ${res.name} queued`);
  }));
}

// ------------------------------------------------------------------ triggers
function describe(t) {
  const ch = t.channel ? ` ch ${t.channel}` : " any channel";
  if (t.message === "note_on") return `note ${t.note < 0 ? "any" : noteName(t.note)}${ch}`;
  if (t.message === "program_change") return `program ${t.program < 0 ? "any" : t.program + 1}${ch}`;
  if (t.message === "control_change") return `CC ${t.control < 0 ? "any" : t.control}${t.value >= 0 ? " = " + t.value : ""}${ch}`;
  return `SysEx ${t.pattern}`;
}
async function loadTriggers() {
  S.triggers = await api("GET", "/api/triggers");
  const row = (t, i, learned) => el("tr", {}, el("td", {}, describe(t)),
    el("td", {}, `${t.kit ? "a kit" : t.count + " × " + (t.class || "first class")} → ${t.half} ${t.wavesample}`
      + (t.keyboard ? `, keyboard ${t.keyboard}${t.octaves ? " at " + t.octaves + " octaves" : ""}` : "")
      + (t.route ? " (" + t.route + ")" : "")),
    el("td", {}, learned ? el("button", { class: "quiet", type: "button", onclick: guard(async () => {
      await api("POST", "/api/triggers/delete", { index: i }); await loadTriggers(); }) }, "Delete") : "config file"));
  $("trigger-list").replaceChildren(el("tr", {}, el("th", {}, "message"), el("th", {}, "makes"), el("th", {}, "")),
    ...S.triggers.learned.map((t, i) => row(t, i, true)), ...S.triggers.configured.map((t, i) => row(t, i, false)));
}
function setupTriggers() {
  $("learn").addEventListener("click", guard(async () => {
    const res = await api("POST", "/api/learn");
    S.learnId = res.id; S.learned = null;
    $("trigger-form").hidden = true;
    $("learn-state").textContent = "listening: play something on the controller (30 s)…";
    setTimeout(() => { if (S.learnId === res.id && !S.learned) $("learn-state").textContent = "nothing heard; press Learn again"; }, 30500);
  }));
  $("trigger-form").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const m = S.learned.message, t = { message: m.kind, channel: m.channel };
    if (m.kind === "note_on") t.note = m.note;
    if (m.kind === "program_change") t.program = m.program;
    if (m.kind === "control_change") { t.control = m.control; t.value = m.value; }
    if (m.kind === "sysex") t.pattern = m.hex;
    Object.assign(t, { count: Number($("trig-count").value), half: $("trig-half").value, wavesample: Number($("trig-ws").value),
      route: $("trig-route").value, class: $("trig-class").value, kit: $("trig-kit").checked,
      keyboard: $("trig-keyboard").value, octaves: Number($("trig-octaves").value) });
    await api("POST", "/api/triggers", t);
    $("trigger-form").hidden = true; $("learn-state").textContent = "bound: the daemon uses it from now on";
    await loadTriggers();
  }));
}
function onLearned(l) {
  if (!l || l.id !== S.learnId) return;
  S.learned = l;
  const m = l.message;
  $("learn-state").textContent = "heard it";
  $("learned-msg").textContent = `Heard: ${describe({ message: m.kind, channel: m.channel, note: m.note, program: m.program, control: m.control, value: m.value, pattern: m.hex })} (${m.hex})`;
  $("trigger-form").hidden = false;
}

// ------------------------------------------------------------------ start
function connect() {
  const es = new EventSource("/api/events", { withCredentials: true });
  const on = (kind, fn) => es.addEventListener(kind, (e) => { try { fn(JSON.parse(e.data)); } catch (err) { console.error(err); } });
  es.onopen = () => { $("live").textContent = "live"; $("live").className = "pill ok"; };
  es.onerror = () => { $("live").textContent = "reconnecting…"; $("live").className = "pill bad"; };
  on("hello", () => refreshAll());
  on("resync", () => refreshAll());
  on("status", renderStatus);
  on("training", renderTraining);
  on("delivery", onDelivery);
  on("learned", onLearned);
  on("requests", guard(async () => { await loadRequests(); await loadCandidates(); }));
  on("choices", guard(loadCandidates));
  on("sounds", guard(loadClasses));
  on("triggers", guard(loadTriggers));
}
const refreshAll = guard(async () => {
  const st = await api("GET", "/api/status");
  renderStatus(st);
  await Promise.all([loadClasses(), loadCandidates(), loadRequests(), loadTriggers()]);
  if (st.delivery_live) onDelivery(st.delivery_live);
});
(async () => {
  window.addEventListener("hashchange", showTab);
  showTab();
  const s = await (await fetch("/api/session", { credentials: "same-origin" })).json();
  if (s.token_needed && !s.authed) { location.href = "/login"; return; }
  S.csrf = s.csrf;
  setupUpload(); setupKeyboard(); setupDeliver(); setupRequests(); setupTriggers();
  connect();
})();
