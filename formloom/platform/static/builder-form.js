// The form designer: a form's sections and the entity's fields placed in them, arranged by drag and
// drop or, for keyboards, by buttons (↑/↓, "Move to section", "Add"). Each placed field can have a
// width, a help text and a "show when" condition of its own; sections have a title, help and a
// condition. Rendering reads `ed.body` and never changes it: a field placed as a plain key stays a
// plain key until the admin gives it a width, help or condition (and becomes one again when they
// are all cleared); properties the designer does not know are kept as they are.
"use strict";

(() => {
  const B = window.FormloomBuilder;
  if (!B) return;
  const { h, isObj } = B;

  const WIDTHS = [["", "Automatic"], ["full", "Full width"], ["half", "Half width"], ["third", "One third"]];
  const WIDTH_BADGES = { full: "Full width", half: "Half width", third: "One third" };

  const keyOf = (item) => (typeof item === "string" ? item : isObj(item) && typeof item.field === "string" ? item.field : null);
  const kindOf = (item) => (keyOf(item) !== null ? "field" : isObj(item) && !("field" in item) && "text" in item ? "text" : "other");

  // What the admin opened, kept across re-renders (which rebuild everything from ed.body).
  const ui = {
    open: new Set(), // "field:<key>" of placed fields showing their settings
    openText: new WeakSet(), // text blocks showing their editor
    settings: new WeakSet(), // sections showing their title, help and condition
    addTo: null, // the section the palette adds to; null (or one no longer there): the last one
    undo: null, // {body, message, restore} after a removal
  };
  let drag = null; // {kind: "item", s, i, key} or {kind: "palette", key} while a field is dragged
  let live = null;

  function announce(message) {
    if (!live) {
      live = h("div", { className: "visually-hidden", role: "status", "aria-live": "polite", "data-fd-announce": "" });
      document.body.append(live);
    }
    live.textContent = message;
  }

  B.editors.form = function formDesigner(root, ed) {
    const body = ed.body;
    const locale = ed.locale;
    if (!isObj(body)) {
      root.append(h("p", { className: "help" }, "This draft is not a JSON object, so it can only be edited as JSON."));
      return;
    }
    const entities = ed.data.entities || {};
    const entity = typeof body.entity === "string" && isObj(entities[body.entity]) ? entities[body.entity] : null;
    const entityFields = entity && Array.isArray(entity.fields) ? entity.fields : [];
    const byKey = new Map(entityFields.map((f) => [f.key, f]));
    const typeLabels = new Map((ed.data.field_types || []).map((t) => [t.type, t.label]));
    const operators = ed.data.operators || {};
    const sections = Array.isArray(body.sections) ? body.sections : null;
    const sectionList = sections || [];
    const placed = new Set();
    sectionList.forEach((section) => {
      if (isObj(section) && Array.isArray(section.fields)) section.fields.forEach((item) => { if (keyOf(item)) placed.add(keyOf(item)); });
    });

    const fieldLabel = (key) => (byKey.has(key) ? byKey.get(key).label || key : key);
    const sectionTitle = (section, s) => (isObj(section) && ed.text(section.label, locale)) || `Section ${s + 1}`;
    const condFields = (except) => entityFields.filter((f) => f.key !== except)
      .map((f) => ({ key: f.key, label: f.label || f.key, kind: f.kind, options: f.options || [] }));
    if (ui.undo && ui.undo.body !== body) ui.undo = null;

    // --- edits ---------------------------------------------------------------------------------
    // A structural edit: change the body, save, re-render, then put the focus where the admin was.
    function commit(change, focus, message) {
      const undo = ui.undo;
      if (change() === false) return;
      if (ui.undo === undo) ui.undo = null; // an undo offered before this edit no longer fits
      ed.changed();
      ed.rerender();
      if (focus) focusFirst(focus);
      if (message) announce(message);
    }

    function focusFirst(selectors) {
      for (const selector of [].concat(selectors)) {
        const el = root.querySelector(selector);
        if (el && !el.disabled) { el.focus(); return; }
      }
    }

    const at = (path, control) => `[data-path="${path}"] > .fd-head [data-control="${control}"]`;
    const itemPath = (s, i) => `$.sections[${s}].fields[${i}]`;
    const itemFocus = (s, i, first) => [at(itemPath(s, i), first), at(itemPath(s, i), "up"), at(itemPath(s, i), "down"),
      at(itemPath(s, i), "toggle")];

    // Moves item `i` of section `fs` to position `ti` of section `ts`; false when nothing moves.
    function moveField(fs, fi, ts, ti) {
      const from = sections[fs].fields;
      if (fs === ts && (ti === fi || ti === fi + 1)) return false;
      const [item] = from.splice(fi, 1);
      if (!Array.isArray(sections[ts].fields)) sections[ts].fields = [];
      const to = sections[ts].fields;
      let index = fs === ts && fi < ti ? ti - 1 : ti;
      index = Math.max(0, Math.min(index, to.length));
      to.splice(index, 0, item);
      return index;
    }

    // Puts a field at position `ti` of section `ts` (or a new section when there is none to hold it).
    function insertField(ts, ti, key) {
      if (!Array.isArray(body.sections)) body.sections = [];
      let s = ts;
      if (!isObj(body.sections[s])) { body.sections.push({ fields: [] }); s = body.sections.length - 1; }
      if (!Array.isArray(body.sections[s].fields)) body.sections[s].fields = [];
      const list = body.sections[s].fields;
      const index = Math.max(0, Math.min(ti, list.length));
      list.splice(index, 0, key);
      return [s, index];
    }

    // The section the palette's "Add" buttons fill: the one chosen, else the last that can hold fields.
    function addTarget() {
      const chosen = sectionList.indexOf(ui.addTo);
      if (chosen >= 0 && isObj(ui.addTo)) return chosen;
      for (let n = sectionList.length - 1; n >= 0; n--) if (isObj(sectionList[n])) return n;
      return sectionList.length;
    }

    function removeWithUndo(s, i, what) {
      const list = sections[s].fields;
      const item = list[i];
      commit(() => {
        list.splice(i, 1);
        ui.undo = { body, message: `Removed ${what} from the form.`, restore: () => { list.splice(Math.min(i, list.length), 0, item); } };
      }, [at(itemPath(s, i), "remove"), at(itemPath(s, i - 1), "remove"), "[data-fd-undo]"], `Removed ${what} from the form.`);
    }

    // --- drag and drop ---------------------------------------------------------------------------
    let designer = null;
    function startDrag(event, state, source) {
      event.stopPropagation();
      drag = state;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", state.key || "item");
      if (source && event.dataTransfer.setDragImage) event.dataTransfer.setDragImage(source, 16, 16);
      if (source) source.classList.add("is-dragging");
      designer.classList.add("fd-dragging");
    }

    function clearMarks() {
      designer.querySelectorAll(".fd-drop-before, .fd-drop-end, .fd-drop-remove").forEach((el) =>
        el.classList.remove("fd-drop-before", "fd-drop-end", "fd-drop-remove"));
    }

    function endDrag() {
      drag = null;
      if (!designer) return;
      clearMarks();
      designer.classList.remove("fd-dragging");
      designer.querySelectorAll(".is-dragging").forEach((el) => el.classList.remove("is-dragging"));
    }

    // Where in `list` a drop at height `y` lands: before the first item whose middle is below it.
    function dropIndex(list, y) {
      const items = Array.from(list.children).filter((el) => el.dataset.itemIndex !== undefined);
      for (const el of items) {
        const box = el.getBoundingClientRect();
        if (y < box.top + box.height / 2) return { index: Number(el.dataset.itemIndex), before: el };
      }
      return { index: items.length, before: null };
    }

    function dropTarget(card, list, s) {
      card.addEventListener("dragover", (event) => {
        if (!drag) return;
        event.preventDefault();
        event.stopPropagation();
        event.dataTransfer.dropEffect = "move";
        clearMarks();
        const spot = dropIndex(list, event.clientY);
        if (spot.before) spot.before.classList.add("fd-drop-before"); else list.classList.add("fd-drop-end");
      });
      card.addEventListener("dragleave", (event) => {
        if (drag && !card.contains(event.relatedTarget)) clearMarks();
      });
      card.addEventListener("drop", (event) => {
        if (!drag) return;
        event.preventDefault();
        event.stopPropagation();
        const state = drag;
        const { index } = dropIndex(list, event.clientY);
        endDrag();
        if (state.kind === "palette") {
          commit(() => {
            const [ns, ni] = insertField(s, index, state.key);
            state.at = [ns, ni];
          }, null, `Added ${fieldLabel(state.key)} to ${sectionTitle(sectionList[s], s)}.`);
          if (state.at) focusFirst(itemFocus(state.at[0], state.at[1], "toggle"));
        } else {
          let moved = false;
          commit(() => { moved = moveField(state.s, state.i, s, index); return moved; },
            null, `Moved ${state.label} to ${sectionTitle(sectionList[s], s)}.`);
          if (moved !== false) focusFirst(itemFocus(s, moved, "toggle"));
        }
      });
    }

    // --- the form's own settings ------------------------------------------------------------------
    function settingsCard() {
      const entityText = entity ? `${entity.label || body.entity}` : String(body.entity ?? "—");
      return h("section", { className: "fd-card fd-settings", "data-path": "$", "aria-labelledby": "fd-settings-head" },
        h("h2", { id: "fd-settings-head" }, "Form"),
        h("div", { className: "fd-setting", "data-path": "$.label" },
          ed.labelInputs(body, "label", () => ed.changed(), { title: "Form name" })),
        h("div", { className: "fd-setting", "data-path": "$.description" },
          ed.labelInputs(body, "description", () => ed.changed(), { title: "Description", multiline: true })),
        h("p", { className: "fd-entity", "data-path": "$.entity" },
          h("span", { className: "label" }, "Records of "),
          h("span", { className: "fd-entity-name", "data-fd-entity": "" }, entityText), " ",
          h("code", { className: "key" }, String(body.entity ?? "")),
          entity ? null : h("span", { className: "error" }, " This app has no such entity."),
          h("span", { className: "help fd-entity-note" }, "A form shows the fields of one entity; it cannot change."),
        ));
    }

    // --- sections ------------------------------------------------------------------------------------
    function sectionsArea() {
      const area = h("section", { className: "fd-sections-area", "aria-labelledby": "fd-sections-head" });
      area.append(h("div", { className: "fd-sections-head", "data-path": "$.sections" },
        h("h2", { id: "fd-sections-head" }, "Sections ", h("span", { className: "fd-count" }, String(sectionList.length))),
        h("p", { className: "help" }, "Drag fields from the list into a section, or use the buttons.")));
      if (sections === null && body.sections !== undefined) {
        area.append(h("p", { className: "error" }, "The sections are not a list; fix them in JSON mode."));
        return area;
      }
      const list = h("div", { className: "fd-sections", "data-fd-sections": "" });
      sectionList.forEach((section, s) => list.append(sectionCard(section, s)));
      if (sections) ed.sortable(list, (from, to) => commit(() => ed.moveItem(sections, from, to),
        [at(`$.sections[${to}]`, "toggle")], `Moved section ${sectionTitle(sections[from], from)}.`));
      if (!sectionList.length) area.append(h("p", { className: "fd-empty-note help" }, "No sections yet: add one, then add fields to it."));
      area.append(list, h("button", { type: "button", className: "fd-add-section", "data-fd-add-section": "",
        onclick: () => {
          const section = { label: "New section", fields: [] };
          commit(() => {
            if (!Array.isArray(body.sections)) body.sections = [];
            body.sections.push(section);
            ui.settings.add(section);
          }, null, "Added a section.");
          const input = root.querySelector(`[data-path="$.sections[${body.sections.length - 1}].label"] input`);
          if (input) { input.focus(); input.select(); }
        } }, "+ Add section"));
      return area;
    }

    function sectionCard(section, s) {
      const path = `$.sections[${s}]`;
      const title = sectionTitle(section, s);
      const card = h("section", { className: "fd-section", "data-path": path, "data-sort-index": s,
        "data-section-index": s, "aria-label": `Section ${s + 1}: ${title}` });
      const [up, down] = ed.moveButtons(sectionList, s, `section ${title}`,
        (from, to) => commit(() => ed.moveItem(sections, from, to), [at(`$.sections[${to}]`, from < to ? "down" : "up"),
          at(`$.sections[${to}]`, from < to ? "up" : "down")], `Moved section ${title} to position ${to + 1}.`));
      up.dataset.control = "up";
      down.dataset.control = "down";
      const remove = h("button", { type: "button", className: "small icon danger", "data-control": "remove",
        "aria-label": `Remove section ${title}`, title: "Remove section",
        onclick: () => commit(() => {
          sections.splice(s, 1);
          ui.undo = { body, message: `Removed section ${title}; its fields are back in the list.`,
            restore: () => sections.splice(Math.min(s, sections.length), 0, section) };
        }, ["[data-fd-undo]"], `Removed section ${title}.`) }, "✕");
      if (!isObj(section)) {
        card.append(h("div", { className: "fd-head fd-section-head" },
          h("h3", { className: "fd-section-title" }, title),
          h("span", { className: "fd-actions" }, up, down, remove)),
        h("p", { className: "error" }, "This section is not an object; fix it in JSON mode."));
        return card;
      }
      const open = ui.settings.has(section);
      const settingsId = `fd-section-settings-${s}`;
      const items = Array.isArray(section.fields) ? section.fields : [];
      const heading = h("span", { className: "fd-section-name" }, title);
      const badges = h("span", { className: "fd-badges" });
      const paintSection = () => {
        heading.textContent = sectionTitle(section, s);
        badges.replaceChildren(...[
          section.help ? h("span", { className: "fd-badge" }, "Help") : null,
          section.visible_when !== undefined ? h("span", { className: "fd-badge fd-badge-when" }, "Conditional") : null,
        ].filter(Boolean));
      };
      paintSection();
      const toggle = h("button", { type: "button", className: "fd-section-toggle", "data-control": "toggle",
        "aria-expanded": String(open), "aria-controls": open ? settingsId : null,
        title: open ? "Hide the section's settings" : "Edit the section's title, help and condition",
        onclick: () => {
          if (open) ui.settings.delete(section); else ui.settings.add(section);
          ed.rerender();
          focusFirst(at(path, "toggle"));
        } }, h("span", { className: "fd-chevron", "aria-hidden": "true" }, open ? "▾" : "▸"), heading);
      const handle = h("span", { className: "handle fd-handle", "aria-hidden": "true", title: "Drag to reorder the section" }, "⠿");
      const head = h("div", { className: "fd-head fd-section-head", draggable: "true" },
        handle, h("h3", { className: "fd-section-title" }, toggle), badges,
        h("span", { className: "fd-field-count" }, `${items.length} item${items.length === 1 ? "" : "s"}`),
        h("span", { className: "fd-actions" }, up, down, remove));
      head.addEventListener("dragstart", (event) => { // the section itself moves (ed.sortable), not a field
        drag = null;
        if (event.dataTransfer.setDragImage) event.dataTransfer.setDragImage(card, 20, 20);
      });
      card.append(head);
      if (open) {
        card.append(h("div", { className: "fd-section-settings", id: settingsId },
          h("div", { "data-path": `${path}.label` },
            ed.labelInputs(section, "label", () => { paintSection(); ed.changed(); }, { title: "Section title" })),
          h("div", { "data-path": `${path}.help` },
            ed.labelInputs(section, "help", () => { paintSection(); ed.changed(); }, { title: "Help", multiline: true })),
          B.conditionBuilder(section, "visible_when", condFields(null), operators,
            () => { paintSection(); ed.changed(); }, `${path}.visible_when`, "Show this section when")));
      }
      const list = h("ol", { className: "fd-items", "aria-label": `Fields in section ${title}`, "data-fd-items": "" });
      if (!Array.isArray(section.fields) && section.fields !== undefined) {
        card.append(h("p", { className: "error" }, "The fields of this section are not a list; fix them in JSON mode."));
      }
      items.forEach((item, i) => list.append(itemRow(section, s, i)));
      if (!items.length) {
        list.append(h("li", { className: "fd-empty" }, "No fields yet. Drag fields here, or use “Add” in the list of fields."));
      }
      card.append(list);
      dropTarget(card, list, s);
      card.append(h("div", { className: "fd-section-foot" },
        h("button", { type: "button", className: "small", "data-fd-add-text": "",
          "aria-label": `Add a text block to section ${title}`,
          onclick: () => {
            const block = { text: "" };
            commit(() => {
              if (!Array.isArray(section.fields)) section.fields = [];
              section.fields.push(block);
              ui.openText.add(block);
            }, null, `Added a text block to ${title}.`);
            const input = root.querySelector(`[data-path="${itemPath(s, section.fields.length - 1)}"] input`);
            if (input) input.focus();
          } }, "+ Text")));
      return card;
    }

    // --- placed items ---------------------------------------------------------------------------------
    // Edits the placement of field `i` through a stand-in that turns a plain key into an object when a
    // setting is given and back into the key when the last one is cleared.
    function placement(section, i, key) {
      const current = () => section.fields[i];
      const ensure = () => {
        if (typeof section.fields[i] === "string") section.fields[i] = { field: section.fields[i] };
        return section.fields[i];
      };
      const tidy = () => {
        const item = current();
        if (isObj(item) && item.field === key && Object.keys(item).length === 1) section.fields[i] = key;
      };
      return new Proxy({}, {
        get: (_, prop) => (isObj(current()) ? current()[prop] : undefined),
        set: (_, prop, value) => { ensure()[prop] = value; return true; },
        deleteProperty: (_, prop) => { if (isObj(current())) { delete current()[prop]; tidy(); } return true; },
        has: (_, prop) => isObj(current()) && prop in current(),
      });
    }

    function moveSelect(s, i, what) {
      if (sectionList.filter(isObj).length < 2) return null;
      const select = h("select", { className: "fd-move-to", "data-control": "move-to", "aria-label": `Move ${what} to section`,
        title: "Move to another section" },
        h("option", { value: "", selected: true }, "Move to…"),
        ...sectionList.map((section, n) => (n === s || !isObj(section) ? null
          : h("option", { value: n }, `${n + 1}. ${sectionTitle(section, n)}`))));
      select.addEventListener("change", () => {
        if (select.value === "") return;
        const target = Number(select.value);
        let moved = false;
        commit(() => {
          moved = moveField(s, i, target, Array.isArray(sections[target].fields) ? sections[target].fields.length : 0);
          return moved;
        }, null, `Moved ${what} to ${sectionTitle(sectionList[target], target)}.`);
        if (moved !== false) focusFirst(itemFocus(target, moved, "move-to"));
      });
      return select;
    }

    function itemControls(section, s, i, what) {
      const list = section.fields;
      const [up, down] = ed.moveButtons(list, i, what, (from, to) => commit(() => ed.moveItem(list, from, to),
        [at(itemPath(s, to), from < to ? "down" : "up"), at(itemPath(s, to), from < to ? "up" : "down")],
        `Moved ${what} to position ${to + 1} of ${list.length}.`));
      up.dataset.control = "up";
      down.dataset.control = "down";
      const remove = h("button", { type: "button", className: "small icon", "data-control": "remove",
        "aria-label": `Remove ${what} from the form`, title: "Remove from the form",
        onclick: () => removeWithUndo(s, i, what) }, "✕");
      return h("span", { className: "fd-actions" }, up, down, moveSelect(s, i, what), remove);
    }

    function itemRow(section, s, i) {
      const item = section.fields[i];
      const path = itemPath(s, i);
      const kind = kindOf(item);
      const row = h("li", { className: `fd-item fd-item-${kind}`, "data-path": path, "data-item-index": i });
      if (kind === "field") return fieldRow(row, section, s, i, keyOf(item));
      if (kind === "text") return textRow(row, section, s, i, item);
      const what = `item ${i + 1}`;
      row.append(h("div", { className: "fd-head" },
        h("span", { className: "fd-item-main" }, h("span", { className: "fd-item-label" }, "Unrecognised item"),
          h("code", { className: "fd-json" }, JSON.stringify(item) ?? String(item))),
        itemControls(section, s, i, what)));
      return row;
    }

    function dragHead(head, row, state) {
      head.setAttribute("draggable", "true");
      head.addEventListener("dragstart", (event) => startDrag(event, state, row));
      head.addEventListener("dragend", endDrag);
    }

    function fieldRow(row, section, s, i, key) {
      const field = byKey.get(key);
      const label = fieldLabel(key);
      const open = ui.open.has(`field:${key}`);
      const detailsId = `fd-item-${s}-${i}`;
      row.dataset.key = key;
      if (open) row.classList.add("open");
      const badges = h("span", { className: "fd-badges" });
      const paint = () => {
        const item = section.fields[i];
        const o = isObj(item) ? item : {};
        badges.replaceChildren(...[
          WIDTH_BADGES[o.width] ? h("span", { className: "fd-badge" }, WIDTH_BADGES[o.width]) : null,
          o.help ? h("span", { className: "fd-badge" }, "Help") : null,
          o.visible_when !== undefined ? h("span", { className: "fd-badge fd-badge-when" }, "Conditional") : null,
        ].filter(Boolean));
      };
      paint();
      const toggle = h("button", { type: "button", className: "fd-item-toggle", "data-control": "toggle",
        "aria-expanded": String(open), "aria-controls": open ? detailsId : null,
        title: open ? "Hide the settings" : "Width, help and condition",
        onclick: () => {
          if (open) ui.open.delete(`field:${key}`); else ui.open.add(`field:${key}`);
          ed.rerender();
          focusFirst(at(row.dataset.path, "toggle"));
        } },
      h("span", { className: "fd-chevron", "aria-hidden": "true" }, open ? "▾" : "▸"),
      h("span", { className: "fd-item-label" }, label),
      field && field.required ? [h("span", { className: "req", title: "Required", "aria-hidden": "true" }, " *"),
        h("span", { className: "visually-hidden" }, "(required)")] : null,
      h("span", { className: "fd-type" }, field ? typeLabels.get(field.type) || field.type : "not a field of this entity"),
      badges);
      const head = h("div", { className: "fd-head" },
        h("span", { className: "handle fd-handle", "aria-hidden": "true", title: "Drag to move" }, "⠿"),
        toggle, itemControls(section, s, i, label));
      dragHead(head, row, { kind: "item", s, i, key, label });
      if (!field) row.classList.add("fd-unknown");
      row.append(head);
      if (!open) return row;
      const holder = placement(section, i, key);
      const widthId = B.nextId("fd-width");
      const width = h("select", { id: widthId, "data-fd-width": "" },
        ...WIDTHS.map(([value, text]) => h("option", { value, selected: (holder.width ?? "") === value || null }, text)));
      if (holder.width !== undefined && !WIDTHS.some(([value]) => value === holder.width)) {
        width.prepend(h("option", { value: String(holder.width), selected: true }, String(holder.width)));
      }
      width.addEventListener("change", () => {
        if (width.value === "") delete holder.width; else holder.width = width.value;
        paint();
        ed.changed();
      });
      row.append(h("div", { className: "fd-details", id: detailsId },
        h("p", { className: "fd-key help" }, "Key ", h("code", { className: "key" }, key)),
        h("div", { className: "fd-width", "data-path": `${row.dataset.path}.width` },
          h("label", { className: "label", for: widthId }, "Width"), width,
          h("span", { className: "help" }, "Automatic lets the field's type decide. On phones every field is full width.")),
        h("div", { "data-path": `${row.dataset.path}.help` },
          ed.labelInputs(holder, "help", () => { paint(); ed.changed(); }, { title: "Help", multiline: true })),
        B.conditionBuilder(holder, "visible_when", condFields(key), operators, () => { paint(); ed.changed(); },
          `${row.dataset.path}.visible_when`, "Show this field when")));
      return row;
    }

    function textRow(row, section, s, i, item) {
      const open = ui.openText.has(item);
      const detailsId = `fd-item-${s}-${i}`;
      if (open) row.classList.add("open");
      const preview = h("span", { className: "fd-item-label fd-text-preview" });
      const paint = () => { preview.textContent = ed.text(item.text, locale) || "(empty)"; };
      paint();
      const what = `text block ${i + 1}`;
      const toggle = h("button", { type: "button", className: "fd-item-toggle", "data-control": "toggle",
        "aria-expanded": String(open), "aria-controls": open ? detailsId : null,
        title: open ? "Hide the text's editor" : "Edit the text",
        onclick: () => {
          if (open) ui.openText.delete(item); else ui.openText.add(item);
          ed.rerender();
          focusFirst(at(row.dataset.path, "toggle"));
        } },
      h("span", { className: "fd-chevron", "aria-hidden": "true" }, open ? "▾" : "▸"),
      h("span", { className: "fd-type fd-type-text" }, "Text"), preview);
      const head = h("div", { className: "fd-head" },
        h("span", { className: "handle fd-handle", "aria-hidden": "true", title: "Drag to move" }, "⠿"),
        toggle, itemControls(section, s, i, what));
      dragHead(head, row, { kind: "item", s, i, label: what });
      row.append(head);
      if (open) {
        // Clearing both languages leaves an empty text rather than a block without one.
        const holder = new Proxy(item, { deleteProperty: (target, prop) => { target[prop] = ""; return true; } });
        row.append(h("div", { className: "fd-details", id: detailsId, "data-path": `${row.dataset.path}.text` },
          ed.labelInputs(holder, "text", () => { paint(); ed.changed(); }, { title: "Text", multiline: true }),
          h("p", { className: "help" }, "A line of description shown between the fields.")));
      }
      return row;
    }

    // --- the palette: the entity's fields not on the form ----------------------------------------------
    function palette() {
      const free = entityFields.filter((f) => !placed.has(f.key));
      free.sort((a, b) => Number(Boolean(b.required)) - Number(Boolean(a.required)));
      const pane = h("aside", { className: "fd-card fd-palette", "aria-labelledby": "fd-palette-head", "data-fd-palette": "" },
        h("h2", { id: "fd-palette-head" }, "Fields ", h("span", { className: "fd-count" }, String(free.length))),
        h("p", { className: "help" }, entity ? `Fields of ${entity.label || body.entity} not on this form yet.` :
          "Choose an existing entity to see its fields."));
      if (sectionList.filter(isObj).length > 1) {
        const id = B.nextId("fd-add-to");
        const target = addTarget();
        const select = h("select", { id, "data-fd-add-to": "" },
          ...sectionList.map((section, n) => (isObj(section)
            ? h("option", { value: n, selected: n === target || null }, `${n + 1}. ${sectionTitle(section, n)}`) : null)));
        select.addEventListener("change", () => { ui.addTo = sectionList[Number(select.value)]; });
        pane.append(h("div", { className: "fd-add-to" }, h("label", { className: "label", for: id }, "Add to section"), select));
      }
      const list = h("ul", { className: "fd-chips", "aria-label": "Fields not on the form" });
      free.forEach((f, n) => {
        const chip = h("li", { className: `fd-chip${f.required ? " fd-chip-required" : ""}`, draggable: "true", "data-key": f.key },
          h("span", { className: "handle fd-handle", "aria-hidden": "true" }, "⠿"),
          h("span", { className: "fd-chip-text" },
            h("span", { className: "fd-item-label" }, f.label || f.key),
            f.required ? h("span", { className: "req", "aria-hidden": "true" }, " *") : null,
            h("span", { className: "fd-type" }, typeLabels.get(f.type) || f.type),
            f.required ? h("span", { className: "fd-must" }, "Required: place it on the form") : null),
          h("button", { type: "button", className: "small", "data-fd-add": f.key, "aria-label": `Add ${f.label || f.key} to the form`,
            onclick: () => {
              const s = addTarget();
              const next = free[n + 1] || free[n - 1];
              commit(() => { insertField(s, Infinity, f.key); },
                next ? [`[data-fd-add="${next.key}"]`] : ["[data-fd-add-section]"],
                `Added ${f.label || f.key} to ${sectionTitle(sectionList[s], s)}.`);
            } }, "Add"));
        chip.addEventListener("dragstart", (event) => startDrag(event, { kind: "palette", key: f.key }, chip));
        chip.addEventListener("dragend", endDrag);
        list.append(chip);
      });
      pane.append(list);
      if (entity && !free.length) pane.append(h("p", { className: "fd-all-placed help" }, "Every field is on the form."));
      pane.append(h("p", { className: "fd-drop-hint help", "aria-hidden": "true" }, "Drop a field here to take it off the form."));
      // Dropping a placed field here takes it off the form.
      pane.addEventListener("dragover", (event) => {
        if (!drag || drag.kind !== "item" || !drag.key) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = "move";
        pane.classList.add("fd-drop-remove");
      });
      pane.addEventListener("dragleave", (event) => { if (!pane.contains(event.relatedTarget)) pane.classList.remove("fd-drop-remove"); });
      pane.addEventListener("drop", (event) => {
        if (!drag || drag.kind !== "item" || !drag.key) return;
        event.preventDefault();
        const state = drag;
        endDrag();
        removeWithUndo(state.s, state.i, state.label);
      });
      return pane;
    }

    // --- the page ----------------------------------------------------------------------------------------
    designer = h("div", { className: "form-designer", "data-form-designer": "" });
    if (ui.undo) {
      const undo = ui.undo;
      designer.append(h("div", { className: "fd-undo", role: "status" }, h("span", {}, undo.message),
        h("button", { type: "button", className: "small", "data-fd-undo": "",
          onclick: () => { ui.undo = null; commit(() => undo.restore(), null, "Restored."); } }, "Undo"),
        h("button", { type: "button", className: "small link", "aria-label": "Dismiss",
          onclick: () => { ui.undo = null; ed.rerender(); } }, "Dismiss")));
    }
    designer.append(settingsCard(), h("div", { className: "fd-layout" }, sectionsArea(), palette()));
    root.append(designer);
  };
})();
