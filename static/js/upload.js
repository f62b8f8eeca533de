// Case page: media uploads and live media cards.
// Uploads use the chunk API (docs/upload-api.md): one session per file, chunks sent in order,
// one progress bar per file. After a dropped connection the server's confirmed offset (GET on
// the session) says where to go on; a session id kept in localStorage lets a page reload pick
// the same file up again. Cards refresh on live "media.status" messages (from case.js), with
// a slow poll for items still processing in case a message was lost.
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

  function request(method, url, body, headers, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("X-CSRFToken", zone.dataset.csrf);
      Object.entries(headers || {}).forEach(([k, v]) => xhr.setRequestHeader(k, v));
      if (onProgress) xhr.upload.addEventListener("progress", (e) => onProgress(e.loaded));
      xhr.addEventListener("load", () => {
        let data = {};
        try { data = JSON.parse(xhr.responseText || "{}"); } catch (e) { data = {}; }
        resolve({ status: xhr.status, data: data });
      });
      xhr.addEventListener("error", () => reject(new Error("network")));
      xhr.addEventListener("abort", () => reject(new Error("network")));
      xhr.send(body);
    });
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function digest(file) {
    if (file.size > HASH_LIMIT || !window.crypto || !crypto.subtle) return "";
    const hash = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
    return Array.from(new Uint8Array(hash)).map((b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function session(file, key) {
    const saved = localStorage.getItem(key);
    if (saved) {
      const found = await request("GET", saved).catch(() => null);
      if (found && found.status === 200 && found.data.status === "active") return found.data;
      localStorage.removeItem(key);
    }
    const body = JSON.stringify({ filename: file.name, size: file.size, sha256: await digest(file) });
    const made = await request("POST", zone.dataset.createUrl, body, { "Content-Type": "application/json" });
    if (made.status >= 400) throw new Error(made.data.error || "The upload was refused.");
    if (made.data.upload) localStorage.setItem(key, made.data.url);
    return made.data;
  }

  async function send(row, info) {
    const file = row.file;
    let offset = info.offset;
    let failures = 0;
    while (true) {
      const last = Math.min(offset + info.chunk_bytes, file.size) - 1;
      let reply = null;
      try {
        reply = await request("PUT", info.url, file.slice(offset, last + 1),
          { "Content-Type": "application/octet-stream", "Content-Range": `bytes ${offset}-${last}/${file.size}` },
          (loaded) => row.progress(offset + loaded));
      } catch (e) {
        failures += 1;
        if (failures > 60) throw new Error("The connection keeps dropping; try again later.");
        row.say("connection lost, resuming…", "retrying");
        await sleep(Math.min(30000, 500 * 2 ** Math.min(failures, 6)));
        const now = await request("GET", info.url).catch(() => null);
        if (now && now.status === 200) offset = now.data.offset;
        if (now && now.data.status === "complete") return now.data;
        continue;
      }
      failures = 0;
      if (reply.status === 409) { offset = reply.data.offset; continue; }  // the server says where
      if (reply.status >= 400) throw new Error(reply.data.error || "The upload was refused.");
      offset = reply.data.offset;
      row.progress(offset);
      if (reply.data.status === "complete") return reply.data;
    }
  }

  async function upload(row) {
    const file = row.file;
    if (file.size === 0) return row.say("Refused: the file is empty (0 bytes).", "error");
    if (file.size > Number(zone.dataset.maxBytes)) return row.say("Refused: the file is over the size limit.", "error");
    const key = "gemma-upload:" + zone.dataset.createUrl + ":" + [file.name, file.size, file.lastModified].join(":");
    try {
      row.say("starting");
      const info = await session(file, key);
      const done = info.upload && info.status !== "complete" ? await send(row, info) : info;
      localStorage.removeItem(key);
      row.progress(file.size);
      if (done.duplicate) row.say("Already here as “" + done.asset_filename + "”: no second copy was made.", "duplicate");
      else row.say("uploaded: " + done.detected, "done");
      refreshCard(done.asset_url);
    } catch (e) {
      if (!/network/.test(e.message)) localStorage.removeItem(key);
      row.say("Refused: " + e.message, "error");
    }
  }

  function pump() {
    while (active < PARALLEL && queue.length) {
      active += 1;
      upload(queue.shift()).finally(() => { active -= 1; pump(); });
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
