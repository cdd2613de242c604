// wail console: plain JavaScript, no build step. The live charts read
// api/series (sampled from /metrics by the server); tables, a key's row
// and the dead-letter queue come from the API (Connect JSON); the tail
// and a key's events from api/tail (server-sent events, read with fetch so
// that they carry the token). With auth on, the login keeps the token in
// this tab's sessionStorage and every request sends it as a bearer header
// (no cookie: another site's requests never carry it).
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k === "style") e.style.cssText = v; // CSSOM: the pages' CSP refuses style attributes
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};

// ---- the token ----
const tokenKey = "wail-token";
const authHeaders = () => { const t = sessionStorage.getItem(tokenKey); return t ? { Authorization: `Bearer ${t}` } : {}; };
// request is fetch with the token; a token refused once signed in (revoked
// meanwhile) signs out, saying why.
async function request(url, opts = {}) {
  const r = await fetch(url, { ...opts, headers: { ...authHeaders(), ...(opts.headers || {}) } });
  if (r.status === 401 && who && who.auth) {
    let msg = (await r.text()).trim();
    try { msg = JSON.parse(msg).message || msg; } catch { } // the API's answer is Connect JSON, /console/api's text
    signOut(`Signed out, the token was refused: ${msg}`);
    return new Promise(() => {}); // the page goes: nothing more of it runs
  }
  return r;
}

// signOut forgets the token and loads the page anew, which then says
// message: nothing the principal saw stays in the tab (its rows, a key's
// row and events, the selects), and no answer to its requests still on
// the way is shown to whoever signs in next.
const signedOutKey = "wail-signed-out";
function signOut(message) {
  sessionStorage.removeItem(tokenKey);
  sessionStorage.setItem(signedOutKey, message);
  location.reload();
}

// call is a unary Connect JSON call to the API.
async function call(service, method, body) {
  const r = await request(`/wail.v1.${service}/${method}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}),
  });
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${method}: ${j.message || r.status}`);
  return j;
}

const status = (msg, err) => { const s = $("#status"); s.textContent = msg; s.className = err ? "error" : "muted"; };

// ---- who the user is (api/whoami) ----
let who = null;
// What each page needs of the principal (whoami's flags) and the grant
// that gives it.
const needs = { live: ["metrics", "metrics"], tables: ["tables", "any, e.g. read:TABLE"], tail: ["admin", "admin:*"],
  key: ["tables", "read:TABLE (the row) and admin:* (its events)"], dlq: ["admin", "admin:*"] };

function login(message) {
  who = null;
  document.body.classList.add("signed-out");
  $("#login-error").textContent = message || "";
  $("#login-token").value = "";
  $("#login-token").focus();
}
$("#login-form").addEventListener("submit", ev => {
  ev.preventDefault();
  sessionStorage.setItem(tokenKey, $("#login-token").value.trim());
  start();
});
$("#logout").addEventListener("click", () => signOut("signed out"));

async function start() {
  let r;
  try { r = await request("api/whoami"); } catch (e) { status(e.message, true); return; }
  if (r.status === 401) {
    const msg = (await r.text()).trim();
    const had = sessionStorage.getItem(tokenKey), why = sessionStorage.getItem(signedOutKey);
    sessionStorage.removeItem(tokenKey);
    sessionStorage.removeItem(signedOutKey);
    login(had ? `This token was refused: ${msg}` : why || "This wail needs a token: paste one (`wail token create NAME --grant ...` makes one).");
    return;
  }
  if (!r.ok) { status(`whoami: ${(await r.text()).trim()}`, true); return; }
  who = await r.json();
  document.body.classList.remove("signed-out");
  $("#who-name").textContent = who.auth ? `${who.principal} (${who.grants.join(", ") || "no grants"})` : "";
  $("#logout").hidden = !who.auth;
  document.querySelectorAll("nav a").forEach(a => {
    const [flag, grant] = needs[a.dataset.page];
    a.classList.toggle("denied", !who[flag]);
    a.title = who[flag] ? "" : `needs ${grant}`;
  });
  show();
}

// ---- pages ----
const pages = {};
let current = null;
function show() {
  if (!who) return;
  const name = (location.hash || "#live").slice(1).split("?")[0];
  if (!pages[name]) return;
  const [flag, grant] = needs[name];
  const allowed = who[flag];
  document.querySelectorAll(".page").forEach(p => p.classList.toggle("active", allowed && p.id === "page-" + name));
  document.querySelectorAll("nav a").forEach(a => a.classList.toggle("active", a.dataset.page === name));
  $("#page-denied").classList.toggle("active", !allowed);
  if (current && current !== pages[name] && current.leave) current.leave();
  current = null;
  if (!allowed) {
    $("#denied-message").textContent = `${who.principal} may not see this page: it needs ${grant}.`;
    status("");
    return;
  }
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

// surface clears a canvas for drawing at the device's pixel ratio.
function surface(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * dpr; canvas.height = h * dpr;
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  g.clearRect(0, 0, w, h);
  return { g, w, h };
}

// draw plots series [{name, values}] on a canvas; null values are gaps.
function draw(canvas, series, unit) {
  const { g, w, h } = surface(canvas);
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

// The charts of a table: [title, unit, [[series name, field, fn(point)]]].
const charts = [
  ["writes and events", "/s", [["writes", "write_rate", p => p.write_rate], ["events", "event_rate", p => p.event_rate],
    ["busiest partition's writes", "partition_write_rate_max", p => p.partition_write_rate_max]]],
  ["write → event latency", "s", [["p50", "p50", p => p.p50], ["p99", "p99", p => p.p99]]],
  ["lag (intents)", "", [["all partitions", "lag", p => p.lag]]],
  ["lag (seconds) and oldest unresolved intent", "s", [["lag", "lag_seconds", p => p.lag_seconds], ["oldest", "oldest", p => p.oldest]]],
];

// bars draws one bar per partition (values by partition number).
function bars(canvas, values, unit) {
  const { g, w, h } = surface(canvas);
  const top = Math.max(...values, 0) * 1.1 || 1;
  g.fillStyle = "#6b7385"; g.font = "10px sans-serif";
  g.fillText(fmt(top, unit), 2, 10);
  const bw = w / Math.max(values.length, 1);
  g.fillStyle = colors[0];
  values.forEach((v, i) => {
    const bh = (v / top) * (h - 12);
    g.fillRect(i * bw + (bw > 3 ? 1 : 0), h - bh, Math.max(bw - (bw > 3 ? 2 : 0), 1), bh);
  });
}

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
  $(".charts", c).append(el("div", { class: "chart", "data-chart": "writes by partition" },
    el("h4", { text: "writes by partition (last interval)" }), el("canvas"),
    el("div", { class: "legend" }, "busiest ", el("b", { "data-field": "busiest_partition", text: "–" }))));
  const parts = el("table", { class: "grid partitions" },
    el("thead", {}, el("tr", {}, el("th", { text: "partition" }), el("th", { text: "writes" }), el("th", { text: "writes/s" }),
      el("th", { text: "lag (intents)" }), el("th", { text: "lag" }), el("th", { text: "oldest unresolved" }))),
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
  const parts = last.partitions || {};
  const ps = Object.keys(parts).sort((a, b) => a - b);
  const rates = [];
  ps.forEach(p => { rates[Number(p)] = parts[p].write_rate; });
  for (let i = 0; i < rates.length; i++) rates[i] = rates[i] || 0;
  bars($('[data-chart="writes by partition"] canvas', c), rates, "/s");
  const busiest = ps.reduce((b, p) => (b === null || parts[p].write_rate > parts[b].write_rate ? p : b), null);
  $('[data-field="busiest_partition"]', c).textContent = busiest === null ? "–" : `partition ${busiest}, ${fmt(parts[busiest].write_rate, "/s")}`;
  $(".partitions tbody", c).replaceChildren(...ps.map(p => el("tr", { "data-partition": p },
    el("td", { text: p }), el("td", { "data-field": "writes_total", text: parts[p].writes_total }),
    el("td", { "data-field": "write_rate", text: fmt(parts[p].write_rate, "/s") }),
    el("td", { "data-field": "lag", text: parts[p].lag }),
    el("td", { text: fmt(parts[p].lag_seconds, "s") }), el("td", { text: fmt(parts[p].oldest, "s") }))));
}

let liveTimer = null;
pages.live = {
  enter() {
    const tick = async () => {
      try {
        const resp = await request("api/series");
        if (!resp.ok) throw new Error((await resp.text()).trim());
        const r = await resp.json();
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
// follow reads api/tail's server-sent events (with fetch: an EventSource
// cannot send the token); close() ends it. onGap gets the offsets of a
// partition retention removed before the tail read them.
function follow(table, key, onEvent, onState, onGap) {
  const ctl = new AbortController();
  (async () => {
    try {
      const r = await request(`api/tail?table=${encodeURIComponent(table)}&key=${encodeURIComponent(key)}`, { signal: ctl.signal });
      if (!r.ok) { onState(`error: ${(await r.text()).trim()}`, true); return; }
      onState(`following ${table}${key ? ` (keys containing "${key}")` : ""}`);
      const rd = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "", failed = false; // failed: an error event said why it ends
      for (;;) {
        const { value, done } = await rd.read();
        if (done) { if (!failed) onState("the tail ended", true); return; }
        buf += value;
        for (let i; (i = buf.indexOf("\n\n")) >= 0;) {
          const msg = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let kind = "message", data = "";
          for (const line of msg.split("\n")) {
            if (line.startsWith("event: ")) kind = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (!data) continue;
          if (kind === "error") { failed = true; onState(`error: ${JSON.parse(data)}`, true); }
          else if (kind === "gap") { if (onGap) onGap(JSON.parse(data)); }
          else onEvent(JSON.parse(data));
        }
      }
    } catch (e) { if (e.name !== "AbortError") onState(`error: ${e.message}`, true); }
  })();
  return { close: () => ctl.abort() };
}
const latency = e => (new Date(e.resolved_at) - new Date(e.intent_at));
// gapRow is the line a tail shows where retention removed offsets
// [from, to) of a partition before it read them, over cols columns.
const gapRow = (g, cols, received) => el("tr", { class: "gap", "data-partition": g.partition, "data-from": g.from, "data-to": g.to },
  ...(received ? [el("td", { text: new Date().toLocaleTimeString() })] : []),
  el("td", { colspan: received ? cols - 1 : cols, text: `gap: partition ${g.partition} offsets [${g.from}, ${g.to}) were removed by retention ` +
    `(log.event_retention) before the tail read them: their events are not shown` }));
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
  (msg, err) => { const s = $("#tail-state"); s.textContent = msg; s.className = err ? "error" : "muted"; },
  g => addRow($("#tail-list tbody"), gapRow(g, 8, true)));
});
$("#tail-stop").addEventListener("click", stopTail);

// ---- a key ----
let keyTail = null;
const b64 = s => btoa(String.fromCharCode(...new TextEncoder().encode(s)));
const unb64 = s => { try { return new TextDecoder().decode(Uint8Array.from(atob(s || ""), c => c.charCodeAt(0))); } catch { return s; } };
// keyText shows a key (base64) as the tail shows one: as text when it is
// UTF-8 without control (but tab) or format characters and does not start
// with "0x", else as 0x-hex (a key not UTF-8, or whose text would pass for
// another key's: a bidi override, a zero-width space, the text "0x6bff"
// for the bytes 6b ff).
const keyText = s => {
  const b = Uint8Array.from(atob(s || ""), c => c.charCodeAt(0));
  try {
    const t = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(b);
    if (!/[\p{Cc}\p{Cf}]/u.test(t.replaceAll("\t", "")) && !/^0x/i.test(t)) return t;
  } catch { }
  return "0x" + Array.from(b, x => x.toString(16).padStart(2, "0")).join("");
};
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
  let part = null; // the key's partition, once its history said
  try {
    const r = await request(`api/history?table=${encodeURIComponent(table)}&key=${encodeURIComponent(key)}`);
    if (!r.ok) throw new Error(await r.text());
    const h = await r.json();
    h.events.forEach(e => rows.prepend(row(e)));
    part = h.partition;
    $("#key-scope").textContent = `(partition ${h.partition}, offsets ${h.from}..${h.end}${h.complete ? "" : ", older ones not read"}` +
      `${h.omitted ? `, ${h.omitted} older ones not shown` : ""}; newest first, new ones as they come)`;
  } catch (e) { $("#key-scope").textContent = e.message; }
  const shown = keyText(b64(key)); // the tail shows (and filters) keys so
  keyTail = follow(table, shown, e => { if (e.key === shown) addRow(rows, row(e)); }, () => {},
    g => { if (g.partition === part) addRow(rows, gapRow(g, 6, false)); });
});

// ---- dead letters ----
async function listLetters() {
  const table = $("#dlq-table").value;
  const r = await call("AdminService", "ListDeadLetters", { table, includeSettled: $("#dlq-settled").checked, limit: 500 });
  const entries = r.entries || [];
  $("#dlq-list tbody").replaceChildren(...entries.map(en => {
    const l = en.letter || {};
    const redrive = el("button", { type: "button", class: "redrive", text: "Redrive" });
    if (en.resolution || !who.admin) redrive.disabled = true;
    redrive.addEventListener("click", async () => {
      try {
        await call("AdminService", "RedriveDeadLetters", { table, offsets: [en.offset || "0"] }); // protojson omits 0
        await listLetters();
        $("#dlq-state").textContent = `redrove offset ${en.offset || "0"}; ${$("#dlq-state").textContent}`;
      } catch (e) { $("#dlq-state").textContent = e.message; }
    });
    return el("tr", { "data-offset": en.offset || "0" },
      el("td", { text: en.offset || "0" }), el("td", { text: (l.kind || "").replace("DEAD_LETTER_KIND_", "").toLowerCase() }),
      el("td", { text: keyText(l.key) }), el("td", { text: (l.intents || []).length }), el("td", { text: l.attempts || 0 }),
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

start();
