// The top risk score of each day up to the page's day, drawn with the vendored uPlot.
(function () {
  "use strict";
  var box = document.querySelector('[data-testid="risk-chart"]');
  if (!box || typeof uPlot === "undefined") {
    return;
  }
  var until = box.getAttribute("data-until") || "";
  var url = "/api/risk/history?top=1" + (until ? "&until=" + encodeURIComponent(until) : "");
  fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then(function (response) {
      if (!response.ok) {
        throw new Error("history answered " + response.status);
      }
      return response.json();
    })
    .then(function (history) {
      var xs = [];
      var ys = [];
      history.days.forEach(function (day) {
        xs.push(Date.parse(day.date + "T00:00:00Z") / 1000);
        ys.push(day.top.length ? day.top[0].score : 0);
      });
      box.setAttribute("data-days", String(xs.length));
      var options = {
        title: "Highest risk score per day",
        width: Math.max(320, box.clientWidth || 800),
        height: 220,
        scales: { x: { time: true } },
        series: [{}, { label: "top score", stroke: "#b00020", width: 2 }],
      };
      new uPlot(options, [xs, ys], box);
      box.setAttribute("data-drawn", "yes");
    })
    .catch(function (error) {
      box.textContent = "The chart could not be drawn: " + error.message;
    });
})();
