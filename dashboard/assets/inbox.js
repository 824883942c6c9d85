// Vigil alert inbox: a changed filter applies at once (the form also works without this).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("alert-filters");
  if (!form) return;
  form.querySelectorAll("select").forEach((s) => s.addEventListener("change", () => form.submit()));
});
