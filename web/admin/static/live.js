// Live refresh for Spillway's admin pages (vendored, no dependencies).
// A page whose <main> has data-live="N" is fetched again every N seconds
// and its <main> replaced with the new one, unless the operator is busy
// with it: a field has focus, a box is ticked, or the tab is hidden.
// Without JavaScript the pages work the same and are reloaded by hand.
(function () {
  "use strict";
  var main = document.querySelector("main[data-live]");
  if (!main || !window.fetch || !window.DOMParser) return;
  var every = Math.max(2, parseInt(main.getAttribute("data-live"), 10) || 5) * 1000;

  function busy() {
    if (document.hidden) return true;
    var a = document.activeElement;
    if (a && a !== document.body && main.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName)) return true;
    return main.querySelector("input[type=checkbox]:checked") !== null;
  }

  function tick() {
    if (busy()) return schedule();
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live": "1" } })
      .then(function (r) {
        // A redirect means the session ended: stop rather than show the sign-in form inside the page.
        if (!r.ok || r.redirected) throw new Error("stop");
        return r.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").querySelector("main[data-live]");
        if (next && !busy()) main.innerHTML = next.innerHTML;
        schedule();
      })
      .catch(function (e) {
        if (e && e.message !== "stop") schedule();
      });
  }

  function schedule() { window.setTimeout(tick, every); }
  schedule();
})();
