// The model's skill card as a table: one table per variable, a row per lead time, and for each metric the
// model beside its two baselines (persistence, climatology). The best of the three is highlighted.
//
// Skill card shape (fno_forecast.evaluation.scorecard): {model, data, period: [start, end], inits,
// scores: [{variable, lead_hours, metric, model, persistence, climatology}, ...]}; null values are undefined.
"use strict";

(() => {
  const SYSTEMS = ["model", "persistence", "climatology"];
  const LABELS = { rmse: "RMSE", acc: "ACC", bias: "Bias" };
  // How to pick the best system per metric: lowest RMSE, highest ACC, bias nearest zero.
  const BETTER = {
    rmse: (a, b) => a < b,
    acc: (a, b) => a > b,
    bias: (a, b) => Math.abs(a) < Math.abs(b),
  };

  function el(tag, attrs = {}, text = null) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== null) node.textContent = text;
    return node;
  }

  const finite = (v) => typeof v === "number" && Number.isFinite(v);

  function best(metric, row) {
    const better = BETTER[metric] || BETTER.rmse;
    let winner = null;
    for (const s of SYSTEMS) {
      if (finite(row[s]) && (winner === null || better(row[s], row[winner]))) winner = s;
    }
    return winner;
  }

  function variableTable(variable, scores, units) {
    const metrics = [...new Set(scores.map((r) => r.metric))];
    const leads = [...new Set(scores.map((r) => Number(r.lead_hours)))].sort((a, b) => a - b);
    const byKey = new Map(scores.map((r) => [`${r.metric}|${Number(r.lead_hours)}`, r]));

    const table = el("table", { class: "skill-table", "data-variable": variable });
    table.append(el("caption", {}, units ? `${variable} (${units})` : variable));
    const head = el("thead");
    const top = el("tr");
    top.append(el("th", { rowspan: "2", scope: "col" }, "Lead"));
    for (const m of metrics) {
      const unit = m === "acc" || !units ? "" : ` (${units})`;
      top.append(el("th", { colspan: String(SYSTEMS.length), scope: "colgroup" }, `${LABELS[m] || m}${unit}`));
    }
    const second = el("tr");
    for (const _m of metrics) {
      for (const s of SYSTEMS) second.append(el("th", { scope: "col", class: "system" }, s));
    }
    head.append(top, second);

    const body = el("tbody");
    for (const lead of leads) {
      const tr = el("tr");
      tr.append(el("th", { scope: "row" }, `${lead} h`));
      for (const m of metrics) {
        const row = byKey.get(`${m}|${lead}`) || {};
        const winner = best(m, row);
        for (const s of SYSTEMS) {
          const digits = m === "acc" ? 3 : 2;
          const td = el("td", { class: s === winner ? `num best ${s}` : `num ${s}` }, finite(row[s]) ? row[s].toFixed(digits) : "–");
          tr.append(td);
        }
      }
      body.append(tr);
    }
    table.append(head, body);
    return table;
  }

  function render(container, summary, card, channels) {
    container.replaceChildren();
    const scores = card && Array.isArray(card.scores) ? card.scores : [];
    if (!scores.length) {
      summary.textContent = "This model has no skill card yet (run `fno-forecast evaluate` on it).";
      return;
    }
    const parts = [];
    if (card.period) parts.push(`${card.period[0]} to ${card.period[1]}`);
    if (finite(card.inits)) parts.push(`${card.inits} initial times`);
    if (card.data) parts.push(`against ${card.data}`);
    summary.textContent = `Scores over ${parts.join(", ")}. Best of model and baselines in bold.`;
    const verdict = card.verdict;
    if (verdict && verdict.status && verdict.status !== "skilful") {
      const leads = (verdict.losses || []).map((r) => `${r.variable} ${r.lead_hours} h`).join(", ");
      summary.textContent += ` Warning: ${verdict.status} (${leads}).`;
    }
    const units = Object.fromEntries(channels.map((c) => [c.name, c.units || ""]));
    Object.assign(units, card.units || {});
    const variables = [...new Set(scores.map((r) => r.variable))];
    for (const v of variables) {
      container.append(variableTable(v, scores.filter((r) => r.variable === v), units[v] || ""));
    }
  }

  window.FnoSkill = { render, best };
})();
