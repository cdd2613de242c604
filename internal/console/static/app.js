// wail console: plain JavaScript, no build step. The live charts read
// api/series (sampled from /metrics by the server); tables, a key's row
// and the dead-letter queue come from the API (Connect JSON); the tail
// and a key's events from api/tail (server-sent events).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};

// call is a unary Connect JSON call to the API.
async function call(service, method, body) {
  const r = await fetch(`/wail.v1.${service}/${method}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
  });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${method}: ${j.message || r.status}`);
  return j;
}

const status = (msg, err) => { const s = $("#status"); s.textContent = msg; s.className = err ? "error" : "muted"; };

// ---- pages ----
const pages = {};
let current = null;
function show() {
  const name = (location.hash || "#live").slice(1).split("?")[0];
  if (!pages[name]) return;
  document.querySelectorAll(".page").forEach(p => p.classList.toggle("active", p.id === "page-" + name));
  document.querySelectorAll("nav a").forEach(a => a.classList.toggle("active", a.dataset.page === name));
  if (current && current !== pages[name] && current.leave) current.leave();
  current = pages[name];
  if (current.enter) current.enter();
}
window.addEventListener("hashchange", show);

// ---- tables (shared by the selects) ----
let tables = [];
async function loadTables() {
  const r = await call("AdminService", "ListTables");
  tables = r.tables || [];
  document.querySelectorAll(".table-select").forEach(sel => {
    const was = sel.value;
    sel.replaceChildren(...tables.map(t => el("option", { value: t.name, text: t.name })));
    if (was) sel.value = was;
  });
  return tables;
}

const ms = v => v === undefined ? "" : `${Number(v).toLocaleString()} ms`;
pages.tables = {
  async enter() {
    try {
      await loadTables();
      $("#tables-list tbody").replaceChildren(...tables.map(t => el("tr", { "data-table": t.name },
        el("td", { text: t.name }),
        el("td", { text: (t.failureMode || "").replace("FAILURE_MODE_", "").toLowerCase() }),
        el("td", { text: ms(t.visibilityWindowMs) }),
        el("td", { text: t.partitions }),
        el("td", { text: t.maxAttempts ?? "" }),
        el("td", { text: ms(t.maxRetryTimeMs) }),
        el("td", { text: t.createdAtUs ? new Date(Number(t.createdAtUs) / 1000).toISOString() : "" }))));
      status(`${tables.length} tables`);
    } catch (e) { status(e.message, true); }
  },
};

// ---- live charts ----
const colors = ["#2f6fde", "#e0702f", "#2a9d5b", "#9b3fd1", "#c23b5a", "#1f9bb0", "#8a6d1e", "#555"];

// draw plots series [{name, values}] on a canvas; null values are gaps.
function draw(canvas, series, unit) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  let top = 0;
  for (const s of series) for (const v of s.values) if (v != null && v > top) top = v;
  top = top > 0 ? top * 1.1 : 1;
  g.fillStyle = "#6b7385"; g.font = "10px sans-serif";
  g.fillText(fmt(top, unit), 2, 10);
  g.strokeStyle = "#eef0f4"; g.beginPath(); g.moveTo(0, h - 0.5); g.lineTo(w, h - 0.5); g.stroke();
  series.forEach((s, i) => {
    const n = s.values.length;
    if (n < 2) return;
    g.strokeStyle = colors[i % colors.length]; g.lineWidth = 1.5; g.beginPath();
    let pen = false;
    s.values.forEach((v, j) => {
      if (v == null) { pen = false; return; }
      const x = (j / (n - 1)) * w, y = h - (v / top) * (h - 12);
      if (pen) g.lineTo(x, y); else g.moveTo(x, y);
      pen = true;
    });
    g.stroke();
  });
}

function fmt(v, unit) {
  if (v == null) return "–";
  switch (unit) {
    case "s": return v < 1 ? `${(v * 1000).toFixed(v < 0.01 ? 2 : 1)} ms` : `${v.toFixed(2)} s`;
    case "/s": return `${v.toFixed(v < 10 ? 1 : 0)}/s`;
    default: return `${Math.round(v)}`;
  }
}

const sum = m => Object.values(m || {}).reduce((a, b) => a + b, 0);
const highest = m => Object.values(m || {}).reduce((a, b) => Math.max(a, b), 0);

// The charts of a table: [title, unit, [[series name, field, fn(point)]]].
const charts = [
  ["writes and events", "/s", [["writes", "write_rate", p => p.write_rate], ["events", "event_rate", p => p.event_rate]]],
  ["write → event latency", "s", [["p50", "p50", p => p.p50], ["p99", "p99", p => p.p99]]],
  ["lag (intents)", "", [["all partitions", "lag", p => sum(p.lag)]]],
  ["lag (seconds) and oldest unresolved intent", "s", [["lag", "lag_seconds", p => highest(p.lag_seconds)], ["oldest", "oldest", p => highest(p.oldest)]]],
];

function card(table) {
  const c = el("div", { class: "table-card", "data-table": table },
    el("h2", { text: table }),
    el("div", { class: "totals muted" },
      "writes ", el("b", { "data-field": "writes_total", text: "–" }),
      ", events ", el("b", { "data-field": "events_total", text: "–" }),
      " (counters as /metrics shows them)"),
    el("div", { class: "charts" }));
  for (const [title, unit, lines] of charts) {
    const legend = el("div", { class: "legend" });
    lines.forEach(([name, field], i) => legend.append(el("span", {},
      el("i", { style: `background:${colors[i]}` }), `${name} `, el("b", { "data-field": field, "data-unit": unit, text: "–" }))));
    $(".charts", c).append(el("div", { class: "chart", "data-chart": title }, el("h4", { text: title }), el("canvas"), legend));
  }
  const parts = el("table", { class: "grid partitions" },
    el("thead", {}, el("tr", {}, el("th", { text: "partition" }), el("th", { text: "lag (intents)" }), el("th", { text: "lag" }), el("th", { text: "oldest unresolved" }))),
    el("tbody"));
  c.append(el("h4", { text: "partitions" }), parts);
  return c;
}

function render(table, points) {
  let c = $(`.table-card[data-table="${CSS.escape(table)}"]`);
  if (!c) { c = card(table); $("#live-tables").append(c); }
  const last = points[points.length - 1];
  if (!last) return;
  $('[data-field="writes_total"]', c).textContent = last.writes_total;
  $('[data-field="events_total"]', c).textContent = last.events_total;
  charts.forEach(([title, unit, lines]) => {
    const chart = $(`[data-chart="${CSS.escape(title)}"]`, c);
    draw($("canvas", chart), lines.map(([name, , f]) => ({ name, values: points.map(f) })), unit);
    lines.forEach(([, field, f]) => {
      const b = $(`[data-field="${field}"]`, chart);
      b.textContent = fmt(f(last), unit);
      b.dataset.value = f(last) == null ? "" : f(last);
    });
  });
  const ps = Object.keys(last.lag || {}).sort((a, b) => a - b);
  $(".partitions tbody", c).replaceChildren(...ps.map(p => el("tr", { "data-partition": p },
    el("td", { text: p }), el("td", { "data-field": "lag", text: last.lag[p] }),
    el("td", { text: fmt(last.lag_seconds[p], "s") }), el("td", { text: fmt(last.oldest[p], "s") }))));
}

let liveTimer = null;
pages.live = {
  enter() {
    const tick = async () => {
      try {
        const r = await (await fetch("api/series")).json();
        $("#interval").textContent = r.interval_seconds;
        const names = Object.keys(r.tables).sort();
        names.forEach(t => render(t, r.tables[t]));
        status(names.length ? `live: ${names.length} tables` : "live: no table has metrics yet");
      } catch (e) { status(`live: ${e.message}`, true); }
    };
    tick();
    liveTimer = setInterval(tick, 1000);
  },
  leave() { clearInterval(liveTimer); },
};

// ---- event tail ----
const maxRows = 200;
function follow(table, key, onEvent, onState) {
  const src = new EventSource(`api/tail?table=${encodeURIComponent(table)}&key=${encodeURIComponent(key)}`);
  src.onopen = () => onState(`following ${table}${key ? ` (keys containing "${key}")` : ""}`);
  src.onmessage = m => onEvent(JSON.parse(m.data));
  src.addEventListener("error", m => { if (m.data) onState(`error: ${JSON.parse(m.data)}`, true); });
  return src;
}
const latency = e => (new Date(e.resolved_at) - new Date(e.intent_at));
function addRow(tbody, row) {
  tbody.prepend(row);
  while (tbody.rows.length > maxRows) tbody.deleteRow(-1);
}

let tail = null;
const stopTail = () => { if (tail) { tail.close(); tail = null; $("#tail-state").textContent = "stopped"; } };
pages.tail = {
  async enter() { try { await loadTables(); } catch (e) { status(e.message, true); } },
  leave: stopTail,
};
$("#tail-form").addEventListener("submit", ev => {
  ev.preventDefault();
  stopTail();
  $("#tail-list tbody").replaceChildren();
  tail = follow($("#tail-table").value, $("#tail-key").value, e => addRow($("#tail-list tbody"), el("tr", { "data-key": e.key },
    el("td", { text: new Date().toLocaleTimeString() }), el("td", { text: `${e.partition}/${e.offset}` }),
    el("td", { class: "key", text: e.key }), el("td", { text: e.op }), el("td", { text: e.version }),
    el("td", { text: e.covered_intents }), el("td", { text: `${latency(e)} ms` }),
    el("td", { class: "value", text: e.value + (e.truncated ? "…" : "") }))),
  (msg, err) => { const s = $("#tail-state"); s.textContent = msg; s.className = err ? "error" : "muted"; });
});
$("#tail-stop").addEventListener("click", stopTail);

// ---- a key ----
let keyTail = null;
const b64 = s => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
const unb64 = s => { try { return new TextDecoder().decode(Uint8Array.from(atob(s || ""), c => c.charCodeAt(0))); } catch { return s; } };
pages.key = {
  async enter() { try { await loadTables(); } catch (e) { status(e.message, true); } },
  leave() { if (keyTail) { keyTail.close(); keyTail = null; } },
};
$("#key-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const table = $("#key-table").value, key = $("#key-key").value;
  try {
    const r = await call("ProducerService", "Get", { table, key: b64(key) });
    $("#key-row").textContent = r.found
      ? `version ${r.version}${r.deleted ? " (deleted)" : ""}\n${unb64(r.value)}` : "not in the store";
  } catch (e) { $("#key-row").textContent = e.message; }
  if (keyTail) keyTail.close();
  const rows = $("#key-events tbody");
  rows.replaceChildren();
  const row = e => el("tr", { "data-version": e.version }, el("td", { text: `${e.partition}/${e.offset}` }), el("td", { text: e.op }),
    el("td", { text: e.version }), el("td", { text: e.covered_intents }), el("td", { text: e.resolved_at }),
    el("td", { class: "value", text: e.value + (e.truncated ? "…" : "") }));
  try {
    const r = await fetch(`api/history?table=${encodeURIComponent(table)}&key=${encodeURIComponent(key)}`);
    if (!r.ok) throw new Error(await r.text());
    const h = await r.json();
    h.events.forEach(e => rows.prepend(row(e)));
    $("#key-scope").textContent = `(partition ${h.partition}, offsets ${h.from}..${h.end}${h.complete ? "" : ", older ones not read"}; newest first, new ones as they come)`;
  } catch (e) { $("#key-scope").textContent = e.message; }
  keyTail = follow(table, key, e => { if (e.key === key) addRow(rows, row(e)); }, () => {});
});

// ---- dead letters ----
async function listLetters() {
  const table = $("#dlq-table").value;
  const r = await call("AdminService", "ListDeadLetters", { table, includeSettled: $("#dlq-settled").checked, limit: 500 });
  const entries = r.entries || [];
  $("#dlq-list tbody").replaceChildren(...entries.map(en => {
    const l = en.letter || {};
    const redrive = el("button", { type: "button", text: "Redrive" });
    if (en.resolution) redrive.disabled = true;
    redrive.addEventListener("click", async () => {
      try {
        await call("AdminService", "RedriveDeadLetters", { table, offsets: [en.offset] });
        $("#dlq-state").textContent = `redrove offset ${en.offset}`;
        await listLetters();
      } catch (e) { $("#dlq-state").textContent = e.message; }
    });
    return el("tr", { "data-offset": en.offset || "0" },
      el("td", { text: en.offset || "0" }), el("td", { text: (l.kind || "").replace("DEAD_LETTER_KIND_", "").toLowerCase() }),
      el("td", { text: unb64(l.key) }), el("td", { text: (l.intents || []).length }), el("td", { text: l.attempts || 0 }),
      el("td", { class: "value", text: l.error || "" }),
      el("td", { text: en.resolution ? (en.resolution.action || "").replace("DEAD_LETTER_ACTION_", "").toLowerCase() : "" }),
      el("td", {}, redrive));
  }));
  $("#dlq-state").textContent = `${entries.length} dead letters${r.more ? " (more: narrow the list)" : ""}`;
}
pages.dlq = {
  async enter() { try { await loadTables(); } catch (e) { status(e.message, true); } },
};
$("#dlq-form").addEventListener("submit", ev => { ev.preventDefault(); listLetters().catch(e => { $("#dlq-state").textContent = e.message; }); });

show();
