// The only script: "select all" checkboxes on the audit page. Served from /static so
// the Content-Security-Policy can forbid inline script.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input.select-all").forEach(function (all) {
    all.addEventListener("change", function () {
      var group = all.getAttribute("data-group");
      document.querySelectorAll('input[name="occurrence"][data-group="' + group + '"]')
        .forEach(function (box) { box.checked = all.checked; });
    });
  });
});
