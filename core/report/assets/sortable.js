/* probebank report: click a column header to sort its table (again to reverse).
   Cells sort by their data-sort attribute when present, else by their text; numbers compare as
   numbers and "-" (no value) always sorts last. No dependencies; works from file://. */
(function () {
  "use strict";
  function key(cell) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (raw === "" || raw === "-") { return {missing: true, num: NaN, text: ""}; }
    var num = Number(raw);
    return {missing: false, num: num, text: raw.toLowerCase()};
  }
  function compare(a, b) {
    if (a.missing || b.missing) { return a.missing === b.missing ? 0 : (a.missing ? 1 : -1); }
    if (!isNaN(a.num) && !isNaN(b.num)) { return a.num - b.num; }
    return a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
  }
  function sortBy(table, th) {
    var index = Array.prototype.indexOf.call(th.parentNode.children, th);
    var body = table.tBodies[0];
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, i) { return {row: row, key: key(row.cells[index]), i: i}; });
    keyed.sort(function (x, y) {
      var missing = (x.key.missing || y.key.missing) && x.key.missing !== y.key.missing;
      var c = compare(x.key, y.key);
      if (!missing && !ascending) { c = -c; }
      return c !== 0 ? c : x.i - y.i;  /* stable */
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  function init() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      if (!table.tHead || !table.tBodies.length) { return; }
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
        th.setAttribute("tabindex", "0");
        th.title = "click to sort";
        th.addEventListener("click", function () { sortBy(table, th); });
        th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sortBy(table, th); } });
      });
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
