// Line chart of one point forecast, drawn by uPlot (static/vendor/uPlot.iife.min.js, MIT licence beside
// it): value axis with units, time axis in UTC, one point per forecast step, and a dashed line at the lead
// time shown on the map. `FnoChart.plotted(container)` tells what the chart holds (for tests and tools).
"use strict";

(() => {
  const HEIGHT = 300;
  const MIN_WIDTH = 320;
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const charts = new WeakMap(); // container -> its uPlot chart
  const pad = (n) => String(n).padStart(2, "0");
  // uPlot shows times through a Date whose local fields are those of this zone: UTC, like the API.
  const UTC = (seconds) => uPlot.tzDate(new Date(seconds * 1e3), "Etc/UTC");

  // Time-axis labels: the hour (`06Z`), and the day under the first tick of each day (`02 Mar`).
  function timeLabels(_, splits) {
    let previousDay = null;
    return splits.map((seconds) => {
      const d = UTC(seconds);
      const day = `${pad(d.getDate())} ${MONTHS[d.getMonth()]}`;
      const label = day === previousDay ? `${pad(d.getHours())}Z` : `${pad(d.getHours())}Z\n${day}`;
      previousDay = day;
      return label;
    });
  }

  function cssColour(name, fallback) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }

  // A uPlot plugin: the dashed vertical line at `markedSeconds` (the map's valid time), when in range.
  function leadMark(markedSeconds) {
    return {
      hooks: {
        draw: (chart) => {
          if (markedSeconds === null) return;
          const [lo, hi] = [chart.scales.x.min, chart.scales.x.max];
          if (!(markedSeconds >= lo && markedSeconds <= hi)) return;
          const x = Math.round(chart.valToPos(markedSeconds, "x", true));
          const { top, height } = chart.bbox;
          const ctx = chart.ctx;
          ctx.save();
          ctx.strokeStyle = "#d7263d";
          ctx.lineWidth = 1.2 * uPlot.pxRatio;
          ctx.setLineDash([4 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
          ctx.beginPath();
          ctx.moveTo(x, top);
          ctx.lineTo(x, top + height);
          ctx.stroke();
          ctx.restore();
        },
      },
    };
  }

  function options(label, width, markedSeconds) {
    const accent = cssColour("--accent", "#1f6fb2");
    return {
      width,
      height: HEIGHT,
      tzDate: UTC,
      scales: { x: { time: true } },
      axes: [
        { label: "valid time (UTC)", values: timeLabels, stroke: cssColour("--muted", "#5f6b7a") },
        { label, size: 64, stroke: cssColour("--muted", "#5f6b7a") },
      ],
      series: [
        { label: "valid time (UTC)", value: "{YYYY}-{MM}-{DD} {HH}:{mm}Z" },
        {
          label,
          stroke: accent,
          width: 2,
          points: { show: true, size: 6, stroke: accent, fill: "#fff" },
          value: (_, v) => (v === null || v === undefined ? "–" : v.toFixed(2)),
        },
      ],
      plugins: [leadMark(markedSeconds)],
    };
  }

  function draw(container, series, { variable, units, marked }) {
    const previous = charts.get(container);
    if (previous) previous.destroy();
    charts.delete(container);
    container.replaceChildren();
    if (!series.length) {
      container.append(Object.assign(document.createElement("p"), { className: "muted", textContent: "No data." }));
      return;
    }
    const label = units ? `${variable} (${units})` : variable;
    const data = [series.map((p) => p.t.getTime() / 1e3), series.map((p) => p.v)];
    const markedSeconds = marked ? marked.getTime() / 1e3 : null;
    const width = Math.max(container.clientWidth, MIN_WIDTH);
    charts.set(container, new uPlot(options(label, width, markedSeconds), data, container));
  }

  function plotted(container) {
    const chart = charts.get(container);
    if (!chart) return null;
    return { times: Array.from(chart.data[0]), values: Array.from(chart.data[1]), label: chart.series[1].label };
  }

  // Follow the container's width (the layout switches to one column on narrow screens).
  window.addEventListener("resize", () => {
    for (const container of document.querySelectorAll(".chart")) {
      const chart = charts.get(container);
      if (chart) chart.setSize({ width: Math.max(container.clientWidth, MIN_WIDTH), height: HEIGHT });
    }
  });

  window.FnoChart = { draw, plotted };
})();
