// Citations in answers: a time code opens the case page's player at that time (the page
// stays where it is); a page citation opens the document at that page in a new tab.
(function () {
  "use strict";
  const panel = document.getElementById("player-panel");
  if (!panel) return;
  const player = document.getElementById("case-player");
  const name = panel.querySelector("[data-role=player-name]");

  function seek(source, to, label) {
    panel.hidden = false;
    name.textContent = label;
    const at = () => { player.currentTime = to; };
    if (player.dataset.source !== source) {
      player.dataset.source = source;
      player.src = source;
      player.addEventListener("loadedmetadata", at, { once: true });
      player.load();
    } else if (player.readyState >= 1) {
      at();
    } else {
      player.addEventListener("loadedmetadata", at, { once: true });
    }
    panel.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a.cite");
    if (!link) return;
    if (link.dataset.page) {
      event.preventDefault();
      window.open(link.href, "_blank", "noopener");
      return;
    }
    if (link.dataset.seek === undefined) return;
    event.preventDefault();
    const url = new URL(link.href, location.href);
    seek(url.pathname, Number(link.dataset.seek), link.textContent);
  });

  document.getElementById("player-close").addEventListener("click", () => {
    player.pause();
    panel.hidden = true;
  });
})();
