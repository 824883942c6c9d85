// Vigil patient page: the threshold-order form posts to the JSON API (with the session's CSRF
// token, `common.js`) and reloads; a tap on a chart reads out that moment's values (a phone
// has no hover; the values are the chart's own `<title>`s). Everything else is server-rendered.
"use strict";

document.addEventListener("click", (e) => {
  const col = e.target.closest && e.target.closest("svg.chart .hover rect");
  if (!col) return;
  const out = col.closest("figure").querySelector(".readout");
  const title = col.querySelector("title");
  if (out && title) out.textContent = title.textContent;
});

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("order");
  if (!form) return;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const err = form.querySelector(".error");
    const data = new FormData(form);
    const body = { rule: data.get("rule"), reason: data.get("reason") };
    if (data.get("disable")) body.enabled = false;
    else if (data.get("threshold") !== "") body.threshold = Number(data.get("threshold"));
    const res = await post("/api/v1/patients/" + encodeURIComponent(form.dataset.patient) + "/thresholds", body);
    if (res.ok) { location.reload(); return; }
    const j = await res.json().catch(() => ({}));
    err.textContent = j.error || String(res.status);
    err.hidden = false;
  });
});
