// The bot's dashboard: polls the JSON API every 2 s; control buttons send the token.
"use strict";
const state = { market: null, markets: null, control: null };
const $ = (id) => document.getElementById(id);
const tokenInput = $("token");
tokenInput.value = sessionStorage.getItem("mlstrategy-token") || "";
tokenInput.addEventListener("change", () => sessionStorage.setItem("mlstrategy-token", tokenInput.value));

function headers() {
  return tokenInput.value ? { Authorization: "Bearer " + tokenInput.value } : {};
}
async function get(path) {
  const sep = path.includes("?") ? "&" : "?";
  const market = state.market === null ? "" : sep + "market=" + encodeURIComponent(state.market);
  const response = await fetch(path + market, { headers: headers() });
  if (response.status === 401) throw new Error("enter the API token to see this bot");
  if (!response.ok) throw new Error((await response.json()).error || response.statusText);
  return response.json();
}
function say(text, error) {
  $("message").textContent = text;
  $("message").className = error ? "error" : "";
}
const num = (v, d = 2) => (v === null || v === undefined ? "-" :
  Number(v).toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }));
const when = (ms) => (ms === null || ms === undefined ? "-" : new Date(ms).toISOString().slice(0, 16).replace("T", " "));
function cell(row, text, testid) {
  const td = row.insertCell();
  td.textContent = text;
  if (testid) td.dataset.testid = testid;
  return td;
}

async function control(action, market) {
  if (!tokenInput.value) { say("enter the API token (MLSTRATEGY_API_TOKEN) to " + action, true); return; }
  const response = await fetch("/api/control/" + action, {
    method: "POST", headers: { ...headers(), "Content-Type": "application/json" },
    body: JSON.stringify({ market }),
  });
  const body = await response.json();
  if (response.ok) say(`${body.action} ${body.markets.map((m) => m || "market").join(", ")}: ${body.effective}`);
  else say(body.error, true);
  refresh();
}
$("stop").addEventListener("click", () => control("stop", null));

const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function marketCard(m) {
  const card = document.createElement("div");
  card.className = "market";
  card.dataset.market = m.name;
  const badges = [`<span class="badge ${esc(m.feed)}">${esc(m.feed || "-")}</span>`];
  if (m.paused) badges.push('<span class="badge paused" data-testid="paused">entries paused</span>');
  if (m.kill_switch) badges.push('<span class="badge alarm">kill switch</span>');
  if (m.mismatch) badges.push('<span class="badge alarm">position mismatch</span>');
  if (m.drift && m.drift.breaches.length) badges.push(`<span class="badge alarm" data-testid="drift-badge">drift: ${esc(m.drift.breaches.join(", "))}</span>`);
  card.innerHTML = `<h3>${esc(m.name || m.symbol)} <small>${esc(m.exchange)} ${esc(m.symbol)} ${esc(m.timeframe)}</small>${badges.join("")}</h3><dl></dl>`;
  const rows = [
    ["last bar", when(m.last_bar), "last-bar"], ["close", num(m.close), "close"],
    ["position", num(m.position, 8), "position"], ["equity", num(m.equity), "equity"],
    ["PnL", num(m.pnl), "pnl"], ["P(up)", num(m.proba, 3), "proba"],
    ["action", m.action || "-", "action"], ["model", m.model || "-", "model"],
    ["open orders", m.open_orders, "open-orders"],
  ];
  if (m.contract) rows.push(["liquidation", num(m.contract.liquidation), "liquidation"]);
  if (m.funding.payments) rows.push(["funding", num(m.funding.total), "funding"]);
  if (m.drift) {
    const d = m.drift;
    rows.push(["drift PSI", `median ${num(d.psi_median, 3)} (max ${num(d.psi_max, 2)} ${d.psi_max_feature})`, "drift-psi"]);
    rows.push(["calibration", `gap ${num(d.calibration_gap, 3)}, Brier ${num(d.brier, 4)} (holdout ${num(d.holdout_brier, 4)})`, "drift-calibration"]);
    if (d.band_low !== null) rows.push(["live return", `${num(100 * d.live_return, 2)}% over ${d.live_bars} bars (band ${num(100 * d.band_low, 1)}% .. ${num(100 * d.band_high, 1)}%)`, "drift-return"]);
  }
  const dl = card.querySelector("dl");
  for (const [label, value, id] of rows) {
    dl.insertAdjacentHTML("beforeend", "<dt></dt><dd></dd>");
    dl.lastElementChild.previousElementSibling.textContent = label;
    dl.lastElementChild.textContent = value;
    dl.lastElementChild.dataset.testid = id;
  }
  if (state.control && state.control.enabled) {
    for (const action of [m.paused ? "resume" : "pause", "exit", "reload"]) {
      const button = document.createElement("button");
      button.textContent = action;
      button.dataset.testid = action;
      if (action === "exit") button.className = "danger";
      button.addEventListener("click", () => control(action, m.name));
      card.append(button, " ");
    }
  }
  return card;
}

function drawEquity(curve) {
  const svg = $("equity");
  const values = curve.equity.concat(curve.buy_and_hold.filter((v) => v !== null));
  if (!values.length) { svg.innerHTML = ""; return; }
  const lo = Math.min(...values), hi = Math.max(...values), n = curve.equity.length;
  const x = (i) => (n < 2 ? 0 : (i / (n - 1)) * 800);
  const y = (v) => 230 - ((v - lo) / (hi - lo || 1)) * 220;
  const path = (series) => series.map((v, i) => (v === null ? "" : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(Boolean).join(" ");
  svg.innerHTML = `<polyline fill="none" stroke="#999" stroke-width="1.5" points="${path(curve.buy_and_hold)}"/>` +
    `<polyline fill="none" stroke="#1769e0" stroke-width="2" points="${path(curve.equity)}"/>` +
    `<text x="4" y="14" font-size="12">${num(hi)}</text><text x="4" y="236" font-size="12">${num(lo)}</text>` +
    `<text x="796" y="236" font-size="12" text-anchor="end">${when(curve.time[0])} .. ${when(curve.time[n - 1])}</text>`;
}

function fillTable(id, rows, columns) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  for (const item of rows) {
    const row = body.insertRow();
    for (const [value, testid] of columns(item)) {
      const td = cell(row, typeof value === "string" ? value : "", testid);
      if (typeof value !== "string") td.append(value);
    }
  }
}

function probaBar(d) {
  const bar = document.createElement("span");
  bar.className = "bar";
  for (const [cls, v] of [["e", d.enter], ["x", d.exit], ["p", d.proba]]) {
    if (v === null || v === undefined) continue;
    const mark = document.createElement("i");
    mark.className = cls;
    mark.style.left = (v * 100).toFixed(1) + "%";
    bar.append(mark);
  }
  return bar;
}

async function refreshMarket() {
  const [decisions, orders, curve] = await Promise.all([
    get("/api/decisions?limit=25"), get("/api/orders?limit=25"), get("/api/equity")]);
  fillTable("decisions", decisions.decisions, (d) => [
    [when(d.time)], [num(d.proba, 3), "decision-proba"], [probaBar(d)],
    [{ 1: "long", 0: "flat", "-1": "short" }[d.target]], [d.action, "decision-action"], [d.model]]);
  fillTable("orders", orders.orders, (o) => [[o.client_id], [o.side], [o.kind], [num(o.amount, 8)], [o.state], [num(o.filled, 8)]]);
  fillTable("fills", orders.fills, (f) => [[when(f.time)], [f.side], [num(f.amount, 8)], [num(f.price)], [num(f.fee, 6)]]);
  drawEquity(curve);
}

async function refreshSlow() {
  const [models, cycle] = await Promise.all([get("/api/models"), get("/api/cycle")]);
  const box = $("models");
  box.replaceChildren();
  for (const m of models.markets) {
    const div = document.createElement("div");
    div.innerHTML = "<h3></h3><table><thead><tr><th>time</th><th>decision</th><th>new</th><th>old</th><th>why</th></tr></thead><tbody></tbody></table>";
    div.querySelector("h3").textContent = `${m.market}: production ${m.production || "none"} (${m.versions.length} versions)`;
    const body = div.querySelector("tbody");
    for (const h of m.history) {
      const row = body.insertRow();
      for (const v of [h.time, h.action, h.new || "-", h.old || "-", h.reason || ""]) cell(row, v);
    }
    box.append(div);
  }
  const c = cycle.cycle;
  $("cycle").textContent = "";
  if (!c) { $("cycle").textContent = "no cycle report"; return; }
  const table = document.createElement("table");
  table.innerHTML = "<thead><tr><th>market</th><th>status</th><th>reason</th></tr></thead><tbody></tbody>";
  for (const m of c.markets) {
    const row = table.tBodies[0].insertRow();
    for (const v of [m.name, m.status, m.reason || ""]) cell(row, v);
  }
  $("cycle").append(`${c.folder}: exit code ${c.exit_code}, ${c.seconds} s`, table);
}

let ticks = 0;
async function refresh() {
  try {
    if (state.control === null) state.control = await get("/api/control");
    const status = await get("/api/status");
    $("mode").textContent = status.mode || "";
    const s = status.session;
    $("run").textContent = (status.running ? (status.stopping ? "stopping" : "running") : "read-only") +
      (s ? ` · session ${s.id} since ${s.started}${s.ended ? " ended " + s.ended : ""}` : "");
    const cards = $("markets");
    cards.replaceChildren(...status.markets.map(marketCard));
    const names = status.markets.map((m) => m.name);
    if (state.market === null || !names.includes(state.market)) state.market = names[0];
    if (JSON.stringify(names) !== JSON.stringify(state.markets)) {
      state.markets = names;
      $("market-select").replaceChildren(...status.markets.map((m) => new Option(m.name || m.symbol, m.name)));
    }
    await refreshMarket();
    if (ticks++ % 5 === 0) {
      state.control = await get("/api/control");
      $("stop").hidden = !state.control.enabled;
      await refreshSlow();
    }
    if ($("message").className === "error") say("");
  } catch (error) {
    say(error.message, true);
  }
}
$("market-select").addEventListener("change", (e) => { state.market = e.target.value; refresh(); });
$("stop").hidden = true;
get("/api/control").then((c) => { state.control = c; $("stop").hidden = !c.enabled; }).catch(() => {});
refresh();
setInterval(refresh, 2000);
