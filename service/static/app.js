// fno-forecast dashboard: plain JavaScript, no build step, talks only to this service's /v1 routes.
//
// Flow: GET v1/models -> default model; GET v1/forecast at the grid centre -> latest run; POST v1/forecasts
// for that run -> poll GET v1/forecasts/{id} -> map.png per variable and lead time. A click on the map (or
// the form) draws GET v1/forecast at that point. The page follows the latest run: GET v1/events announces
// each new run (event: run), which re-checks the point forecast at once; every few minutes it is re-checked
// anyway with If-None-Match (a 304 means nothing changed, a 200 with a new run refreshes the map too). The
// run picker (GET v1/runs) pins one run instead; "latest" follows again. The map carries coastlines and
// borders (GET v1/models/{id}/basemap); temperatures show in °C, the model's own kelvin one click away
// (the units button). Beside the bundle's skill card, the live scorecard (GET v1/verification) plots how
// the recent runs verified, refreshed on each `event: verification`.
"use strict";

(() => {
  const DEFAULT_POLL_S = 300;
  const DEFAULT_HOURS = 120;
  const JOB_POLL_MS = 500;
  const JOB_TIMEOUT_MS = 10 * 60 * 1000;

  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(window.location.search);

  const state = {
    model: null,
    variable: null,
    hours: DEFAULT_HOURS,
    step: 6,
    run: null,
    forecastId: null,
    geometry: null, // {extent: [lonMin, lonMax, latMin, latMax], box: [left, top, right, bottom]} in image pixels
    point: null, // {latitude, longitude}
    mapUrl: null,
    mapRequest: 0,
    cache: new Map(), // url -> {etag, body}: explicit conditional requests, see getConditional
    inflight: new Map(), // url -> the promise of its request in flight
    pollTimer: null,
    pollOverdue: false,
    pinned: null, // a run chosen in the picker; null follows the latest
    native: false, // true: values in the model's own units; false: kelvin shown as °C
    outlines: null, // coastlines and borders: lines of [lon, lat]
    live: null, // the last GET v1/verification body
  };

  // ------------------------------------------------------------------------------------------- units
  const KELVIN = new Set(["k", "degk", "kelvin"]);

  // How values in `units` are shown: {units, convert}. Kelvin becomes °C unless the native units are on.
  function shown(units) {
    if (!state.native && KELVIN.has(String(units || "").toLowerCase().replace(/\s/g, ""))) {
      return { units: "°C", convert: (v) => v - 273.15 };
    }
    return { units, convert: (v) => v };
  }

  function unitsOf(variable) {
    const channel = channelsOf(state.model).find((c) => c.name === variable);
    return channel ? channel.units : "";
  }

  // The units button matters only for a variable in kelvin.
  function syncUnitsButton() {
    $("units").disabled = !KELVIN.has(String(unitsOf(state.variable) || "").toLowerCase().replace(/\s/g, ""));
  }

  // ---------------------------------------------------------------------------------------------- HTTP
  async function failure(response) {
    let reason = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && (body.reason || body.detail)) reason = body.reason || JSON.stringify(body.detail);
    } catch (_ignored) {
      // not JSON: keep the status line
    }
    return new Error(`${response.url.replace(window.location.origin, "")}: ${reason}`);
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw await failure(response);
    return response.json();
  }

  async function postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw await failure(response);
    return response.json();
  }

  // A conditional GET made explicit: the page keeps the ETag and body of each URL itself and sends
  // If-None-Match. Setting that header makes fetch bypass the HTTP cache (cache mode "no-store"), so a
  // 304 reaches this code instead of being turned into a cached 200 behind its back.
  // Callers asking for a URL already in flight share its answer (a poll and a click at the same time
  // would otherwise both go out without an ETag).
  function getConditional(url) {
    const pending = state.inflight.get(url);
    if (pending) return pending;
    const request = fetchConditional(url).finally(() => state.inflight.delete(url));
    state.inflight.set(url, request);
    return request;
  }

  async function fetchConditional(url) {
    const known = state.cache.get(url);
    const headers = { Accept: "application/json" };
    if (known && known.etag) headers["If-None-Match"] = known.etag;
    const response = await fetch(url, { headers, cache: "no-store" });
    if (response.status === 304 && known) return { body: known.body, changed: false };
    if (!response.ok) throw await failure(response);
    const body = await response.json();
    state.cache.set(url, { etag: response.headers.get("ETag"), body });
    return { body, changed: true };
  }

  // ------------------------------------------------------------------------------------- model facts
  // GET v1/models lists {default, models: [{id, ...}]}; GET v1/models/{id} describes one in full.
  async function loadModel() {
    const payload = await getJSON("v1/models");
    const list = Array.isArray(payload) ? payload : payload.models || [];
    if (!list.length) throw new Error("the service lists no models");
    const wanted = params.get("model") || payload.default;
    const chosen = list.find((m) => m.id === wanted) || list[0];
    return getJSON(`v1/models/${encodeURIComponent(chosen.id)}`);
  }

  function channelsOf(model) {
    return (model.channels || []).map((c) => (typeof c === "string" ? { name: c, units: "" } : c));
  }

  function gridExtent(model) {
    const grid = model.grid || {};
    const lat = grid.lat || [];
    const lon = grid.lon || [];
    const latMin = grid.lat_min ?? Math.min(...lat);
    const latMax = grid.lat_max ?? Math.max(...lat);
    const lonMin = grid.lon_min ?? Math.min(...lon);
    const lonMax = grid.lon_max ?? Math.max(...lon);
    return [lonMin, lonMax, latMin, latMax];
  }

  function stepHours(model) {
    return Number(model.step_hours ?? model.step ?? (model.grid && model.grid.step_hours) ?? 6) || 6;
  }

  function skillOf(model) {
    return model.skill_card || model.skill || model.scorecard || null;
  }

  // ---------------------------------------------------------------------------------------- formatting
  function parseTime(text) {
    const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`; // Open-Meteo times are GMT
    return new Date(iso);
  }

  const pad = (n) => String(n).padStart(2, "0");
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const dayLabel = (d) => `${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]}`;
  const hourLabel = (d) => `${pad(d.getUTCHours())}Z`;
  const fullLabel = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${hourLabel(d)}`;
  const fmtLat = (v) => `${Math.abs(v).toFixed(2)}°${v >= 0 ? "N" : "S"}`;
  const fmtLon = (v) => `${v.toFixed(2)}°E`;

  function fmtNumber(value, digits = 2) {
    return value === null || value === undefined || !Number.isFinite(value) ? "–" : value.toFixed(digits);
  }

  function showAlert(message) {
    const alert = $("alert");
    alert.textContent = message;
    alert.hidden = !message;
  }

  function el(tag, attrs = {}, text = null) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== null) node.textContent = text;
    return node;
  }

  // ---------------------------------------------------------------------------------------------- map
  function leadLabel() {
    const lead = Number($("lead").value);
    let text = `+${lead} h`;
    if (state.run) text += ` · valid ${fullLabel(new Date(parseTime(state.run).getTime() + lead * 3600e3))}`;
    $("lead-label").textContent = text;
  }

  async function loadMap() {
    if (!state.forecastId) return;
    const request = ++state.mapRequest;
    const query = new URLSearchParams({
      variable: state.variable,
      lead_hours: $("lead").value,
      temperature_unit: state.native ? "native" : "celsius",
    });
    const response = await fetch(`v1/forecasts/${state.forecastId}/map.png?${query}`);
    if (!response.ok) throw await failure(response);
    const geometry = window.FnoMapGeometry.fromHeaders(response.headers, gridExtent(state.model));
    const blob = await response.blob();
    if (request !== state.mapRequest) return; // a newer slider position won
    const url = URL.createObjectURL(blob);
    const img = $("map");
    await new Promise((resolve, reject) => {
      img.onload = resolve;
      img.onerror = () => reject(new Error("the map image could not be decoded"));
      img.src = url;
    });
    if (state.mapUrl) URL.revokeObjectURL(state.mapUrl);
    state.mapUrl = url;
    state.geometry = geometry;
    $("map-progress").hidden = true;
    placeMarker();
    drawOutlines();
  }

  function drawOutlines() {
    const drawn = window.FnoBasemap.draw($("coastlines"), $("map"), state.geometry, state.outlines);
    $("coastlines").dataset.lines = String(drawn);
  }

  async function loadOutlines() {
    const body = await getJSON(`v1/models/${encodeURIComponent(state.model.id)}/basemap`);
    state.outlines = body.lines || [];
    $("coastlines").setAttribute("aria-label", `coastlines and borders: ${body.source || ""}`);
    drawOutlines();
  }

  function placeMarker() {
    const img = $("map");
    const marker = $("marker");
    const at = state.point && state.geometry && img.naturalWidth
      ? window.FnoMapGeometry.toPixel(state.geometry, img, state.point)
      : null;
    marker.hidden = !at;
    if (!at) return;
    marker.style.left = `${img.offsetLeft + at.x}px`;
    marker.style.top = `${img.offsetTop + at.y}px`;
  }

  // ------------------------------------------------------------------------------------ forecast jobs
  // Job states of GET v1/forecasts/{id}: queued, running, completed, failed (missing: lost, recomputed).
  const DONE = new Set(["completed"]);
  const FAILED = new Set(["failed"]);

  // progress is {steps_done, total_steps} (steps_done null before the rollout starts).
  function progressText(progress) {
    const done = progress && Number(progress.steps_done);
    const total = progress && Number(progress.total_steps);
    if (!Number.isFinite(done) || !Number.isFinite(total) || total <= 0) return "";
    return `${done} of ${total} steps`;
  }

  async function prepareForecast() {
    // All channels in one resource: switching variables then only fetches another map.
    const variables = channelsOf(state.model).map((c) => c.name);
    const body = { model: state.model.id, forecast_hours: state.hours, variables };
    if (state.run) body.run = state.run;
    const job = await postJSON("v1/forecasts", body);
    const id = job.id;
    const started = Date.now();
    let status = job;
    while (!DONE.has(status.status)) {
      if (FAILED.has(status.status)) {
        throw new Error(`forecast ${id} failed: ${status.error || "no reason given"}`);
      }
      if (Date.now() - started > JOB_TIMEOUT_MS) throw new Error(`forecast ${id} is still ${status.status}`);
      $("map-progress").textContent = `Computing the forecast… ${progressText(status.progress)}`;
      await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
      status = await getJSON(`v1/forecasts/${id}`);
    }
    state.forecastId = id;
    if (status.run) state.run = status.run;
  }

  // ------------------------------------------------------------------------------------------- point
  function pointUrl(point) {
    const query = new URLSearchParams({
      latitude: point.latitude.toFixed(4),
      longitude: ((((point.longitude + 180) % 360) + 360) % 360 - 180).toFixed(4), // -180..180, as Open-Meteo
      hourly: state.variable,
      forecast_hours: String(state.hours),
      models: state.model.id, // Open-Meteo's name for the model parameter
    });
    if (state.pinned) query.set("run", state.pinned);
    return `v1/forecast?${query}`;
  }

  async function showPoint(point) {
    state.point = point;
    $("lat").value = point.latitude.toFixed(2);
    $("lon").value = point.longitude.toFixed(2);
    placeMarker();
    const { body } = await getConditional(pointUrl(point));
    drawPoint(body);
    return body;
  }

  function drawPoint(body) {
    const name = state.variable;
    const times = (body.hourly && body.hourly.time) || [];
    const values = (body.hourly && body.hourly[name]) || [];
    const display = shown((body.hourly_units && body.hourly_units[name]) || "");
    const units = display.units;
    const series = times
      .map((t, i) => ({ t: parseTime(t), v: values[i] }))
      .filter((p) => Number.isFinite(p.v))
      .map((p) => ({ t: p.t, v: display.convert(p.v) }));
    const lead = Number($("lead").value);
    const marked = state.run ? new Date(parseTime(state.run).getTime() + lead * 3600e3) : null;
    window.FnoChart.draw($("chart"), series, { variable: name, units, marked });
    const where = `${fmtLat(body.latitude)}, ${fmtLon(((body.longitude % 360) + 360) % 360)}`;
    $("point-info").textContent =
      `${name} at ${where} · run ${body.run ? fullLabel(parseTime(body.run)) : "–"} · ${series.length} steps`;
    if (body.run && body.run !== state.run) state.run = body.run;
  }

  // ------------------------------------------------------------------------------------------- skill
  function renderSkill(model) {
    window.FnoSkill.render($("skill"), $("skill-summary"), skillOf(model), channelsOf(model));
  }

  // ------------------------------------------------------------------------------------ live scorecard
  async function loadScorecard() {
    state.live = await getJSON(`v1/verification?model=${encodeURIComponent(state.model.id)}`);
    drawScorecard();
  }

  function drawScorecard() {
    // RMSE is a difference: one kelvin is one degree Celsius, so only the label follows the units button.
    const summary = window.FnoScorecard.draw($("scorecard"), {
      live: state.live,
      card: skillOf(state.model),
      variable: state.variable,
      units: shown(unitsOf(state.variable)).units,
    });
    $("scorecard-summary").textContent = summary;
  }

  // -------------------------------------------------------------------------------------------- poll
  // Hidden tabs skip their checks; on becoming visible again an overdue check runs at once.
  async function poll() {
    if (document.hidden) {
      state.pollOverdue = true;
      return;
    }
    state.pollOverdue = false;
    try {
      const before = state.run;
      const { body, changed } = await getConditional(pointUrl(state.point));
      if (changed) {
        drawPoint(body);
        if (body.run && body.run !== before) await refreshRun(body.run);
      }
      $("poll-status").textContent =
        `Checked ${new Date().toLocaleTimeString()}: ${changed ? "updated" : "no new run"}.`;
      showAlert("");
    } catch (error) {
      showAlert(`Could not check for a new forecast: ${error.message}`);
    }
  }

  async function refreshRun(run) {
    state.run = run;
    $("run").textContent = run ? fullLabel(parseTime(run)) : "latest";
    await prepareForecast();
    leadLabel();
    await loadMap();
  }

  // ------------------------------------------------------------------------------------ runs, events
  // GET v1/runs?model= -> {runs: [{run, status, computed_at}], latest, provenance}.
  async function loadRuns() {
    const body = await getJSON(`v1/runs?model=${encodeURIComponent(state.model.id)}`);
    const picker = $("run-picker");
    const usable = body.runs.filter((r) => r.status === "completed" || r.status === "available");
    const options = [el("option", { value: "" }, `latest${body.latest ? ` (${fullLabel(parseTime(body.latest))})` : ""}`)];
    for (const r of usable.slice().reverse()) {
      options.push(el("option", { value: r.run }, `${fullLabel(parseTime(r.run))}${r.status === "completed" ? "" : " (on request)"}`));
    }
    picker.replaceChildren(...options);
    picker.value = state.pinned || "";
    picker.disabled = false;
    $("provenance").hidden = body.provenance !== "replay";
  }

  async function pickRun(run) {
    state.pinned = run || null;
    const { body } = await getConditional(pointUrl(state.point));
    drawPoint(body);
    await refreshRun(body.run);
  }

  // A new run (or a removed one) reloads the picker; a new one re-checks the followed forecast at once.
  function followEvents() {
    if (!window.EventSource) return;
    const source = new EventSource("v1/events");
    source.addEventListener("run", (event) => guarded(async () => {
      const data = JSON.parse(event.data);
      if (data.model !== state.model.id) return;
      await loadRuns();
      if (!state.pinned && data.status === "completed") await poll();
    }));
    source.addEventListener("verification", (event) => guarded(async () => {
      if (JSON.parse(event.data).model === state.model.id) await loadScorecard();
    }));
  }

  // ---------------------------------------------------------------------------------------- controls
  function setUpControls() {
    const select = $("variable");
    for (const c of channelsOf(state.model)) {
      select.append(el("option", { value: c.name }, c.units ? `${c.name} (${c.units})` : c.name));
    }
    select.value = state.variable;
    select.disabled = false;
    syncUnitsButton();

    const lead = $("lead");
    lead.min = String(state.step);
    lead.max = String(state.hours);
    lead.step = String(state.step);
    lead.value = String(Math.min(state.hours, Math.max(state.step, 24 - (24 % state.step))));
    lead.disabled = false;
    leadLabel();

    let timer = null;
    lead.addEventListener("input", () => {
      leadLabel();
      clearTimeout(timer);
      timer = setTimeout(() => guarded(async () => {
        await loadMap();
        const known = state.point && state.cache.get(pointUrl(state.point));
        if (known) drawPoint(known.body);
      }), 150);
    });
    select.addEventListener("change", () => guarded(async () => {
      state.variable = select.value;
      syncUnitsButton();
      drawScorecard();
      await loadMap();
      if (state.point) await showPoint(state.point);
    }));
    $("units").addEventListener("click", (event) => guarded(async () => {
      state.native = !state.native;
      const button = event.currentTarget;
      button.setAttribute("aria-pressed", String(state.native));
      button.textContent = state.native ? "K" : "°C";
      button.title = state.native
        ? "Values in the model's own units; press for temperatures in °C"
        : "Temperatures in °C; press for the model's own unit (K)";
      const known = state.point && state.cache.get(pointUrl(state.point));
      if (known) drawPoint(known.body);
      drawScorecard();
      await loadMap();
    }));
    $("map").addEventListener("click", (event) => guarded(async () => {
      if (!state.geometry) return;
      const point = window.FnoMapGeometry.toLatLon(state.geometry, event.currentTarget, event.offsetX, event.offsetY);
      if (!point) return;
      await showPoint(point);
    }));
    $("point-form").addEventListener("submit", (event) => {
      event.preventDefault();
      guarded(() => showPoint({ latitude: Number($("lat").value), longitude: Number($("lon").value) }));
    });
    window.addEventListener("resize", () => {
      placeMarker();
      drawOutlines();
    });
    $("run-picker").addEventListener("change", (event) => guarded(() => pickRun(event.currentTarget.value)));
  }

  async function guarded(action) {
    try {
      await action();
      showAlert("");
    } catch (error) {
      showAlert(error.message);
    }
  }

  // -------------------------------------------------------------------------------------------- main
  async function main() {
    state.model = await loadModel();
    const channels = channelsOf(state.model);
    state.variable = params.get("variable") || (channels[0] && channels[0].name);
    state.step = stepHours(state.model);
    const most = Number(state.model.max_forecast_hours) || DEFAULT_HOURS;
    const hours = Math.min(most, Number(params.get("hours")) || DEFAULT_HOURS);
    state.hours = Math.max(state.step, hours - (hours % state.step));

    const [lonMin, lonMax, latMin, latMax] = gridExtent(state.model);
    $("model-name").textContent = state.model.id;
    $("grid").textContent = `${fmtLat(latMin)}–${fmtLat(latMax)}, ${fmtLon(lonMin)}–${fmtLon(lonMax)}, every ${state.step} h`;
    renderSkill(state.model);
    setUpControls();
    guarded(loadOutlines);
    guarded(loadScorecard);

    const centre = { latitude: (latMin + latMax) / 2, longitude: (lonMin + lonMax) / 2 };
    state.run = (state.model.runs && state.model.runs.latest) || null;
    const first = await showPoint(centre);
    await refreshRun(first.run || state.run);
    drawPoint(first);
    await loadRuns();
    followEvents();

    const pollSeconds = Math.max(1, Number(params.get("poll")) || DEFAULT_POLL_S);
    state.pollTimer = setInterval(poll, pollSeconds * 1000);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && state.pollOverdue) poll();
    });
    $("poll-status").textContent = `Loaded ${new Date().toLocaleTimeString()}; checking for a new run every ${
      pollSeconds >= 60 ? `${Math.round(pollSeconds / 60)} min` : `${pollSeconds} s`
    }.`;
  }

  window.addEventListener("DOMContentLoaded", () => guarded(main));
})();
