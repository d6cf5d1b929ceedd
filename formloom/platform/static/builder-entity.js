// The entity editor: fields of every type with their options, sub-table columns, formulas with a
// field picker, conditions; plus the app's own settings. Keys follow labels (Chinese in pinyin)
// until the field is published, then they are frozen.
"use strict";

(() => {
  const B = window.FormloomBuilder;
  const { h } = B;
  const controls = B.controls("cb");
  const expanded = new Set();
  const autoKey = new WeakSet();
  const COMMON = new Set(["key", "type", "label", "help", "required", "default", "placeholder", "visible_when",
    "required_when", "readonly_when", "hidden_value", "unique", "default_from", "default_formula"]);
  const CONDITIONS = [["visible_when", "Show this field when"], ["required_when", "Required when"],
    ["readonly_when", "Read-only when"]];
  const TEXTUAL = ["text", "textarea", "email", "phone", "url"];
  const OPTION_TITLES = {
    max_length: "Longest text (characters)", min_length: "Shortest text (characters)", pattern: "Pattern",
    min: "Smallest value", max: "Largest value", precision: "Decimal places", currency: "Currency code",
    filter_by: "Choices depend on field", min_items: "At least (choices)", max_items: "At most (choices)",
    fill_locked: "Copied values cannot be edited", min_rows: "At least (rows)", max_rows: "At most (rows)",
    max_files: "Most files", max_size_mb: "Largest file (MB)", accept: "Accepted file types", style: "Style",
    relation: "Through relation field", field: "Field of the related record", expression: "Formula",
    result: "Result type",
  };

  function typeInfo(ed, name) {
    return ed.data.field_types.find((t) => t.type === name) || { type: name, label: name, options: { properties: {} }, example: {} };
  }

  // The fields conditions can test: this draft's fields, with the kinds the server uses.
  function conditionFields(ed, fields) {
    const known = {};
    const summary = ed.data.entities[ed.body.key];
    if (summary) summary.fields.forEach((f) => { known[f.key] = f.kind; });
    return fields.filter((f) => f && typeof f.key === "string").map((f) => ({
      key: f.key, label: `${B.text(f.label, ed.locale) || f.key}`,
      kind: known[f.key] || typeInfo(ed, f.type).kind || "text",
      options: (f.options || []).map((o) => ({ value: o.value, label: B.text(o.label, ed.locale) || o.value })),
    }));
  }

  function publishedFieldKeys(ed, path) {
    // Sub-table columns are frozen when the published body has them under the same table.
    const published = ed.data.published;
    if (!published || !Array.isArray(published.fields)) return [];
    const match = /^\$\.fields\[(\d+)\]\.fields$/.exec(path);
    if (!match) return ed.data.frozen_keys;
    const table = ed.body.fields[Number(match[1])];
    const old = published.fields.find((f) => f.key === table.key);
    return old && Array.isArray(old.fields) ? old.fields.map((c) => c.key) : [];
  }

  // --- small inputs -------------------------------------------------------------------------
  function row(labelText, control, help) {
    const id = control.id || B.nextId("in");
    control.id = id;
    return h("div", { className: "b-row" }, h("label", { className: "label", for: id }, labelText), control,
      help ? h("p", { className: "help" }, help) : null);
  }

  // A flag stored as `true`; unticking removes it.
  function checkbox(obj, prop, labelText, ed, onToggle) {
    return controls.checkbox(labelText, obj[prop] === true, (on) => {
      if (on) obj[prop] = true; else delete obj[prop];
      if (onToggle) onToggle(); else ed.changed();
    }, null, "check");
  }

  function schemaInput(obj, prop, schema, ed) {
    const title = OPTION_TITLES[prop] || prop.replace(/_/g, " ");
    if (schema.type === "boolean") return checkbox(obj, prop, title, ed);
    if (Array.isArray(schema.enum)) {
      const select = h("select", {}, h("option", { value: "" }, "—"),
        ...schema.enum.map((v) => h("option", { value: v, selected: obj[prop] === v || null }, String(v))));
      select.addEventListener("change", () => {
        if (select.value === "") delete obj[prop]; else obj[prop] = select.value;
        ed.changed();
      });
      return row(title, select);
    }
    if (schema.type === "integer" || schema.type === "number") {
      const input = h("input", { type: "number", value: obj[prop] ?? "", step: schema.type === "integer" ? 1 : "any" });
      input.addEventListener("input", () => {
        if (input.value === "") delete obj[prop];
        else if (!Number.isNaN(Number(input.value))) obj[prop] = Number(input.value);
        ed.changed();
      });
      return row(title, input);
    }
    if (schema.type === "string" || (schema.anyOf && prop !== "fill")) {
      const input = h("input", { value: typeof obj[prop] === "string" ? obj[prop] : (obj[prop] === undefined ? "" : JSON.stringify(obj[prop])) });
      input.addEventListener("input", () => {
        if (input.value === "") delete obj[prop]; else obj[prop] = input.value;
        ed.changed();
      });
      return row(title, input);
    }
    const input = h("input", { className: "json-inline", value: obj[prop] === undefined ? "" : JSON.stringify(obj[prop]) });
    input.addEventListener("input", () => {
      if (input.value.trim() === "") { delete obj[prop]; ed.changed(); return; }
      try { obj[prop] = JSON.parse(input.value); input.removeAttribute("aria-invalid"); ed.changed(); }
      catch (e) { input.setAttribute("aria-invalid", "true"); }
    });
    return row(`${title} (JSON)`, input);
  }

  // --- options of a choice field --------------------------------------------------------------
  function optionsEditor(field, path, ed) {
    const options = field.options || (field.options = []);
    const box = h("fieldset", { className: "b-options", "data-path": `${path}.options` }, h("legend", {}, "Choices"));
    const list = h("ol", { className: "b-option-list" });
    const move = (from, to) => { B.moveItem(options, from, to); ed.changed(); ed.rerender(); };
    options.forEach((option, n) => {
      const item = h("li", { className: "b-option", draggable: "true", "data-sort-index": n, "data-path": `${path}.options[${n}]` });
      const value = h("input", { value: option.value ?? "", "aria-label": `Stored value of choice ${n + 1}`, className: "b-option-value" });
      value.addEventListener("input", () => { option.value = value.value; autoKey.delete(option); ed.changed(); });
      const en = h("input", { value: B.labelValue(option.label, "en"), "aria-label": `Choice ${n + 1} (English)`, lang: "en" });
      const zh = h("input", { value: B.labelValue(option.label, "zh-CN"), "aria-label": `Choice ${n + 1} (中文)`, lang: "zh-CN" });
      const onLabel = (lang, input) => async () => {
        const next = B.withLabel(option.label, lang, input.value);
        if (next === undefined) delete option.label; else option.label = next;
        ed.changed();
        const source = B.labelValue(option.label, "en") || B.labelValue(option.label, "zh-CN");
        if (autoKey.has(option) && source) {
          const taken = options.filter((o) => o !== option).map((o) => o.value);
          option.value = await B.keyFor(source, taken, "option");
          value.value = option.value;
          ed.changed();
        }
      };
      en.addEventListener("input", onLabel("en", en));
      zh.addEventListener("input", onLabel("zh-CN", zh));
      const hasColor = typeof option.color === "string";
      const colorToggle = h("input", { type: "checkbox", checked: hasColor, "aria-label": `Colour for choice ${n + 1}` });
      const color = h("input", { type: "color", value: hasColor ? option.color : "#2563eb", disabled: !hasColor,
        "aria-label": `Colour of choice ${n + 1}` });
      colorToggle.addEventListener("change", () => {
        if (colorToggle.checked) option.color = color.value; else delete option.color;
        color.disabled = !colorToggle.checked;
        ed.changed();
      });
      color.addEventListener("input", () => { option.color = color.value; ed.changed(); });
      item.append(h("span", { className: "handle", "aria-hidden": "true" }, "⋮⋮"), en, zh, value,
        h("span", { className: "b-color" }, colorToggle, color),
        ...B.moveButtons(options, n, `choice ${n + 1}`, move),
        h("button", { type: "button", className: "small icon", "aria-label": `Remove choice ${n + 1}`,
          onclick: () => { options.splice(n, 1); ed.changed(); ed.rerender(); } }, "✕"));
      list.append(item);
    });
    B.sortable(list, move);
    const add = h("button", { type: "button", className: "small", "data-add-option": "", onclick: () => {
      const taken = options.map((o) => o.value);
      let n = options.length + 1;
      while (taken.includes(`option_${n}`)) n++;
      const option = { value: `option_${n}`, label: `Option ${n}` };
      autoKey.add(option);
      options.push(option);
      ed.changed();
      ed.rerender();
      const inputs = document.querySelectorAll(`[data-path="${path}.options[${options.length - 1}]"] input`);
      if (inputs[0]) { inputs[0].focus(); inputs[0].select(); }
    } }, "+ Choice");
    box.append(h("p", { className: "help" }, "Label in English and Chinese, the value stored (made from the label), and an optional colour."),
      list, add);
    return box;
  }

  // --- formulas ---------------------------------------------------------------------------------
  function formulaEditor(field, prop, path, ed, fields) {
    const id = B.nextId("formula");
    const area = h("textarea", { id, rows: 3, className: "formula", spellcheck: "false", value: field[prop] || "" });
    area.addEventListener("input", () => { field[prop] = area.value; ed.changed(); });
    const picker = h("select", { "aria-label": "Insert a field into the formula" },
      h("option", { value: "" }, "Insert field…"),
      ...fields.filter((f) => f.key !== field.key).map((f) => h("option", { value: f.key }, `${f.label} (${f.key})`)));
    picker.addEventListener("change", () => {
      if (!picker.value) return;
      const at = area.selectionStart ?? area.value.length;
      area.value = area.value.slice(0, at) + picker.value + area.value.slice(area.selectionEnd ?? at);
      area.focus();
      area.setSelectionRange(at + picker.value.length, at + picker.value.length);
      field[prop] = area.value;
      picker.value = "";
      ed.changed();
    });
    return h("div", { className: "b-formula", "data-path": `${path}.${prop}` },
      h("label", { className: "label", for: id }, prop === "expression" ? "Formula" : "Default formula"), area,
      h("div", { className: "b-inline" }, picker,
        h("span", { className: "help" }, "Checked as you type: problems appear below and in the list.")));
  }

  // --- {own field: other field} maps (relation fill / filter) -----------------------------------
  function pairsEditor(field, prop, path, ed, ownFields) {
    const target = ed.data.entities[field.target];
    const theirs = target ? target.fields : [];
    const map = field[prop] || {};
    const title = prop === "fill" ? "Copy from the chosen record" : "Offer only records where";
    const box = h("fieldset", { className: "b-pairs", "data-path": `${path}.${prop}` }, h("legend", {}, title));
    const entries = Object.entries(map);
    const write = (pairs) => {
      if (pairs.length) field[prop] = Object.fromEntries(pairs); else delete field[prop];
      ed.changed();
    };
    entries.forEach(([left, right], n) => {
      const [ownKey, theirKey] = prop === "fill" ? [left, right] : [right, left];
      const own = h("select", { "aria-label": "Field of this entity" },
        ...ownFields.map((f) => h("option", { value: f.key, selected: f.key === ownKey || null }, f.label)));
      const other = h("select", { "aria-label": "Field of the related entity" },
        ...theirs.map((f) => h("option", { value: f.key, selected: f.key === theirKey || null }, f.label)));
      const update = () => {
        const pairs = Object.entries(field[prop] || {});
        pairs[n] = prop === "fill" ? [own.value, other.value] : [other.value, own.value];
        write(pairs);
      };
      own.addEventListener("change", update);
      other.addEventListener("change", update);
      box.append(h("div", { className: "b-inline" }, own, prop === "fill" ? " ← " : " = ", other,
        h("button", { type: "button", className: "small icon", "aria-label": "Remove",
          onclick: () => { const pairs = Object.entries(field[prop] || {}); pairs.splice(n, 1); write(pairs); ed.rerender(); } }, "✕")));
    });
    if (ownFields.length && theirs.length) {
      box.append(h("button", { type: "button", className: "small", onclick: () => {
        const pairs = Object.entries(field[prop] || {});
        pairs.push(prop === "fill" ? [ownFields[0].key, theirs[0].key] : [theirs[0].key, ownFields[0].key]);
        write(pairs);
        ed.rerender();
      } }, "+ Pair"));
    } else {
      box.append(h("p", { className: "help" }, "Choose the related entity first."));
    }
    return box;
  }

  // --- default value ----------------------------------------------------------------------------
  function defaultEditor(field, ed) {
    const kind = typeInfo(ed, field.type).kind;
    if (["table", "file", "image", "signature", "formula", "lookup", "serial", "address", "geolocation"].includes(field.type)) return null;
    if (["user", "users", "date", "datetime"].includes(field.type)) {
      const choices = field.type.startsWith("user") ? [["current_user", "The person filling the form"]]
        : field.type === "date" ? [["today", "Today"]] : [["now", "Now"]];
      const select = h("select", {}, h("option", { value: "" }, "No default"),
        ...choices.map(([v, t]) => h("option", { value: v, selected: field.default_from === v || null }, t)));
      select.addEventListener("change", () => {
        if (select.value) field.default_from = select.value; else delete field.default_from;
        ed.changed();
      });
      return row("Default", select);
    }
    if (field.type === "select" || field.type === "boolean") {
      const choices = field.type === "boolean" ? [[true, "Yes"], [false, "No"]]
        : (field.options || []).map((o) => [o.value, B.text(o.label, ed.locale) || o.value]);
      const select = h("select", {}, h("option", { value: "" }, "No default"),
        ...choices.map(([v, t], n) => h("option", { value: String(n), selected: field.default === v || null }, t)));
      select.addEventListener("change", () => {
        if (select.value === "") delete field.default; else field.default = choices[Number(select.value)][0];
        ed.changed();
      });
      return row("Default", select);
    }
    if (typeof field.default === "object" && field.default !== null) return schemaInput(field, "default", {}, ed);
    const input = h("input", { value: field.default ?? "", type: field.type === "date" ? "date" : "text" });
    input.addEventListener("input", () => {
      if (input.value === "") delete field.default;
      else field.default = kind === "number" && field.type === "integer" && /^-?\d+$/.test(input.value) ? Number(input.value) : input.value;
      ed.changed();
    });
    return row("Default", input);
  }

  // --- one field ----------------------------------------------------------------------------
  function fieldSettings(field, path, ed, fields, frozen, nested) {
    const info = typeInfo(ed, field.type);
    const box = h("div", { className: "b-field-settings" });
    box.append(B.labelInputs(field, "label", async (lang, value) => {
      ed.changed();
      const card = box.closest("[data-field-card]");
      if (card) card.querySelector("[data-field-title]").textContent = B.text(field.label, ed.locale) || field.key;
      const source = B.labelValue(field.label, "en") || B.labelValue(field.label, "zh-CN");
      if (autoKey.has(field) && !frozen && source) {
        const taken = fields.filter((f) => f !== field).map((f) => f.key);
        const key = await B.keyFor(source, taken, "field");
        if (autoKey.has(field)) { field.key = key; keyInput.value = key; ed.changed(); }
      }
    }));
    const keyInput = h("input", { value: field.key ?? "", readonly: frozen || null, pattern: "[a-z][a-z0-9_]{0,63}", "data-field-key": "" });
    keyInput.addEventListener("input", () => { field.key = keyInput.value; autoKey.delete(field); ed.changed(); });
    box.append(row("Key", keyInput, frozen ? "Published: the key is fixed so stored values and integrations keep working."
      : "Made from the label; used by formulas, the API and imports."));
    const typeSelect = h("select", { disabled: frozen || null, "data-field-type": "" },
      ...ed.data.field_types.filter((t) => !nested || !["table"].includes(t.type))
        .map((t) => h("option", { value: t.type, selected: t.type === field.type || null }, t.label)));
    typeSelect.addEventListener("change", () => {
      const next = typeInfo(ed, typeSelect.value);
      const allowed = new Set([...COMMON, ...Object.keys(next.options.properties || {})]);
      for (const prop of Object.keys(field)) if (!allowed.has(prop)) delete field[prop];
      field.type = typeSelect.value;
      for (const [prop, value] of Object.entries(next.example || {})) {
        if (!(prop in field)) field[prop] = JSON.parse(JSON.stringify(value));
      }
      (field.options || []).forEach((o) => autoKey.add(o));
      if (field.type === "relation" || field.type === "relations") {
        const targets = Object.keys(ed.data.entities);
        if (targets.length && !targets.includes(field.target)) field.target = targets.find((t) => t !== ed.body.key) || targets[0];
      }
      ed.changed();
      ed.rerender();
    });
    box.append(row("Type", typeSelect, frozen ? "Published: the type is fixed." : null));
    if (!info.computed) {
      box.append(h("div", { className: "b-inline" }, checkbox(field, "required", "Required", ed),
        TEXTUAL.includes(field.type) ? checkbox(field, "unique", "No two records may share a value", ed) : null));
    }
    box.append(B.labelInputs(field, "help", () => ed.changed(), { title: "Help text" }));
    if (TEXTUAL.includes(field.type) || ["integer", "decimal", "currency", "percent"].includes(field.type)) {
      box.append(B.labelInputs(field, "placeholder", () => ed.changed(), { title: "Placeholder" }));
    }
    const dflt = defaultEditor(field, ed);
    if (dflt) box.append(dflt);
    const props = info.options.properties || {};
    for (const [prop, schema] of Object.entries(props)) {
      if (COMMON.has(prop)) continue;
      if (prop === "options") box.append(optionsEditor(field, path, ed));
      else if (prop === "target") {
        const select = h("select", { "data-field-target": "" }, h("option", { value: "" }, "—"),
          ...Object.entries(ed.data.entities).map(([k, e]) => h("option", { value: k, selected: field.target === k || null }, `${e.label} (${k})`)));
        select.addEventListener("change", () => { field.target = select.value; ed.changed(); ed.rerender(); });
        box.append(h("div", { "data-path": `${path}.target` }, row("Related entity", select)));
      } else if (prop === "fields" && field.type === "table") {
        box.append(h("fieldset", { className: "b-columns", "data-path": `${path}.fields` }, h("legend", {}, "Columns"),
          fieldList(field.fields || (field.fields = []), `${path}.fields`, ed, true)));
      } else if (prop === "expression") {
        box.append(formulaEditor(field, "expression", path, ed, conditionFields(ed, fields)));
      } else if (prop === "fill" || prop === "filter") {
        box.append(pairsEditor(field, prop, path, ed, conditionFields(ed, fields)));
      } else if (prop === "filter_by" || prop === "relation" || (prop === "field" && field.type === "lookup")) {
        const pool = prop === "field" ? ((ed.data.entities[(fields.find((f) => f.key === field.relation) || {}).target] || {}).fields || [])
          : conditionFields(ed, fields).filter((f) => f.key !== field.key);
        const select = h("select", {}, h("option", { value: "" }, "—"),
          ...pool.map((f) => h("option", { value: f.key, selected: field[prop] === f.key || null }, `${f.label} (${f.key})`)));
        select.addEventListener("change", () => { if (select.value) field[prop] = select.value; else delete field[prop]; ed.changed(); ed.rerender(); });
        box.append(h("div", { "data-path": `${path}.${prop}` }, row(OPTION_TITLES[prop] || prop, select)));
      } else {
        box.append(h("div", { "data-path": `${path}.${prop}` }, schemaInput(field, prop, schema, ed)));
      }
    }
    if ("default_formula" in field) box.append(formulaEditor(field, "default_formula", path, ed, conditionFields(ed, fields)));
    if (!nested) {
      const condFields = conditionFields(ed, fields).filter((f) => f.key !== field.key);
      const conditions = h("div", { className: "b-conditions" });
      for (const [prop, title] of CONDITIONS) {
        conditions.append(B.conditionBuilder(field, prop, condFields, ed.data.operators, (structural) => {
          ed.changed();
          if (structural) ed.rerender();
        }, `${path}.${prop}`, title));
      }
      box.append(conditions);
    }
    return box;
  }

  function fieldCard(field, n, fields, path, ed, nested) {
    const own = `${path}[${n}]`;
    const frozenKeys = publishedFieldKeys(ed, path);
    const frozen = frozenKeys.includes(field.key) && !autoKey.has(field);
    const open = expanded.has(`${path}:${field.key}`);
    const info = typeInfo(ed, field.type);
    const title = B.text(field.label, ed.locale) || field.key || "(no label)";
    const card = h("li", { className: `b-field${open ? " open" : ""}`, draggable: "true", "data-sort-index": n,
      "data-path": own, "data-field-card": field.key });
    const move = (from, to) => { B.moveItem(fields, from, to); ed.changed(); ed.rerender(); };
    const toggle = h("button", { type: "button", className: "small", "aria-expanded": String(open), "data-edit-field": field.key,
      onclick: () => {
        const id = `${path}:${field.key}`;
        const wasOpen = expanded.has(id);
        for (const other of Array.from(expanded)) if (other.startsWith(`${path}:`)) expanded.delete(other);
        if (!wasOpen) expanded.add(id);
        ed.rerender();
      } }, open ? "Close" : "Edit");
    card.append(h("div", { className: "b-field-head" },
      h("span", { className: "handle", "aria-hidden": "true" }, "⋮⋮"),
      h("span", { className: "b-field-title", "data-field-title": "" }, title),
      field.required ? h("span", { className: "req", title: "Required" }, "*") : null,
      h("span", { className: "badge badge-muted" }, info.label),
      h("code", { className: "key" }, field.key),
      h("span", { className: "b-actions" }, ...B.moveButtons(fields, n, `field ${title}`, move), toggle,
        h("button", { type: "button", className: "small danger", "aria-label": `Remove field ${title}`, onclick: () => {
          if (frozen && !window.confirm(`Remove “${title}”? Stored values are kept and come back if you add the field again.`)) return;
          fields.splice(n, 1);
          ed.changed();
          ed.rerender();
        } }, "Remove"))));
    if (open) card.append(fieldSettings(field, own, ed, fields, frozen, nested));
    return card;
  }

  function fieldList(fields, path, ed, nested) {
    const wrap = h("div", { className: "b-field-list" });
    const list = h("ol", { className: "b-fields" });
    fields.forEach((field, n) => {
      if (!field || typeof field !== "object") {
        list.append(h("li", { className: "b-field", "data-path": `${path}[${n}]` }, "This item is not a field; edit it in JSON mode."));
        return;
      }
      list.append(fieldCard(field, n, fields, path, ed, nested));
    });
    B.sortable(list, (from, to) => { B.moveItem(fields, from, to); ed.changed(); ed.rerender(); });
    const labelId = B.nextId("newfield");
    const newLabel = h("input", { id: labelId, placeholder: nested ? "Column name" : "Field name", "data-new-field-label": "" });
    const newType = h("select", { "aria-label": nested ? "Column type" : "Field type", "data-new-field-type": "" },
      ...ed.data.field_types.filter((t) => !nested || t.type !== "table").map((t) => h("option", { value: t.type }, t.label)));
    const add = async () => {
      const info = typeInfo(ed, newType.value);
      const label = newLabel.value.trim() || info.label;
      const key = await B.keyFor(label, fields.map((f) => f && f.key), "field");
      const field = { key, type: newType.value, label: /[\u3400-\u9fff]/.test(label) ? { "zh-CN": label } : label,
        ...JSON.parse(JSON.stringify(info.example || {})) };
      if ((field.type === "relation" || field.type === "relations")) {
        const targets = Object.keys(ed.data.entities).filter((t) => t !== ed.body.key);
        field.target = targets[0] || ed.body.key;
      }
      autoKey.add(field);
      (field.options || []).forEach((o) => autoKey.add(o));
      fields.push(field);
      for (const other of Array.from(expanded)) if (other.startsWith(`${path}:`)) expanded.delete(other);
      expanded.add(`${path}:${key}`);
      ed.changed();
      ed.rerender();
      const card = document.querySelector(`[data-path="${path}[${fields.length - 1}]"]`);
      if (card) { card.scrollIntoView({ block: "center" }); const first = card.querySelector(".b-field-settings input"); if (first) first.focus(); }
    };
    newLabel.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); add(); } });
    wrap.append(list, h("div", { className: "b-add-field" },
      h("label", { className: "visually-hidden", for: labelId }, nested ? "New column name" : "New field name"),
      newLabel, newType,
      h("button", { type: "button", className: "small primary", "data-add-field": "", onclick: add }, nested ? "+ Add column" : "+ Add field")));
    return wrap;
  }

  function settingsBlock(ed) {
    const body = ed.body;
    const fields = Array.isArray(body.fields) ? body.fields.filter((f) => f && typeof f.key === "string") : [];
    const box = h("section", { className: "b-card", "data-path": "$.label", "aria-label": "Entity settings" },
      h("h2", {}, "Entity"));
    box.append(B.labelInputs(body, "label", () => ed.changed(), { title: "Name" }));
    box.append(B.labelInputs(body, "description", () => ed.changed(), { title: "Description" }));
    const pick = (prop, title, filter, help) => {
      const select = h("select", { "data-entity-prop": prop }, h("option", { value: "" }, "—"),
        ...fields.filter(filter).map((f) => h("option", { value: f.key, selected: body[prop] === f.key || null },
          `${B.text(f.label, ed.locale) || f.key} (${f.key})`)));
      select.addEventListener("change", () => { if (select.value) body[prop] = select.value; else delete body[prop]; ed.changed(); });
      return h("div", { "data-path": `$.${prop}` }, row(title, select, help));
    };
    box.append(h("div", { className: "b-inline b-grid" },
      pick("title_field", "Title field", (f) => !["table", "file", "image", "signature"].includes(f.type), "Names a record in lists and pickers."),
      pick("owner_field", "Owner field", (f) => f.type === "user", "The member who owns the record.")));
    return box;
  }

  B.editors.entity = (root, ed) => {
    if (!Array.isArray(ed.body.fields)) {
      root.append(h("p", { className: "help" }, "This entity has no list of fields; edit it in JSON mode."));
      return;
    }
    root.append(settingsBlock(ed),
      h("section", { className: "b-card", "data-path": "$.fields", "aria-label": "Fields" },
        h("h2", {}, "Fields ", h("span", { className: "pill" }, String(ed.body.fields.length))),
        fieldList(ed.body.fields, "$.fields", ed, false)));
  };

  B.editors.app = (root, ed) => {
    const body = ed.body;
    const box = h("section", { className: "b-card", "aria-label": "App settings" }, h("h2", {}, "App settings"));
    box.append(B.labelInputs(body, "label", () => ed.changed(), { title: "Name" }),
      B.labelInputs(body, "description", () => ed.changed(), { title: "Description" }));
    const zone = h("input", { value: body.time_zone || "", placeholder: "Asia/Shanghai" });
    zone.addEventListener("input", () => { if (zone.value) body.time_zone = zone.value; else delete body.time_zone; ed.changed(); });
    box.append(h("div", { "data-path": "$.time_zone" }, row("Time zone", zone, "Reminders and dates follow it.")));
    const quiet = body.quiet_hours || {};
    const times = ["from", "to"].map((end) => {
      const input = h("input", { type: "time", value: quiet[end] || "" });
      input.addEventListener("input", () => {
        const next = Object.assign({}, body.quiet_hours || {});
        if (input.value) next[end] = input.value; else delete next[end];
        if (Object.keys(next).length) body.quiet_hours = next; else delete body.quiet_hours;
        ed.changed();
      });
      return row(end === "from" ? "Quiet hours from" : "until", input);
    });
    box.append(h("div", { className: "b-inline b-grid", "data-path": "$.quiet_hours" }, ...times));
    const nav = Array.isArray(body.navigation) ? body.navigation : null;
    const keys = Object.keys(ed.data.entities);
    const order = nav ? nav.concat(keys.filter((k) => !nav.includes(k))) : keys;
    const list = h("ol", { className: "b-nav", "data-path": "$.navigation" });
    order.forEach((key, n) => {
      const shown = nav ? nav.includes(key) : true;
      const id = B.nextId("nav");
      const input = h("input", { type: "checkbox", id, checked: shown });
      input.addEventListener("change", () => {
        const current = Array.isArray(body.navigation) ? body.navigation.slice() : keys.slice();
        body.navigation = input.checked ? current.concat([key]) : current.filter((k) => k !== key);
        ed.changed();
      });
      list.append(h("li", { "data-sort-index": n, draggable: "true" }, input,
        h("label", { for: id }, (ed.data.entities[key] || {}).label || key),
        ...B.moveButtons(order, n, key, (from, to) => {
          const current = order.slice();
          B.moveItem(current, from, to);
          body.navigation = current.filter((k) => !nav || nav.includes(k));
          ed.changed();
          ed.rerender();
        })));
    });
    box.append(h("h3", {}, "Menu"), list);
    root.append(box);
  };
})();
