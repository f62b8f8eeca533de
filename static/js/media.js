// Media page: zoom for images, and the strip of frames seeks the video player.
(function () {
  "use strict";
  const area = document.querySelector("[data-zoom-area]");
  const image = document.querySelector("[data-zoom-image]");
  const tools = document.querySelector("[data-zoom-tools]");
  if (area && image && tools) {
    let scale = 0;  // 0: fit the box
    const apply = () => {
      area.classList.toggle("zoomed", scale > 0);
      image.style.width = scale > 0 ? Math.round(image.naturalWidth * scale) + "px" : "";
    };
    const fitScale = () => Math.min(1, area.clientWidth / Math.max(1, image.naturalWidth));
    const steps = { in: 1.25, out: 0.8 };
    tools.hidden = false;
    tools.addEventListener("click", (e) => {
      const how = e.target.dataset.zoom;
      if (!how) return;
      if (how === "fit") scale = 0;
      else if (how === "actual") scale = 1;
      else scale = Math.min(16, Math.max(0.05, (scale || fitScale()) * steps[how]));
      apply();
    });
    area.addEventListener("wheel", (e) => {
      if (!e.ctrlKey) return;  // plain scrolling pans; ctrl + wheel zooms
      e.preventDefault();
      scale = Math.min(16, Math.max(0.05, (scale || fitScale()) * (e.deltaY < 0 ? 1.1 : 0.9)));
      apply();
    }, { passive: false });
  }

  const player = document.querySelector("[data-player]");
  // "#t=12.5" (a search hit, a note, a time code in an answer) seeks the player there.
  const seekTo = (seconds) => {
    if (!player || !Number.isFinite(seconds)) return;
    const go = () => { player.currentTime = seconds; };
    if (player.readyState >= 1) go(); else player.addEventListener("loadedmetadata", go, { once: true });
  };
  const fromHash = () => {
    const match = /^#t=([0-9.]+)/.exec(location.hash);
    if (match) seekTo(Number(match[1]));
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
  const nowButton = document.querySelector("[data-note-now]");
  if (player && nowButton) {
    const clock = (t) => {
      const s = Math.floor(t);
      return Math.floor(s / 3600) + ":" + String(Math.floor(s / 60) % 60).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
    };
    nowButton.hidden = false;
    nowButton.addEventListener("click", () => {
      const start = document.getElementById("media-note-start");
      const end = document.getElementById("media-note-end");
      (start.value ? end : start).value = clock(player.currentTime);
    });
  }
  const times = document.getElementById("strip-times");
  if (player && times) {
    const at = JSON.parse(times.textContent);
    document.querySelectorAll("[data-seek-index]").forEach((button) => {
      button.addEventListener("click", () => {
        player.currentTime = at[Number(button.dataset.seekIndex)];
        player.play().catch(() => {});
      });
    });
  }
})();
