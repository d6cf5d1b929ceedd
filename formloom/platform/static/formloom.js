// Formloom's small browser helpers: searchable relation pickers, focus on errors, CSRF for fetch.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// A select with data-lookup gets a search box that asks the server for matching records.
function enhancePicker(select) {
  const search = document.createElement("input");
  search.type = "search";
  search.className = "picker-search";
  const searchLabel = select.dataset.searchLabel || "Search";
  search.placeholder = searchLabel + "…";
  search.setAttribute("aria-label", (select.labels[0] ? select.labels[0].textContent.trim() : "") + " – " + searchLabel);
  search.setAttribute("aria-controls", select.id);
  select.parentNode.insertBefore(search, select);
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      let url = select.dataset.lookup + "?q=" + encodeURIComponent(search.value);
      // A relation's filter: only records whose fields match this form's current values.
      for (const [theirs, own] of Object.entries(JSON.parse(select.dataset.filter || "{}"))) {
        const input = select.form && select.form.elements[own];
        if (input && input.value) url += "&where." + encodeURIComponent(theirs) + "=" + encodeURIComponent(input.value);
      }
      const response = await fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const found = await response.json();
      const keep = select.value;
      const keepOption = keep ? select.querySelector(`option[value="${CSS.escape(keep)}"]`) : null;
      select.replaceChildren();
      const blank = document.createElement("option");
      blank.value = ""; blank.textContent = "—";
      select.appendChild(blank);
      if (keepOption && !found.some((r) => String(r.id) === keep)) select.appendChild(keepOption);
      for (const record of found) {
        const option = document.createElement("option");
        option.value = String(record.id);
        option.textContent = record.title;  // textContent: titles are never parsed as HTML
        select.appendChild(option);
      }
      select.value = keep;
    }, 200);
  });
}

// Admin-chosen colours (stages, options) arrive as data-color; the CSP allows no inline styles.
function applyColors(root) {
  root.querySelectorAll("[data-color]").forEach((el) => {
    if (/^#[0-9a-fA-F]{6}$/.test(el.dataset.color)) el.style.setProperty("--stage-color", el.dataset.color);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("select[data-lookup]").forEach(enhancePicker);
  applyColors(document);
  const summary = document.querySelector(".error-summary");
  if (summary) summary.focus();
  window.formloom = { csrfToken, applyColors };
});
