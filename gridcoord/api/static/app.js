// gridcoord control room. Plain JS, no build step, no external request: everything comes from
// this service's /api/v1. Live values arrive over Server-Sent Events, read with fetch so the
// bearer token travels in a header (EventSource cannot send one). Text is always set with
// textContent, never parsed as HTML.
"use strict";

const API = "/api/v1";
const state = { token: sessionStorage.getItem("gridcoord-token") || "" };

function headers() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

async function getJson(path) {
  const response = await fetch(API + path, { headers: headers() });
  if (response.status === 401) {
    showLogin();
    throw new Error("unauthorized");
  }
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response.json();
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function kw(value) {
  if (value === null || value === undefined) return "n/a";
  return Math.abs(value) >= 1000 ? (value / 1000).toFixed(2) + " MW" : value.toFixed(1) + " kW";
}

function localTime(iso) {
  if (!iso) return "–";
  return new Date(iso).toLocaleTimeString("de-DE", { timeZone: "Europe/Berlin", hour: "2-digit", minute: "2-digit" });
}

function age(seconds) {
  if (seconds < 90) return Math.round(seconds) + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

// --- login -----------------------------------------------------------------------------------

function showLogin() {
  document.getElementById("login").hidden = false;
}

document.getElementById("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.token = document.getElementById("token").value.trim();
  sessionStorage.setItem("gridcoord-token", state.token);
  document.getElementById("login").hidden = true;
  refreshAll();
  connect();
});

// --- the live summary ------------------------------------------------------------------------

function renderSummary(summary) {
  const t = summary.totals;
  document.getElementById("kpi-renewable").textContent = kw(t.renewable_kw);
  document.getElementById("kpi-ev").textContent = kw(t.ev_kw);
  document.getElementById("kpi-import").textContent = kw(t.net_import_kw);
  const share = summary.renewable_share_today;
  document.getElementById("kpi-share").textContent = share === null ? "–" : (share * 100).toFixed(1) + " %";
  document.getElementById("kpi-devices").textContent = t.online + " / " + t.stale;
  const plan = summary.last_plan;
  document.getElementById("kpi-plan").textContent = plan ? plan.status + ", " + age(plan.age_s) + " ago" : "none yet";
  renderZones(summary.zones);
  renderZoneChoices(summary.zones);
  renderAlarms(summary.alarms);
}

function renderZones(zones) {
  const box = document.getElementById("zones");
  const rows = zones.map((z) => {
    const scale = Math.max(z.capacity_kw, 1e-9);
    const bar = el("div", { class: "bar" + (z.meter_stale ? " stale" : "") });
    bar.append(el("div", { class: "used", style: "width:" + Math.min(100, (100 * z.ev_kw) / scale) + "%" }));
    bar.append(el("div", { class: "limit", style: "left:" + Math.min(100, (100 * (z.ev_kw + z.limit_kw)) / scale) + "%" }));
    const detail = z.meter_stale ? "meter stale" : kw(z.limit_kw) + " free" + (z.override_until ? " (cap)" : "");
    return el("div", { class: "zone", "data-zone": z.id }, el("span", {}, z.id), bar, el("span", { class: "num" }, detail));
  });
  box.replaceChildren(...rows);
}

function renderAlarms(alarms) {
  const list = document.getElementById("alarms");
  const badge = document.getElementById("alarm-count");
  badge.textContent = alarms.length;
  badge.className = "badge" + (alarms.length ? " bad" : "");
  const severe = new Set(["fallback", "broker", "store", "readback"]);
  list.replaceChildren(
    ...alarms.map((a) =>
      el(
        "li",
        { class: severe.has(a.kind) ? "bad" : "" },
        el("div", {}, a.detail),
        a.ids.length ? el("div", { class: "ids" }, a.ids.join(", ") + (a.count > a.ids.length ? " …" : "")) : null,
      ),
    ),
  );
}

async function connect() {
  const live = document.getElementById("live");
  for (;;) {
    try {
      const response = await fetch(API + "/events", { headers: headers() });
      if (response.status === 401) {
        showLogin();
        return;
      }
      if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
      live.className = "live on";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data) renderSummary(JSON.parse(data));
        }
      }
    } catch (error) {
      console.warn("live stream:", error);
    }
    live.className = "live off";
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}

// --- the chart -------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function renderChart(chart) {
  const box = document.getElementById("chart");
  const width = 800, height = 260, left = 44, bottom = 20, top = 8;
  const series = [
    ["ev_baseline_kw", "s-ev-b"], // first: drawn beneath the plan it is compared with
    ["renewable_forecast_kw", "s-ren-f"],
    ["renewable_actual_kw", "s-ren-a"],
    ["ev_planned_kw", "s-ev-p"],
    ["ev_actual_kw", "s-ev-a"],
  ];
  const all = series.flatMap(([key]) => chart[key]).filter((v) => v !== null);
  const max = Math.max(1, ...all) * 1.1;
  const n = chart.starts.length;
  const x = (i) => left + ((width - left) * i) / Math.max(1, n - 1);
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  const nodes = [svg("line", { class: "axis", x1: left, y1: y(0), x2: width, y2: y(0) })];
  for (const fraction of [0.5, 1]) {
    const value = (max / 1.1) * fraction;
    const label = svg("text", { x: 2, y: y(value) + 4 });
    label.textContent = kw(value);
    nodes.push(label, svg("line", { class: "axis", x1: left, y1: y(value), x2: width, y2: y(value) }));
  }
  for (let i = 0; i < n; i += 16) {
    const label = svg("text", { x: x(i) - 14, y: height - 4 });
    label.textContent = localTime(chart.starts[i]);
    nodes.push(label);
  }
  const now = Date.now();
  const nowIndex = chart.starts.findIndex((s) => new Date(s).getTime() > now) - 1;
  if (nowIndex >= 0) nodes.push(svg("line", { class: "now", x1: x(nowIndex), y1: top, x2: x(nowIndex), y2: y(0) }));
  for (const [key, cls] of series) {
    // A gap (null) splits the line: unknown is not 0.
    let points = [];
    const flush = () => {
      if (points.length > 1) nodes.push(svg("polyline", { class: cls, points: points.join(" "), "data-series": key }));
      else if (points.length === 1) {
        const [cx, cy] = points[0].split(",");
        nodes.push(svg("circle", { class: cls + " dot", cx, cy, r: 3, "data-series": key }));
      }
      points = [];
    };
    chart[key].forEach((v, i) => (v === null ? flush() : points.push(x(i).toFixed(1) + "," + y(v).toFixed(1))));
    flush();
  }
  box.replaceChildren(...nodes);
}

// --- plans and chargers ----------------------------------------------------------------------

function explain(plan) {
  const parts = [];
  for (const b of plan.binding.slice(0, 4)) {
    if (b.kind === "zone_capacity") parts.push("zone " + b.zone + " full in " + b.slots.length + " slot(s)");
    else if (b.kind === "charger_capacity") parts.push("charger " + b.charger + " at max in " + b.slots.length + " slot(s)");
    else if (b.kind === "session_short") parts.push(b.session.split("@")[0] + " short " + b.unmet_kwh.toFixed(1) + " kWh (" + b.reason.replace(/_/g, " ") + ")");
  }
  if (plan.binding.length > 4) parts.push("+" + (plan.binding.length - 4) + " more");
  return parts.length ? parts.join("; ") : "no limit binding";
}

function renderPlans(plans) {
  document.getElementById("plans").replaceChildren(
    ...plans.map((p) => {
      const share = p.kpis.renewable_share;
      return el(
        "div",
        { class: "plan" },
        el("span", { class: "status-" + p.status }, p.status),
        " " + localTime(p.slot_start) + " · " + p.sessions + " sessions · solve " + p.solve_s.toFixed(2) + " s" +
          (share !== undefined ? " · renewable " + (share * 100).toFixed(0) + " %" : "") +
          (p.baseline.renewable_share !== undefined ? " (uncontrolled " + (p.baseline.renewable_share * 100).toFixed(0) + " %)" : "") +
          (p.kpis.unmet_kwh !== undefined ? " · unmet " + p.kpis.unmet_kwh.toFixed(1) + " kWh" : ""),
        el("div", { class: "why" }, p.failure ? "fallback: " + p.failure : explain(p)),
      );
    }),
  );
}

// The chargers table: one page at a time from /chargers, filtered by the server (a city has
// ten thousand; the browser never loads them all). `?rows=N` in the address sets the page size
// (1-500, e.g. more on a wall screen).
const PAGE = Math.min(500, Math.max(1, parseInt(new URLSearchParams(location.search).get("rows"), 10) || 50));
const table = { offset: 0, total: 0, zones: "" };

function renderZoneChoices(zones) {
  const ids = zones.map((z) => z.id);
  if (ids.join(",") === table.zones) return;
  table.zones = ids.join(",");
  const select = document.getElementById("chargers-zone");
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "" }, "all zones"), ...ids.map((id) => el("option", { value: id }, id)));
  select.value = ids.includes(chosen) ? chosen : "";
}

function chargerQuery() {
  const params = new URLSearchParams({ limit: String(PAGE), offset: String(table.offset) });
  const q = document.getElementById("chargers-q").value.trim().replace(/[^A-Za-z0-9_.-]/g, "").slice(0, 64);
  const zone = document.getElementById("chargers-zone").value;
  const chargerState = document.getElementById("chargers-state").value;
  if (q) params.set("q", q);
  if (zone) params.set("zone", zone);
  if (chargerState) params.set("state", chargerState);
  if (document.getElementById("chargers-alarm").checked) params.set("alarm", "true");
  return "/chargers?" + params.toString();
}

function renderChargers(page) {
  table.total = page.total;
  const rows = page.items.map((c) =>
    el(
      "tr",
      { "data-charger": c.id },
      el("td", {}, c.id),
      el("td", {}, c.zone || "–"),
      el("td", { class: c.state === "stale" ? "stale" : "" }, c.state),
      el("td", {}, kw(c.setpoint_kw)),
      el("td", {}, kw(c.power_kw)),
      el("td", { class: c.alarm ? "alarm" : "" }, c.alarm || c.limited_by || "–"),
      el("td", {}, localTime(c.valid_until)),
      el("td", {}, c.delivered_kwh !== null ? c.delivered_kwh.toFixed(1) + " / " + c.requested_kwh.toFixed(1) + " kWh" : "–"),
      el("td", {}, localTime(c.departure)),
    ),
  );
  document.getElementById("chargers").replaceChildren(...rows);
  const first = page.total ? table.offset + 1 : 0;
  document.getElementById("chargers-range").textContent = first + "–" + (table.offset + page.items.length) + " of " + page.total;
  document.getElementById("chargers-note").textContent = page.total + " match";
  document.getElementById("chargers-prev").disabled = table.offset === 0;
  document.getElementById("chargers-next").disabled = table.offset + PAGE >= page.total;
}

async function refreshChargers() {
  try {
    renderChargers(await getJson(chargerQuery()));
  } catch (error) {
    console.warn("chargers:", error);
  }
}

function filterChanged() {
  table.offset = 0;
  refreshChargers();
}

let typing = null;
document.getElementById("chargers-q").addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(filterChanged, 300);
});
for (const id of ["chargers-zone", "chargers-state", "chargers-alarm"]) {
  document.getElementById(id).addEventListener("change", filterChanged);
}
document.getElementById("chargers-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  filterChanged();
});
document.getElementById("chargers-prev").addEventListener("click", () => {
  table.offset = Math.max(0, table.offset - PAGE);
  refreshChargers();
});
document.getElementById("chargers-next").addEventListener("click", () => {
  if (table.offset + PAGE < table.total) table.offset += PAGE;
  refreshChargers();
});

async function refreshAll() {
  try {
    const [chart, plans] = await Promise.all([getJson("/chart"), getJson("/plans?limit=12")]);
    renderChart(chart);
    renderPlans(plans);
  } catch (error) {
    console.warn("refresh:", error);
  }
  await refreshChargers();
}

refreshAll();
connect();
setInterval(refreshAll, 10000);
