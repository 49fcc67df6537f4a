// Filter box for the generated catalogue table (docs/generated/catalogue/index.md).
// A text box (every word must occur in the row) and one select per facet column named in the
// container's data-facets attribute. The text filter is kept in the page address as ?q=..., so a
// filtered view can be shared. Works with and without material's instant navigation.
(function () {
  function setup(container) {
    if (container.dataset.ready) return;
    var table = container.querySelector("table");
    if (!table) return;
    container.dataset.ready = "1";
    var headers = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
      return th.textContent.trim();
    });
    var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
    // Phones show each row as a card: label every cell with its column (see specplug.css).
    rows.forEach(function (row) {
      Array.prototype.forEach.call(row.cells, function (cell, i) {
        if (headers[i]) cell.dataset.label = headers[i];
      });
    });
    var bar = document.createElement("div");
    bar.className = "specplug-filter-bar";
    var input = document.createElement("input");
    input.type = "search";
    input.placeholder = "Filter methods, e.g. 'tree lossless' or 'eagle'";
    input.setAttribute("aria-label", "Filter the catalogue");
    input.className = "specplug-filter-text";
    bar.appendChild(input);
    var selects = [];
    (container.dataset.facets || "").split(",").forEach(function (name) {
      name = name.trim();
      var col = headers.indexOf(name);
      if (!name || col < 0) return;
      var values = {};
      rows.forEach(function (row) {
        row.cells[col].textContent.split(",").forEach(function (v) {
          v = v.trim();
          if (v) values[v] = true;
        });
      });
      var select = document.createElement("select");
      select.className = "specplug-filter-facet";
      select.setAttribute("aria-label", name);
      select.dataset.column = String(col);
      var all = document.createElement("option");
      all.value = "";
      all.textContent = name + ": all";
      select.appendChild(all);
      Object.keys(values).sort().forEach(function (v) {
        var opt = document.createElement("option");
        opt.value = v;
        opt.textContent = v;
        select.appendChild(opt);
      });
      bar.appendChild(select);
      selects.push(select);
    });
    var count = document.createElement("span");
    count.className = "specplug-filter-count";
    bar.appendChild(count);
    container.insertBefore(bar, container.firstChild);

    function apply() {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      rows.forEach(function (row) {
        var text = row.textContent.toLowerCase();
        var ok = words.every(function (w) { return text.indexOf(w) >= 0; });
        selects.forEach(function (s) {
          if (!ok || !s.value) return;
          var cellValues = row.cells[Number(s.dataset.column)].textContent.split(",").map(function (v) {
            return v.trim();
          });
          ok = cellValues.indexOf(s.value) >= 0;
        });
        row.hidden = !ok;
        if (ok) shown += 1;
      });
      count.textContent = shown + " of " + rows.length + " methods";
    }
    var params = new URLSearchParams(window.location.search);
    if (params.get("q")) input.value = params.get("q");
    input.addEventListener("input", function () {
      apply();
      var url = new URL(window.location.href);
      if (input.value) url.searchParams.set("q", input.value);
      else url.searchParams.delete("q");
      window.history.replaceState(null, "", url.toString());
    });
    selects.forEach(function (s) { s.addEventListener("change", apply); });
    apply();

    // Record whether every column is visible without sideways scrolling: data-fits is "yes" when no
    // header or first-row cell ends past the table's scroll box or the viewport, data-layout is "table"
    // or "cards" (phones). The site's browser test reads both; readers lose nothing if it never runs.
    function measure() {
      var box = table.closest(".md-typeset__scrollwrap") || container;
      var limit = Math.min(box.getBoundingClientRect().right, document.documentElement.clientWidth) + 1;
      var cells = Array.prototype.slice.call(table.querySelectorAll("thead th"));
      if (rows.length) cells = cells.concat(Array.prototype.slice.call(rows[0].cells));
      var right = 0;
      cells.forEach(function (cell) {
        var rect = cell.getBoundingClientRect();
        if (rect.width > 0) right = Math.max(right, rect.right);
      });
      container.dataset.fits = right <= limit ? "yes" : "no";
      container.dataset.tableRight = String(Math.round(right));
      container.dataset.viewRight = String(Math.round(limit - 1));
      container.dataset.layout = rows.length && getComputedStyle(rows[0].cells[0]).display === "block" ? "cards" : "table";
    }
    measure();
    window.addEventListener("resize", measure);
  }
  function init() {
    document.querySelectorAll(".specplug-catalogue").forEach(setup);
  }
  if (typeof document$ !== "undefined") {
    document$.subscribe(init);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
