// Vigil administration page: each form posts its fields as JSON to the API named in its
// `data-api` (with the session's CSRF token, `common.js`). A new device's credentials are shown
// once in the page (text only); other forms reload the page to show the new row.
"use strict";

function fields(form) {
  const body = {};
  for (const el of form.elements) {
    if (!el.name || el.dataset.path !== undefined) continue;
    if (el.type === "checkbox") body[el.name] = el.checked;
    else if (el.multiple) body[el.name] = [...el.selectedOptions].map((o) => o.value);
    else if (el.dataset.list) {
      body[el.name] = el.value.split(el.dataset.list).map((s) => s.trim()).filter(Boolean);
    } else if (el.value !== "") body[el.name] = el.value;
  }
  return body;
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
      const res = await post(path, fields(form));
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
  });
  const done = document.getElementById("credentials-done");
  if (done) done.addEventListener("click", () => location.reload());
});
