// Bosun console: live updates. The server pushes Server-Sent Events; each one makes the
// page's live regions (hx-trigger="bosun-change from:body") reload their fragment.
// No framework beyond htmx; nothing loaded from another host.
(function () {
  "use strict";
  var last = 0, timer = null, lastTick = 0;

  function refresh() {
    var wait = Math.max(0, 300 - (Date.now() - last));
    if (timer) return;
    timer = setTimeout(function () {
      timer = null;
      last = Date.now();
      document.body.dispatchEvent(new CustomEvent("bosun-change"));
    }, wait);
  }

  function listen(url, onEnd) {
    var source = new EventSource(url);
    source.onmessage = refresh;
    ["change", "end"].forEach(function (kind) {
      source.addEventListener(kind, function () {
        refresh();
        if (kind === "end") { source.close(); if (onEnd) onEnd(); }
      });
    });
    source.addEventListener("tick", function () {
      // Nothing changed here; still reload now and then for changes made elsewhere.
      if (Date.now() - lastTick > 10000) { lastTick = Date.now(); refresh(); }
    });
    // Every journal event arrives as its own kind (run_started, tool_finished...).
    var kinds = ["run_started", "run_resumed", "model_responded", "model_failed", "tool_proposed",
      "policy_decided", "approval_requested", "approval_resolved", "tool_started",
      "tool_finished", "tool_failed", "tool_shadowed", "notified", "run_waiting",
      "limit_reached", "run_needs_attention", "run_finished", "tool_compensated",
      "compensation_missing", "feedback_recorded"];
    kinds.forEach(function (kind) { source.addEventListener(kind, refresh); });
    return source;
  }

  function start() {
    var run = document.querySelector("[data-run-stream]");
    if (run) {
      listen(run.getAttribute("data-run-stream"), function () {
        // The run finished: keep hearing about approvals and controls of the tenant.
        var url = document.body.getAttribute("data-stream");
        if (url) listen(url);
      });
    } else if (document.body.getAttribute("data-stream")) {
      listen(document.body.getAttribute("data-stream"));
    }
  }

  // No inline handlers (the Content-Security-Policy allows no inline script): forms ask
  // before they submit (data-confirm), selects submit their form when changed
  // (data-autosubmit).
  document.addEventListener("submit", function (e) {
    var question = e.target.getAttribute && e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) e.preventDefault();
  });
  document.addEventListener("change", function (e) {
    if (e.target.hasAttribute && e.target.hasAttribute("data-autosubmit") && e.target.form) {
      e.target.form.submit();
    }
  });

  // Never reload a region while someone is typing in it or has edited a field there.
  document.addEventListener("input", function (e) {
    if (e.target.form) e.target.form.setAttribute("data-dirty", "1");
  });
  document.addEventListener("htmx:confirm", function (e) {
    var region = e.detail.elt;
    if (!region.classList || !region.classList.contains("live")) return;
    var active = document.activeElement;
    if ((active && active !== document.body && region.contains(active) &&
         /INPUT|TEXTAREA|SELECT/.test(active.tagName)) || region.querySelector("[data-dirty]")) {
      e.preventDefault();
    }
  });
  // Keep expanded details (raw events, edit forms) open across reloads.
  document.addEventListener("htmx:beforeSwap", function (e) {
    var open = [];
    e.detail.target.querySelectorAll("details[open][id]").forEach(function (d) { open.push(d.id); });
    e.detail.target._bosunOpen = open;
  });
  document.addEventListener("htmx:afterSwap", function (e) {
    (e.detail.target._bosunOpen || []).forEach(function (id) {
      var d = document.getElementById(id);
      if (d) d.open = true;
    });
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
