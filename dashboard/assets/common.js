// Shared by the signed-in pages: the CSRF token, the language switch (kept with the account),
// the alert and episode actions (acknowledge, assign to me, resolve — each with the note typed
// beside it), the one live stream a page keeps open, the red-alert banner (issue #21: an unseen
// red alert stays until someone acknowledges it or it is dismissed on this screen; the tab
// title counts them, the favicon turns red, a tone sounds — on by default, kept with the
// account) and the live parts of the inbox and the patient page. Markup always comes from the
// server (escaped there); this script only swaps it in and builds no HTML from data.
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

// A page opened with ?lang= keeps that language in everything it fetches (issue #21: live
// refreshes came back in the account's language).
function withLang(url) {
  const lang = new URLSearchParams(location.search).get("lang");
  if (!lang) return url;
  const u = new URL(url, location.href);
  u.searchParams.set("lang", lang);
  return u.pathname + u.search + u.hash;
}

// Notes being typed survive a swap of server markup, keyed by the episode card or alert row
// they sit in; so does the focus.
function holderKey(n) {
  const h = n.closest("[data-episode], tr[data-alert]");
  if (!h) return null;
  return h.dataset.episode ? '[data-episode="' + CSS.escape(h.dataset.episode) + '"]'
    : 'tr[data-alert="' + CSS.escape(h.dataset.alert) + '"]';
}
function keepingNotes(root, swap) {
  const notes = {};
  root.querySelectorAll("input.note").forEach((n) => {
    const k = holderKey(n);
    if (n.value && k) notes[k] = n.value;
  });
  const active = document.activeElement;
  const focusKey = active && active.classList && active.classList.contains("note") ? holderKey(active) : null;
  swap();
  for (const [k, v] of Object.entries(notes)) {
    const n = root.querySelector(k + " input.note");
    if (n) n.value = v;
  }
  if (focusKey) {
    const n = root.querySelector(focusKey + " input.note");
    if (n) n.focus();
  }
}
window.vigilKeepingNotes = keepingNotes;

// One live stream per page (/api/v1/stream, SSE); pages add their listeners with vigilOn.
const listeners = { open: [], error: [], reading: [], alert: [], resync: [] };
window.vigilOn = (name, fn) => listeners[name].push(fn);
function connect() {
  const es = new EventSource("/api/v1/stream");
  es.onopen = () => listeners.open.forEach((f) => f());
  es.onerror = () => listeners.error.forEach((f) => f());
  for (const name of ["reading", "alert", "resync"]) {
    es.addEventListener(name, (e) => listeners[name].forEach((f) => f(e)));
  }
}

// --- The red-alert banner -------------------------------------------------------------------

const store = (kind, key) => ({
  get() { try { return new Set(JSON.parse(kind.getItem(key) || "[]")); } catch (_) { return new Set(); } },
  add(id) { const s = this.get(); s.add(id); kind.setItem(key, JSON.stringify([...s].slice(-500))); },
});
// Dismissed on this screen (this browser); heard in this tab (no second tone after a page change).
const dismissed = store(localStorage, "vigil.dismissed");
const heard = store(sessionStorage, "vigil.heard");
const baseTitle = document.title;
window.vigilTones = [];

let audio = null;
function tone() {
  try {
    audio = audio || new AudioContext();
    window.vigilTones.push(audio.state);
    // Two short high tones (IEC 60601-1-8 uses pulse bursts for high priority).
    for (const at of [0, 0.25]) {
      const o = audio.createOscillator();
      o.frequency.value = 880;
      o.connect(audio.destination);
      o.start(audio.currentTime + at);
      o.stop(audio.currentTime + at + 0.15);
    }
    return audio.state === "running";
  } catch (_) {
    return false; // no audio: the banner, title and favicon stay
  }
}
// Browsers allow sound only after the person touched the page: resume then.
["pointerdown", "keydown"].forEach((ev) => document.addEventListener(ev, () => {
  if (audio && audio.state === "suspended") audio.resume();
  else if (!audio && document.body.dataset.sound === "on") { try { audio = new AudioContext(); } catch (_) { /* none */ } }
}, { once: false, passive: true }));

const soundOn = () => document.body.dataset.sound === "on";
let redInflight = false, redAgain = false, repeat = null;
async function refreshRed() {
  const box = document.getElementById("new-red");
  if (!box) return;
  if (redInflight) { redAgain = true; return; }
  redInflight = true;
  try {
    const res = await fetch(withLang("/red-alerts"), { credentials: "same-origin" });
    if (res.status === 401) { location.href = "/login"; return; }
    if (!res.ok) return;
    box.innerHTML = await res.text(); // server-rendered, every value escaped by the template
    const gone = dismissed.get();
    let shown = 0, fresh = false;
    // One line per patient, naming its alerts' ids: gone once all were dismissed here; the
    // title counts the alerts not dismissed.
    box.querySelectorAll("li[data-alert]").forEach((li) => {
      const unseen = li.dataset.alert.split(" ").filter((id) => !gone.has(id));
      if (unseen.length === 0) { li.remove(); return; }
      shown += unseen.length;
      for (const id of unseen) if (!heard.get().has(id)) { heard.add(id); fresh = true; }
    });
    box.hidden = shown === 0;
    document.title = shown ? "(" + shown + ") " + baseTitle : baseTitle;
    const icon = document.getElementById("favicon");
    if (icon) {
      icon.dataset.plain = icon.dataset.plain || icon.getAttribute("href");
      icon.setAttribute("href", shown ? icon.dataset.red : icon.dataset.plain);
    }
    document.body.classList.toggle("unseen-red", shown > 0);
    if (fresh && soundOn() && !tone()) {
      const note = document.createElement("li");
      note.className = "blocked";
      note.textContent = box.dataset.blocked;
      box.appendChild(note);
    }
    // A red alert nobody has seen sounds again every 30 s, as a central station's does.
    clearInterval(repeat);
    if (shown) repeat = setInterval(() => { if (soundOn()) tone(); }, 30000);
  } finally {
    redInflight = false;
    if (redAgain) { redAgain = false; refreshRed(); }
  }
}
window.vigilRefreshRed = refreshRed;

// --- Live parts of the inbox and the patient page -------------------------------------------

let liveTimer = null, liveInflight = false, lastLive = 0;
async function refreshParts() {
  liveTimer = null;
  if (liveInflight) return;
  liveInflight = true;
  lastLive = Date.now();
  try {
    const res = await fetch(withLang(location.pathname + location.search), { credentials: "same-origin" });
    if (!res.ok) return;
    const fresh = new DOMParser().parseFromString(await res.text(), "text/html");
    keepingNotes(document, () => {
      document.querySelectorAll("[data-live][id]").forEach((part) => {
        const next = fresh.getElementById(part.id);
        if (next) part.innerHTML = next.innerHTML; // the server's escaped markup
      });
    });
  } finally {
    liveInflight = false;
  }
}
// Alerts at once; readings at most every 5 s (charts and latest values): a steady stream of
// readings must not keep postponing the refresh.
function partsSoon(ms) {
  if (ms === 0) {
    clearTimeout(liveTimer);
    liveTimer = setTimeout(refreshParts, 250);
  } else if (liveTimer === null) {
    liveTimer = setTimeout(refreshParts, Math.max(1000, 5000 - (Date.now() - lastLive)));
  }
}

// What a page does after an alert changed: the ward view re-fetches its live part (app.js),
// pages with live parts fetch theirs, others reload.
window.vigilRefresh = window.vigilRefresh || (() => {
  if (document.querySelector("[data-live]")) return refreshParts();
  location.reload();
});

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
  const sound = document.getElementById("sound");
  if (sound) {
    sound.addEventListener("click", async () => {
      const on = !soundOn();
      document.body.dataset.sound = on ? "on" : "off";
      sound.textContent = on ? sound.dataset.on : sound.dataset.off;
      sound.setAttribute("aria-pressed", String(on));
      if (on) tone();
      await post("/api/v1/me/sound", { on }).catch(() => {});
    });
  }
  const box = document.getElementById("new-red");
  if (box) {
    box.addEventListener("click", (e) => {
      const b = e.target.closest("button[data-dismiss]");
      if (!b) return;
      b.dataset.dismiss.split(" ").forEach((id) => dismissed.add(id));
      refreshRed();
    });
    window.vigilOn("alert", () => refreshRed());
    window.vigilOn("resync", () => refreshRed());
    window.vigilOn("open", () => refreshRed());
    if (document.querySelector("[data-live]") && !document.body.classList.contains("ward")) {
      window.vigilOn("alert", () => partsSoon(0));
      window.vigilOn("resync", () => partsSoon(0));
      const patient = document.body.dataset.patient;
      window.vigilOn("reading", (e) => {
        if (!patient || (e.data && e.data.includes('"' + patient + '"'))) partsSoon(5000);
      });
    }
    connect();
    refreshRed();
    // Ages ("5 min ago") change without events.
    setInterval(refreshRed, 60000);
  }
  // A page opened with ?lang= keeps it when the nurse follows a link within the dashboard.
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[href^='/']");
    if (a && !a.getAttribute("href").startsWith("/static/")) {
      const u = new URL(withLang(a.getAttribute("href")), location.href);
      a.setAttribute("href", u.pathname + u.search + u.hash);
    }
  }, true);
  // One listener for every action button, also those that arrive with a live refresh: an
  // alert's row, or an episode's card (issue #17: one action for all its signals).
  document.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const card = button.closest("[data-episode]");
    const row = card || button.closest("tr[data-alert]");
    const base = card ? "/api/v1/episodes/" + card.dataset.episode : "/api/v1/alerts/" + row.dataset.alert;
    const key = holderKey(button);
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
    else if (text) {
      // The note was said: it does not go again with the next button (issue #21). A live
      // refresh may have replaced the card while the request ran, carrying the note over:
      // clear it wherever the card is now.
      if (note) note.value = "";
      const now = key && document.querySelector(key + " input.note");
      if (now && now.value.trim() === text) now.value = "";
    }
    await window.vigilRefresh();
    refreshRed();
  });
});
