// The condition builder: pick a field, an operator and a value, in all/any groups, without typing
// JSON. It edits the condition object in place and keeps the shape it was given until the admin
// changes the structure (a single test stays a single test), so switching modes loses nothing.
// Conditions it cannot show as rows (references such as {"$today": 3}, `not`) appear as JSON text.
"use strict";

(() => {
  const B = window.FormloomBuilder;
  const { h } = B;

  const OP_NAMES = {
    eq: "is", ne: "is not", gt: "is more than", gte: "is at least", lt: "is less than", lte: "is at most",
    between: "is between", in: "is one of", not_in: "is none of", contains: "contains",
    not_contains: "does not contain", starts_with: "starts with", empty: "is empty", not_empty: "is not empty",
  };
  const NO_VALUE = ["empty", "not_empty"];
  const isGroup = (c) => c && typeof c === "object" && (Array.isArray(c.all) || Array.isArray(c.any));
  const isLeaf = (c) => c && typeof c === "object" && typeof c.field === "string";

  // Reads a typed value as the condition wants it for the field's kind.
  function typed(raw, kind) {
    if (kind === "number") return raw === "" || Number.isNaN(Number(raw)) ? raw : Number(raw);
    if (kind === "boolean") return raw === "true";
    if (kind === "id") return raw === "" || Number.isNaN(Number(raw)) ? raw : Number(raw);
    return raw;
  }

  function valueInput(leaf, field, onChange) {
    const kind = field ? field.kind : "text";
    const options = (field && field.options) || [];
    const op = leaf.op;
    if (NO_VALUE.includes(op)) return null;
    const wantsList = op === "in" || op === "not_in" || ((kind === "list" || kind === "ids") && (op === "eq" || op === "ne"));
    const reference = (v) => v && typeof v === "object" && !Array.isArray(v);
    if (reference(leaf.value) || (Array.isArray(leaf.value) && leaf.value.some(reference))) {
      return jsonInput(leaf, "value", onChange, "Value (JSON)");
    }
    if (options.length && (kind === "text" || kind === "list")) {
      const multiple = wantsList || ((kind === "list") && (op === "contains" || op === "not_contains") && Array.isArray(leaf.value));
      const current = Array.isArray(leaf.value) ? leaf.value.map(String) : [String(leaf.value ?? "")];
      const select = h("select", { "aria-label": "Value", multiple: multiple || null, "data-cond-value": "" },
        multiple ? null : h("option", { value: "" }, "—"),
        ...options.map((o) => h("option", { value: o.value, selected: current.includes(o.value) || null }, o.label || o.value)));
      select.addEventListener("change", () => {
        leaf.value = multiple ? Array.from(select.selectedOptions).map((o) => o.value) : select.value;
        onChange();
      });
      return select;
    }
    if (op === "between") {
      const pair = Array.isArray(leaf.value) ? leaf.value : ["", ""];
      const inputs = [0, 1].map((n) => {
        const input = h("input", { "aria-label": n ? "To" : "From", value: pair[n] ?? "", type: inputType(kind) });
        input.addEventListener("input", () => {
          const next = Array.isArray(leaf.value) ? leaf.value.slice() : ["", ""];
          next[n] = typed(input.value, kind);
          leaf.value = next;
          onChange();
        });
        return input;
      });
      return h("span", { className: "between" }, inputs[0], " and ", inputs[1]);
    }
    if (wantsList) {
      const input = h("input", { "aria-label": "Values, separated by commas",
        value: Array.isArray(leaf.value) ? leaf.value.join(", ") : (leaf.value ?? ""), "data-cond-value": "" });
      input.addEventListener("input", () => {
        leaf.value = input.value.split(",").map((s) => s.trim()).filter(Boolean).map((s) => typed(s, kind === "ids" ? "id" : kind));
        onChange();
      });
      return input;
    }
    if (kind === "boolean") {
      const select = h("select", { "aria-label": "Value", "data-cond-value": "" },
        h("option", { value: "true", selected: leaf.value === true || null }, "yes"),
        h("option", { value: "false", selected: leaf.value === false || null }, "no"));
      select.addEventListener("change", () => { leaf.value = select.value === "true"; onChange(); });
      return select;
    }
    const input = h("input", { "aria-label": "Value", value: leaf.value ?? "", type: inputType(kind), "data-cond-value": "" });
    input.addEventListener("input", () => { leaf.value = typed(input.value, kind); onChange(); });
    return input;
  }

  function inputType(kind) {
    return { number: "text", date: "date", time: "time" }[kind] || "text";
  }

  function jsonInput(holder, prop, onChange, label) {
    const input = h("input", { "aria-label": label, className: "json-inline", value: JSON.stringify(holder[prop]) });
    input.addEventListener("input", () => {
      try { holder[prop] = JSON.parse(input.value); input.removeAttribute("aria-invalid"); onChange(); }
      catch (e) { input.setAttribute("aria-invalid", "true"); }
    });
    return input;
  }

  function newLeaf(fields, operators) {
    const field = fields[0];
    const op = field ? (operators[field.kind] || ["eq"])[0] : "eq";
    const leaf = { field: field ? field.key : "", op };
    if (!NO_VALUE.includes(op)) leaf.value = field && field.options && field.options.length ? field.options[0].value : "";
    return leaf;
  }

  function leafRow(leaf, ctx, path, onRemove) {
    const field = ctx.fields.find((f) => f.key === leaf.field);
    const row = h("div", { className: "cond-row", "data-path": path });
    const fieldSelect = h("select", { "aria-label": "Field", "data-cond-field": "" },
      ...(field ? [] : [h("option", { value: leaf.field, selected: true }, leaf.field || "—")]),
      ...ctx.fields.map((f) => h("option", { value: f.key, selected: f.key === leaf.field || null }, f.label)));
    fieldSelect.addEventListener("change", () => {
      const next = ctx.fields.find((f) => f.key === fieldSelect.value);
      leaf.field = fieldSelect.value;
      const ops = ctx.operators[next ? next.kind : "text"] || [];
      if (!ops.includes(leaf.op)) leaf.op = ops[0];
      if (NO_VALUE.includes(leaf.op)) delete leaf.value;
      else leaf.value = next && next.options && next.options.length ? next.options[0].value : "";
      ctx.changed(true);
    });
    const ops = ctx.operators[field ? field.kind : "text"] || Object.keys(OP_NAMES);
    const opSelect = h("select", { "aria-label": "Operator", "data-cond-op": "" },
      ...(ops.includes(leaf.op) ? [] : [h("option", { value: leaf.op, selected: true }, leaf.op)]),
      ...ops.map((op) => h("option", { value: op, selected: op === leaf.op || null }, OP_NAMES[op] || op)));
    opSelect.addEventListener("change", () => {
      const wasList = ["in", "not_in", "between"].includes(leaf.op);
      leaf.op = opSelect.value;
      const isList = ["in", "not_in", "between"].includes(leaf.op);
      if (NO_VALUE.includes(leaf.op)) delete leaf.value;
      else if (wasList !== isList || !("value" in leaf)) leaf.value = isList ? [] : "";
      ctx.changed(true);
    });
    row.append(fieldSelect, opSelect);
    const value = valueInput(leaf, field, () => ctx.changed(false));
    if (value) row.append(value);
    row.append(h("button", { type: "button", className: "small icon", "aria-label": "Remove this test", onclick: onRemove }, "✕"));
    return row;
  }

  function groupBox(group, ctx, path, onRemove, onEmpty) {
    const join = Array.isArray(group.all) ? "all" : "any";
    const items = group[join];
    const box = h("div", { className: "cond-group", "data-path": path });
    const joinSelect = h("select", { "aria-label": "Combine the tests", "data-cond-join": "" },
      h("option", { value: "all", selected: join === "all" || null }, "All of these are true"),
      h("option", { value: "any", selected: join === "any" || null }, "Any of these is true"));
    joinSelect.addEventListener("change", () => {
      const list = group[join];
      delete group[join];
      group[joinSelect.value] = list;
      ctx.changed(true);
    });
    box.append(h("div", { className: "cond-head" }, joinSelect,
      onRemove ? h("button", { type: "button", className: "small", onclick: onRemove }, "Remove group") : null));
    items.forEach((item, n) => {
      const remove = () => { items.splice(n, 1); if (!items.length && onEmpty) onEmpty(); ctx.changed(true); };
      box.append(node(item, ctx, `${path}.${join}[${n}]`, remove, (replacement) => { items[n] = replacement; }));
    });
    box.append(h("div", { className: "cond-add" },
      h("button", { type: "button", className: "small", "data-add-test": "",
        onclick: () => { items.push(newLeaf(ctx.fields, ctx.operators)); ctx.changed(true); } }, "+ Test"),
      h("button", { type: "button", className: "small",
        onclick: () => { items.push({ [join === "all" ? "any" : "all"]: [newLeaf(ctx.fields, ctx.operators)] }); ctx.changed(true); } },
        join === "all" ? "+ Any-of group" : "+ All-of group")));
    return box;
  }

  function node(cond, ctx, path, onRemove, onReplace) {
    if (isGroup(cond)) return groupBox(cond, ctx, path, onRemove);
    if (isLeaf(cond)) return leafRow(cond, ctx, path, onRemove);
    const holder = { value: cond };
    const input = jsonInput(holder, "value", () => { onReplace(holder.value); ctx.changed(false); }, "Condition (JSON)");
    return h("div", { className: "cond-row", "data-path": path }, input,
      h("button", { type: "button", className: "small icon", "aria-label": "Remove", onclick: onRemove }, "✕"));
  }

  // Edits holder[prop], a condition, for the fields given ({key, label, kind, options}).
  // `onChange(structural)` is called after each edit; structural edits need a re-render.
  function conditionBuilder(holder, prop, fields, operators, onChange, path, title) {
    const wrap = h("div", { className: "condition-builder", "data-path": path });
    const ctx = { fields, operators, changed: (structural) => { onChange(structural); if (structural) render(); } };
    function render() {
      wrap.replaceChildren(h("span", { className: "label" }, title));
      const cond = holder[prop];
      if (cond === undefined) {
        wrap.append(h("button", { type: "button", className: "small", "data-add-condition": "",
          onclick: () => { holder[prop] = newLeaf(fields, operators); ctx.changed(true); } }, "+ Add condition"));
        return;
      }
      const remove = () => { delete holder[prop]; ctx.changed(true); };
      if (isGroup(cond)) {
        wrap.append(groupBox(cond, ctx, path, remove, () => { delete holder[prop]; }));
      } else if (isLeaf(cond)) {
        wrap.append(leafRow(cond, ctx, path, remove),
          h("button", { type: "button", className: "small", "data-add-test": "",
            onclick: () => { holder[prop] = { all: [cond, newLeaf(fields, operators)] }; ctx.changed(true); } }, "+ Another test"));
      } else {
        wrap.append(node(cond, ctx, path, remove, (v) => { holder[prop] = v; }));
      }
    }
    render();
    return wrap;
  }

  B.conditionBuilder = conditionBuilder;
  B.operatorNames = OP_NAMES;
})();
