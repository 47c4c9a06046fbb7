// gristmill dashboard: live updates by polling small JSON endpoints (with ETags, so an
// unchanged answer is a bodiless 304). Every text from the server is set with textContent;
// the only HTML taken from the server is the runs table's rows, which it rendered escaped.
"use strict";
(function () {
  var RUNS_EVERY = 2000;
  var RUN_EVERY = 1500;
  var etags = {};

  function getJSON(url) {
    var headers = { "Accept": "application/json" };
    if (etags[url]) headers["If-None-Match"] = etags[url];
    return fetch(url, { headers: headers, credentials: "same-origin", cache: "no-cache" })
      .then(function (response) {
        if (response.status === 304) return null;
        if (response.status === 401) { window.location.reload(); return null; }
        if (!response.ok) throw new Error(url + ": HTTP " + response.status);
        var tag = response.headers.get("ETag");
        if (tag) etags[url] = tag;
        return response.json();
      });
  }

  function every(ms, task) {
    var stopped = false;
    function tick() {
      if (stopped) return;
      var work = document.hidden ? Promise.resolve(true) : task();
      Promise.resolve(work).catch(function (err) { console.warn(err); return true; })
        .then(function (again) { if (again === false) { stopped = true; return; } setTimeout(tick, ms); });
    }
    setTimeout(tick, ms);
  }

  function statusBadge(status) {
    var badge = document.createElement("span");
    badge.className = "status status-" + status;
    badge.textContent = status;
    return badge;
  }

  function setStatus(holder, status) {
    if (!holder) return;
    holder.replaceChildren(statusBadge(status));
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined) return "-";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(1) + " s";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + " min " + Math.floor(seconds % 60) + " s";
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  // -- the runs list: new runs appear, statuses and durations change -----------------------
  function followRuns(table) {
    var url = table.getAttribute("data-live");
    var body = document.getElementById("run-rows");
    var total = document.getElementById("run-total");
    every(RUNS_EVERY, function () {
      return getJSON(url).then(function (data) {
        if (!data) return true;
        body.innerHTML = data.rows_html;  // rendered (and escaped) by the server's template
        if (total) total.textContent = String(data.total);
        return true;
      });
    });
  }

  // -- a run: the DAG's nodes, the run's status, the open step's logs -----------------------
  function setNodeStatus(node, step) {
    var classes = Array.prototype.filter.call(node.classList, function (c) { return c.indexOf("status-") !== 0; });
    classes.push("status-" + step.status);
    node.setAttribute("class", classes.join(" "));
    var detail = node.querySelector(".detail");
    if (detail) detail.textContent = step.detail;
  }

  function followLogs(panel) {
    var url = panel.getAttribute("data-logs");
    var pre = document.getElementById("logs");
    var note = document.getElementById("logs-note");
    return getJSON(url).then(function (data) {
      if (!data) return;
      var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.textContent = data.text;
      if (atBottom) pre.scrollTop = pre.scrollHeight;
      if (note) { note.textContent = data.note || ""; note.hidden = !data.note; }
    });
  }

  function followRun(holder) {
    var url = holder.getAttribute("data-live");
    var panel = document.getElementById("step-panel");
    var wasFinished = holder.getAttribute("data-finished") === "true";
    if (wasFinished) return;
    var lastStepStatus = null;
    every(RUN_EVERY, function () {
      return getJSON(url).then(function (state) {
        if (!state) return true;
        setStatus(document.getElementById("run-status"), state.status);
        var duration = document.getElementById("run-duration");
        if (duration) duration.textContent = formatDuration(state.duration);
        var error = document.getElementById("run-error");
        if (error) { error.textContent = state.error || ""; error.hidden = !state.error; }
        Object.keys(state.steps).forEach(function (name) {
          var node = document.querySelector('#dag g[data-node="' + CSS.escape(name) + '"]');
          if (node) setNodeStatus(node, state.steps[name]);
        });
        if (panel) {
          var step = state.steps[panel.getAttribute("data-step")];
          if (step) {
            setStatus(document.getElementById("step-status"), step.status);
            var stepDuration = document.getElementById("step-duration");
            if (stepDuration) stepDuration.textContent = formatDuration(step.duration);
            if (step.status !== lastStepStatus || step.status === "running") followLogs(panel);
            lastStepStatus = step.status;
          }
        }
        if (state.finished) {
          // The outputs, metadata and metrics of the finished run: read the page once more.
          window.location.reload();
          return false;
        }
        return true;
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var runs = document.querySelector("table[data-live]");
    if (runs) followRuns(runs);
    var run = document.getElementById("run");
    if (run) followRun(run);
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  });
})();
