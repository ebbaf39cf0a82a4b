// Line chart of one point forecast, drawn as inline SVG: value axis with units, time axis with day and
// hour labels (UTC), one marker per forecast step and a dashed line at the lead time shown on the map.
"use strict";

(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 640;
  const HEIGHT = 300;
  const MARGIN = { top: 16, right: 22, bottom: 58, left: 70 };
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const pad = (n) => String(n).padStart(2, "0");

  function node(tag, attrs = {}, text = null) {
    const element = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) element.setAttribute(k, String(v));
    if (text !== null) element.textContent = text;
    return element;
  }

  // About `count` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten).
  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) {
      const half = Math.max(Math.abs(lo) * 0.01, 0.5);
      return niceTicks(lo - half, hi + half, count);
    }
    const raw = (hi - lo) / count;
    const power = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
    const ticks = [];
    for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(v);
    if (ticks[ticks.length - 1] < hi) ticks.push(ticks[ticks.length - 1] + step);
    const digits = Math.max(0, -Math.floor(Math.log10(step)));
    return { ticks, digits };
  }

  // Time ticks every 6, 12, 24 or 48 hours, whichever gives at most ~8 labels.
  function timeTicks(t0, t1) {
    const hours = (t1 - t0) / 3600e3;
    const every = [3, 6, 12, 24, 48, 96].find((h) => hours / h <= 8) || 168;
    const ms = every * 3600e3;
    const ticks = [];
    for (let t = Math.ceil(t0 / ms) * ms; t <= t1; t += ms) ticks.push(t);
    return ticks;
  }

  function draw(container, series, options) {
    container.replaceChildren();
    if (!series.length) {
      container.append(Object.assign(document.createElement("p"), { className: "muted", textContent: "No data." }));
      return;
    }
    const { variable, units, marked } = options;
    const svg = node("svg", {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: "img",
      "aria-label": `${variable} forecast, ${series.length} steps`,
      class: "chart-svg",
    });
    const x0 = MARGIN.left;
    const x1 = WIDTH - MARGIN.right;
    const y0 = HEIGHT - MARGIN.bottom;
    const y1 = MARGIN.top;
    const t0 = series[0].t.getTime();
    const t1 = Math.max(series[series.length - 1].t.getTime(), t0 + 3600e3);
    const values = series.map((p) => p.v);
    const { ticks, digits } = niceTicks(Math.min(...values), Math.max(...values), 5);
    const vlo = ticks[0];
    const vhi = ticks[ticks.length - 1];
    const sx = (t) => x0 + ((t - t0) / (t1 - t0)) * (x1 - x0);
    const sy = (v) => y0 - ((v - vlo) / (vhi - vlo)) * (y0 - y1);

    const grid = node("g", { class: "grid" });
    const axes = node("g", { class: "axis" });
    for (const v of ticks) {
      grid.append(node("line", { x1: x0, x2: x1, y1: sy(v), y2: sy(v) }));
      axes.append(node("text", { x: x0 - 8, y: sy(v) + 4, "text-anchor": "end" }, v.toFixed(digits)));
    }
    let previousDay = null;
    for (const t of timeTicks(t0, t1)) {
      const d = new Date(t);
      grid.append(node("line", { x1: sx(t), x2: sx(t), y1: y0, y2: y1 }));
      axes.append(node("text", { x: sx(t), y: y0 + 18, "text-anchor": "middle" }, `${pad(d.getUTCHours())}Z`));
      const day = `${pad(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]}`;
      if (day !== previousDay) {
        axes.append(node("text", { x: sx(t), y: y0 + 34, "text-anchor": "middle", class: "day" }, day));
        previousDay = day;
      }
    }
    axes.append(node("line", { x1: x0, x2: x1, y1: y0, y2: y0, class: "frame" }));
    axes.append(node("line", { x1: x0, x2: x0, y1: y0, y2: y1, class: "frame" }));
    axes.append(node("text", { x: (x0 + x1) / 2, y: HEIGHT - 4, "text-anchor": "middle", class: "title" }, "valid time (UTC)"));
    const label = units ? `${variable} (${units})` : variable;
    axes.append(
      node("text", { x: 14, y: (y0 + y1) / 2, "text-anchor": "middle", class: "title",
        transform: `rotate(-90 14 ${(y0 + y1) / 2})` }, label),
    );
    svg.append(grid, axes);

    if (marked && marked.getTime() >= t0 && marked.getTime() <= t1) {
      svg.append(node("line", { x1: sx(marked.getTime()), x2: sx(marked.getTime()), y1: y0, y2: y1, class: "lead-mark" }));
    }
    const path = series.map((p, i) => `${i ? "L" : "M"}${sx(p.t.getTime()).toFixed(1)},${sy(p.v).toFixed(1)}`);
    svg.append(node("path", { d: path.join(""), class: "series" }));
    const points = node("g", { class: "points" });
    for (const p of series) {
      const dot = node("circle", { cx: sx(p.t.getTime()), cy: sy(p.v), r: 3.2, "data-value": p.v });
      dot.append(node("title", {}, `${p.t.toISOString().slice(0, 16).replace("T", " ")}Z  ${p.v.toFixed(2)} ${units}`));
      points.append(dot);
    }
    svg.append(points);
    container.append(svg);
  }

  window.FnoChart = { draw, niceTicks, timeTicks };
})();
