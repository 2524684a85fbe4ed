// The preforch playground: plain DOM code, same-origin calls only. Every text from the server or a model is
// put in the page with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { objectives: [], model: "preforch", auth: false };

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function mode() {
  return document.querySelector("input[name=mode]:checked").value;
}

function userWeights() {
  const out = {};
  for (const name of state.objectives) out[name] = Number($(`w-${name}`).value);
  return out;
}

function preference() {
  const m = mode();
  if (m === "adapter") return undefined;
  const pref = { mode: m, weights: userWeights() };
  if (m === "blend") pref.blend = Number($("blend").value);
  return pref;
}

function syncControls() {
  const m = mode();
  for (const row of document.querySelectorAll("#sliders .slider-row")) {
    row.classList.toggle("disabled", m === "adapter");
    row.querySelector("input").disabled = m === "adapter";
  }
  $("blend-row").classList.toggle("disabled", m !== "blend");
  $("blend").disabled = m !== "blend";
}

function buildSliders() {
  const box = $("sliders");
  box.replaceChildren();
  for (const name of state.objectives) {
    const row = el("div", "slider-row");
    const label = el("label", "", name);
    label.htmlFor = `w-${name}`;
    const input = el("input");
    Object.assign(input, { type: "range", min: "0", max: "1", step: "0.05", value: "0.5", id: `w-${name}` });
    const out = el("output", "", "0.50");
    input.addEventListener("input", () => { out.textContent = Number(input.value).toFixed(2); });
    row.append(label, input, out);
    box.append(row);
  }
  syncControls();
}

function drawBars(boxId, weights) {
  const box = $(boxId);
  box.replaceChildren();
  for (const name of state.objectives) {
    const value = weights[name] ?? 0;
    const row = el("div", "bar");
    row.dataset.objective = name;
    const track = el("div", "track");
    const fill = el("div", "fill");
    fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
    track.append(fill);
    row.append(el("span", "name", name), track, el("span", "value", value.toFixed(3)));
    box.append(row);
  }
}

function showCertainty(info) {
  // confidence is null for an adapter saved without uncertainty; lambda is 0 unless the fallback mixed defaults in
  $("certainty").textContent = info.confidence === null || info.confidence === undefined
    ? "confidence: not saved with this adapter · fallback λ = 0"
    : `confidence ${Number(info.confidence).toFixed(2)} · fallback λ = ${Number(info.lambda ?? 0).toFixed(2)}`;
}

function drawCandidates(info, chosenText) {
  $("floored").hidden = !info.floored;
  const list = $("candidates");
  list.replaceChildren();
  const candidates = info.candidates || [{ content: chosenText, reward: info.reward, scores: info.scores || {},
                                           raw_scores: info.raw_scores || {} }];
  candidates.forEach((c, i) => {
    const item = el("li", "candidate" + (i === info.chosen ? " chosen" : ""));
    item.dataset.index = String(i);
    const head = el("div", "head");
    head.append(el("span", "", `candidate ${i + 1} · R = ${Number(c.reward).toFixed(3)}`));
    if (i === info.chosen) head.append(el("span", "badge", info.floored ? "best, below the floor" : "chosen"));
    const table = el("table");
    const header = el("tr");
    header.append(el("th", "", ""));
    for (const name of state.objectives) header.append(el("th", "", name));
    const norm = el("tr");
    norm.append(el("td", "", "score"));
    for (const name of state.objectives) norm.append(el("td", "", Number(c.scores[name] ?? NaN).toFixed(3)));
    const raw = el("tr");
    raw.append(el("td", "", "raw"));
    for (const name of state.objectives) raw.append(el("td", "", Number(c.raw_scores[name] ?? NaN).toFixed(3)));
    table.append(header, norm, raw);
    item.append(head, el("div", "text", c.content || "(empty reply)"), table);
    list.append(item);
  });
}

async function call(path, body) {
  $("error").hidden = true;
  $("request-json").textContent = `POST ${path}\n` + JSON.stringify(body, null, 2);
  $("response-json").textContent = "…";
  const headers = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  const data = await response.json().catch(() => ({ error: { message: `HTTP ${response.status}` } }));
  $("response-json").textContent = `HTTP ${response.status}\n` + JSON.stringify(data, null, 2);
  if (!response.ok) throw new Error((data.error && data.error.message) || `HTTP ${response.status}`);
  return data;
}

function showError(err) {
  $("error").textContent = String(err.message || err);
  $("error").hidden = false;
}

async function busy(button, work) {
  for (const b of document.querySelectorAll("button")) b.disabled = true;
  try { await work(); } catch (err) { showError(err); } finally {
    for (const b of document.querySelectorAll("button")) b.disabled = false;
  }
  document.body.dataset.done = String(Number(document.body.dataset.done || 0) + 1);
}

async function weigh() {
  const body = { prompts: [$("prompt").value] };
  const pref = preference();
  if (pref) body.preference = pref;
  const data = await call("/v1/weights", body);
  drawBars("inferred-bars", data.data[0].inferred);
  drawBars("used-bars", data.data[0].weights);
  showCertainty(data.data[0]);
}

async function generate() {
  const body = {
    model: state.model, messages: [{ role: "user", content: $("prompt").value }],
    max_tokens: Number($("max-tokens").value), temperature: Number($("temperature").value),
    strategy: "best_of_n", best_of: Number($("best-of").value), return_candidates: true,
  };
  const pref = preference();
  if (pref) body.preference = pref;
  const data = await call("/v1/chat/completions", body);
  const info = data.preference;
  drawBars("inferred-bars", info.inferred);
  drawBars("used-bars", info.weights);
  showCertainty(info);
  drawCandidates(info, data.choices[0].message.content);
}

async function start() {
  for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", syncControls);
  $("blend").addEventListener("input", () => { $("blend-value").textContent = Number($("blend").value).toFixed(2); });
  $("weigh").addEventListener("click", () => busy($("weigh"), weigh));
  $("generate").addEventListener("click", () => busy($("generate"), generate));
  try {
    const health = await (await fetch("/health")).json();
    Object.assign(state, { objectives: health.objectives, model: health.model, auth: health.auth });
    $("status").textContent = `model ${health.model} · objectives ${health.objectives.join(", ")} · ` +
      `strategies ${health.strategies.join(", ")}`;
    $("key-row").hidden = !health.auth;
    $("best-of").max = String(health.limits.max_best_of);
    $("best-of").value = String(Math.min(Math.max(2, health.best_of), health.limits.max_best_of));
    $("max-tokens").max = String(health.limits.max_tokens);
    $("generate").disabled = !health.strategies.includes("best_of_n");
    buildSliders();
    document.body.dataset.ready = "1";
  } catch (err) {
    showError(err);
  }
}

document.addEventListener("DOMContentLoaded", start);
