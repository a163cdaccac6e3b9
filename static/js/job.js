// The live job page. The server renders every finished round as a table row (this works
// without JavaScript); each row carries its figures in data-point. Over the WebSocket,
// htmx's ws extension swaps the status block and a staging <template> of rows; this
// script moves those rows into the table keyed by round number (a round that both the
// snapshot and an event carry is shown once) and redraws the charts from the same map.
(function () {
  "use strict";

  const points = new Map(); // round number -> point
  const charts = {};
  const labels = JSON.parse(document.getElementById("metric-labels").textContent);
  const palette = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2"];

  function label(name) {
    if (labels[name]) return labels[name];
    const words = name.replace(/_/g, " ");
    return words.charAt(0).toUpperCase() + words.slice(1); // as the table shows it
  }

  function sortedPoints() {
    return Array.from(points.values()).sort((a, b) => a.round - b.round);
  }

  function series(key, source) {
    return sortedPoints()
      .filter((p) => (source ? p.extra[key] : p[key]) !== null && (source ? p.extra[key] : p[key]) !== undefined)
      .map((p) => ({ x: p.round, y: source ? p.extra[key] : p[key] }));
  }

  function lineChart(canvas, datasets, scales) {
    return new window.Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        interaction: { mode: "nearest", intersect: false },
        scales: Object.assign({ x: { type: "linear", title: { display: true, text: "round" }, ticks: { precision: 0 } } }, scales),
      },
    });
  }

  function dataset(name, color, axis) {
    return { label: label(name), key: name, data: [], borderColor: color, backgroundColor: color, yAxisID: axis || "y", pointRadius: 2, tension: 0.15 };
  }

  function createCharts() {
    charts.quality = lineChart(document.getElementById("chart-quality"), [dataset("accuracy", palette[0], "y"), dataset("loss", palette[1], "y1")], {
      y: { min: 0, max: 1, title: { display: true, text: "accuracy" } },
      y1: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "loss" } },
    });
    charts.bytes = lineChart(document.getElementById("chart-bytes"), [dataset("bytes_up", palette[2]), dataset("bytes_down", palette[3])], {
      y: { beginAtZero: true, title: { display: true, text: "bytes" } },
    });
    charts.time = lineChart(document.getElementById("chart-time"), [dataset("client_cpu_s", palette[4]), dataset("wall_s", palette[5])], {
      y: { beginAtZero: true, title: { display: true, text: "seconds" } },
    });
    charts.clients = new window.Chart(document.getElementById("chart-clients"), {
      type: "scatter",
      data: {
        datasets: [
          { label: "trained", data: [], backgroundColor: palette[0], pointStyle: "rect", pointRadius: 3 },
          { label: "failed", data: [], backgroundColor: palette[1], pointStyle: "crossRot", pointRadius: 5, borderColor: palette[1] },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        scales: {
          x: { type: "linear", title: { display: true, text: "round" }, ticks: { precision: 0 } },
          y: { type: "linear", title: { display: true, text: "client id" }, ticks: { precision: 0 }, beginAtZero: true },
        },
      },
    });
    charts.extra = {};
  }

  function extraChart(name) {
    if (!charts.extra[name]) {
      const figure = document.createElement("figure");
      figure.className = "chart";
      figure.innerHTML = "<figcaption></figcaption><canvas></canvas>";
      figure.querySelector("figcaption").textContent = label(name);
      document.getElementById("extra-charts").appendChild(figure);
      const color = palette[Object.keys(charts.extra).length % palette.length];
      charts.extra[name] = lineChart(figure.querySelector("canvas"), [Object.assign(dataset(name, color), { source: "extra" })], {
        y: { title: { display: true, text: label(name) } },
      });
    }
    return charts.extra[name];
  }

  function redraw() {
    if (!window.Chart) return;
    if (!charts.quality) createCharts();
    [charts.quality, charts.bytes, charts.time].forEach((chart) => {
      chart.data.datasets.forEach((ds) => (ds.data = series(ds.key)));
      chart.update("none");
    });
    const trained = [];
    const failed = [];
    sortedPoints().forEach((p) => {
      p.selected.forEach((id) => (p.failed.includes(id) ? failed : trained).push({ x: p.round, y: id }));
    });
    charts.clients.data.datasets[0].data = trained;
    charts.clients.data.datasets[1].data = failed;
    charts.clients.update("none");
    const extraNames = new Set();
    points.forEach((p) => Object.keys(p.extra).forEach((name) => extraNames.add(name)));
    extraNames.forEach((name) => {
      const chart = extraChart(name);
      chart.data.datasets[0].data = series(name, "extra");
      chart.update("none");
    });
    const section = document.getElementById("charts");
    const rounds = sortedPoints();
    section.dataset.points = String(rounds.length);
    section.dataset.lastRound = String(rounds.length ? rounds[rounds.length - 1].round : 0);
  }

  function absorb(row) {
    points.set(Number(row.dataset.round), JSON.parse(row.dataset.point));
  }

  // Put a row into the table by round number: replace the same round, else keep order.
  function upsert(row) {
    const body = document.getElementById("rounds-body");
    const number = Number(row.dataset.round);
    const existing = document.getElementById(row.id);
    if (existing) {
      existing.replaceWith(row);
    } else {
      const later = Array.from(body.rows).find((r) => Number(r.dataset.round) > number);
      body.insertBefore(row, later || null);
    }
    absorb(row);
    const empty = document.getElementById("no-rounds");
    if (empty) empty.remove();
  }

  function takeIncoming() {
    const staging = document.getElementById("rounds-incoming");
    if (!staging) return;
    Array.from(staging.content.querySelectorAll("tr")).forEach((row) => upsert(document.importNode(row, true)));
    staging.innerHTML = "";
    redraw();
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.from(document.querySelectorAll("#rounds-body tr")).forEach(absorb);
    redraw();
    document.body.addEventListener("htmx:wsAfterMessage", takeIncoming);
  });
})();
