// Gregor's web console: one page, routed by the URL's hash, drawn from the broker's JSON
// API (/api/, docs/http-api.md). No framework and no build step; everything the page shows
// comes from the broker it is served by.
"use strict";

const app = document.getElementById("app");
const statusLine = document.getElementById("status");
let pageTimer = null; // the current page's refresh timer, stopped on navigation
let shown = null; // what a refreshing page last drew, to redraw only on change

// ---- helpers --------------------------------------------------------------------------

/** Builds an element: el("td", {class: "num"}, "3"). Strings become text nodes. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "value") node.value = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch("/api" + path, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { error: text }; }
  if (!response.ok) throw new Error((data && data.error) || response.statusText);
  return data;
}

const enc = encodeURIComponent;
const fmt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}
function isoTime(ms) { return ms >= 0 ? new Date(ms).toISOString().replace("T", " ").replace("Z", "") : "–"; }
function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}

function table(headers, rows, attrs) {
  return el("table", attrs || {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", { class: h.num ? "num" : null }, h.label || h)))),
    el("tbody", {}, rows));
}
function td(value, cls) { return el("td", { class: cls }, value); }
function errorBox(e) { return el("div", { class: "error", "data-testid": "error" }, String(e.message || e)); }
function notice(text) { return el("div", { class: "notice", "data-testid": "notice" }, text); }
function show(...nodes) { app.replaceChildren(...nodes); }

// ---- record payloads: base64 → UTF-8, JSON or hex --------------------------------------

function decode64(b64) {
  if (b64 === null || b64 === undefined) return null;
  const raw = atob(b64);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}
function hex(data) {
  const lines = [];
  for (let i = 0; i < data.length; i += 16) {
    const chunk = Array.from(data.slice(i, i + 16));
    lines.push(i.toString(16).padStart(6, "0") + "  " + chunk.map((b) => b.toString(16).padStart(2, "0")).join(" "));
  }
  return lines.join("\n");
}
/** A payload rendered as `mode` (utf8, json, hex); text that is not UTF-8 falls back to hex. */
function render(b64, mode) {
  const data = decode64(b64);
  if (data === null) return "null";
  if (mode === "hex") return hex(data);
  let text;
  try { text = new TextDecoder("utf-8", { fatal: true }).decode(data); } catch (e) { return hex(data); }
  if (mode === "json") {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return text; }
  }
  return text;
}

// ---- overview: cluster and live throughput -------------------------------------------

const samples = []; // {t, messages_in, bytes_in, bytes_out}

function drawChart(canvas, points, label) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = w * ratio; canvas.height = h * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...points);
  g.strokeStyle = "#e4e7ec"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) { const y = 4 + (h - 8) * i / 4; g.beginPath(); g.moveTo(0, y); g.lineTo(w, y); g.stroke(); }
  g.fillStyle = "#667085"; g.font = "11px system-ui";
  g.fillText(label(max), 4, 14);
  if (points.length < 2) return;
  g.strokeStyle = "#3056d3"; g.lineWidth = 2; g.beginPath();
  points.forEach((v, i) => {
    const x = (w - 2) * i / (points.length - 1) + 1, y = h - 4 - (h - 8) * v / max;
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
}

function rates(key) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].t - samples[i - 1].t) / 1000;
    out.push(dt > 0 ? Math.max(0, (samples[i][key] - samples[i - 1][key]) / dt) : 0);
  }
  return out;
}

async function overview() {
  const [cluster, topics, groups] = await Promise.all([api("GET", "/cluster"), api("GET", "/topics"), api("GET", "/groups")]);
  const card = (label, value, id, small) => el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: small ? "value small" : "value", "data-testid": id }, value));
  const charts = [
    ["messages_in", "Messages in / s", (v) => fmt(Math.round(v)) + "/s"],
    ["bytes_in", "Bytes in / s", (v) => bytes(Math.round(v)) + "/s"],
    ["bytes_out", "Bytes out / s", (v) => bytes(Math.round(v)) + "/s"],
  ].map(([key, title, label]) => {
    const canvas = el("canvas", { "data-testid": "chart-" + key });
    const now = el("span", { "data-testid": "rate-" + key }, "–");
    return { key, label, canvas, now, node: el("div", { class: "chart" }, el("div", { class: "title" }, el("span", {}, title), now), canvas) };
  });
  show(
    el("h1", {}, "Overview"),
    el("div", { class: "cards" },
      card("Cluster id", cluster.cluster_id || "–", "cluster-id", true),
      card("Version", "Gregor " + cluster.version, "version"),
      card("Uptime", duration(cluster.uptime_seconds), "uptime"),
      card("Brokers", cluster.brokers.map((b) => b.node_id + " @ " + b.host + ":" + b.port).join(", "), "brokers", true),
      card("Topics", fmt(cluster.topics), "topic-count"),
      card("Partitions", fmt(cluster.partitions), "partition-count"),
      card("Messages stored", fmt(topics.reduce((s, t) => s + t.messages, 0)), "message-count"),
      card("Consumer groups", fmt(groups.length), "group-count")),
    el("h2", {}, "Throughput"),
    el("div", { class: "charts" }, charts.map((c) => c.node)));
  const tick = async () => {
    try {
      const s = await api("GET", "/stats");
      samples.push({ t: s.time_ms, messages_in: s.messages_in, bytes_in: s.bytes_in, bytes_out: s.bytes_out });
      while (samples.length > 61) samples.shift();
      for (const c of charts) {
        const r = rates(c.key);
        drawChart(c.canvas, r, c.label);
        c.now.textContent = r.length ? c.label(r[r.length - 1]) : "–";
      }
    } catch (e) { statusLine.textContent = e.message; }
  };
  await tick();
  pageTimer = setInterval(tick, 2000);
}

// ---- topics --------------------------------------------------------------------------

async function topicsPage() {
  const internal = location.hash.includes("internal=true");
  const topics = await api("GET", "/topics" + (internal ? "?internal=true" : ""));
  const result = el("div");
  const name = el("input", { name: "name", placeholder: "orders", required: true, "data-testid": "new-topic-name" });
  const partitions = el("input", { name: "partitions", type: "number", min: 1, value: "1", "data-testid": "new-topic-partitions" });
  const configs = el("input", { name: "configs", placeholder: "retention.ms=86400000, cleanup.policy=compact", size: 40, "data-testid": "new-topic-configs" });
  const create = el("form", {
    class: "inline", "data-testid": "create-topic",
    onsubmit: async (ev) => {
      ev.preventDefault();
      const cfg = {};
      for (const pair of configs.value.split(",").map((s) => s.trim()).filter(Boolean)) {
        const at = pair.indexOf("=");
        if (at < 1) { result.replaceChildren(errorBox(new Error("configs are KEY=VALUE, comma-separated"))); return; }
        cfg[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
      }
      try {
        await api("POST", "/topics", { name: name.value.trim(), partitions: Number(partitions.value), configs: cfg });
        location.hash = "#/topics/" + enc(name.value.trim());
      } catch (e) { result.replaceChildren(errorBox(e)); }
    },
  }, el("label", {}, "Name", name), el("label", {}, "Partitions", partitions), el("label", {}, "Configs", configs), el("button", { type: "submit" }, "Create topic"));
  const rows = topics.map((t) => el("tr", { class: "clickable", "data-topic": t.name, onclick: () => { location.hash = "#/topics/" + enc(t.name); } },
    td(el("a", { href: "#/topics/" + enc(t.name) }, t.name)), td(fmt(t.partitions), "num"), td(fmt(t.replication_factor), "num"),
    td(fmt(t.messages), "num"), td(bytes(t.size_bytes), "num"), td(t.internal ? "internal" : "")));
  show(el("h1", {}, "Topics"), create, result,
    el("p", {}, el("a", { href: internal ? "#/topics" : "#/topics?internal=true" }, internal ? "Hide internal topics" : "Show internal topics")),
    topics.length ? table(["Topic", { label: "Partitions", num: 1 }, { label: "Replication", num: 1 }, { label: "Messages", num: 1 }, { label: "Size", num: 1 }, ""], rows, { "data-testid": "topics" })
      : el("p", { class: "muted", "data-testid": "no-topics" }, "No topics yet."));
}

async function topicPage(topic) {
  const t = await api("GET", "/topics/" + enc(topic));
  const result = el("div");
  const partitions = t.partitions.map((p) => el("tr", {},
    td(p.partition, "num"), td(p.leader, "num"), td(p.replicas.join(",")), td(p.isr.join(",")),
    td(fmt(p.log_start_offset), "num"), td(fmt(p.high_watermark), "num"), td(fmt(p.high_watermark - p.log_start_offset), "num"), td(bytes(p.size_bytes), "num"),
    td(el("a", { href: "#/topics/" + enc(topic) + "/messages?partition=" + p.partition }, "messages"))));
  const configs = t.configs.map((c) => {
    const input = el("input", { value: c.sensitive ? "" : (c.value ?? ""), placeholder: c.sensitive ? "(sensitive)" : "", disabled: c.read_only, "data-config": c.name, size: 28 });
    const save = el("button", { class: "secondary", disabled: c.read_only, "data-testid": "save-" + c.name, onclick: async () => {
      try { await api("PATCH", "/topics/" + enc(topic) + "/configs", { set: { [c.name]: input.value } }); route(); }
      catch (e) { result.replaceChildren(errorBox(e)); }
    } }, "Save");
    const reset = c.source === "DYNAMIC_TOPIC_CONFIG" ? el("button", { class: "secondary", onclick: async () => {
      try { await api("PATCH", "/topics/" + enc(topic) + "/configs", { delete: [c.name] }); route(); }
      catch (e) { result.replaceChildren(errorBox(e)); }
    } }, "Default") : null;
    return el("tr", { "data-config-row": c.name }, td(c.name, "mono"), td(input), td(c.source, "muted"), td([save, " ", reset]));
  });
  const remove = el("button", { class: "danger", "data-testid": "delete-topic", onclick: async () => {
    if (!confirm("Delete topic " + topic + " and all its records?")) return;
    try { await api("DELETE", "/topics/" + enc(topic)); location.hash = "#/topics"; }
    catch (e) { result.replaceChildren(errorBox(e)); }
  } }, "Delete topic");
  const total = t.partitions.reduce((s, p) => s + p.high_watermark - p.log_start_offset, 0);
  show(el("h1", {}, "Topic ", el("span", { "data-testid": "topic-name" }, t.name)),
    el("p", { class: "muted" }, "Id " + t.id + " · " + t.partitions.length + " partition(s) · " + fmt(total) + " message(s) · ",
      el("a", { href: "#/topics/" + enc(topic) + "/messages", "data-testid": "browse" }, "Browse messages"), " · ", remove),
    result,
    el("h2", {}, "Partitions"),
    table([{ label: "Partition", num: 1 }, { label: "Leader", num: 1 }, "Replicas", "ISR", { label: "Log start", num: 1 }, { label: "High watermark", num: 1 }, { label: "Messages", num: 1 }, { label: "Size", num: 1 }, ""], partitions, { "data-testid": "partitions" }),
    el("h2", {}, "Configs"),
    table(["Config", "Value", "Source", ""], configs, { "data-testid": "configs" }));
}

// ---- messages: browse a partition, produce a test message ------------------------------

async function messagesPage(topic, params) {
  const t = await api("GET", "/topics/" + enc(topic));
  const partition = el("select", { "data-testid": "partition" }, t.partitions.map((p) => el("option", { value: String(p.partition) }, String(p.partition))));
  partition.value = params.get("partition") || "0";
  const from = el("select", { "data-testid": "from" }, ["end", "beginning", "offset", "timestamp"].map((f) => el("option", { value: f }, f)));
  from.value = params.get("from") || "end";
  const offset = el("input", { type: "number", min: 0, size: 8, placeholder: "offset", "data-testid": "offset", value: params.get("offset") || "" });
  const time = el("input", { type: "datetime-local", step: 1, "data-testid": "timestamp" });
  const key = el("input", { placeholder: "key contains…", "data-testid": "key-filter", value: params.get("key") || "" });
  const limit = el("input", { type: "number", min: 1, max: 500, value: params.get("limit") || "50", size: 4, "data-testid": "limit" });
  const mode = el("select", { "data-testid": "render" }, [["utf8", "UTF-8"], ["json", "JSON"], ["hex", "hex"]].map(([v, l]) => el("option", { value: v }, l)));
  mode.value = localStorage.getItem("gregor.render") || "utf8";
  const list = el("div", { "data-testid": "messages" });
  const detail = el("div", { class: "detail", "data-testid": "message-detail" });
  let messages = [];
  let selected = null;

  const showDetail = () => {
    if (selected === null) { detail.replaceChildren(); return; }
    const m = messages[selected];
    detail.replaceChildren(
      el("h2", {}, "Partition " + m.partition + " · offset " + m.offset),
      el("p", { class: "muted" }, m.timestamp_type + " " + isoTime(m.timestamp) + " (" + m.timestamp + ")"),
      el("div", { class: "row" },
        el("div", {}, el("div", { class: "muted" }, "Key"), el("pre", { class: "payload mono", "data-testid": "detail-key" }, render(m.key, mode.value))),
        el("div", {}, el("div", { class: "muted" }, "Headers"), el("pre", { class: "payload mono", "data-testid": "detail-headers" },
          m.headers.length ? m.headers.map((h) => h.key + ": " + render(h.value, mode.value === "hex" ? "hex" : "utf8")).join("\n") : "(none)"))),
      el("div", { class: "muted" }, "Value"), el("pre", { class: "payload mono", "data-testid": "detail-value" }, render(m.value, mode.value)));
  };
  const draw = (answer) => {
    const rows = messages.map((m, i) => el("tr", { class: "clickable" + (i === selected ? " selected" : ""), "data-offset": m.offset, onclick: () => { selected = i; draw(answer); showDetail(); } },
      td(m.offset, "num"), td(isoTime(m.timestamp), "mono"), td(render(m.key, "utf8"), "mono clip"), td(render(m.value, mode.value === "hex" ? "hex" : "utf8").split("\n")[0], "mono clip"), td(m.headers.length, "num")));
    list.replaceChildren(
      el("p", { class: "muted", "data-testid": "range" }, "Partition " + answer.partition + ": offsets " + fmt(answer.log_start_offset) + " to " + fmt(answer.high_watermark) +
        " · showing " + messages.length + (key.value ? " matching of " + fmt(answer.scanned) + " scanned" : "")),
      messages.length ? table([{ label: "Offset", num: 1 }, "Timestamp", "Key", "Value", { label: "Headers", num: 1 }], rows) : el("p", { class: "muted", "data-testid": "no-messages" }, "No messages here."));
  };
  const load = async () => {
    const q = new URLSearchParams({ partition: partition.value, from: from.value, limit: limit.value });
    if (from.value === "offset") q.set("offset", offset.value || "0");
    if (from.value === "timestamp") q.set("timestamp", String(time.value ? new Date(time.value).getTime() : Date.now()));
    if (key.value) q.set("key", key.value);
    try {
      const answer = await api("GET", "/topics/" + enc(topic) + "/messages?" + q);
      messages = answer.messages;
      selected = null;
      draw(answer);
      showDetail();
    } catch (e) { list.replaceChildren(errorBox(e)); }
  };
  mode.addEventListener("change", () => { localStorage.setItem("gregor.render", mode.value); load(); });

  // Produce a test message.
  const pPartition = el("select", { "data-testid": "produce-partition" }, el("option", { value: "" }, "by key / round robin"), t.partitions.map((p) => el("option", { value: String(p.partition) }, String(p.partition))));
  const pKey = el("input", { placeholder: "key (optional)", "data-testid": "produce-key" });
  const pValue = el("textarea", { placeholder: "value", "data-testid": "produce-value" });
  const pHeaders = el("textarea", { placeholder: "headers, one KEY=VALUE per line", "data-testid": "produce-headers" });
  const produced = el("div");
  const produce = el("form", { class: "inline", "data-testid": "produce", onsubmit: async (ev) => {
    ev.preventDefault();
    const headers = {};
    for (const line of pHeaders.value.split("\n").map((s) => s.trim()).filter(Boolean)) {
      const at = line.indexOf("=");
      headers[at > 0 ? line.slice(0, at) : line] = at > 0 ? line.slice(at + 1) : "";
    }
    const body = { key: pKey.value || null, value: pValue.value, headers };
    if (pPartition.value !== "") body.partition = Number(pPartition.value);
    try {
      const r = await api("POST", "/topics/" + enc(topic) + "/messages", body);
      produced.replaceChildren(notice("Written to partition " + r.partition + " at offset " + r.offset + "."));
      partition.value = String(r.partition);
      from.value = "end";
      await load();
    } catch (e) { produced.replaceChildren(errorBox(e)); }
  } }, el("label", {}, "Partition", pPartition), el("label", {}, "Key", pKey), el("label", {}, "Value", pValue), el("label", {}, "Headers", pHeaders), el("button", { type: "submit", "data-testid": "produce-send" }, "Produce"));

  show(el("h1", {}, "Messages in ", el("a", { href: "#/topics/" + enc(topic) }, topic)),
    el("div", { class: "controls" },
      el("label", {}, "Partition", partition), el("label", {}, "From", from), el("label", {}, "Offset", offset), el("label", {}, "Time", time),
      el("label", {}, "Key", key), el("label", {}, "Limit", limit), el("label", {}, "Show as", mode),
      el("button", { "data-testid": "load", onclick: load }, "Load")),
    list, detail,
    el("h2", {}, "Produce a test message"), produce, produced);
  await load();
}

// ---- consumer groups -----------------------------------------------------------------

async function groupsPage() {
  const groups = await api("GET", "/groups");
  const rows = groups.map((g) => el("tr", { class: "clickable", "data-group": g.group_id, onclick: () => { location.hash = "#/groups/" + enc(g.group_id); } },
    td(el("a", { href: "#/groups/" + enc(g.group_id) }, g.group_id)), td(g.group_type), td(el("span", { class: "pill " + g.state }, g.state)),
    td(fmt(g.members), "num"), td(fmt(g.lag), "num")));
  show(el("h1", {}, "Consumer groups"),
    groups.length ? table(["Group", "Type", "State", { label: "Members", num: 1 }, { label: "Lag", num: 1 }], rows, { "data-testid": "groups" })
      : el("p", { class: "muted", "data-testid": "no-groups" }, "No groups yet."));
  shown = JSON.stringify(groups);
  pageTimer = setInterval(async () => {
    try { const fresh = await api("GET", "/groups"); if (JSON.stringify(fresh) !== shown) route(); } catch (e) { /* next time */ }
  }, 3000);
}

async function groupPage(group) {
  const g = await api("GET", "/groups/" + enc(group));
  const result = el("div");
  const members = g.members.map((m) => el("tr", {}, td(m.member_id, "mono"), td(m.client_id), td(m.host),
    td(m.assignment.map((a) => a.topic + ": " + a.partitions.join(",")).join("; ") || "–")));
  const offsets = g.offsets.map((o) => el("tr", { "data-partition": o.topic + "-" + o.partition },
    td(o.topic), td(o.partition, "num"), td(fmt(o.committed), "num"), td(fmt(o.log_end_offset), "num"), td(fmt(o.lag), "num lag"), td(o.member_id || "–", "mono")));
  const topics = [...new Set(g.offsets.map((o) => o.topic))];
  const topic = el("select", { "data-testid": "reset-topic" }, topics.map((t) => el("option", { value: t }, t)));
  const to = el("select", { "data-testid": "reset-to" }, ["earliest", "latest", "offset", "timestamp", "shift"].map((v) => el("option", { value: v }, v)));
  const value = el("input", { type: "number", size: 14, placeholder: "offset, ms or shift", "data-testid": "reset-value" });
  const reset = el("form", { class: "inline", "data-testid": "reset-offsets", onsubmit: async (ev) => {
    ev.preventDefault();
    const body = { topic: topic.value, to: to.value, execute: true };
    if (["offset", "timestamp", "shift"].includes(to.value)) body.value = Number(value.value);
    try {
      const r = await api("POST", "/groups/" + enc(group) + "/offsets", body);
      await groupPage(group);
      app.prepend(notice("Offsets reset: " + r.offsets.map((o) => o.topic + "-" + o.partition + " → " + o.new_offset).join(", ")));
    } catch (e) { result.replaceChildren(errorBox(e)); }
  } }, el("label", {}, "Topic", topic), el("label", {}, "To", to), el("label", {}, "Value", value), el("button", { type: "submit", "data-testid": "reset-send" }, "Reset offsets"));
  const remove = el("button", { class: "danger", "data-testid": "delete-group", onclick: async () => {
    if (!confirm("Delete group " + group + " and its committed offsets?")) return;
    try { await api("DELETE", "/groups/" + enc(group)); location.hash = "#/groups"; }
    catch (e) { result.replaceChildren(errorBox(e)); }
  } }, "Delete group");
  const total = g.offsets.reduce((s, o) => s + (o.lag || 0), 0);
  show(el("h1", {}, "Group ", el("span", { "data-testid": "group-id" }, g.group_id)),
    el("p", {}, el("span", { class: "pill " + g.state, "data-testid": "group-state" }, g.state), " ", g.group_type + " group · assignor " + (g.assignor || "–") +
      " · coordinator " + g.coordinator + " · total lag ", el("strong", { "data-testid": "total-lag" }, fmt(total)), " · ", remove),
    result,
    el("h2", {}, "Members"),
    g.members.length ? table(["Member", "Client", "Host", "Assignment"], members, { "data-testid": "members" }) : el("p", { class: "muted", "data-testid": "no-members" }, "No members."),
    el("h2", {}, "Offsets and lag"),
    g.offsets.length ? table(["Topic", { label: "Partition", num: 1 }, { label: "Committed", num: 1 }, { label: "Log end", num: 1 }, { label: "Lag", num: 1 }, "Member"], offsets, { "data-testid": "offsets" })
      : el("p", { class: "muted" }, "No committed offsets."),
    el("h2", {}, "Reset offsets"),
    el("p", { class: "muted" }, "Only while the group has no members, as Kafka allows."),
    topics.length ? reset : el("p", { class: "muted" }, "No topics to reset."));
  shown = JSON.stringify([g.state, g.members, g.offsets]);
  pageTimer = pageTimer || setInterval(async () => {
    try {
      const fresh = await api("GET", "/groups/" + enc(group));
      if (JSON.stringify([fresh.state, fresh.members, fresh.offsets]) !== shown) groupPage(group);
    } catch (e) { /* next time */ }
  }, 3000);
}

// ---- routing -------------------------------------------------------------------------

async function route() {
  clearInterval(pageTimer);
  pageTimer = null;
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const a of document.querySelectorAll("[data-nav]")) a.classList.toggle("active", a.dataset.nav === (parts[0] || "overview"));
  try {
    if (parts.length === 0) await overview();
    else if (parts[0] === "topics" && parts.length === 1) await topicsPage();
    else if (parts[0] === "topics" && parts.length === 2) await topicPage(parts[1]);
    else if (parts[0] === "topics" && parts[2] === "messages") await messagesPage(parts[1], params);
    else if (parts[0] === "groups" && parts.length === 1) await groupsPage();
    else if (parts[0] === "groups" && parts.length === 2) await groupPage(parts[1]);
    else show(el("h1", {}, "Not found"), el("p", {}, el("a", { href: "#/" }, "Back to the overview")));
    statusLine.textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    show(errorBox(e));
  }
}

window.addEventListener("hashchange", route);
route();
