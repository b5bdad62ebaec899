/* lifecycle ui: live updates of a run page (the only script; the pages work without it).
   Server-sent events from /runs/ID/events: log lines are inserted as text (textContent),
   never as HTML; when the run ends the page reloads to show it frozen. */
"use strict";
(function () {
  var root = document.querySelector("[data-live]");
  if (!root || !window.EventSource) { return; }
  var source = new EventSource(root.getAttribute("data-live"));
  function logOf(task) {
    var key = task === null ? "" : task;
    var blocks = document.querySelectorAll("pre.log");
    for (var i = 0; i < blocks.length; i++) {
      if (blocks[i].getAttribute("data-task") === key) { return blocks[i]; }
    }
    return null;
  }
  function setBadge(id, state, outcome) {
    var badges = document.querySelectorAll("[data-state-of]");
    for (var i = 0; i < badges.length; i++) {
      if (badges[i].getAttribute("data-state-of") === id) {
        badges[i].textContent = state;
        badges[i].className = "badge " + (outcome || "active");
      }
    }
  }
  source.addEventListener("log", function (event) {
    var line = JSON.parse(event.data);
    var pre = logOf(line.task);
    if (!pre) { return; }
    var span = document.createElement("span");
    span.className = "line";
    var level = String(line.level).replace(/[^a-z]/gi, "");
    if (level) { span.classList.add(level); }
    span.textContent = line.text + "\n";
    var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.appendChild(span);
    if (atEnd) { pre.scrollTop = pre.scrollHeight; }
  });
  source.addEventListener("state", function (event) {
    var view = JSON.parse(event.data);
    setBadge("run", view.state, view.outcome);
    Object.keys(view.tasks).forEach(function (name) {
      setBadge("task:" + name, view.tasks[name].state, view.tasks[name].outcome);
    });
  });
  source.addEventListener("end", function () {
    source.close();
    window.location.reload();
  });
})();
