// New app / new definition pages: the key follows the name (Chinese in pinyin, asked from the
// server) until the admin types a key of their own.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("form[data-key-from]");
  if (!form) return;
  const keyInput = form.querySelector("[data-key]");
  const sources = form.dataset.keyFrom.split(" ").map((name) => form.elements[name]).filter(Boolean);
  let typed = keyInput.value !== "";
  let timer = null;
  keyInput.addEventListener("input", () => { typed = keyInput.value !== ""; });
  const suggest = () => {
    if (typed) return;
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const label = sources.map((input) => input.value.trim()).find(Boolean) || "";
      if (!label) { keyInput.value = ""; return; }
      const response = await fetch("/api/v1/key-suggestion", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json",
                   "X-CSRFToken": window.formloom ? window.formloom.csrfToken() : "" },
        body: JSON.stringify({ label, fallback: form.dataset.keyFallback || "field" }),
      });
      if (response.ok && !typed) keyInput.value = (await response.json()).key;
    }, 250);
  };
  sources.forEach((input) => input.addEventListener("input", suggest));
});
