// Vigil ward view: the page is server-rendered; this keeps it live. On every change the
// stream (/api/v1/stream, SSE) reports, it fetches the page's changing part again (/ward, the
// same escaped server markup) and swaps it in — no reload, no client-side templating. It also
// announces a new red alert (banner, optional tone) and applies filters as they are typed.
"use strict";

const $ = (id) => document.getElementById(id);

function query() {
  const params = new URLSearchParams(new FormData($("filters")));
  for (const [k, v] of [...params]) if (!v) params.delete(k);
  return params.toString();
}

let inflight = null, again = false;
async function refresh() {
  if (inflight) { again = true; return inflight; }
  inflight = (async () => {
    try {
      const res = await fetch("/ward?" + query(), { credentials: "same-origin" });
      if (res.status === 401) { location.href = "/login"; return; }
      if (!res.ok) return;
      const html = await res.text();
      const ward = $("ward");
      // Notes being typed survive the swap.
      // Keyed by the episode card or alert row they sit in.
      const holder = (n) => n.closest("[data-episode], tr[data-alert]");
      const key = (h) => h.dataset.episode ? '[data-episode="' + CSS.escape(h.dataset.episode) + '"]'
        : 'tr[data-alert="' + CSS.escape(h.dataset.alert) + '"]';
      const notes = {};
      ward.querySelectorAll("input.note").forEach((n) => {
        if (n.value && holder(n)) notes[key(holder(n))] = n.value;
      });
      const active = document.activeElement;
      const focused = active && active.classList && active.classList.contains("note") && holder(active);
      const focusKey = focused ? key(focused) : null;
      ward.innerHTML = html; // server-rendered, every value escaped by the template
      // The server shares one render a second for new readings: when this one misses some,
      // it says when to ask again.
      const later = Number(res.headers.get("X-Vigil-Refresh-In"));
      if (later > 0) setTimeout(refresh, later);
      for (const [k, v] of Object.entries(notes)) {
        const n = ward.querySelector(k + " input.note");
        if (n) n.value = v;
      }
      if (focusKey) {
        const n = ward.querySelector(focusKey + " input.note");
        if (n) n.focus();
      }
      showLinked();
      localizeBanner();
    } finally {
      inflight = null;
      if (again) { again = false; refresh(); }
    }
  })();
  return inflight;
}
window.vigilRefresh = refresh;

let timer = null;
function soon(ms) { clearTimeout(timer); timer = setTimeout(refresh, ms || 250); }

// Opened from an e-mail's alert link (/#alert-ID): show that alert once.
let linked = false;
function showLinked() {
  const target = !linked && location.hash.startsWith("#alert-") &&
    document.getElementById(location.hash.slice(1));
  if (target) { linked = true; target.classList.add("linked"); target.scrollIntoView(); }
}

// A new red alert is announced (issue #6): a banner naming the patient for 15 s (text only),
// and a short tone when the user turned sound on (off by default: a calm dashboard).
const announced = new Set();
let hideBanner = null;
let bannerAlert = null;

// The stream carries the stored message; once the refreshed rows are in, the banner takes the
// alert's text in the page's language from its row (text only).
function localizeBanner() {
  const box = $("new-red");
  if (box.hidden || bannerAlert === null) return;
  const cell = document.querySelector('[data-alert="' + bannerAlert.id + '"] .what');
  if (cell) box.textContent = box.dataset.label + ": " + bannerAlert.patient_name + " — " + cell.textContent.trim();
}
function announce(e) {
  let a;
  try { a = JSON.parse(e.data).alert; } catch (_) { return; }
  if (!a || a.severity !== "red" || a.state !== "open" || announced.has(a.id)) return;
  announced.add(a.id);
  const box = $("new-red");
  box.textContent = box.dataset.label + ": " + a.patient_name + " — " + a.message;
  box.hidden = false;
  bannerAlert = a;
  localizeBanner();
  clearTimeout(hideBanner);
  hideBanner = setTimeout(() => { box.hidden = true; }, 15000);
  if (localStorage.getItem("vigil.sound") === "on") beep();
}

function beep() {
  try {
    const ctx = new AudioContext();
    const o = ctx.createOscillator();
    o.frequency.value = 880;
    o.connect(ctx.destination);
    o.start();
    o.stop(ctx.currentTime + 0.3);
  } catch (_) { /* no audio: the banner stays */ }
}

function connect() {
  const live = $("live");
  const es = new EventSource("/api/v1/stream");
  es.onopen = () => { live.textContent = live.dataset.on; live.className = "live on"; soon(0); };
  es.onerror = () => { live.textContent = live.dataset.off; live.className = "live off"; };
  es.addEventListener("reading", () => soon());
  es.addEventListener("alert", (e) => { announce(e); soon(); });
  es.addEventListener("resync", () => soon());
}

document.addEventListener("DOMContentLoaded", () => {
  const sound = $("sound");
  const showSound = () => {
    sound.textContent = localStorage.getItem("vigil.sound") === "on" ? sound.dataset.on : sound.dataset.off;
  };
  sound.addEventListener("click", () => {
    localStorage.setItem("vigil.sound", localStorage.getItem("vigil.sound") === "on" ? "off" : "on");
    showSound();
    if (localStorage.getItem("vigil.sound") === "on") beep();
  });
  showSound();
  // Filters apply as they change; the address keeps them, so a filtered view can be shared.
  const form = $("filters");
  const apply = () => { history.replaceState(null, "", "/?" + query() + location.hash); soon(150); };
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
  showLinked();
  connect();
  // Ages ("5 min ago") and e-mail delivery health change without events.
  setInterval(refresh, 30000);
});
