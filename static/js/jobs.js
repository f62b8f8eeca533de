// Jobs page: the table is re-read from the server every few seconds (places move as the
// queue drains); a page left open in a background tab stops asking.
(function () {
  "use strict";
  const table = document.getElementById("jobs");
  if (!table) return;
  const every = Number(table.dataset.refresh || 5) * 1000;
  function refresh() {
    if (document.hidden) return;
    fetch(location.href, { headers: { "HX-Request": "true" } })
      .then((r) => (r.ok ? r.text() : ""))
      .then((html) => {
        const doc = new DOMParser().parseFromString(html, "text/html");
        const fresh = doc.querySelector("#jobs tbody");
        if (fresh) table.querySelector("tbody").replaceWith(fresh);
      });
  }
  setInterval(refresh, every);
})();
