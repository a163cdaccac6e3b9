// The study page: two charts drawn from the JSON the live partial carries (#study-chart-data),
// redrawn each time htmx swaps the partial in. Every trial's validation curve per round
// (pruned trials dashed, failed ones faint), and each completed trial's final value with
// the best so far as a stepped line.
(function () {
  "use strict";

  const palette = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
  let trialsChart = null;
  let bestChart = null;

  function readData() {
    const node = document.getElementById("study-chart-data");
    return node ? JSON.parse(node.textContent) : null;
  }

  function trialDatasets(data) {
    return data.trials.map(function (trial, index) {
      const color = palette[index % palette.length];
      return {
        label: "trial " + trial.number + " (" + trial.status + ")",
        data: trial.curve.map((value, round) => ({ x: round + 1, y: value })).filter((p) => p.y !== null),
        borderColor: color,
        backgroundColor: color,
        borderDash: trial.status === "pruned" ? [5, 4] : [],
        borderWidth: trial.status === "failed" || trial.status === "cancelled" ? 1 : 2,
        pointRadius: 2,
        tension: 0.15,
      };
    });
  }

  function bestDatasets(data) {
    return [
      {
        type: "scatter",
        label: "completed trial",
        data: data.best_so_far.map((p) => ({ x: p.trial, y: p.value })),
        borderColor: "#6b7280",
        backgroundColor: "#6b7280",
        pointRadius: 4,
      },
      {
        type: "line",
        label: "best so far",
        data: data.best_so_far.map((p) => ({ x: p.trial, y: p.best })),
        borderColor: "#059669",
        backgroundColor: "#059669",
        stepped: true,
        pointRadius: 0,
      },
    ];
  }

  function options(xTitle, yTitle) {
    return {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      interaction: { mode: "nearest", intersect: false },
      plugins: { legend: { labels: { boxWidth: 12 } } },
      scales: {
        x: { type: "linear", title: { display: true, text: xTitle }, ticks: { precision: 0 } },
        y: { title: { display: true, text: yTitle } },
      },
    };
  }

  function draw() {
    const data = readData();
    if (!data || !window.Chart) return;
    const label = "validation " + data.objective;
    if (!trialsChart) {
      trialsChart = new window.Chart(document.getElementById("chart-trials"), {
        type: "line",
        data: { datasets: trialDatasets(data) },
        options: options("round", label),
      });
      bestChart = new window.Chart(document.getElementById("chart-best"), {
        data: { datasets: bestDatasets(data) },
        options: options("trial", label),
      });
      return;
    }
    trialsChart.data.datasets = trialDatasets(data);
    trialsChart.update();
    bestChart.data.datasets = bestDatasets(data);
    bestChart.update();
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.target && event.target.id === "study-live") draw();
  });
})();
