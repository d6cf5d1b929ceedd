// The generated record form in the browser: conditions as the rep types (the same evaluator
// the server runs, conditions.js), cascading choices, sub-table rows, signatures, locations,
// computed values and linked fields asked from the server while typing, and an error summary
// whose links take the keyboard to the field.
// Admin- and user-supplied text is only ever set with textContent or value, never as HTML.
"use strict";

(function () {
  const form = document.querySelector("form.record-form[data-logic]");
  if (!form) return;
  const logic = JSON.parse(form.dataset.logic);
  const Conditions = window.FormloomConditions;
  const requiredText = form.dataset.requiredText || "required";

  // --- the values the conditions see, read from the inputs ---------------------------------
  function inputsOf(name) {
    return Array.from(form.elements).filter((el) => el.name === name || (el.name && el.name.startsWith(name + "-")));
  }

  function valueOf(name, kind) {
    const inputs = inputsOf(name).filter((el) => el.type !== "file" && !el.name.endsWith("-keep"));
    const chosenFiles = inputsOf(name).some((el) => el.type === "file" && el.files && el.files.length > 0);
    if (!inputs.length) {
      const keep = inputsOf(name).filter((el) => el.name.endsWith("-keep") && el.checked);
      if (chosenFiles) return {};
      return keep.length ? keep.map((el) => Number(el.value)) : null;
    }
    const first = inputs[0];
    if (kind === "boolean") return first.type === "checkbox" ? first.checked : null;
    if (kind === "list" || kind === "ids") {
      let picked = [];
      for (const el of inputs) {
        if (el.type === "checkbox" || el.type === "radio") { if (el.checked) picked.push(el.value); }
        else if (el.multiple) picked.push(...Array.from(el.selectedOptions).map((o) => o.value));
        else picked.push(...el.value.split(/[,，;；]/));
      }
      picked = picked.map((v) => v.trim()).filter((v) => v !== "");
      return kind === "ids" ? picked.map(Number) : picked;
    }
    if (kind === "object") {
      return chosenFiles || inputs.some((el) => (el.type === "checkbox" ? el.checked : el.value.trim() !== "")) ? {} : null;
    }
    const radios = inputs.filter((el) => el.type === "radio");
    const text = radios.length ? (radios.find((el) => el.checked) || { value: "" }).value : first.value.trim();
    if (text === "") return null;
    if (kind === "id") return /^\d+$/.test(text) ? Number(text) : text;
    // Computed fields show "¥1,234.50" or "10%": the conditions compare the number.
    if (kind === "number") return text.replace(/[\s,¥$€£%]/g, "");
    if (kind === "datetime" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(text)) return text + ":00Z";
    return text;
  }

  function currentValues() {
    const values = {};
    for (const [name, kind] of Object.entries(logic.kinds)) {
      const value = valueOf(name, kind);
      if (value !== null) values[name] = value;
    }
    return values;
  }

  // Conditions name field keys; the page names inputs f_<key>.
  function rename(condition) {
    if (Array.isArray(condition)) return condition.map(rename);
    if (!condition || typeof condition !== "object") return condition;
    const out = {};
    for (const [k, v] of Object.entries(condition)) {
      out[k] = (k === "field" || k === "$field") && typeof v === "string" ? "f_" + v : rename(v);
    }
    return out;
  }

  function holds(condition, values) {
    return Conditions.evaluate(rename(condition), values, logic.kinds,
                               { today: logic.today, now: logic.now, userId: logic.user });
  }

  // --- visibility, requirement, read-only ----------------------------------------------------
  function setReadOnly(wrapper, readOnly) {
    wrapper.classList.toggle("is-readonly", readOnly);
    for (const el of wrapper.querySelectorAll("input, select, textarea")) {
      if (el.type === "hidden") continue;
      if (el.tagName === "SELECT" || el.type === "checkbox" || el.type === "radio" || el.type === "file") {
        el.setAttribute("aria-readonly", String(readOnly));
        el.dataset.lockedValue = readOnly ? (el.type === "checkbox" || el.type === "radio" ? String(el.checked) : el.value) : "";
        if (el.type === "file") el.disabled = readOnly;
      } else {
        el.readOnly = readOnly;
      }
    }
  }

  // The "*" and the words "(required)" after a label, for fields required only sometimes.
  function markRequired(wrapper, required) {
    const label = wrapper.querySelector(".label");
    let mark = label && label.querySelector(".req-when");
    if (required && label && !mark) {
      mark = document.createElement("span");
      mark.className = "req-when";
      const star = document.createElement("span");
      star.className = "req";
      star.setAttribute("aria-hidden", "true");
      star.textContent = "*";
      const words = document.createElement("span");
      words.className = "visually-hidden";
      words.textContent = "(" + requiredText + ")";
      mark.append(" ", star, words);
      label.appendChild(mark);
    } else if (!required && mark) {
      mark.remove();
    }
    wrapper.classList.toggle("is-required", required);
    for (const el of wrapper.querySelectorAll("input:not([type=hidden]), select, textarea")) {
      el.setAttribute("aria-required", String(required));
    }
  }

  function apply() {
    filterOptions();
    const values = currentValues();
    for (const [name, rules] of Object.entries(logic.fields)) {
      const wrapper = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
      if (!wrapper) continue;
      const visible = (!rules.visible_when || holds(rules.visible_when, values))
                   && (!rules.section_when || holds(rules.section_when, values));
      wrapper.hidden = !visible;
      if (rules.required_when) markRequired(wrapper, holds(rules.required_when, values));
      if (rules.readonly_when) setReadOnly(wrapper, holds(rules.readonly_when, values));
    }
    for (const section of form.querySelectorAll("fieldset.section")) {
      const fields = section.querySelectorAll(":scope > .field");
      section.hidden = fields.length > 0 && Array.from(fields).every((f) => f.hidden);
    }
  }

  // --- cascading choices ----------------------------------------------------------------------
  // Only the options of the chosen parent can be picked; a choice that no longer fits is cleared.
  function filterOptions() {
    for (const select of form.querySelectorAll("select[data-filter-by]")) {
      const parent = valueOf(select.dataset.filterBy, logic.kinds[select.dataset.filterBy] || "text");
      const parents = (Array.isArray(parent) ? parent : parent === null ? [] : [parent]).map(String);
      let cleared = false;
      for (const option of select.options) {
        if (!option.dataset.parent) continue;
        const allowed = JSON.parse(option.dataset.parent).map(String);
        const show = allowed.some((p) => parents.includes(p));
        option.hidden = !show;
        option.disabled = !show;
        if (!show && option.selected) {
          option.selected = false;
          cleared = true;
        }
      }
      if (cleared) {
        if (!select.multiple) select.value = "";
        select.dispatchEvent(new Event("change", { bubbles: true }));
      }
    }
  }

  // --- computed values and linked fields ----------------------------------------------------
  // Asked from the server (POST data-compute), 250 ms after the rep stops typing. The computed
  // values of an answer that arrives after a newer one are dropped, and a linked field the rep
  // typed into after the question was sent keeps what the rep typed.
  let computeTimer = null;
  let pendingChanged = "";
  let editClock = 0;
  let asked = 0;
  let answered = 0;
  const editedAt = {};
  // What choosing a record filled in, by the relation's input name: choosing another record
  // replaces those values unless the rep has changed them since.
  const filledBy = {};

  function noteEdit(name) {
    if (!name) return;
    editClock += 1;
    const field = name.replace(/-.*$/, "");
    editedAt[field] = editClock;
    editedAt[name] = editClock;
  }

  function scheduleCompute(changed) {
    if (!logic.computed) return;
    if (changed && pendingChanged && changed !== pendingChanged && computeTimer !== null) {
      // A different field changed before the last change was asked about: ask about it now, so
      // that choosing a record still fills its linked fields.
      clearTimeout(computeTimer);
      computeTimer = null;
      compute();
    }
    if (changed) pendingChanged = changed;
    clearTimeout(computeTimer);
    computeTimer = setTimeout(() => { computeTimer = null; compute(); }, 250);
  }

  async function compute() {
    const data = new FormData(form);
    for (const [name, value] of Array.from(data.entries())) {
      if (value instanceof File) data.delete(name);
    }
    for (const pad of form.querySelectorAll("[data-signature] input[type=hidden][name]")) {
      data.delete(pad.name);  // a drawn signature is large and never used in a computation
    }
    const url = new URL(form.dataset.compute, window.location.href);
    const changed = pendingChanged;
    if (changed) url.searchParams.set("changed", changed);
    pendingChanged = "";
    for (const [name, text] of Object.entries(filledBy[changed] || {})) {
      const el = form.elements[name];
      if (el && el.value === text) data.set(name, "");  // still as filled: let the new record fill it
    }
    const question = ++asked;
    const sentAt = editClock;
    let result;
    try {
      const response = await fetch(url, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRFToken": window.formloom ? window.formloom.csrfToken() : csrfFromPage(), "Accept": "application/json" },
      });
      if (!response.ok) return;
      result = await response.json();
    } catch (error) {
      return;  // offline or leaving the page: the server computes again when the record is saved
    }
    const filled = {};
    for (const [name, value] of Object.entries(result.filled || {})) {
      if ((editedAt[name] || 0) > sentAt) continue;
      Object.assign(filled, fill(name, value, sentAt));
    }
    if (changed && result.filled) filledBy[changed] = filled;
    if (question < answered) {  // a newer answer already shows the computed values
      apply();
      return;
    }
    answered = question;
    for (const [id, text] of Object.entries(result.computed || {})) {
      const el = document.getElementById(id);
      if (el) el.value = text;
    }
    for (const [table, rows] of Object.entries(result.rows || {})) {
      rows.forEach((row, i) => {
        for (const [column, text] of Object.entries(row)) {
          const el = form.elements[`${table}-${i}-${column}`];
          if (el) el.value = text;
        }
      });
    }
    apply();
  }

  function csrfFromPage() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // Puts a linked value into its inputs; returns {input name: value now shown} of the text inputs.
  function fill(name, value, sentAt) {
    const shown = {};
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      for (const [part, text] of Object.entries(value)) {
        const el = form.elements[`${name}-${part}`];
        if (el && (editedAt[el.name] || 0) <= sentAt) {
          el.value = text === null ? "" : text;
          shown[el.name] = el.value;
        }
      }
      return shown;
    }
    for (const el of inputsOf(name)) {
      if (el.type === "checkbox") el.checked = Boolean(value);
      else if (el.tagName === "SELECT" && value !== "" && value !== null && !Array.from(el.options).some((o) => o.value === String(value))) {
        const option = document.createElement("option");
        option.value = String(value);
        option.textContent = String(value);
        el.appendChild(option);
        el.value = String(value);
      } else {
        el.value = value === null ? "" : value;
        if (!el.multiple && el.type !== "radio") shown[el.name] = el.value;
      }
    }
    return shown;
  }

  // --- sub-table rows -------------------------------------------------------------------------
  function rowsOf(table) {
    return Array.from(table.querySelectorAll("tbody tr[data-row]"));
  }

  // Rows are numbered 1, 2, 3 for the rep and name-0-, name-1-, ... for the server.
  function renumber(table) {
    const name = table.dataset.table;
    const prefix = new RegExp("^" + name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "-\\d+-");
    rowsOf(table).forEach((row, i) => {
      const number = row.querySelector(".row-number");
      if (number) number.textContent = String(i + 1);
      for (const el of row.querySelectorAll("[name], [id], [for], [aria-label]")) {
        for (const attr of ["name", "id", "for"]) {
          const value = el.getAttribute(attr);
          if (value && prefix.test(value)) el.setAttribute(attr, value.replace(prefix, `${name}-${i}-`));
        }
        const label = el.getAttribute("aria-label");
        if (label) el.setAttribute("aria-label", label.replace(/\s\d+$/, " " + (i + 1)));
      }
    });
    const full = rowsOf(table).length >= Number(table.dataset.maxRows || Infinity);
    const add = table.querySelector("[data-add-row]");
    if (add) add.disabled = full;
  }

  function addRow(table) {
    const body = table.querySelector("tbody");
    const rows = rowsOf(table);
    if (rows.length >= Number(table.dataset.maxRows || Infinity)) return;
    const copy = rows[rows.length - 1].cloneNode(true);
    for (const el of copy.querySelectorAll("input, select, textarea")) {
      if (el.type === "checkbox" || el.type === "radio") el.checked = false;
      else if (el.tagName === "SELECT") el.selectedIndex = el.options.length && el.options[0].value === "" ? 0 : -1;
      else el.value = "";
      el.removeAttribute("aria-invalid");
    }
    body.appendChild(copy);
    renumber(table);
    const first = copy.querySelector("input:not([readonly]):not([type=hidden]), select, textarea");
    if (first) first.focus();
  }

  function removeRow(table, row) {
    const rows = rowsOf(table);
    const index = rows.indexOf(row);
    if (rows.length <= 1) {
      for (const el of row.querySelectorAll("input, select, textarea")) {
        if (el.type === "checkbox" || el.type === "radio") el.checked = false;
        else el.value = "";
      }
    } else {
      row.remove();
    }
    renumber(table);
    // The pressed button may be gone: keep the keyboard in the table.
    const left = rowsOf(table);
    const next = left[Math.min(index, left.length - 1)];
    const target = rows.length <= 1 ? row.querySelector("input:not([readonly]), select, textarea")
                                    : next && next.querySelector("[data-remove-row]");
    (target || table.querySelector("[data-add-row]")).focus();
    apply();
    scheduleCompute(table.dataset.table);
  }

  // --- signatures -----------------------------------------------------------------------------
  function signaturePad(box) {
    const canvas = box.querySelector("canvas");
    const input = box.querySelector("input[type=hidden]");
    const pen = canvas.getContext("2d");
    const ink = () => {
      pen.lineWidth = 2.2;
      pen.lineCap = "round";
      pen.lineJoin = "round";
      pen.strokeStyle = "#102a43";
    };
    ink();
    let drawing = false;
    let drawn = false;
    const point = (event) => {
      const area = canvas.getBoundingClientRect();
      return [(event.clientX - area.left) * canvas.width / area.width,
              (event.clientY - area.top) * canvas.height / area.height];
    };
    canvas.addEventListener("pointerdown", (event) => {
      if (event.button !== 0) return;
      event.preventDefault();
      drawing = true;
      canvas.setPointerCapture(event.pointerId);
      pen.beginPath();
      pen.moveTo(...point(event));
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!drawing) return;
      pen.lineTo(...point(event));
      pen.stroke();
      drawn = true;
    });
    const finish = () => {
      if (drawing && drawn) {
        input.value = canvas.toDataURL("image/png");
        const previous = box.querySelector(".signature-image");  // the new drawing replaces it
        if (previous) previous.remove();
        box.classList.remove("has-image");
        input.dispatchEvent(new Event("change", { bubbles: true }));
      }
      drawing = false;
    };
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointercancel", finish);
    box.querySelector("[data-clear-signature]").addEventListener("click", () => {
      pen.clearRect(0, 0, canvas.width, canvas.height);
      ink();
      drawn = false;
      input.value = "";
      const image = box.querySelector(".signature-image");
      if (image) image.remove();
      box.classList.remove("has-image");  // the pad shows again, ready for a new signature
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }

  // --- error summary --------------------------------------------------------------------------
  // Its links lead to the field: the first thing in it that takes the keyboard gets the focus,
  // and the field's label is scrolled into view with it.
  function focusField(id) {
    const target = document.getElementById(id);
    if (!target) return false;
    const wrapper = target.closest(".field") || target;
    const focusable = "input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled]), button:not([disabled]), [tabindex]:not([tabindex='-1'])";
    let element = target.matches(focusable) ? target : target.querySelector(focusable);
    if (!element) element = wrapper.querySelector(focusable);
    if (!element) return false;
    const label = wrapper.querySelector(".label") || element;
    label.scrollIntoView({ block: "start" });
    element.focus({ preventScroll: true });
    return true;
  }

  const summary = form.querySelector(".error-summary");
  if (summary) {
    summary.addEventListener("click", (event) => {
      const link = event.target.closest("a[href^='#']");
      if (link && focusField(decodeURIComponent(link.getAttribute("href").slice(1)))) event.preventDefault();
    });
  }

  // --- wiring ---------------------------------------------------------------------------------
  form.addEventListener("input", (event) => {
    noteEdit(event.target.name);
    apply();
    scheduleCompute(event.target.name);
  });
  form.addEventListener("change", (event) => {
    const el = event.target;
    if (el.getAttribute("aria-readonly") === "true") {  // selects and checkboxes cannot be readOnly
      if (el.type === "checkbox" || el.type === "radio") el.checked = el.dataset.lockedValue === "true";
      else el.value = el.dataset.lockedValue;
      return;
    }
    if (event.isTrusted) noteEdit(el.name);
    apply();
    scheduleCompute(el.name);
  });
  form.addEventListener("click", (event) => {
    const table = event.target.closest("[data-table]");
    if (event.target.closest("[data-add-row]") && table) addRow(table);
    const remove = event.target.closest("[data-remove-row]");
    if (remove && table) removeRow(table, remove.closest("tr"));
    const locate = event.target.closest("[data-locate]");
    if (locate && navigator.geolocation) {
      const box = locate.closest("fieldset");
      navigator.geolocation.getCurrentPosition((position) => {
        box.querySelector("input[name$='-lat']").value = position.coords.latitude.toFixed(6);
        box.querySelector("input[name$='-lng']").value = position.coords.longitude.toFixed(6);
        box.querySelector("input[name$='-lat']").dispatchEvent(new Event("change", { bubbles: true }));
      });
    }
  });
  form.querySelectorAll("[data-signature]").forEach(signaturePad);
  form.querySelectorAll("[data-table]").forEach(renumber);
  apply();
})();
