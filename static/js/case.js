// Case page: live answers over the case's WebSocket.
// The server's token log is the truth; the socket is a fast path. Each answer card keeps the
// last sequence number it shows (data-seq); a gap, a reconnect or a new card asks the server
// for everything after it, so nothing is lost or shown twice. Cards group into threads
// (a question and its follow-ups); a finished card is replaced by the server's rendering.
(function () {
  "use strict";
  const live = document.getElementById("case-live");
  if (!live) return;
  const list = document.getElementById("analyses");
  const state = document.getElementById("live-state");
  const casePath = live.dataset.caseUrl;
  const FINISHED = ["succeeded", "failed", "cancelled"];
  let socket = null;
  let retryDelay = 500;
  let queueTimer = null;
  let reconnecting = false;  // the first open is the page's own load: it drew every card
  const QUIET_MS = 3000;
  const OPEN_MS = 5000;

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

  function threadFor(el) {
    const id = el.dataset.thread || el.dataset.analysis;
    let thread = document.getElementById("thread-" + id);
    if (!thread) {
      thread = document.createElement("div");
      thread.className = "thread";
      thread.id = "thread-" + id;
      list.prepend(thread);
    }
    return thread;
  }

  function insertCard(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const el = tpl.content.firstElementChild;
    if (!el || !el.dataset.analysis) return;
    const empty = document.getElementById("no-analyses");
    if (empty) empty.remove();
    const old = card(el.dataset.analysis);
    if (old) {
      // The newer rendering wins, unless the socket already carried the card further, or the
      // card already shows (or is fetching) its final rendering and this one is an older reply.
      if (running(el) && Number(old.dataset.seq || 0) > Number(el.dataset.seq || 0)) return;
      if (running(el) && FINISHED.includes(old.dataset.status) &&
          Number(el.dataset.attempt || 0) <= Number(old.dataset.attempt || 0)) return;
      old.replaceWith(el);
    } else {
      threadFor(el).append(el);
    }
    if (window.htmx) htmx.process(el);
    if (running(el)) resume(el);
    watchQueue();
  }

  function fetchCard(id) {
    fetch(casePath + "analyses/" + id + "/", { headers: { "HX-Request": "true" } })
      .then((r) => (r.ok ? r.text() : ""))
      .then((html) => html && insertCard(html));
  }

  function seconds(s) { return s < 60 ? s.toFixed(1) + " s" : Math.floor(s / 60) + " min " + Math.round(s % 60) + " s"; }

  function onTokens(msg) {
    const el = card(msg.analysis);
    if (!el) return fetchCard(msg.analysis);
    el.dataset.heard = String(Date.now());
    const shown = el.dataset.attempt;
    if (!sameAttempt(el, msg)) return;
    // A retry began while its status message was lost: ask for its status and text.
    if (el.dataset.attempt !== shown) return resume(el);
    // The saved answer is shown, or on its way: a late batch would only repeat it.
    if (FINISHED.includes(el.dataset.status)) return;
    const last = Number(el.dataset.seq || 0);
    if (msg.seq <= last) return;            // a duplicate from a resume
    if (msg.seq > last + 1) return resume(el);  // a gap: fetch what is missing first
    el.querySelector("[data-role=answer]").textContent += msg.text;
    el.dataset.seq = String(msg.seq);
    if (msg.elapsed !== undefined) {
      const line = el.querySelector("[data-role=live]");
      line.hidden = false;
      line.textContent = (msg.rate ? msg.rate.toFixed(1) + " tokens/s · " : "") +
        msg.tokens + " tokens · " + seconds(msg.elapsed);
    }
  }

  function onStatus(msg) {
    if (msg.batch) refreshBatch(msg.batch);
    const el = card(msg.analysis);
    if (!el) return fetchCard(msg.analysis);
    el.dataset.heard = String(Date.now());
    if (!sameAttempt(el, msg)) return;
    if (FINISHED.includes(msg.status)) {
      // The server's final rendering: saved answer as Markdown, token count, Reproduce.
      el.dataset.status = msg.status;
      fetchCard(msg.analysis);
      watchQueue();
      return;
    }
    el.dataset.status = msg.status;
    el.className = "analysis " + msg.status + (el.classList.contains("follow-up") ? " follow-up" : "");
    const badge = el.querySelector("[data-role=status]");
    badge.textContent = msg.label || msg.status.charAt(0).toUpperCase() + msg.status.slice(1);
    badge.className = "badge " + msg.status;
    if (msg.status === "running") el.querySelector("[data-role=live]").textContent = "Started…";
    watchQueue();
  }

  function refreshBatch(id) {
    const row = document.getElementById("batch-" + id);
    if (!row) return;
    fetch(row.dataset.batchUrl, { headers: { "HX-Request": "true" } })
      .then((r) => (r.ok ? r.text() : ""))
      .then((html) => {
        const tpl = document.createElement("template");
        tpl.innerHTML = html.trim();
        if (tpl.content.firstElementChild) row.replaceWith(tpl.content.firstElementChild);
      });
  }

  // Queued cards show their place and estimated start; the queue is shared by every case,
  // so it moves without a message here: ask the server while anything waits.
  function showPlaces(places) {
    list.querySelectorAll(".analysis[data-status=queued]").forEach((el) => {
      const place = places[el.dataset.analysis];
      const line = el.querySelector("[data-role=live]");
      if (!place) return;
      let text = "Queued: #" + place.position + " in line";
      if (place.running) text += ", after " + place.running + " running";
      if (place.starts_at) {
        const wait = Math.max(0, (Date.parse(place.starts_at) - Date.now()) / 1000);
        text += " · starts in ≈ " + seconds(wait);
      }
      line.hidden = false;
      line.textContent = text;
    });
  }

  function pollQueue() {
    queueTimer = null;
    if (!list.querySelector(".analysis[data-status=queued]")) return;
    fetch(casePath + "queue/").then((r) => (r.ok ? r.json() : { places: {} }))
      .then((data) => showPlaces(data.places))
      .finally(() => { if (!queueTimer) queueTimer = setTimeout(pollQueue, 3000); });
  }

  // Questions asked while the socket was away (another reviewer's, or one that ran and
  // ended before it came back) announce themselves only live: ask for the newest ones.
  function catchUp() {
    fetch(casePath + "queue/").then((r) => (r.ok ? r.json() : { newest: [] }))
      .then((data) => (data.newest || []).forEach((id) => { if (!card(id)) fetchCard(id); }));
  }

  function watchQueue() {
    if (queueTimer) clearTimeout(queueTimer);
    queueTimer = setTimeout(pollQueue, 200);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const opening = socket = new WebSocket(scheme + location.host + live.dataset.wsPath);
    // A handshake the server never answers (seen right after a broker restart) would leave
    // the page "Reconnecting…" for good: give up on it and try again (its close event
    // schedules the next try).
    const handshake = setTimeout(() => {
      if (opening.readyState === WebSocket.CONNECTING) opening.close();
    }, OPEN_MS);
    socket.addEventListener("open", () => {
      clearTimeout(handshake);
      retryDelay = 500;
      state.textContent = "";
      list.querySelectorAll(".analysis").forEach((el) => { if (running(el)) resume(el); });
      if (reconnecting) catchUp();
      reconnecting = true;
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
      // Capped at 2 s: a restarted web process or broker is back in about a second, and a
      // longer wait is what the reviewer would see. The jitter keeps the pages of a whole
      // team from reconnecting in the same instant.
      setTimeout(connect, retryDelay * (0.75 + Math.random() / 2));
      retryDelay = Math.min(retryDelay * 2, 2000);
    });
  }

  // After a successful ask the form is emptied for real. form.reset() would restore the
  // defaults of the last rendering, which after a refused ask are the refused question and
  // its ticked items.
  function clearForm(form) {
    form.querySelectorAll("textarea, input[type=text]").forEach((f) => { f.value = ""; f.defaultValue = ""; });
    form.querySelectorAll("input[type=checkbox]").forEach((f) => { f.checked = false; f.defaultChecked = false; });
    form.querySelectorAll("select").forEach((f) => {
      [...f.options].forEach((o, i) => { o.selected = i === 0; o.defaultSelected = i === 0; });
    });
    form.querySelectorAll(".error").forEach((e) => e.remove());
    const box = form.closest("details");
    if (box) box.open = false;
  }

  // Asks, follow-ups, cancel and retry post with htmx and swap nothing themselves: the reply
  // is a card (inserted or replaced here, deduplicated against the socket) or the errors.
  document.body.addEventListener("htmx:afterRequest", (event) => {
    const form = event.detail.elt;
    if (!form || !form.matches || !form.matches("form.asks, form.card-action")) return;
    const xhr = event.detail.xhr;
    if (xhr.status === 200) {
      insertCard(xhr.responseText);
      if (form.matches(".asks")) clearForm(form);
    } else if (xhr.status === 422 && form.id === "ask-form") {
      form.outerHTML = xhr.responseText;
      htmx.process(document.getElementById("ask-form"));
    } else if (xhr.status === 422) {
      const tpl = document.createElement("template");
      tpl.innerHTML = xhr.responseText;
      const errors = [...tpl.content.querySelectorAll(".error")].map((e) => e.textContent);
      form.querySelectorAll(".error").forEach((e) => e.remove());
      errors.forEach((text) => {
        const p = document.createElement("p");
        p.className = "error";
        p.textContent = text;
        form.append(p);
      });
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
  watchQueue();
})();
