// Draws every chart of the page from /api/page/<name>, and redraws it every refresh period.
"use strict";
const config = JSON.parse(document.getElementById("config").textContent);
const main = document.getElementById("charts");
const statusLine = document.getElementById("status");
let renders = 0;

for (const page of config.pages) {
  const link = document.createElement("a");
  link.href = "/" + page.name;
  link.textContent = page.title;
  if (page.name === config.page) link.className = "current";
  document.getElementById("nav").appendChild(link);
}
for (const chart of config.charts) {
  const card = document.createElement("section");
  card.className = "card";
  card.innerHTML = `<div class="chart" id="chart-${chart.id}"></div><div class="note" id="note-${chart.id}"></div>`;
  main.appendChild(card);
}

function traces(chart) {
  return chart.traces.map((t) => {
    if (chart.kind === "hbar") {
      return { type: "bar", orientation: "h", name: t.name, x: t.y, y: t.x };
    }
    if (chart.kind === "bar" || chart.kind === "stacked") {
      return { type: "bar", name: t.name, x: t.x, y: t.y };
    }
    return { type: "scatter", mode: t.x.length > 60 ? "lines" : "lines+markers", name: t.name, x: t.x, y: t.y };
  });
}

function layout(chart) {
  const base = {
    title: { text: chart.title, font: { size: 15 }, x: 0.01, xanchor: "left" },
    margin: { l: chart.kind === "hbar" ? 260 : 60, r: 20, t: 40, b: 60 },
    barmode: chart.kind === "stacked" ? "stack" : "group",
    // A vertical legend on the right never collides with long or rotated axis labels.
    showlegend: chart.traces.length > 1,
    xaxis: { title: { text: chart.kind === "hbar" ? chart.y_title : chart.x_title }, automargin: true },
    yaxis: {
      title: { text: chart.kind === "hbar" ? "" : chart.y_title },
      automargin: true,
      rangemode: chart.kind === "hbar" ? "normal" : "tozero",
    },
    uirevision: chart.id,
  };
  if (chart.points === 0) {
    base.annotations = [{ text: chart.note || "no data yet", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }];
  }
  return base;
}

async function refresh() {
  try {
    const response = await fetch(config.api, { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || body.detail || response.statusText);
    for (const chart of body.charts) {
      const div = document.getElementById("chart-" + chart.id);
      if (!div) continue;
      Plotly.react(div, traces(chart), layout(chart), { displaylogo: false, displayModeBar: false, responsive: true });
      div.dataset.points = String(chart.points);
      document.getElementById("note-" + chart.id).textContent = chart.note || "";
    }
    renders += 1;
    document.body.dataset.renders = String(renders);
    statusLine.className = "";
    statusLine.textContent = "updated " + new Date().toLocaleTimeString() + " · every " + config.refresh_seconds + " s";
  } catch (err) {
    statusLine.className = "error";
    statusLine.textContent = "cannot refresh: " + err.message;
  }
}

refresh();
setInterval(refresh, config.refresh_seconds * 1000);
