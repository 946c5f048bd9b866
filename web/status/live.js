// Follows the operation's event stream and updates the page in place.
// Without this script the page refreshes itself while the payment is open.
(function () {
  var el = document.getElementById("status");
  if (!el || !window.EventSource || el.dataset.terminal === "true") return;
  var words = {queued: "Queued, we will finish it shortly", processing: "Processing",
    succeeded: "Succeeded", declined: "Declined", failed: "Failed", cancelled: "Cancelled"};
  var es = new EventSource(el.dataset.stream);
  es.addEventListener("status", function (e) {
    var d = JSON.parse(e.data);
    el.textContent = words[d.status] || d.status;
    el.className = "status " + d.status;
    var up = document.getElementById("updated");
    if (up) up.textContent = new Date(d.at).toUTCString();
    if (d.status !== "queued" && d.status !== "processing") es.close();
  });
})();
