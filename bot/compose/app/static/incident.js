// The incident page: filter the timeline by source without a reload.
(function () {
  "use strict";
  var select = document.getElementById("source-filter");
  if (!select) { return; }
  select.addEventListener("change", function () {
    var rows = document.querySelectorAll("table.timeline tbody tr");
    for (var i = 0; i < rows.length; i++) {
      rows[i].hidden = !!select.value && rows[i].getAttribute("data-source") !== select.value;
    }
  });
})();
