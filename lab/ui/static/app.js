// lab ui: renders what the server pushes (server-sent events); no polling, no library, no network
// beyond this server. Every request carries the token of the page's own URL.
"use strict";
const TOKEN = new URLSearchParams(location.search).get("token") || "";
const $ = (id) => document.getElementById(id);
const KINDS = ["ike", "child", "rekey", "dpd", "error", "daemon", "node", "tunnel", "fault", "restore", "heal",
  "failover", "action"];
const HIDDEN_BY_DEFAULT = new Set(["dpd"]);
let state = null;
let selected = null;
const events = [];

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function api(path) { return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN); }
function bytes(n) {
  if (n < 1024) return n + " B";
  const u = ["KiB", "MiB", "GiB"]; let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < u.length - 1);
  return n.toFixed(1) + " " + u[i];
}
function fmtTime(t) { return new Date(t * 1000).toISOString().slice(11, 19); }

function connect() {
  const es = new EventSource(api("/api/events"));
  es.addEventListener("open", () => { $("live").textContent = "live"; $("live").className = "pill on"; });
  es.addEventListener("error", () => { $("live").textContent = "disconnected"; $("live").className = "pill off"; });
  es.addEventListener("state", (ev) => render(JSON.parse(ev.data)));
  es.addEventListener("events", (ev) => { for (const e of JSON.parse(ev.data)) events.push(e); renderTimeline(); });
}

function render(s) {
  if (s.svg !== undefined) { $("graph").innerHTML = s.svg; markSelected(); }
  state = Object.assign(state || {}, s);
  $("dataplane").textContent = "data plane: " + (s.dataplane || "?");
  $("updated").textContent = s.time ? "updated " + fmtTime(s.time) + " UTC" : "";
  $("problems").innerHTML = (s.problems || []).map((p) => `<div>${esc(p)}</div>`).join("");
  renderTunnels(s.tunnels || []);
  renderBgp(s.bgp || []);
  renderP2s(s.p2s || []);
  renderSelects(s);
  renderAction(s.action || {});
  renderFaults(s.faults || []);
  renderScenario(s.scenario);
}

function azure(settings, key, value) {
  const az = (settings.azure || {})[key];
  return az ? `${esc(value)} <span class="azure-diff">(Azure: ${esc(az)})</span>`
    : `${esc(value)} <span class="azure-same">(= Azure)</span>`;
}

function kb(st) {
  if (st.child_lifetime_kb < 0) return `<span class="muted">volume: not read from its config</span>`;
  return azure(st, "child_lifetime_kb", st.child_lifetime_kb ? st.child_lifetime_kb + " KB" : "no volume limit");
}

// an end's configured lifetimes, DPD and the proposals it offers, each with Azure's value beside
function settingsHtml(st) {
  if (!st) return `<span class="muted">not known (the device's own config)</span>`;
  return `IKE ${azure(st, "ike_lifetime_s", st.ike_lifetime_s + " s")}<br>
    child ${azure(st, "child_lifetime_s", st.child_lifetime_s + " s")}<br>child ${kb(st)}<br>
    DPD ${azure(st, "dpd", st.dpd)}<br>
    <span class="props">offers IKE ${azure(st, "ike_proposals", st.ike_proposals.join(", "))}<br>
    offers ESP ${azure(st, "esp_proposals", st.esp_proposals.join(", "))}</span>`;
}

function endRows(end) {
  const where = `<td data-end="${esc(end.node)}">${esc(end.node)}<br><span class="muted">${esc(end.connection)}</span></td>`;
  if (!end.sas.length) {
    return `<tr>${where}<td colspan="3" class="muted">no SA</td><td>${settingsHtml(end.settings)}</td></tr>`;
  }
  return end.sas.map((sa) => {
    const kids = sa.children.map((c) => `${esc(c.name)} <b>${esc(c.state)}</b> ${esc(c.encryption)}<br>
      SPI in <code>${esc(c.spi_in)}</code> out <code>${esc(c.spi_out)}</code><br>
      ${esc(c.local_ts.join(","))} ⇄ ${esc(c.remote_ts.join(","))}`).join("<hr>");
    const traffic = sa.children.map((c) => `<span class="num" data-child="${esc(c.spi_in)}"
      data-packets-in="${c.packets_in}" data-packets-out="${c.packets_out}">in ${bytes(c.bytes_in)} / ${c.packets_in} pkts<br>
      out ${bytes(c.bytes_out)} / ${c.packets_out} pkts</span>`).join("<hr>");
    return `<tr>${where.replace("<br>", `<br><span class="muted">${esc(sa.local)} → ${esc(sa.remote)}</span><br>`)}
      <td>${esc(sa.state)} IKEv${sa.version}<br>${esc(sa.ike_proposal)}</td>
      <td>${kids}</td><td>${traffic}</td><td>${settingsHtml(sa.settings)}</td></tr>`;
  }).join("");
}

function renderTunnels(tunnels) {
  $("tunnels").innerHTML = tunnels.length ? tunnels.map((t) => `<table data-edge="${esc(t.edge)}"
      data-state="${esc(t.state)}"><tr><th colspan="5">${esc(t.label.split(":")[0])} <span class="muted">(${t.ends.map((e) => esc(e.node)).join(" ⇄ ")})</span>
      <span class="state ${esc(t.state)}">${esc(t.state)}</span> ${esc(t.bgp)}</th></tr>
      <tr><th>end</th><th>IKE_SA</th><th>CHILD_SA</th><th>traffic</th><th>configured (Azure's value beside)</th></tr>
      ${t.ends.map(endRows).join("")}</table>`).join("<br>") : `<span class="muted">no tunnels</span>`;
}

function renderBgp(peers) {
  $("bgp-card").hidden = !peers.length;
  $("bgp").innerHTML = `<table><tr><th>node</th><th>peer</th><th>ASN</th><th>state</th><th>prefixes in/out</th>
    <th>up</th></tr>${peers.map((p) => `<tr><td>${esc(p.node)}</td><td>${esc(p.peer)}</td><td>${p.asn}</td>
    <td>${esc(p.state)}</td><td>${p.prefixes_in} / ${p.prefixes_out}</td><td>${esc(p.uptime)}</td></tr>`).join("")}
    </table>`;
}

function renderP2s(clients) {
  $("p2s-card").hidden = !clients.length;
  $("p2s").innerHTML = `<table><tr><th>client</th><th>gateway</th><th>public IP</th><th>state</th><th>virtual IP</th>
    <th>reason</th></tr>${clients.map((c) => `<tr data-client="${esc(c.name)}"><td>${esc(c.name)}</td>
    <td>${esc(c.gateway)}</td><td>${esc(c.public_ip)}</td>
    <td><span class="state ${c.state === "connected" ? "up" : "down"}">${esc(c.state)}</span></td>
    <td>${esc(c.virtual_ip)}</td><td>${esc(c.reason)}</td></tr>`).join("")}</table>`;
}

function fill(sel, values, keep) {
  const cur = keep || sel.value;
  if (sel.dataset.values === values.join(",")) { if (cur) sel.value = cur; return; }
  sel.dataset.values = values.join(",");
  sel.innerHTML = values.map((v) => `<option>${esc(v)}</option>`).join("");
  if (cur && values.includes(cur)) sel.value = cur;
}

function renderSelects(s) {
  fill($("node"), (s.nodes || []).map((n) => n.name), selected);
  fill($("gateway"), s.gateways || []);
}

function markSelected() {
  document.querySelectorAll("#graph .node.selected").forEach((n) => n.classList.remove("selected"));
  if (!selected) return;
  const g = document.querySelector(`#graph [data-node="${CSS.escape(selected)}"]`);
  if (g) g.classList.add("selected");
}

function renderAction(a) {
  const busy = !!a.running;
  document.querySelectorAll("#actions button, #scenario-card button").forEach((b) => { b.disabled = busy; });
  $("action-state").textContent = busy ? "running: " + a.running : "";
  const r = a.last;
  if (!r) { $("action-result").innerHTML = ""; return; }
  let body = "";
  if (r.data && Array.isArray(r.data.checks)) {
    body = `<table>${r.data.checks.map((c) => `<tr><td class="${c.passed ? "pass" : "fail"}">${c.passed ? "PASS" : "FAIL"}</td>
      <td>${esc(c.name)}</td><td>${esc(c.summary || c.detail || "")}</td></tr>`).join("")}</table>`;
  } else if (Array.isArray(r.data)) {
    body = gradesHtml(r.data);
  } else if (r.name === "failover" && r.data && r.data.udp) {
    body = failoverHtml(r.data);
  }
  $("action-result").innerHTML = `<div data-action="${esc(r.name)}" data-ok="${r.ok}">
    <b class="${r.ok ? "pass" : "fail"}">${r.ok ? "OK" : "FAILED (exit " + r.code + ")"}</b> <code>${esc(r.command)}</code>
    ${body}<pre>${esc(r.output || "")}</pre></div>`;
  if (r.name === "scenario-check" && Array.isArray(r.data)) {
    $("scenario-result").innerHTML = `<div id="scenario-grades" data-passed="${r.data.every((g) => g.passed)}">
      ${gradesHtml(r.data)}</div>`;
  }
  if (r.name === "scenario-hint") $("scenario-result").innerHTML = `<pre>${esc(r.output)}</pre>`;
  if (r.name === "capture" || r.name === "failover") loadDownloads();
}

// what `lab failover` measured, and the picture its --plot drew of the same marks the timeline now holds
function failoverHtml(f) {
  const rev = f.udp_reverse ? `; site → VNet ${f.udp_reverse.flow_outage_ms.toFixed(0)} ms` : "";
  return `<div id="failover-result">${esc(f.mode)} ${esc(f.kind)} failover of ${esc(f.gateway)}: worst UDP flow
    outage VNet → site <b>${f.udp.flow_outage_ms.toFixed(0)} ms</b>${rev}
    <span class="muted">(Azure: ${esc(f.azure_figure || "?")})</span>; ${f.udp.lost} of ${f.udp.sent} probes lost<br>
    <img id="failover-plot" alt="failover timeline" src="${api("/api/capture/failover-timeline.png")}&t=${f.t0}"></div>`;
}

function gradesHtml(grades) {
  return `<table>${grades.map((g) => `<tr><td class="${g.passed ? "pass" : "fail"}">${g.passed ? "PASS" : "FAIL"}</td>
    <td>${esc(g.check)}</td><td>${esc(g.detail)}</td></tr>`).join("")}</table>`;
}

function renderFaults(faults) {
  $("faults").innerHTML = faults.length ? "active faults: " + faults.map((f) => `<b>${esc(f.text)}</b>`).join(", ") : "";
}

function renderScenario(sc) {
  $("scenario-card").hidden = !sc;
  if (!sc) return;
  $("scenario-name").textContent = `${sc.name}: ${sc.title}`;
  $("scenario-task").textContent = sc.task;
  $("btn-hint").textContent = `next hint (${sc.hints_shown}/${sc.hints} shown)`;
}

async function loadDownloads() {
  const r = await fetch(api("/api/captures"));
  const files = r.ok ? await r.json() : [];
  $("downloads").innerHTML = files.length ? "download: " + files.map((f) =>
    `<a href="${api("/api/capture/" + encodeURIComponent(f))}" download>${esc(f)}</a>`).join(" · ")
    + (files.includes("esp_sa") ? ` <span class="muted">(Wireshark: esp_sa → ~/.config/wireshark/esp_sa)</span>` : "")
    : "";
}

function renderTimeline() {
  const shown = new Set(KINDS.filter((k) => { const c = $("f-" + k); return c ? c.checked : !HIDDEN_BY_DEFAULT.has(k); }));
  const list = events.filter((e) => shown.has(e.kind)).slice(-400).reverse();
  $("timeline").innerHTML = list.map((e) => `<li data-kind="${esc(e.kind)}"><span class="t">${fmtTime(e.t)}</span>
    <span class="k k-${esc(e.kind)}">${esc(e.kind)}</span> <b>${esc(e.node)}</b> ${esc(e.text)}</li>`).join("");
}

async function act(body) {
  const r = await fetch(api("/api/action"), {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify(body)});
  if (!r.ok) {
    const e = await r.json().catch(() => ({error: r.statusText}));
    $("action-state").textContent = "refused: " + e.error;
  }
}

function setup() {
  $("filters").innerHTML = KINDS.map((k) => `<label><input type="checkbox" id="f-${k}"
    ${HIDDEN_BY_DEFAULT.has(k) ? "" : "checked"}> ${k}</label>`).join("");
  $("filters").addEventListener("change", renderTimeline);
  $("graph").addEventListener("click", (ev) => {
    const g = ev.target.closest("[data-node]");
    if (!g || g.dataset.node === "internet") return;
    selected = g.dataset.node; $("node").value = selected; markSelected();
  });
  $("node").addEventListener("change", () => { selected = $("node").value; markSelected(); });
  $("fault-kind").addEventListener("change", () => { $("fault-percent").hidden = $("fault-kind").value !== "loss"; });
  $("btn-fault").addEventListener("click", () => act({action: "fault", kind: $("fault-kind").value,
    node: $("node").value, percent: Number($("fault-percent").value)}));
  $("btn-restore").addEventListener("click", () => act({action: "restore", node: $("node").value}));
  $("btn-restore-all").addEventListener("click", () => act({action: "restore"}));
  const failover = (planned) => {
    const secs = $("failover-seconds").value;
    act({action: "failover", gateway: $("gateway").value, planned, duration: secs ? Number(secs) : null});
  };
  $("btn-failover").addEventListener("click", () => failover(true));
  $("btn-failover-u").addEventListener("click", () => failover(false));
  $("btn-reset").addEventListener("click", () => act({action: "reset", gateway: $("gateway").value}));
  $("btn-verify").addEventListener("click", () => act({action: "verify"}));
  $("btn-capture").addEventListener("click", () => act({action: "capture"}));
  $("btn-hint").addEventListener("click", () => act({action: "scenario-hint"}));
  $("btn-check").addEventListener("click", () => act({action: "scenario-check"}));
  loadDownloads();
  connect();
}
document.addEventListener("DOMContentLoaded", setup);
