(function () {
  "use strict";
  // The conversations table: one <tbody class="unit"> a production conversation (its summary
  // row, then its hidden detail row). Sorting moves whole tbodies; the filter hides them.
  var table, rule, current = "all";

  function units() { return Array.prototype.slice.call(table.tBodies); }

  function verdictOf(tb) { return tb.getAttribute("data-v-" + rule.value) || "unchanged"; }

  function applyFilter() {
    var counts = {all: 0};
    units().forEach(function (tb) {
      var v = verdictOf(tb);
      counts.all++;
      counts[v] = (counts[v] || 0) + 1;
      tb.hidden = !(current === "all" || v === current);
    });
    document.querySelectorAll("button.filter").forEach(function (b) {
      var k = b.getAttribute("data-filter"), n = b.querySelector("span");
      if (n) n.textContent = "(" + (counts[k] || 0) + ")";
      b.classList.toggle("on", k === current);
    });
    units().forEach(function (tb) {
      var cell = tb.rows[0].cells[4], v = verdictOf(tb);
      if (cell) {
        cell.setAttribute("data-sort", v);
        var span = cell.querySelector(".verdict");
        if (span) { span.textContent = v.replace("_", " "); span.className = "verdict v-" + v; }
      }
    });
  }

  function sortKey(tb, col) {
    var c = tb.rows[0].cells[col];
    if (!c) return null;
    var s = c.hasAttribute("data-sort") ? c.getAttribute("data-sort") : c.textContent.trim();
    if (s === "" || s === "—") return null;
    var n = Number(s);
    return isNaN(n) ? s.toLowerCase() : n;
  }

  function sortBy(th, col) {
    var asc = !th.classList.contains("sorted-asc");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (x) { x.classList.remove("sorted-asc", "sorted-desc"); });
    th.classList.add(asc ? "sorted-asc" : "sorted-desc");
    var list = units();
    list.sort(function (a, b) {
      var x = sortKey(a, col), y = sortKey(b, col);
      if (x === null && y === null) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    });
    list.forEach(function (tb) { table.appendChild(tb); });
  }

  function toggle(tb, open) {
    var detail = tb.rows[1], summary = tb.rows[0];
    if (open === undefined) open = detail.hidden;
    detail.hidden = !open;
    tb.classList.toggle("open", open);
    summary.setAttribute("aria-expanded", open ? "true" : "false");
  }

  function pick(btn) {
    var body = btn.closest(".detail-body");
    body.querySelectorAll(".pick").forEach(function (b) { b.classList.toggle("on", b === btn); });
    body.querySelectorAll(".pair").forEach(function (p) { p.hidden = p.id !== btn.getAttribute("data-pair"); });
  }

  function openHash() {
    var h = location.hash.slice(1);
    if (!h) return;
    try { h = decodeURIComponent(h); } catch (err) { return; }
    var el = document.getElementById(h);
    if (el && el.tagName === "TBODY") { el.hidden = false; toggle(el, true); el.scrollIntoView({block: "start"}); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    table = document.getElementById("units");
    rule = document.getElementById("verdict-rule");
    if (!table || !rule) return;
    document.querySelectorAll("button.filter").forEach(function (b) {
      b.addEventListener("click", function () { current = b.getAttribute("data-filter"); applyFilter(); });
    });
    rule.addEventListener("change", applyFilter);
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () { sortBy(th, col); });
    });
    table.addEventListener("click", function (ev) {
      var btn = ev.target.closest("button.pick");
      if (btn) { pick(btn); return; }
      var tr = ev.target.closest("tr.summary");
      if (tr) toggle(tr.parentNode);
    });
    table.addEventListener("keydown", function (ev) {
      var tr = ev.target.closest ? ev.target.closest("tr.summary") : null;
      if (tr && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); toggle(tr.parentNode); }
    });
    applyFilter();
    openHash();
  });
  window.addEventListener("hashchange", openHash);
})();
