// Follows an open order's event stream and reloads the page when its status
// changes, so the server renders the new state. Without this script the
// page refreshes itself (a <noscript> refresh, slower under distress).
(function () {
  var el = document.getElementById("order");
  if (!el || el.dataset.terminal === "true") return;
  var shown = el.dataset.status;
  var every = (parseInt(el.dataset.refresh, 10) || 5) * 1000;
  if (!window.EventSource) {
    setTimeout(function () { location.reload(); }, every);
    return;
  }
  var es = new EventSource(el.dataset.stream);
  es.addEventListener("status", function (e) {
    var d = JSON.parse(e.data);
    if (d.status !== shown) {
      es.close();
      location.reload();
    }
  });
})();
