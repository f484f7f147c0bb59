// Clearance audit page: a small static page over the auditor API (no build step, no CDN).
// The auditor key lives in sessionStorage (this tab only) and goes out as a Bearer token; every
// value from the server is put into the page with textContent, never as HTML.
"use strict";

const KEY_STORE = "clearance.auditorKey";
const FILTERS = ["from", "to", "app_id", "model", "model_status", "outcome", "reason_code",
  "regulatory_tier", "sector", "provenance", "policy_revision", "decision_id", "kind", "served"];
const COLOURS = {
  allow: "#2e7d32", deny: "#c62828", open_western: "#1565c0", open_chinese: "#ef6c00",
  gated_proprietary: "#6a1b9a", none: "#9e9e9e",
};

const $ = (id) => document.getElementById(id);
const state = { cursors: [null], page: 0, params: {}, items: [] };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(child == null ? "" : String(child)));
  }
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    const fields = (error.fields || []).map((f) => `${f.field}: ${f.reason}`).join("; ");
    super(`${error.message || "request failed"}${fields ? ` (${fields})` : ""}`);
    this.status = status;
  }
}

async function api(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v != null));
  const url = query.toString() ? `${path}?${query}` : path;
  const response = await fetch(url, { headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORE)}` } });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (response.status === 401) { signOut("The key was refused (unknown or revoked). Sign in again."); }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// -- sign in ----------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  const error = $("signin-error");
  error.hidden = true;
  sessionStorage.setItem(KEY_STORE, key);
  try {
    await api("/v1/audit/stats");
  } catch (e) {
    sessionStorage.removeItem(KEY_STORE);
    error.textContent = e.status === 403 ? "This key is not an auditor key." : `Sign-in failed: ${e.message}`;
    error.hidden = false;
    return;
  }
  $("api-key").value = "";
  showApp();
}

function signOut(message) {
  sessionStorage.removeItem(KEY_STORE);
  $("app").hidden = true;
  $("who").hidden = true;
  $("signin").hidden = false;
  const error = $("signin-error");
  error.hidden = !message;
  error.textContent = message || "";
}

function showApp() {
  $("signin").hidden = true;
  $("app").hidden = false;
  $("who").hidden = false;
  search();
}

// -- search and paging ------------------------------------------------------------------------

function rfc3339(local) {
  if (!local) return "";
  return (local.length === 16 ? `${local}:00` : local) + "Z"; // the inputs are in UTC
}

function formParams() {
  const form = $("search-form");
  const params = {};
  for (const name of FILTERS) {
    const value = form.elements[name].value.trim();
    if (value) params[name] = name === "from" || name === "to" ? rfc3339(value) : value;
  }
  return params;
}

async function search(event) {
  if (event) event.preventDefault();
  $("search-error").hidden = true;
  state.params = formParams();
  state.cursors = [null];
  state.page = 0;
  await Promise.all([loadPage(), loadCharts()]);
}

async function loadPage() {
  const limit = $("search-form").elements.limit.value;
  const cursor = state.cursors[state.page];
  let page;
  try {
    page = await api("/v1/audit/decisions", { ...state.params, limit, cursor });
  } catch (e) {
    $("search-error").textContent = e.message;
    $("search-error").hidden = false;
    return;
  }
  state.items = page.items;
  state.cursors[state.page + 1] = page.next_cursor;
  renderResults(page);
}

function renderResults(page) {
  const body = $("results-table").tBodies[0];
  body.replaceChildren();
  for (const item of page.items) {
    body.append(el("tr", { "data-seq": item.seq },
      el("td", { class: "num" }, item.seq),
      el("td", { class: "mono" }, item.recorded_at.replace("T", " ").replace(/\.\d+Z$/, "Z")),
      // Reloads and served-route reports (kind policy_reload, served) have no decision id.
      el("td", {}, item.decision_id ? el("a", { href: `#decision/${item.decision_id}`, class: "mono decision-link",
        onclick: (e) => { e.preventDefault(); openDecision(item.decision_id); } }, item.decision_id.slice(0, 18) + "…")
        : el("span", { class: "muted" }, item.kind || "–")),
      el("td", {}, item.app_id || "–"),
      el("td", {}, el("span", { class: `pill ${item.outcome}` }, item.outcome || "–")),
      el("td", {}, item.regulatory_tier || "–"),
      el("td", {}, item.sector || "–"),
      el("td", {}, item.models_allowed.join(", ") || "–"),
      el("td", { class: "codes" }, item.reason_codes.join(" ") || "–"),
    ));
  }
  if (!page.items.length) body.append(el("tr", {}, el("td", { colspan: 9, class: "muted" }, "No decision matches these filters.")));
  $("result-count").textContent = page.items.length ? `(page ${state.page + 1}, ${page.items.length} shown)` : "";
  $("page-label").textContent = page.next_cursor ? "more entries follow" : "end of results";
  $("next-page").disabled = !page.next_cursor;
  $("prev-page").disabled = state.page === 0;
  $("first-page").disabled = state.page === 0;
  if (page.items.length) {
    const seqs = page.items.map((i) => i.seq);
    const form = $("verify-form");
    form.elements.from_seq.value = Math.min(...seqs);
    form.elements.to_seq.value = Math.max(...seqs);
  }
}

function turn(delta) {
  state.page = delta === 0 ? 0 : Math.max(0, state.page + delta);
  loadPage();
}

// -- charts -----------------------------------------------------------------------------------

async function loadCharts() {
  const [outcome, provenance] = await Promise.all([
    api("/v1/audit/stats", { ...state.params, group_by: "outcome", bucket: "day" }),
    api("/v1/audit/stats", { ...state.params, group_by: "provenance", bucket: "day" }),
  ]).catch(() => [null, null]);
  if (outcome) drawChart($("chart-outcome"), outcome.groups, "outcome");
  if (provenance) drawChart($("chart-provenance"), provenance.groups, "provenance");
}

function drawChart(container, groups, key) {
  const days = [...new Set(groups.map((g) => g.bucket))].sort();
  const series = [...new Set(groups.map((g) => g[key] || "none"))].sort();
  const counts = {};
  for (const g of groups) counts[`${g.bucket}|${g[key] || "none"}`] = g.count;
  const totals = days.map((d) => series.reduce((sum, s) => sum + (counts[`${d}|${s}`] || 0), 0));
  const max = Math.max(1, ...totals);
  const width = 520, height = 200, left = 40, bottom = 34, top = 8;
  const step = days.length ? (width - left - 8) / days.length : 0;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height + 24}`, role: "img",
    "aria-label": `decisions per day by ${key}`, class: "chart-svg" });
  const scale = (v) => (v / max) * (height - bottom - top);
  chart.append(svg("line", { x1: left, y1: height - bottom, x2: width - 4, y2: height - bottom, class: "axis" }));
  chart.append(svg("text", { x: left - 6, y: top + 8, "text-anchor": "end", class: "tick" }, max));
  chart.append(svg("text", { x: left - 6, y: height - bottom, "text-anchor": "end", class: "tick" }, 0));
  days.forEach((day, i) => {
    let y = height - bottom;
    const x = left + i * step + step * 0.15;
    for (const s of series) {
      const value = counts[`${day}|${s}`] || 0;
      if (!value) continue;
      const h = scale(value);
      y -= h;
      const bar = svg("rect", { x, y, width: Math.max(1, step * 0.7), height: h, fill: COLOURS[s] || "#607d8b",
        "data-series": s, "data-day": day.slice(0, 10) });
      bar.append(svg("title", {}, `${day.slice(0, 10)} ${s}: ${value}`));
      chart.append(bar);
    }
    if (days.length <= 16 || i % Math.ceil(days.length / 12) === 0) {
      chart.append(svg("text", { x: x + step * 0.35, y: height - bottom + 14, "text-anchor": "middle", class: "tick" }, day.slice(5, 10)));
    }
  });
  let lx = left;
  for (const s of series) {
    chart.append(svg("rect", { x: lx, y: height + 6, width: 10, height: 10, fill: COLOURS[s] || "#607d8b" }));
    chart.append(svg("text", { x: lx + 14, y: height + 15, class: "legend" }, s));
    lx += 24 + s.length * 7;
  }
  if (!days.length) chart.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "tick" }, "no decisions"));
  container.replaceChildren(chart);
}

// -- verification -----------------------------------------------------------------------------

async function verifyRange(event) {
  event.preventDefault();
  const form = $("verify-form");
  const box = $("verify-result");
  box.hidden = false;
  box.className = "result pending";
  box.textContent = "Verifying…";
  try {
    const r = await api("/v1/audit/verify", { from_seq: form.elements.from_seq.value, to_seq: form.elements.to_seq.value });
    box.className = `result ${r.valid ? "ok" : "bad"}`;
    box.replaceChildren(
      el("strong", {}, r.valid ? "✔ Valid" : "✘ Not valid"),
      el("span", {}, r.valid
        ? ` — ${r.checked} entries (seq ${r.from_seq}–${r.to_seq}) and ${r.checkpoints_checked} checkpoint(s): every leaf, blob, tree hash and checkpoint signature verifies.`
        : ` — first bad seq ${r.first_bad_seq} (${r.check}): ${r.reason}. ${r.checked} entries verified before it.`));
  } catch (e) {
    box.className = "result bad";
    box.textContent = `Verification could not run: ${e.message}`;
  }
}

// -- period report ----------------------------------------------------------------------------

async function buildReport(event) {
  event.preventDefault();
  const form = $("report-form");
  const box = $("report-result");
  const format = form.elements.format.value;
  const query = new URLSearchParams({ from: rfc3339(form.elements.from.value), to: rfc3339(form.elements.to.value), format });
  box.hidden = false;
  box.className = "result pending";
  box.textContent = "Building the report (the evidence pack is written and verified first)…";
  try {
    const response = await fetch(`/v1/audit/report?${query}`,
      { headers: { Authorization: `Bearer ${sessionStorage.getItem(KEY_STORE)}` } });
    if (response.status === 401) signOut("The key was refused (unknown or revoked). Sign in again.");
    if (!response.ok) {
      let body = null;
      try { body = await response.json(); } catch (_) { body = null; }
      throw new ApiError(response.status, body);
    }
    const blob = await response.blob();
    const name = (response.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
    const link = el("a", { href: URL.createObjectURL(blob), download: name ? name[1] : `clearance-report.${format}` },
      format === "zip" ? "Download the report (zip)" : "Download the report (HTML)");
    box.className = "result ok";
    box.replaceChildren(el("strong", {}, "Report ready: "), link);
  } catch (e) {
    box.className = "result bad";
    box.textContent = `The report could not be built: ${e.message}`;
  }
}

// -- one decision -----------------------------------------------------------------------------

function facts(container, pairs) {
  container.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v == null ? "–" : v)]));
}

// A licence reason's message starts with the clause it rests on ("Llama 4 Community License §2: …"):
// shown apart, so the officer sees which clause decided. The text itself is the message, unchanged.
function reasonItem(c) {
  const cut = c.code.startsWith("LICENCE_") ? c.message.indexOf(": ") : -1;
  if (cut <= 0) return el("li", {}, el("code", {}, c.code), " ", c.message);
  return el("li", {}, el("code", {}, c.code), " ", el("cite", { class: "clause" }, c.message.slice(0, cut)),
    c.message.slice(cut));
}

async function openDecision(id) {
  let entry;
  try {
    entry = await api(`/v1/decisions/${encodeURIComponent(id)}`);
  } catch (e) {
    $("search-error").textContent = e.message;
    $("search-error").hidden = false;
    return;
  }
  // The leaf carries the blobs' digests; the endpoint returns the blobs beside it.
  const body = entry.body, result = entry.result || {}, workload = (entry.input || {}).workload || {};
  $("detail-id").textContent = body.decision_id;
  const badge = (label, status) => el("span", { class: `badge ${status === "valid" ? "ok" : status === "invalid" ? "bad" : "unknown"}` }, `${label}: ${status}`);
  const status = entry.status;
  $("detail-status").replaceChildren(
    badge("Leaf", status.leaf), badge("Inclusion proof", status.proof), badge("Entry", status.overall),
    ...(entry.verification.valid ? [] : [el("p", { class: "error" }, entry.verification.reason)]));
  facts($("detail-facts"), [["seq", entry.seq], ["recorded at", entry.recorded_at], ["app", body.app_id],
    ["outcome", body.outcome], ["policy revision", body.policy_revision], ["engine", body.engine],
    ["caller key", body.caller_key_id], ["request id", (body.context || {}).request_id]]);
  const allowed = $("detail-allowed").tBodies[0];
  allowed.replaceChildren(...(result.allowed || []).map((r) => el("tr", {}, el("td", { class: "num" }, r.rank),
    el("td", {}, r.model), el("td", {}, r.deployment), el("td", {}, r.provenance), el("td", { class: "num" }, r.price_per_mtok),
    el("td", {}, (r.obligations || []).length
      ? el("ul", { class: "obligations" }, ...r.obligations.map((o) => el("li", {}, o))) : "–"))));
  if (!(result.allowed || []).length) allowed.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No route was cleared.")));
  const denied = $("detail-denied").tBodies[0];
  denied.replaceChildren(...(result.denied || []).map((r) => el("tr", {}, el("td", {}, r.model), el("td", {}, r.deployment),
    el("td", {}, el("ul", { class: "reasons" }, ...(r.reasons || []).map(reasonItem))))));
  facts($("detail-workload"), Object.entries(workload).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : String(v)]));
  $("detail-input").textContent = JSON.stringify(entry.input, null, 2);
  const receipt = entry.receipt || {};
  facts($("detail-signed"), [["key id", entry.key_id], ["leaf hash", entry.leaf_hash],
    ["input sha256", body.input_sha256], ["result sha256", body.result_sha256],
    ["checkpoint", receipt.checkpoint ? receipt.checkpoint.split("\n").slice(0, 3).join(" · ") : null],
    ["inclusion proof", receipt.inclusion_proof ? `${receipt.inclusion_proof.length} hashes` : null],
    ["verification", entry.verification.valid ? "valid" : `${entry.verification.check}: ${entry.verification.reason}`]]);
  for (const id of ["results", "charts", "verify"]) $(id).hidden = true;
  $("detail").hidden = false;
  window.scrollTo(0, 0);
}

function closeDecision() {
  $("detail").hidden = true;
  for (const id of ["results", "charts", "verify"]) $(id).hidden = false;
}

// -- wiring -----------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", () => signOut());
  $("search-form").addEventListener("submit", search);
  $("search-form").addEventListener("reset", () => setTimeout(search, 0));
  $("next-page").addEventListener("click", () => turn(1));
  $("prev-page").addEventListener("click", () => turn(-1));
  $("first-page").addEventListener("click", () => turn(0));
  $("verify-form").addEventListener("submit", verifyRange);
  $("report-form").addEventListener("submit", buildReport);
  $("back").addEventListener("click", closeDecision);
  if (sessionStorage.getItem(KEY_STORE)) showApp();
});
