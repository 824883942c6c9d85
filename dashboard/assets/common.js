// Shared by the server-rendered pages: the CSRF token, the language switch (kept with the
// account), and the alert actions (acknowledge, assign to me, resolve — each with the note
// typed beside it). Pages stay usable to read without it; nothing here builds markup.
"use strict";

// The session's CSRF token (issue #6): set at sign-in in a cookie this script can read; every
// state-changing request echoes it in X-CSRF-Token.
function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)vigil_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function post(path, body) {
  const res = await fetch(path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify(body || {}),
  });
  if (res.status === 401) { location.href = "/login"; throw new Error("signed out"); }
  return res;
}

// What a page does after an alert changed: the ward view re-fetches its live part, other
// pages reload.
window.vigilRefresh = window.vigilRefresh || (() => location.reload());

document.addEventListener("DOMContentLoaded", () => {
  const lang = document.getElementById("lang");
  if (lang) {
    lang.addEventListener("click", async () => {
      const want = lang.dataset.lang;
      // Remembered in the browser too, for the login page and before the account answers.
      document.cookie = "vigil_lang=" + want + "; path=/; max-age=31536000; samesite=strict";
      await post("/api/v1/me/language", { lang: want }).catch(() => {});
      const url = new URL(location.href);
      url.searchParams.delete("lang");
      location.replace(url.toString());
    });
  }
  // One listener for every action button, also those that arrive with a live refresh.
  document.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("tr[data-alert]");
    const note = row.querySelector("input.note");
    const text = note && note.value.trim();
    button.disabled = true;
    const res = await post("/api/v1/alerts/" + row.dataset.alert + "/" + button.dataset.action,
      text ? { note: text } : {});
    if (!res.ok) button.disabled = false;
    window.vigilRefresh();
  });
});
