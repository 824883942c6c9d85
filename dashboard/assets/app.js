// Vigil dashboard: reads /api/v1, listens to /api/v1/stream (SSE) and re-renders.
// All data goes in through textContent, never innerHTML (device text is data, not markup).
"use strict";

const TZ = "Asia/Ho_Chi_Minh";
const T = {
  vi: {
    connecting: "Đang kết nối…", live: "Trực tiếp", offline: "Mất kết nối — đang thử lại",
    logout: "Đăng xuất", alerts: "Cảnh báo", noAlerts: "Không có cảnh báo đang mở.",
    severity: "Mức", patient: "Người bệnh", what: "Nội dung", time: "Thời điểm",
    state: "Trạng thái", patients: "Người bệnh", status: "Tình trạng", heart_rate: "Nhịp tim",
    bp: "Huyết áp", temperature: "Nhiệt độ", respiratory_rate: "Nhịp thở", glucose: "Đường huyết",
    weight: "Cân nặng", lastSeen: "Cập nhật", ack: "Xác nhận", resolve: "Đã xử lý",
    open: "Mới", acknowledged: "Đã tiếp nhận", resolved: "Đã xử lý",
    red: "Khẩn cấp", amber: "Cảnh báo", yellow: "Lưu ý", ok: "Ổn định",
    tzNote: "Giờ hiển thị theo múi giờ Việt Nam (UTC+07:00).", other: "English",
    news2Partial: "Điểm tối thiểu (NEWS2 dành cho bệnh viện; tại nhà là ước lượng). Thiếu:",
    search: "Tìm người bệnh", allFacilities: "Mọi cơ sở",
    newRed: "Cảnh báo khẩn cấp mới", soundOn: "Âm báo: bật", soundOff: "Âm báo: tắt",
    assign: "Nhận xử lý", assignedTo: "người xử lý", notePlaceholder: "Ghi chú (không bắt buộc)",
    mailFailing: "Gửi thư cảnh báo đang gặp lỗi — thư chờ gửi lại: {r}, không gửi được: {u}. " +
      "Hãy gọi điện cho gia đình khi có cảnh báo khẩn cấp và báo cho quản trị viên.",
    by: "bởi",
  },
  en: {
    connecting: "Connecting…", live: "Live", offline: "Disconnected — retrying",
    logout: "Sign out", alerts: "Alerts", noAlerts: "No open alerts.",
    severity: "Severity", patient: "Patient", what: "What", time: "Time",
    state: "State", patients: "Patients", status: "Status", heart_rate: "Heart rate",
    bp: "Blood pressure", temperature: "Temperature", respiratory_rate: "Resp. rate",
    glucose: "Glucose", weight: "Weight", lastSeen: "Updated", ack: "Acknowledge",
    resolve: "Resolve", open: "Open", acknowledged: "Acknowledged", resolved: "Resolved",
    red: "Red", amber: "Amber", yellow: "Yellow", ok: "Stable",
    tzNote: "Times are shown in Vietnam time (UTC+07:00).", other: "Tiếng Việt",
    news2Partial: "Lower bound (NEWS2 is a hospital score; at home it is an estimate). Missing:",
    search: "Find a patient", allFacilities: "All facilities",
    newRed: "New red alert", soundOn: "Sound: on", soundOff: "Sound: off",
    assign: "Assign to me", assignedTo: "assigned to", notePlaceholder: "Note (optional)",
    mailFailing: "Alert e-mails are failing — waiting for a retry: {r}, undeliverable: {u}. " +
      "Phone families about red alerts and tell the administrator.",
    by: "by",
  },
};
const RANK = { red: 0, amber: 1, yellow: 2, ok: 3 };
let lang = localStorage.getItem("vigil.lang") || "vi";
let state = { patients: [], alerts: [] };

const t = (k) => (T[lang] && T[lang][k]) || k;
const fmtTime = (iso) => new Date(iso).toLocaleString(lang === "vi" ? "vi-VN" : "en-GB",
  { timeZone: TZ, hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit" });
const fmtNum = (v, digits) => Number(v).toLocaleString(lang === "vi" ? "vi-VN" : "en-GB",
  { maximumFractionDigits: digits });

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function applyLang() {
  document.documentElement.lang = lang;
  document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((n) => {
    n.placeholder = t(n.dataset.i18nPlaceholder);
  });
  document.getElementById("lang").textContent = t("other");
  render();
}

function latest(p, m, digits) {
  const v = p.latest[m];
  return v ? fmtNum(v.value, digits) : "—";
}

function renderPatients() {
  const body = document.querySelector("#patients tbody");
  // Open red first, then amber, then the higher NEWS2 (issue #6), then by name.
  const news2 = (p) => (p.news2 ? p.news2.total : -1);
  // Search by name or id, and a facility filter (issue #6): a clinician of several facilities
  // looks at one at a time. Text comparison only; nothing typed becomes markup.
  const q = (document.getElementById("search").value || "").trim().toLocaleLowerCase();
  const fac = document.getElementById("facility").value;
  const shown = state.patients.filter((p) =>
    (!q || p.name.toLocaleLowerCase().includes(q) || p.id.toLocaleLowerCase().includes(q)) &&
    (!fac || p.facility_id === fac));
  const rows = shown.sort((a, b) =>
    (RANK[a.status] - RANK[b.status]) || (news2(b) - news2(a)) || a.name.localeCompare(b.name));
  body.replaceChildren(...rows.map((p) => {
    const tr = el("tr");
    tr.dataset.patient = p.id;
    tr.dataset.status = p.status;
    tr.className = "status-" + p.status;
    // The name opens the patient page (charts, alerts, thresholds); text only, never markup.
    const name = el("td");
    const link = el("a", p.name);
    link.href = "/patients/" + encodeURIComponent(p.id);
    name.append(link);
    tr.append(el("td", t(p.status), "badge"), name);
    // A partial score (consciousness and oxygen are not measured at home) is a lower bound: "4+".
    const n = p.news2;
    const score = el("td", n ? n.total + (n.partial ? "+" : "") : "—", n ? "news2-" + n.risk : "");
    if (n && n.partial) score.title = t("news2Partial") + " " + n.missing.join(", ");
    tr.append(score);
    tr.append(el("td", latest(p, "spo2", 0)), el("td", latest(p, "heart_rate", 0)));
    const sys = p.latest.bp_systolic, dia = p.latest.bp_diastolic;
    tr.append(el("td", sys ? fmtNum(sys.value, 0) + (dia ? "/" + fmtNum(dia.value, 0) : "") : "—"));
    tr.append(el("td", latest(p, "temperature", 1)), el("td", latest(p, "respiratory_rate", 0)));
    tr.append(el("td", latest(p, "glucose", 1)), el("td", latest(p, "weight", 1)));
    const times = Object.values(p.latest).map((v) => v.ts).sort();
    tr.append(el("td", times.length ? fmtTime(times[times.length - 1]) : "—"));
    return tr;
  }));
}

/// The facility filter lists the facilities of the patients the caller sees; hidden for one.
function renderFacilities() {
  const sel = document.getElementById("facility");
  const ids = [...new Set(state.patients.map((p) => p.facility_id))].sort();
  const current = sel.value;
  sel.replaceChildren(el("option", t("allFacilities")), ...ids.map((f) => {
    const o = el("option", f);
    o.value = f;
    return o;
  }));
  sel.options[0].value = "";
  sel.value = ids.includes(current) ? current : "";
  sel.hidden = ids.length < 2;
}

function renderAlerts() {
  const active = state.alerts.filter((a) => a.state !== "resolved");
  document.getElementById("no-alerts").hidden = active.length > 0;
  const table = document.getElementById("alerts");
  table.hidden = active.length === 0;
  table.querySelector("tbody").replaceChildren(...active.map((a) => {
    const tr = el("tr");
    tr.id = "alert-" + a.id; // e-mails link to /#alert-ID
    tr.dataset.alert = a.id;
    tr.dataset.severity = a.severity;
    tr.dataset.state = a.state;
    tr.className = "status-" + a.severity + (a.state === "acknowledged" ? " acked" : "");
    tr.append(el("td", t(a.severity), "badge"), el("td", a.patient_name), el("td", a.message));
    // Who is on it, e.g. a family member who used the link in their e-mail.
    let st = a.state === "acknowledged" && a.acknowledged_by
      ? t(a.state) + " " + t("by") + " " + a.acknowledged_by : t(a.state);
    if (a.assigned_to) st += " · " + t("assignedTo") + ": " + a.assigned_to;
    tr.append(el("td", fmtTime(a.opened_at)), el("td", st, "alert-state"));
    const actions = el("td");
    // One note for whichever action follows (acknowledge, resolve, assign): audited with it.
    const note = el("input", null, "note");
    note.type = "text";
    note.maxLength = 2000;
    note.placeholder = t("notePlaceholder");
    actions.append(note);
    const button = (label, cls, what) => {
      const b = el("button", t(label), cls);
      b.type = "button";
      b.addEventListener("click", () => act(a.id, what, note.value));
      actions.append(b);
    };
    if (a.state === "open") button("ack", "ack", "ack");
    if (!a.assigned_to) button("assign", "assign", "assign");
    button("resolve", "resolve", "resolve");
    tr.append(actions);
    return tr;
  }));
}

function renderMail() {
  const box = document.getElementById("mail-warning");
  const m = state.mail;
  box.hidden = !m || m.healthy !== false;
  if (!box.hidden) {
    box.textContent = t("mailFailing").replace("{r}", m.retrying).replace("{u}", m.undeliverable);
  }
}

let linked = false;
function render() {
  renderAlerts(); renderFacilities(); renderPatients(); renderMail();
  // Opened from an e-mail's alert link: show that alert once.
  const target = !linked && location.hash.startsWith("#alert-") &&
    document.getElementById(location.hash.slice(1));
  if (target) { linked = true; target.classList.add("linked"); target.scrollIntoView(); }
}

async function mailHealth() {
  try {
    const r = await fetch("/readyz", { credentials: "same-origin" });
    return ((await r.json()).detail || {}).email;
  } catch (e) { return undefined; }
}

async function api(path, opts) {
  const res = await fetch("/api/v1" + path, Object.assign({ credentials: "same-origin" }, opts));
  if (res.status === 401) { location.href = "/login"; throw new Error("signed out"); }
  if (!res.ok) throw new Error(path + ": " + res.status);
  return res.json();
}

// The session's CSRF token (issue #6): set at sign-in in a cookie this script can read;
// every state-changing request echoes it in X-CSRF-Token.
function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)vigil_csrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : "";
}

async function act(id, what, note) {
  await api("/alerts/" + id + "/" + what, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify(note && note.trim() ? { note: note.trim() } : {}),
  });
  await refresh();
}

let refreshing = null;
async function refresh() {
  if (refreshing) return refreshing;
  refreshing = (async () => {
    try {
      const [p, a, m] = await Promise.all([api("/patients"), api("/alerts"), mailHealth()]);
      state.patients = p.patients;
      state.alerts = a.alerts;
      state.mail = m;
      render();
    } finally { refreshing = null; }
  })();
  return refreshing;
}

let timer = null;
function soon() { clearTimeout(timer); timer = setTimeout(refresh, 250); }

// A new red alert is announced (issue #6): a banner naming the patient for 15 s, and a short
// tone when the user turned sound on (off by default: a calm dashboard).
const announced = new Set();
let hideBanner = null;
function announce(e) {
  let a;
  try { a = JSON.parse(e.data).alert; } catch (_) { return; }
  if (!a || a.severity !== "red" || a.state !== "open" || announced.has(a.id)) return;
  announced.add(a.id);
  const box = document.getElementById("new-red");
  box.textContent = t("newRed") + ": " + a.patient_name + " — " + a.message;
  box.hidden = false;
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
  const live = document.getElementById("live");
  const es = new EventSource("/api/v1/stream");
  es.onopen = () => { live.textContent = t("live"); live.className = "live on"; refresh(); };
  es.onerror = () => { live.textContent = t("offline"); live.className = "live off"; };
  es.addEventListener("reading", soon);
  es.addEventListener("alert", (e) => { announce(e); soon(); });
  es.addEventListener("resync", soon);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("lang").addEventListener("click", () => {
    lang = lang === "vi" ? "en" : "vi";
    localStorage.setItem("vigil.lang", lang);
    // Server-rendered pages (the patient page) read the choice from this cookie.
    document.cookie = "vigil_lang=" + lang + "; path=/; max-age=31536000; samesite=strict";
    applyLang();
  });
  document.getElementById("search").addEventListener("input", renderPatients);
  const sound = document.getElementById("sound");
  const showSound = () => {
    sound.textContent = t(localStorage.getItem("vigil.sound") === "on" ? "soundOn" : "soundOff");
  };
  sound.addEventListener("click", () => {
    localStorage.setItem("vigil.sound", localStorage.getItem("vigil.sound") === "on" ? "off" : "on");
    showSound();
    if (localStorage.getItem("vigil.sound") === "on") beep();
  });
  document.getElementById("lang").addEventListener("click", showSound);
  showSound();
  document.getElementById("facility").addEventListener("change", renderPatients);
  applyLang();
  refresh();
  connect();
  // Delivery health changes without readings; look again every half minute.
  setInterval(refresh, 30000);
});
