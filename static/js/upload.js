// Case page: media uploads and live media cards.
// Uploads speak tus 1.0 through the vendored tus-js-client (static/vendor/tus-js-client):
// one upload per file, chunks of the server's size, one progress bar per file. After a
// dropped connection the client asks the server's confirmed offset (HEAD) and goes on; the
// upload URL kept in localStorage lets a page reload pick the same file up again. Once sent,
// the session's JSON says what the file became. Cards refresh on live "media.status"
// messages (from case.js), with a slow poll for items still being checked in case a message
// was lost.
(function () {
  "use strict";
  const list = document.getElementById("media-list");
  if (!list) return;
  const HASH_LIMIT = 64 * 1024 * 1024;  // hash small files first: "already here" before sending
  const PARALLEL = 2;

  function place(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const el = tpl.content.firstElementChild;
    if (!el || !el.id) return;
    const old = document.getElementById(el.id);
    if (el.dataset.status === "deleted") { if (old) old.remove(); return; }
    if (old) { old.replaceWith(el); return; }
    const empty = document.getElementById("no-media");
    if (empty) empty.remove();
    list.prepend(el);
  }

  function refreshCard(url) {
    fetch(url, { headers: { "HX-Request": "true" } })
      .then((r) => (r.ok ? r.text() : ""))
      .then((html) => html && place(html));
  }

  document.addEventListener("media:status", (event) => {
    refreshCard(list.dataset.mediaBase + event.detail.asset + "/");
  });
  setInterval(() => {
    list.querySelectorAll('.media-item[data-status="checking"]').forEach((el) => refreshCard(el.dataset.cardUrl));
  }, 15000);

  const zone = document.getElementById("upload-zone");
  if (!zone) return;
  const input = document.getElementById("upload-input");
  const rows = document.getElementById("upload-list");
  const queue = [];
  let active = 0;

  class Row {
    constructor(file) {
      this.file = file;
      this.el = document.createElement("li");
      this.name = document.createElement("span");
      this.name.className = "name";
      this.name.textContent = file.name;
      this.bar = document.createElement("progress");
      this.bar.max = Math.max(file.size, 1);
      this.bar.value = 0;
      this.note = document.createElement("span");
      this.note.className = "meta";
      this.note.textContent = "waiting";
      this.el.append(this.name, this.bar, this.note);
      rows.append(this.el);
    }
    progress(bytes) {
      this.bar.value = bytes;
      this.note.textContent = Math.floor((100 * bytes) / Math.max(this.file.size, 1)) + " %";
    }
    say(text, kind) { this.note.textContent = text; this.el.className = kind || ""; }
  }

  async function digest(file) {
    if (file.size > HASH_LIMIT || !window.crypto || !crypto.subtle) return "";
    const hash = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    return Array.from(new Uint8Array(hash)).map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  function refusal(error) {
    const response = error && error.originalResponse;
    if (!response) return /network|connection/i.test(String(error)) ? "the connection keeps dropping; try again later." : String(error.message || error);
    try { return JSON.parse(response.getBody() || "{}").error || "the upload was refused."; } catch (e) { return "the upload was refused."; }
  }

  function send(row, sha256) {
    const file = row.file;
    return new Promise((resolve, reject) => {
      const upload = new tus.Upload(file, {
        endpoint: zone.dataset.createUrl,
        chunkSize: Number(zone.dataset.chunkBytes),
        retryDelays: [0, 1000, 3000, 5000, 10000, 30000, 60000],
        metadata: { filename: file.name, sha256: sha256 },
        headers: { "X-CSRFToken": zone.dataset.csrf },
        removeFingerprintOnSuccess: true,
        onProgress: (sent) => row.progress(sent),
        onShouldRetry: (err) => {
          const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
          row.say("connection lost, resuming…", "retrying");
          return status === 0 || status === 409 || status === 423 || status >= 500 || status === 460;
        },
        onError: (err) => reject(new Error(refusal(err))),
        onSuccess: () => resolve(upload.url),
      });
      upload.findPreviousUploads().then((previous) => {
        if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
        upload.start();
      });
    });
  }

  async function upload(row) {
    const file = row.file;
    if (file.size === 0) return row.say("Refused: the file is empty (0 bytes).", "error");
    if (file.size > Number(zone.dataset.maxBytes)) return row.say("Refused: the file is over the size limit.", "error");
    try {
      row.say("starting");
      const url = await send(row, await digest(file));
      const reply = await fetch(url, { headers: { Accept: "application/json" } });
      const done = await reply.json();
      if (done.status === "rejected") throw new Error(done.error);
      row.progress(file.size);
      if (done.duplicate) row.say("Already here as “" + done.asset_filename + "”: no second copy was made.", "duplicate");
      else row.say("uploaded: " + done.detected, "done");
      refreshCard(done.asset_url);
      finished.push(row);
    } catch (e) {
      row.say("Refused: " + e.message, "error");
    }
  }

  // Rows of files that made it leave the drop zone a few seconds after the whole batch is
  // through (their cards are in the list by then); refused ones stay to be read.
  const LINGER_MS = 6000;
  const finished = [];
  function clearFinished() {
    if (active || queue.length) return;
    const leaving = finished.splice(0);
    setTimeout(() => leaving.forEach((row) => row.el.remove()), LINGER_MS);
  }

  function pump() {
    while (active < PARALLEL && queue.length) {
      active += 1;
      upload(queue.shift()).finally(() => { active -= 1; pump(); clearFinished(); });
    }
  }

  function add(files) {
    Array.from(files).forEach((f) => queue.push(new Row(f)));
    pump();
  }

  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); add(e.dataTransfer.files); });
  input.addEventListener("change", () => { add(input.files); input.value = ""; });
})();
