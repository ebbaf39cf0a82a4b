// The live scorecard beside the bundle's skill card: RMSE against lead time for one variable, drawn by
// uPlot (static/vendor/uPlot.iife.min.js). Solid lines: the service's own verification of its recent runs
// against the analyses that arrived (GET v1/verification: per_lead rows {lead_hours, runs, rmse: {system:
// {variable: value}}}). Dashed lines: the bundle's skill card (scores rows {variable, lead_hours, metric,
// model, persistence, climatology}). `FnoScorecard.plotted(container)` tells what the plot holds.
"use strict";

(() => {
  const HEIGHT = 260;
  const MIN_WIDTH = 300;
  const SYSTEMS = ["model", "persistence", "climatology"];
  const COLOURS = { model: "#1f6fb2", persistence: "#d7263d", climatology: "#5f6b7a" };
  const plots = new WeakMap(); // container -> {chart, names}

  const finite = (v) => typeof v === "number" && Number.isFinite(v);

  // {leads, series: [{name, values, dashed, system}]} for one variable; values null where a lead has none.
  function tabulate(live, card, variable) {
    const liveRows = (live && Array.isArray(live.per_lead) ? live.per_lead : []).filter(
      (row) => row.rmse && SYSTEMS.some((s) => row.rmse[s] && finite(row.rmse[s][variable])),
    );
    const cardRows = (card && Array.isArray(card.scores) ? card.scores : []).filter(
      (row) => row.variable === variable && row.metric === "rmse",
    );
    const leads = [...new Set([...liveRows, ...cardRows].map((row) => Number(row.lead_hours)))].sort((a, b) => a - b);
    const series = [];
    for (const s of SYSTEMS) {
      const byLead = new Map(liveRows.map((row) => [Number(row.lead_hours), row.rmse[s] && row.rmse[s][variable]]));
      if (liveRows.length) series.push({ name: `live ${s}`, system: s, dashed: false, values: leads.map((l) => (finite(byLead.get(l)) ? byLead.get(l) : null)) });
    }
    for (const s of SYSTEMS) {
      const byLead = new Map(cardRows.map((row) => [Number(row.lead_hours), row[s]]));
      if (cardRows.some((row) => finite(row[s]))) {
        series.push({ name: `skill card ${s}`, system: s, dashed: true, values: leads.map((l) => (finite(byLead.get(l)) ? byLead.get(l) : null)) });
      }
    }
    return { leads, series, runs: liveRows.length ? Math.max(...liveRows.map((row) => Number(row.runs) || 0)) : 0 };
  }

  function options(table, label, width) {
    return {
      width,
      height: HEIGHT,
      scales: { x: { time: false } },
      axes: [
        { label: "lead time (h)", stroke: "#5f6b7a" },
        { label: `RMSE${label ? ` (${label})` : ""}`, size: 56, stroke: "#5f6b7a" },
      ],
      series: [
        { label: "lead (h)" },
        ...table.series.map((s) => ({
          label: s.name,
          stroke: COLOURS[s.system],
          width: s.dashed ? 1.5 : 2,
          dash: s.dashed ? [6, 4] : undefined,
          spanGaps: true,
          points: { show: !s.dashed, size: 5 },
          value: (_, v) => (finite(v) ? v.toFixed(2) : "–"),
        })),
      ],
    };
  }

  // Draws the plot (or says why there is none); returns the text for the summary line.
  function draw(container, { live, card, variable, units }) {
    const previous = plots.get(container);
    if (previous) previous.chart.destroy();
    plots.delete(container);
    container.replaceChildren();
    const table = tabulate(live, card, variable);
    if (!table.series.length) {
      container.append(Object.assign(document.createElement("p"), { className: "muted", textContent: "Nothing to plot yet." }));
      return `No run of ${variable} has been verified yet, and the skill card has no RMSE for it.`;
    }
    const width = Math.max(container.clientWidth, MIN_WIDTH);
    const data = [table.leads, ...table.series.map((s) => s.values)];
    const chart = new uPlot(options(table, units, width), data, container);
    plots.set(container, { chart, names: table.series.map((s) => s.name) });
    const verified = table.runs
      ? `Live: ${variable} RMSE over the last ${table.runs} verified run${table.runs === 1 ? "" : "s"} (solid)`
      : `No run of ${variable} has been verified yet`;
    return `${verified}; the skill card dashed.`;
  }

  function plotted(container) {
    const held = plots.get(container);
    if (!held) return null;
    const data = held.chart.data;
    return {
      leads: Array.from(data[0]),
      series: Object.fromEntries(held.names.map((name, i) => [name, Array.from(data[i + 1])])),
      label: held.chart.axes[1].label,
    };
  }

  window.addEventListener("resize", () => {
    for (const container of document.querySelectorAll(".scorecard")) {
      const held = plots.get(container);
      if (held) held.chart.setSize({ width: Math.max(container.clientWidth, MIN_WIDTH), height: HEIGHT });
    }
  });

  window.FnoScorecard = { draw, plotted, tabulate };
})();
