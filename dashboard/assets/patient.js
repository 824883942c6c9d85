// Vigil patient page: the threshold-order form posts to the JSON API (with the session's CSRF
// token) and reloads. Everything else on the page is server-rendered.
"use strict";

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)vigil_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

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
    const res = await fetch("/api/v1/patients/" + encodeURIComponent(form.dataset.patient) + "/thresholds", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body),
    });
    if (res.ok) { location.reload(); return; }
    const j = await res.json().catch(() => ({}));
    err.textContent = j.error || String(res.status);
    err.hidden = false;
  });
});
