// Dashboard charts: Chart.js (served from node_modules) draws each <canvas data-chart="name">
// from the JSON data island #donnees-graphiques. No inline script (Content-Security-Policy);
// every figure is also in a table next to its chart, so the page works without this file.
(function () {
  "use strict";
  var island = document.getElementById("donnees-graphiques");
  if (!island || typeof window.Chart === "undefined") {
    return;
  }
  var specs = JSON.parse(island.textContent);
  var BLUE = "#000091";  // DSFR blue France
  var RED = "#c9191e";   // DSFR red Marianne (target line)
  var reduceMotion = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  var percent = function (value) {
    return value + " %";
  };

  var dataset = function (spec, data) {
    var isTarget = !!data.target;
    var colour = isTarget ? RED : BLUE;
    return {
      label: data.label,
      data: data.data,
      backgroundColor: spec.type === "line" ? colour : colour + "cc",
      borderColor: colour,
      borderWidth: 2,
      borderDash: isTarget ? [6, 4] : [],
      pointRadius: isTarget ? 0 : 3,
      fill: false,
      tension: 0
    };
  };

  var config = function (spec) {
    var ticks = { precision: 0 };
    var y = { beginAtZero: true, ticks: ticks };
    var tooltip = {};
    if (spec.percent) {
      ticks.callback = percent;
      y.suggestedMax = 100;
      tooltip.callbacks = {
        label: function (item) { return item.dataset.label + " : " + percent(item.parsed.y); }
      };
    }
    var options = {
      responsive: true,
      locale: "fr-FR",
      plugins: { legend: { display: spec.datasets.length > 1 }, tooltip: tooltip },
      scales: { y: y }
    };
    if (reduceMotion) {
      options.animation = false;
    }
    return {
      type: spec.type,
      data: {
        labels: spec.labels,
        datasets: spec.datasets.map(function (data) { return dataset(spec, data); })
      },
      options: options
    };
  };

  Array.prototype.forEach.call(document.querySelectorAll("canvas[data-chart]"), function (canvas) {
    var spec = specs[canvas.getAttribute("data-chart")];
    if (spec) {
      new window.Chart(canvas, config(spec));
    }
  });
})();
