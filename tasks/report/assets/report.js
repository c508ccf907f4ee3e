(function () {
  "use strict";
  function drawCharts() {
    var holder = document.getElementById("report-figures");
    if (!holder) return;
    var figs = JSON.parse(holder.textContent);
    // no "Share chart..." button: it would upload the data (transcripts' labels) to Plotly Cloud
    var config = {displaylogo: false, responsive: true, showLink: false, showSendToCloud: false,
                  showEditInChartStudio: false,
                  modeBarButtonsToRemove: ["sendChartToCloud", "sendDataToCloud", "editInChartStudio", "select2d",
                                           "lasso2d", "autoScale2d", "toggleSpikelines"]};
    figs.forEach(function (f) {
      var div = document.getElementById(f.id);
      if (!div) return;
      if (typeof Plotly === "undefined") { div.textContent = "chart unavailable: plotly.js did not load"; return; }
      Plotly.newPlot(div, f.data, f.layout, config);
    });
  }
  function targetOfHash() {
    var h = location.hash.slice(1);
    if (!h) return null;
    try { h = decodeURIComponent(h); } catch (err) { return null; }
    return document.getElementById(h);
  }
  function reveal(scroll) {
    var el = targetOfHash();
    if (!el) return;
    var det = el.tagName === "SECTION" ? el.querySelector("details") : el.closest("details");
    if (det && !det.open) det.open = true;
    if (scroll) el.scrollIntoView({block: "start"});
    var box = el.closest("section.chat") || el;
    box.classList.add("flash");
    setTimeout(function () { box.classList.remove("flash"); }, 1600);
  }
  function sessionTable() {
    var table = document.getElementById("sessions");
    if (!table) return;
    var body = table.tBodies[0], input = document.getElementById("session-filter"),
        count = document.getElementById("session-count");
    function update() {
      var q = (input.value || "").toLowerCase(), shown = 0, rows = body.rows;
      for (var i = 0; i < rows.length; i++) {
        var hit = !q || rows[i].textContent.toLowerCase().indexOf(q) >= 0;
        rows[i].style.display = hit ? "" : "none";
        if (hit) shown++;
      }
      count.textContent = shown + " / " + rows.length + " shown";
    }
    input.addEventListener("input", update);
    update();
    var ths = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(ths, function (th, col) {
      th.addEventListener("click", function () {
        var asc = !th.classList.contains("sorted-asc");
        Array.prototype.forEach.call(ths, function (x) { x.classList.remove("sorted-asc", "sorted-desc"); });
        th.classList.add(asc ? "sorted-asc" : "sorted-desc");
        var rows = Array.prototype.slice.call(body.rows);
        function key(r) {
          var c = r.cells[col], s = c.hasAttribute("data-sort") ? c.getAttribute("data-sort") : c.textContent.trim();
          if (s === "" || s === "—") return null;
          var n = Number(s.replace(/,/g, ""));
          return isNaN(n) ? s.toLowerCase() : n;
        }
        rows.sort(function (a, b) {
          var x = key(a), y = key(b);
          if (x === null) return 1; if (y === null) return -1;
          if (typeof x !== typeof y) { x = String(x); y = String(y); }
          return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  function toggles() {
    var open = document.getElementById("expand-all"), close = document.getElementById("collapse-all");
    function all(v) { document.querySelectorAll("section.chat > details").forEach(function (d) { d.open = v; }); }
    if (open) open.addEventListener("click", function () { all(true); });
    if (close) close.addEventListener("click", function () { all(false); });
  }
  window.addEventListener("hashchange", function () { reveal(true); });
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest ? ev.target.closest("a[href^='#']") : null;
    if (a && a.getAttribute("href") === location.hash) setTimeout(function () { reveal(true); }, 0);
  });
  document.addEventListener("DOMContentLoaded", function () {
    sessionTable();
    toggles();
    drawCharts();
    reveal(true);
  });
})();
