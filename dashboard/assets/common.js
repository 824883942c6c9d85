// Shared by the server-rendered pages: the CSRF token, the language switch (kept with the
// account), and the alert and episode actions (acknowledge, assign to me, resolve — each with
// the note typed beside it). Pages stay usable to read without it; nothing here builds markup.
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
  // One listener for every action button, also those that arrive with a live refresh: an
  // alert's row, or an episode's card (issue #17: one action for all its signals).
  document.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const card = button.closest("[data-episode]");
    const row = card || button.closest("tr[data-alert]");
    const base = card ? "/api/v1/episodes/" + card.dataset.episode : "/api/v1/alerts/" + row.dataset.alert;
    const action = button.dataset.action;
    const note = row.querySelector("input.note");
    const text = note && note.value.trim();
    const body = text ? { note: text } : {};
    const share = row.querySelector("input.share[type=checkbox]");
    if (share && share.checked && action === "ack") body.share_with_family = true;
    // Resolving while a sign is still abnormal asks first, showing the current values.
    if (card && action === "resolve" && card.dataset.abnormal) {
      if (!confirm(card.dataset.confirm + "\n" + card.dataset.abnormal)) return;
      body.confirm = true;
    }
    button.disabled = true;
    let res = await post(base + "/" + action, body);
    if (res.status === 409 && card && action === "resolve" && !body.confirm) {
      // Abnormal since the card was drawn: the server names the values.
      const why = await res.json().catch(() => ({}));
      if (confirm(card.dataset.confirm + "\n" + (why.error || ""))) {
        body.confirm = true;
        res = await post(base + "/" + action, body);
      }
    }
    if (!res.ok) button.disabled = false;
    // The note was said: it does not go again with the next button.
    else if (note) note.value = "";
    window.vigilRefresh();
  });
});
