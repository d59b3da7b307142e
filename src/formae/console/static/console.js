// formae console: follows a running command through server-sent events; no framework, no reloads.
"use strict";
(function () {
  const command = document.getElementById("command");
  if (!command || command.dataset.final === "true" || !window.EventSource) return;
  const stateClass = (state) => "state s-" + state.toLowerCase();
  const setText = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = text; };
  const counts = (c) => Object.entries(c).map(([s, n]) => n + " " + s).join(", ") || "none";
  const events = new EventSource(command.dataset.events);
  let reshaping = null;

  // A queued command gets its updates only once planned: fetch the page's new content in place.
  function reshape() {
    reshaping = reshaping || fetch(location.href, { headers: { accept: "text/html" } })
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => {
        const fresh = html && new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (fresh) document.getElementById("main").replaceChildren(...fresh.childNodes);
      })
      .finally(() => { reshaping = null; });
    return reshaping;
  }

  function apply(p) {
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
    if (p.final) finish();
  }

  events.addEventListener("progress", (event) => {
    const p = JSON.parse(event.data);
    const rows = document.querySelectorAll("#updates tr[data-update]").length;
    if (rows < Object.keys(p.updates).length) reshape().then(() => apply(p));
    else apply(p);
  });
  events.addEventListener("end", () => finish());
  function finish() {
    events.close();
    const current = document.getElementById("command");
    if (current) current.dataset.final = "true";
    setText("live", "This command has ended.");
  }
})();
