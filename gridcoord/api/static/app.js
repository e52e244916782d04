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
          (p.kpis.unmet_kwh !== undefined ? " · unmet " + p.kpis.unmet_kwh.toFixed(1) + " kWh" : ""),
        el("div", { class: "why" }, p.failure ? "fallback: " + p.failure : explain(p)),
      );
    }),
  );
}

function renderChargers(setpoints, sessions) {
  const byCharger = new Map(sessions.items.map((s) => [s.charger_id, s]));
  const rows = setpoints.items.map((s) => {
    const session = byCharger.get(s.charger_id);
    const stale = s.limited_by === "stale";
    return el(
      "tr",
      { "data-charger": s.charger_id },
      el("td", {}, s.charger_id),
      el("td", { class: stale ? "stale" : "" }, stale ? "stale" : session ? "charging" : "idle"),
      el("td", {}, kw(s.max_power_kw)),
      el("td", {}, kw(s.actual_kw)),
      el("td", { class: s.alarm ? "alarm" : "" }, s.alarm || s.limited_by),
      el("td", {}, localTime(s.valid_until)),
      el("td", {}, session ? session.delivered_kwh.toFixed(1) + " / " + session.requested_kwh.toFixed(1) + " kWh" : "–"),
      el("td", {}, session ? localTime(session.departure) : "–"),
    );
  });
  document.getElementById("chargers").replaceChildren(...rows);
  document.getElementById("chargers-note").textContent =
    setpoints.total > setpoints.items.length ? "first " + setpoints.items.length + " of " + setpoints.total : setpoints.total + "";
}

async function refreshAll() {
  try {
    const [chart, plans, setpoints, sessions] = await Promise.all([
      getJson("/chart"),
      getJson("/plans?limit=12"),
      getJson("/setpoints?limit=200"),
      getJson("/sessions?limit=10000"),
    ]);
    renderChart(chart);
    renderPlans(plans);
    renderChargers(setpoints, sessions);
  } catch (error) {
    console.warn("refresh:", error);
  }
}

refreshAll();
connect();
setInterval(refreshAll, 10000);
