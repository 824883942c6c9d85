// Vigil administration page: each form sends its fields as JSON to the API named in its
// `data-api` (POST, or its `data-method`: PATCH for the edit forms), with the session's CSRF
// token (`common.js`). An Edit button fills its row's values into the edit form named by
// `data-edit`; a Remove button asks first (`data-confirm`) and sends DELETE. A new device's
// credentials are shown once in the page (text only); other forms reload the page.
"use strict";

function fields(form) {
  // An edit sends the fields marked data-clearable even when emptied: an emptied area or phone
  // clears it. Other empty fields are left as they are.
  const edit = form.dataset.method === "PATCH";
  const body = {};
  for (const el of form.elements) {
    if (!el.name || el.dataset.path !== undefined) continue;
    if (el.type === "checkbox") body[el.name] = el.checked;
    else if (el.multiple) body[el.name] = [...el.selectedOptions].map((o) => o.value);
    else if (el.dataset.list) {
      body[el.name] = el.value.split(el.dataset.list).map((s) => s.trim()).filter(Boolean);
    } else if (el.value !== "" || (edit && el.dataset.clearable !== undefined)) body[el.name] = el.value;
  }
  return body;
}

async function send(method, path, body) {
  const res = await fetch(path, {
    method, credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401) { location.href = "/login"; throw new Error("signed out"); }
  return res;
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form.api").forEach((form) => {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const err = form.querySelector(".error");
      err.hidden = true;
      // `{name}` in the address is the value of the field marked data-path.
      const path = form.dataset.api.replace(/\{(\w+)\}/g, (_, n) =>
        encodeURIComponent(form.elements[n].value));
      const res = await send(form.dataset.method || "POST", path, fields(form));
      const j = await res.json().catch(() => ({}));
      if (!res.ok) {
        err.textContent = j.error || String(res.status);
        err.hidden = false;
        return;
      }
      if (j.device) {
        const box = document.getElementById("credentials");
        for (const dd of box.querySelectorAll("[data-field]")) dd.textContent = j.device[dd.dataset.field];
        box.hidden = false;
        form.reset();
        return;
      }
      location.reload();
    });
    const cancel = form.querySelector("button.cancel");
    if (cancel) cancel.addEventListener("click", () => { form.hidden = true; });
  });
  document.addEventListener("click", async (e) => {
    const edit = e.target.closest("button[data-edit]");
    if (edit) {
      const form = document.getElementById(edit.dataset.edit);
      for (const el of form.elements) {
        if (!el.name || edit.dataset[el.name] === undefined) continue;
        if (el.type === "checkbox") el.checked = edit.dataset[el.name] === "true";
        else el.value = edit.dataset[el.name];
      }
      form.hidden = false;
      form.scrollIntoView({ block: "nearest" });
      return;
    }
    const remove = e.target.closest("button[data-method][data-api]");
    if (remove) {
      if (!confirm(remove.dataset.confirm)) return;
      remove.disabled = true;
      const res = await send(remove.dataset.method, remove.dataset.api);
      if (res.ok) { location.reload(); return; }
      const j = await res.json().catch(() => ({}));
      remove.disabled = false;
      alert(j.error || String(res.status));
    }
  });
  const done = document.getElementById("credentials-done");
  if (done) done.addEventListener("click", () => location.reload());
});
