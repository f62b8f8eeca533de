// Case page: live answers over the case's WebSocket.
// The server's token log is the truth; the socket is a fast path. Each answer card keeps the
// last sequence number it shows (data-seq); a gap, a reconnect or a new card asks the server
// for everything after it, so nothing is lost or shown twice.
(function () {
  "use strict";
  const live = document.getElementById("case-live");
  if (!live) return;
  const list = document.getElementById("analyses");
  const state = document.getElementById("live-state");
  const casePath = live.dataset.caseUrl;
  let socket = null;
  let retryDelay = 500;
  const QUIET_MS = 3000;

  function card(id) { return document.getElementById("analysis-" + id); }
  function running(el) { return ["queued", "running"].includes(el.dataset.status); }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function resume(el) {
    el.dataset.asked = String(Date.now());
    send({
      type: "resume", analysis: el.dataset.analysis,
      attempt: Number(el.dataset.attempt || 0), after: Number(el.dataset.seq || 0),
    });
  }

  // A retry starts the answer over: a message from a newer attempt drops the old text; one
  // from an older attempt is late news and ignored. Returns whether the message is current.
  function sameAttempt(el, msg) {
    const shown = Number(el.dataset.attempt || 0);
    if (msg.attempt === undefined || msg.attempt === shown) return true;
    if (msg.attempt < shown) return false;
    el.dataset.attempt = String(msg.attempt);
    el.dataset.seq = "0";
    el.querySelector("[data-role=answer]").textContent = "";
    return true;
  }

  function insertCard(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const el = tpl.content.firstElementChild;
    if (!el || card(el.dataset.analysis)) return;  // already shown (form reply and socket race)
    const empty = document.getElementById("no-analyses");
    if (empty) empty.remove();
    list.prepend(el);
    if (running(el)) resume(el);
  }

  function fetchCard(id) {
    fetch(casePath + "analyses/" + id + "/", { headers: { "HX-Request": "true" } })
      .then((r) => (r.ok ? r.text() : ""))
      .then((html) => html && insertCard(html));
  }

  function onTokens(msg) {
    const el = card(msg.analysis);
    if (!el) return fetchCard(msg.analysis);
    el.dataset.heard = String(Date.now());
    const shown = el.dataset.attempt;
    if (!sameAttempt(el, msg)) return;
    // A retry began while its status message was lost: ask for its status and text.
    if (el.dataset.attempt !== shown) return resume(el);
    const last = Number(el.dataset.seq || 0);
    if (msg.seq <= last) return;            // a duplicate from a resume
    if (msg.seq > last + 1) return resume(el);  // a gap: fetch what is missing first
    el.querySelector("[data-role=answer]").textContent += msg.text;
    el.dataset.seq = String(msg.seq);
  }

  function onStatus(msg) {
    const el = card(msg.analysis);
    if (!el) return fetchCard(msg.analysis);
    el.dataset.heard = String(Date.now());
    if (!sameAttempt(el, msg)) return;
    const finished = ["succeeded", "failed", "cancelled"].includes(msg.status);
    if (finished && el.dataset.status !== msg.status) {
      // Replace the card with the server's final rendering (saved answer, token count).
      el.dataset.status = msg.status;
      fetch(casePath + "analyses/" + msg.analysis + "/", { headers: { "HX-Request": "true" } })
        .then((r) => (r.ok ? r.text() : ""))
        .then((html) => { if (html) { el.remove(); insertCard(html); } });
      return;
    }
    el.dataset.status = msg.status;
    el.className = "analysis " + msg.status;
    const badge = el.querySelector("[data-role=status]");
    badge.textContent = msg.label || msg.status.charAt(0).toUpperCase() + msg.status.slice(1);
    badge.className = "badge " + msg.status;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + live.dataset.wsPath);
    socket.addEventListener("open", () => {
      retryDelay = 500;
      state.textContent = "";
      list.querySelectorAll(".analysis").forEach((el) => { if (running(el)) resume(el); });
    });
    socket.addEventListener("message", (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "tokens") onTokens(msg);
      else if (msg.type === "status") onStatus(msg);
      // Media items are upload.js's business: hand the message over.
      else if (msg.type === "media.status") document.dispatchEvent(new CustomEvent("media:status", { detail: msg }));
    });
    socket.addEventListener("close", () => {
      state.textContent = "Reconnecting…";
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 5000);
    });
  }

  // The ask form posts with htmx and swaps nothing itself: the reply is either the new card
  // (inserted here, deduplicated against the socket) or the form with its errors.
  document.body.addEventListener("htmx:afterRequest", (event) => {
    const form = event.detail.elt;
    if (!form || form.id !== "ask-form") return;
    const xhr = event.detail.xhr;
    if (xhr.status === 200) {
      insertCard(xhr.responseText);
      form.reset();
      form.querySelectorAll(".error").forEach((e) => e.remove());
    } else if (xhr.status === 422) {
      form.outerHTML = xhr.responseText;
      htmx.process(document.getElementById("ask-form"));
    }
  });

  // A message lost on the way (the broker restarted, a worker's send failed) would leave a
  // card waiting: a running card that heard nothing for a while asks the log itself.
  setInterval(() => {
    const quiet = Date.now() - QUIET_MS;
    list.querySelectorAll(".analysis").forEach((el) => {
      const heard = Math.max(Number(el.dataset.heard || 0), Number(el.dataset.asked || 0));
      if (running(el) && heard < quiet) resume(el);
    });
  }, QUIET_MS);

  connect();
})();
