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
