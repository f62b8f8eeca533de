// Times in the reader's own time zone: the server writes UTC (readable without script) in
// <time datetime="..."> elements; this rewrites their text in the browser's zone and keeps
// UTC in the tooltip.
(function () {
  "use strict";
  const withSeconds = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", timeZoneName: "short",
  });
  const plain = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short",
  });
  function localize(root) {
    root.querySelectorAll("time[datetime]:not([data-local])").forEach((el) => {
      const when = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(when.getTime()) || !el.getAttribute("datetime").includes("T")) return;
      el.title = el.textContent.trim() + (el.textContent.includes("UTC") ? "" : " UTC");
      el.textContent = (/:\d\d:\d\d/.test(el.textContent) ? withSeconds : plain).format(when);
      el.dataset.local = "1";
    });
  }
  document.addEventListener("DOMContentLoaded", () => localize(document));
  // Cards and rows that arrive later (htmx swaps, live answers) get the same treatment.
  document.addEventListener("htmx:afterSettle", (event) => localize(event.target));
  new MutationObserver(() => localize(document)).observe(document.documentElement, { childList: true, subtree: true });
})();
