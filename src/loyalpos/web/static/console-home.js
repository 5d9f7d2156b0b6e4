// The home panel's 30-day chart: sales (bars, yuan) and orders (line) by day,
// from the page's JSON island #chart-data, drawn by ECharts (npm, served by
// loyalpos from node_modules; see web/render.py VENDOR).
(function () {
  "use strict";
  var box = document.getElementById("chart");
  var island = document.getElementById("chart-data");
  if (!box || !island || typeof window.echarts === "undefined") { return; }
  var data = JSON.parse(island.textContent);
  var chart = window.echarts.init(box, null, { renderer: "canvas" });
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis" },
    legend: { top: 0, data: [data.labels.sales, data.labels.orders] },
    grid: { left: 64, right: 56, top: 56, bottom: 32 },
    xAxis: { type: "category", data: data.days.map(function (d) { return d.slice(5); }) },
    yAxis: [
      { type: "value", name: data.labels.sales },
      { type: "value", name: data.labels.orders, minInterval: 1 }
    ],
    series: [
      { name: data.labels.sales, type: "bar", data: data.sales, itemStyle: { color: "#1f4e79" } },
      { name: data.labels.orders, type: "line", yAxisIndex: 1, data: data.orders, itemStyle: { color: "#f0a500" } }
    ]
  });
  box.setAttribute("data-drawn", "true");
  window.addEventListener("resize", function () { chart.resize(); });
}());
