// The board, live: asks the server for the cards every refresh (no page reload) and counts the clocks down
// every quarter second between answers.  The server's clock is the truth: each answer carries its "now",
// and the countdown runs from there.  Cards arrive as server-rendered (escaped) HTML, so this script never
// builds markup from data.
(function () {
  "use strict";
  var board = document.getElementById("board");
  var status = document.getElementById("board-status");
  if (!board) { return; }
  var url = board.getAttribute("data-cards-url");
  var refresh = parseInt(board.getAttribute("data-refresh-ms"), 10) || 1000;
  var offset = 0;  // server clock minus browser clock, in ms
  var etag = null;
  var serverNow = null;  // from the X-Board-Now header: the cards may be a shared render a few seconds old

  function syncClock() {
    var cards = board.querySelector(".cards");
    var now = serverNow || (cards && parseInt(cards.getAttribute("data-now-ms"), 10));
    if (now) { offset = now - Date.now(); }
  }

  function fmt(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    if (h) { return h + "h" + (m < 10 ? "0" : "") + m + "m"; }
    if (m) { return m + "m" + (s < 10 ? "0" : "") + s + "s"; }
    return s + "s";
  }

  function tick() {
    var now = Date.now() + offset;
    var clocks = board.querySelectorAll(".clock[data-reached='no']");
    for (var i = 0; i < clocks.length; i++) {
      var c = clocks[i];
      if (c.getAttribute("data-verdict") === "stopped") { continue; }
      var left = (parseInt(c.getAttribute("data-deadline-ms"), 10) - now) / 1000;
      var budget = parseFloat(c.getAttribute("data-budget-s"));
      var verdict = left < 0 ? "breached" : (left <= budget * 0.2 ? "warning" : "running");
      c.querySelector(".left").textContent = left < 0 ? "over " + fmt(-left) : fmt(left) + " left";
      if (c.getAttribute("data-verdict") !== verdict) {
        c.setAttribute("data-verdict", verdict);
        c.className = "clock verdict-" + verdict;
      }
    }
  }

  function poll() {
    var headers = {"Accept": "text/html"};
    if (etag) { headers["If-None-Match"] = etag; }
    fetch(url, {credentials: "same-origin", cache: "no-store", headers: headers}).then(function (r) {
      if (r.status === 304) { status.textContent = "live"; return null; }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      etag = r.headers.get("ETag");
      serverNow = parseInt(r.headers.get("X-Board-Now"), 10) || null;
      return r.text();
    }).then(function (html) {
      if (html !== null) {
        board.innerHTML = html;  // server-rendered, autoescaped
        syncClock();
        tick();
        status.textContent = "live";
      }
    }).catch(function (e) {
      status.textContent = "cannot reach the bot (" + e.message + "); retrying";
    }).then(function () { setTimeout(poll, refresh); });
  }

  syncClock();
  tick();
  setInterval(tick, 250);
  setTimeout(poll, refresh);
})();
