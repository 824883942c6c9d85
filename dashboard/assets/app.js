// Vigil ward view: the page is server-rendered; this keeps it live. On every change the
// stream (/api/v1/stream, SSE, opened by common.js) reports, it fetches the page's changing
// part again (/ward, the same escaped server markup, in the page's language) and swaps it in —
// no reload, no client-side templating. It also applies filters as they are typed. New red
// alerts are announced by common.js on every page.
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
      const res = await fetch(withLang("/ward?" + query()), { credentials: "same-origin" });
      if (res.status === 401) { location.href = "/login"; return; }
      if (!res.ok) return;
      const html = await res.text();
      const ward = $("ward");
      // server-rendered, every value escaped by the template
      window.vigilKeepingNotes(ward, () => { ward.innerHTML = html; });
      // The server shares one render a second for new readings: when this one misses some,
      // it says when to ask again.
      const later = Number(res.headers.get("X-Vigil-Refresh-In"));
      if (later > 0) setTimeout(refresh, later);
      showLinked();
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

// Opened from an e-mail's alert link or the banner (/#alert-ID): show that alert once.
let linked = false;
function showLinked() {
  const target = !linked && location.hash.startsWith("#alert-") &&
    document.getElementById(location.hash.slice(1));
  if (target) { linked = true; target.classList.add("linked"); target.scrollIntoView(); }
}
window.addEventListener("hashchange", () => { linked = false; showLinked(); });

document.addEventListener("DOMContentLoaded", () => {
  // Filters apply as they change; the address keeps them (and ?lang=), so a filtered view can
  // be shared.
  const form = $("filters");
  const apply = () => { history.replaceState(null, "", withLang("/?" + query()) + location.hash); soon(150); };
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
  showLinked();
  const live = $("live");
  window.vigilOn("open", () => { live.textContent = live.dataset.on; live.className = "live on"; soon(0); });
  window.vigilOn("error", () => { live.textContent = live.dataset.off; live.className = "live off"; });
  window.vigilOn("reading", () => soon());
  window.vigilOn("alert", () => soon());
  window.vigilOn("resync", () => soon());
  // Ages ("5 min ago") and e-mail delivery health change without events.
  setInterval(refresh, 30000);
});
