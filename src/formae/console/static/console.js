// formae console: follows a running command through server-sent events; no framework, no reloads.
"use strict";
(function () {
  const command = document.getElementById("command");
  if (!command || command.dataset.final === "true" || !window.EventSource) return;
  const stateClass = (state) => "state s-" + state.toLowerCase();
  const setText = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = text; };
  const counts = (c) => Object.entries(c).map(([s, n]) => n + " " + s).join(", ") || "none";
  const events = new EventSource(command.dataset.events);

  events.addEventListener("progress", (event) => {
    const p = JSON.parse(event.data);
    const state = document.getElementById("state");
    state.textContent = p.state;
    state.className = stateClass(p.state);
    setText("counts", counts(p.counts));
    setText("message", p.message || "—");
    for (const box of document.querySelectorAll("svg.graph g.box")) {
      const shown = p.boxes[box.dataset.key];
      if (!shown) continue;
      box.setAttribute("class", "box " + shown[0]);
      box.querySelector("text.mark").textContent = shown[1];
      if (shown[2] !== null) box.querySelector("text.native").textContent = shown[2];
    }
    for (const row of document.querySelectorAll("#updates tr[data-update]")) {
      const u = p.updates[row.dataset.update];
      if (!u) continue;
      const cell = row.querySelector(".u-state span");
      cell.textContent = u[0];
      cell.className = stateClass(u[0]);
      row.querySelector(".u-attempts").textContent = u[1];
      row.querySelector(".u-native code").textContent = u[2];
      row.querySelector(".u-error").textContent = u[3];
    }
    if (p.final) finish("This command has ended.");
  });
  events.addEventListener("end", () => finish("This command has ended."));
  function finish(text) {
    events.close();
    command.dataset.final = "true";
    setText("live", text);
  }
})();
