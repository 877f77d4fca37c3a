// Draws the dashboard's two charts from the figures the page embeds (json_script "stats-charts").
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("stats-charts").textContent);
  var names = data.names;
  var common = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { position: "bottom" } },
  };
  new Chart(document.getElementById("outcomes-chart"), {
    type: "bar",
    data: {
      labels: data.labels,
      datasets: [
        { label: names.succeeded, data: data.succeeded, backgroundColor: "#3c8d40" },
        { label: names.timeouts, data: data.timeouts, backgroundColor: "#e0a800" },
        { label: names.errors, data: data.errors, backgroundColor: "#ba2121" },
        { label: names.rejected, data: data.rejected, backgroundColor: "#8a8a8a" },
      ],
    },
    options: Object.assign({}, common, {
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
    }),
  });
  new Chart(document.getElementById("latency-chart"), {
    type: "line",
    data: {
      labels: data.labels,
      datasets: [
        { label: names.p50, data: data.p50, borderColor: "#417690", spanGaps: true },
        { label: names.p95, data: data.p95, borderColor: "#ba2121", spanGaps: true },
        { label: names.wait, data: data.wait_p95, borderColor: "#8a8a8a", spanGaps: true, borderDash: [4, 4] },
      ],
    },
    options: Object.assign({}, common, { scales: { y: { beginAtZero: true } } }),
  });
  document.querySelector(".stats-dashboard").dataset.chartsDrawn = "true";
})();
