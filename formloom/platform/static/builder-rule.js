// The rule editor: when (the trigger and its settings), only when (a condition) and then (the
// actions, in order). It edits `ed.body` in place and only on the admin's edits: rendering never
// fills in defaults or reshapes anything, and keys it does not know are left where they are.
// Every admin-typed string reaches the page through textContent or value.
"use strict";

(() => {
  const B = window.FormloomBuilder;
  const { h, isObj, keyPath } = B;
  const { uid, field, checkbox, choice, checkList, labelBox } = B.controls("rl");

  const earlier = new WeakMap(); // a trigger or action -> the objects it replaced (switching type back restores them)

  const TRIGGERS = [
    ["created", "A record is created"], ["updated", "A record is changed"], ["deleted", "A record is deleted"],
    ["field_changed", "A field changes"], ["stage_entered", "A record enters a stage"],
    ["stage_left", "A record leaves a stage"], ["approval_decided", "An approval is decided"],
    ["date_reached", "A date arrives"], ["schedule", "On a schedule"], ["inactivity", "Nothing happens for a while"],
  ];
  const ACTIONS = [
    ["notify", "Notify people"], ["assign", "Assign someone"], ["email", "Send an e-mail"],
    ["move", "Move to a stage"], ["request_approval", "Ask for approval to move"], ["update", "Update fields"],
    ["create", "Create a record"], ["webhook", "Call a webhook"],
  ];
  const STRATEGIES = [["round_robin", "In turn (round robin)"], ["least_open", "Whoever has the fewest open records"],
    ["by_field", "By the value of a field"]];
  const DECISIONS = [["approved", "Approved"], ["rejected", "Rejected"], ["sent_back", "Sent back"]];
  const EVERY = [["hour", "Every hour"], ["day", "Every day"], ["week", "Every week"], ["month", "Every month"]];
  const WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    .map((d) => [d, d[0].toUpperCase() + d.slice(1)]);

  // --- small controls (the shared ones are B.controls) -----------------------------------------
  // A longer text in English and Chinese (a string or {"en", "zh-CN"}), edited losslessly.
  function textBox(obj, prop, onChange, title, path) {
    const wrap = h("div", { className: "label-inputs" });
    for (const [lang, name] of [["en", "English"], ["zh-CN", "中文"]]) {
      const id = uid();
      const area = h("textarea", { id, rows: 2, lang, maxlength: 2000, "data-lang": lang, value: B.labelValue(obj[prop], lang) });
      area.addEventListener("input", () => {
        const next = B.withLabel(obj[prop], lang, area.value);
        if (next === undefined) delete obj[prop]; else obj[prop] = next;
        onChange();
      });
      wrap.append(h("label", { className: "label", for: id }, `${title} (${name})`), area);
    }
    return h("div", { className: "pr-field pr-wide", "data-path": path }, wrap);
  }

  // Replaces holder[prop] with an object of another type; one of that type it replaced earlier comes back.
  function switchType(holder, prop, type, fresh) {
    const now = holder[prop];
    const before = isObj(now) ? [now, ...(earlier.get(now) || [])] : [];
    const back = before.find((o) => o.type === type);
    const next = back || fresh(type);
    earlier.set(next, before.filter((o) => o !== next));
    holder[prop] = next;
    return next;
  }

  // --- the editor -----------------------------------------------------------------------------
  B.editors.rule = function ruleEditor(root, ed) {
    const body = ed.body;
    if (!isObj(body)) {
      root.append(h("p", { className: "help" }, "The definition is not a JSON object; edit it in JSON mode."));
      return;
    }
    const data = ed.data;
    const entities = data.entities || {};
    const entityOf = (key) => (typeof key === "string" && Object.hasOwn(entities, key) ? entities[key] : null);
    const entity = entityOf(body.entity);
    const fields = entity ? entity.fields : [];
    const pairsOf = (list) => list.map((f) => [f.key, f.label]);
    const pipeline = Object.values(data.pipelines || {}).find((p) => p && p.entity === body.entity);
    const stagePairs = pipeline ? (pipeline.stages || []).map((s) => [s.key, s.label || s.key]) : [];
    const roles = data.roles || [];
    const users = data.users || [];
    const changed = () => ed.changed();

    const { rerender, focus } = B.refocus(root, ed);

    const wrap = h("div", { className: "pr-editor pr-rule" });
    wrap.append(generalSection(), triggerSection(), conditionSection(), actionsSection());
    root.append(wrap);

    function section(title, path, help) {
      const head = uid();
      return h("section", { className: "pr-section", "aria-labelledby": head, "data-path": path },
        h("div", { className: "pr-section-head" }, h("h2", { id: head }, title), help ? h("p", { className: "help" }, help) : null));
    }

    // --- the rule itself ---
    function generalSection() {
      const sec = section("Rule");
      const grid = h("div", { className: "pr-grid" });
      grid.append(labelBox(body, "label", changed, "Name", "$.label"),
        textBox(body, "description", changed, "Description", "$.description"));
      const entityId = uid();
      grid.append(h("div", { className: "pr-field", "data-path": "$.entity" },
        h("span", { className: "label", id: entityId }, "Entity"),
        h("p", { className: "pr-readonly", "aria-labelledby": entityId },
          entity ? `${entity.label} (${body.entity})` : `${body.entity ?? "—"} (not found)`)));
      const toggle = checkbox("On: the rule runs when it is published", body.enabled !== false, (on) => {
        body.enabled = on; changed();
      }, { className: "pr-switch", "data-rule-enabled": "" });
      grid.append(h("div", { className: "pr-field", "data-path": "$.enabled" },
        h("span", { className: "label" }, "Enabled"), toggle,
        h("p", { className: "help" }, "Off, it does nothing (it can still be tried).")));
      sec.append(grid);
      return sec;
    }

    // --- when ---
    function triggerSection() {
      const sec = section("When", "$.trigger");
      const t = body.trigger;
      const type = isObj(t) ? t.type : undefined;
      const grid = h("div", { className: "pr-grid" });
      grid.append(field("Trigger", choice(TRIGGERS, type, (v) => {
        switchType(body, "trigger", v, (kind) => ({ type: kind }));
        changed(); rerender("trigger-type");
      }, { blank: type ? undefined : "—", attrs: { "data-focus": "trigger-type", "data-trigger-type": "" } }),
      { path: "$.trigger.type" }));
      sec.append(grid);
      if (t !== undefined && !isObj(t)) {
        sec.append(h("p", { className: "help" }, "The trigger is not an object; edit it in JSON mode."));
        return sec;
      }
      if (!isObj(t)) return sec;
      const set = (prop, value) => { if (value === undefined || value === "") delete t[prop]; else t[prop] = value; changed(); };
      if (type === "field_changed") {
        const f = fields.find((x) => x.key === t.field);
        grid.append(field("Field", choice(pairsOf(fields), t.field, (v) => { set("field", v); rerender("trigger-field"); },
          { blank: t.field ? undefined : "—", attrs: { "data-focus": "trigger-field", "data-trigger-field": "" } }),
        { path: "$.trigger.field" }));
        grid.append(valueField("Changed from", t, "from", f, "$.trigger.from", "Any value"),
          valueField("Changed to", t, "to", f, "$.trigger.to", "Any value"));
      } else if (type === "stage_entered" || type === "stage_left") {
        grid.append(field("Stage", choice(stagePairs, t.stage, (v) => set("stage", v), { blank: "Any stage" }),
          { path: "$.trigger.stage", help: pipeline ? null : "This entity has no pipeline." }));
      } else if (type === "approval_decided") {
        grid.append(field("Decision", choice(DECISIONS, t.decision, (v) => set("decision", v), { blank: "Any decision" }),
          { path: "$.trigger.decision" }));
      } else if (type === "date_reached") {
        const dates = fields.filter((x) => x.kind === "date" || x.kind === "datetime");
        grid.append(field("Date field", choice(pairsOf(dates), t.field, (v) => set("field", v), { blank: t.field ? undefined : "—" }),
          { path: "$.trigger.field" }));
        grid.append(numberField("Days from the date", t, "offset_days", "$.trigger.offset_days",
          { min: -3650, max: 3650, help: "−3 is three days before; empty is the day itself." }));
        grid.append(timeField("At", t, "at", "$.trigger.at", "In the app's time zone; empty is midnight."));
      } else if (type === "schedule") {
        grid.append(field("Repeat", choice(EVERY, t.every, (v) => {
          if (v) t.every = v; else delete t.every;
          if (v !== "week") delete t.weekday;
          if (v !== "month") delete t.day;
          changed(); rerender("trigger-every");
        }, { blank: t.every ? undefined : "—", attrs: { "data-focus": "trigger-every" } }), { path: "$.trigger.every" }));
        if (t.every === "week" || "weekday" in t) {
          grid.append(field("Weekday", choice(WEEKDAYS, t.weekday, (v) => set("weekday", v), { blank: "Monday (default)" }),
            { path: "$.trigger.weekday" }));
        }
        if (t.every === "month" || "day" in t) {
          grid.append(numberField("Day of the month", t, "day", "$.trigger.day", { min: 1, max: 28 }));
        }
        grid.append(timeField("At", t, "at", "$.trigger.at", "In the app's time zone."));
      } else if (type === "inactivity") {
        grid.append(numberField("Days without activity", t, "days", "$.trigger.days", { min: 1, max: 3650 }));
        grid.append(activityField(t));
      }
      return sec;
    }

    function numberField(label, holder, prop, path, opts) {
      const o = opts || {};
      const current = holder[prop];
      const input = h("input", { type: "number", step: 1, min: o.min, max: o.max, inputmode: "numeric",
        value: typeof current === "number" || typeof current === "string" ? current : "" });
      input.addEventListener("input", () => {
        if (input.value === "") delete holder[prop];
        else if (!Number.isNaN(Number(input.value))) holder[prop] = Number(input.value);
        changed();
      });
      return field(label, input, { path, help: o.help });
    }

    function timeField(label, holder, prop, path, help) {
      const input = h("input", { type: "time", value: typeof holder[prop] === "string" ? holder[prop] : "" });
      input.addEventListener("input", () => { if (input.value) holder[prop] = input.value; else delete holder[prop]; changed(); });
      return field(label, input, { path, help });
    }

    function activityField(t) {
      const act = t.activity;
      const box = h("fieldset", { className: "pr-people pr-wide", "data-path": "$.trigger.activity" },
        h("legend", { className: "label" }, "Also counts as activity"));
      if (act !== undefined && !isObj(act)) {
        box.append(h("p", { className: "help" }, "Not an object; edit it in JSON mode."));
        return box;
      }
      const others = Object.entries(entities).map(([k, e]) => [k, `Records of ${e.label} linking here`]);
      const relations = (key) => ((entityOf(key) || {}).fields || []).filter((f) => f.type === "relation");
      box.append(field("Records", choice(others, act ? act.entity : "", (v) => {
        if (!v) delete t.activity;
        else {
          const link = relations(v)[0];
          t.activity = Object.assign(isObj(t.activity) ? t.activity : {}, { entity: v, field: link ? link.key : "" });
        }
        changed(); rerender("activity-entity");
      }, { blank: "Only changes to the record itself", attrs: { "data-focus": "activity-entity" } }),
      { path: "$.trigger.activity.entity", help: "A follow-up logged against the record, for example." }));
      if (isObj(act)) {
        box.append(field("Through the field", choice(pairsOf(relations(act.entity)), act.field, (v) => {
          act.field = v; changed();
        }, { blank: act.field ? undefined : "—" }), { path: "$.trigger.activity.field" }));
      }
      return box;
    }

    // A literal value for a field, as that field stores it; an empty input removes it.
    function valueControl(holder, prop, f, label, blank) {
      const current = holder[prop];
      const kind = f ? f.kind : "text";
      const options = f && f.options && f.options.length ? f.options : null;
      const store = (value) => { if (value === undefined) delete holder[prop]; else holder[prop] = value; changed(); };
      if (current !== undefined && current !== null && typeof current === "object") {
        const input = h("input", { className: "json-inline", value: JSON.stringify(current), "aria-label": `${label} (JSON)` });
        input.addEventListener("input", () => {
          try { store(JSON.parse(input.value)); input.removeAttribute("aria-invalid"); } catch (e) { input.setAttribute("aria-invalid", "true"); }
        });
        return input;
      }
      if (options) {
        return choice(options.map((o) => [String(o.value), o.label || String(o.value)]), current,
          (v) => store(v === "" ? undefined : v), { blank, attrs: { "aria-label": label } });
      }
      if (kind === "boolean") {
        return choice([["true", "Yes"], ["false", "No"]], current === undefined ? "" : String(current),
          (v) => store(v === "" ? undefined : v === "true"), { blank, attrs: { "aria-label": label } });
      }
      const type = { date: "date", time: "time" }[kind] || "text";
      const input = h("input", { type, value: current ?? "", placeholder: blank === undefined ? null : blank, "aria-label": label,
        inputmode: kind === "number" ? "decimal" : null });
      input.addEventListener("input", () => {
        const raw = input.value;
        if (raw === "") store(blank === undefined ? "" : undefined);
        else store(kind === "number" && !Number.isNaN(Number(raw)) ? Number(raw) : raw);
      });
      return input;
    }

    function valueField(label, holder, prop, f, path, blank) {
      const control = valueControl(holder, prop, f, label, blank);
      control.removeAttribute("aria-label");
      return field(label, control, { path });
    }

    // --- only when ---
    function conditionSection() {
      const sec = section("Only when", null, "Without a condition, the actions run every time the trigger fires.");
      sec.append(B.conditionBuilder(body, "condition", fields, data.operators || {}, () => changed(), "$.condition",
        "Condition"));
      return sec;
    }

    // --- then ---
    function newAction(type) {
      const action = { type };
      if (type === "assign") {
        const person = fields.find((f) => f.type === "user");
        if (person) action.field = person.key;
        action.strategy = "round_robin";
      } else if (type === "notify" || type === "email") {
        action.to = { owner: true };
      } else if ((type === "move" || type === "request_approval") && stagePairs.length) {
        action.stage = stagePairs[0][0];
      } else if (type === "create") {
        const other = Object.keys(entities).find((k) => k !== body.entity) || body.entity;
        if (other) action.entity = other;
      }
      return action;
    }

    function actionsSection() {
      const sec = section("Then", "$.actions", "The actions run in this order. Drag one by its handle, or use ↑ and ↓.");
      const actions = body.actions;
      if (actions !== undefined && !Array.isArray(actions)) {
        sec.append(h("p", { className: "help" }, "The actions are not a list; edit them in JSON mode."));
        return sec;
      }
      const list = h("ol", { className: "pr-list pr-actions" });
      (actions || []).forEach((action, i) => list.append(actionItem(action, i)));
      ed.sortable(list, (from, to) => { ed.moveItem(body.actions, from, to); changed(); rerender(`action-${to}-type`); });
      sec.append(list);
      const full = (actions || []).length >= 20;
      const pick = choice(ACTIONS, "notify", () => {}, { attrs: { "data-new-action-type": "", "data-focus": "new-action-type" } });
      pick.id = uid();
      sec.append(h("div", { className: "pr-add" },
        h("label", { className: "label", for: pick.id }, "New action"),
        h("div", { className: "pr-inline" }, pick,
          h("button", { type: "button", className: "primary-soft", "data-add-action": "", disabled: full, onclick: () => {
            if (!Array.isArray(body.actions)) body.actions = [];
            body.actions.push(newAction(pick.value));
            changed(); rerender(`action-${body.actions.length - 1}-type`);
          } }, "+ Add action")),
        full ? h("p", { className: "help" }, "A rule has at most 20 actions.") : null));
      return sec;
    }

    function actionItem(action, i) {
      const path = `$.actions[${i}]`;
      const li = h("li", { className: "pr-item pr-action", "data-path": path, "data-sort-index": i });
      const actions = body.actions;
      const [up, down] = ed.moveButtons(actions, i, `action ${i + 1}`, (from, to) => {
        ed.moveItem(actions, from, to); changed();
        const first = from > to ? "up" : "down";
        rerender(`action-${to}-${first}`);
        if (document.activeElement === document.body) focus(`action-${to}-${first === "up" ? "down" : "up"}`);
      });
      up.dataset.focus = `action-${i}-up`;
      down.dataset.focus = `action-${i}-down`;
      const type = isObj(action) ? action.type : undefined;
      const typeSelect = choice(ACTIONS, type, (v) => {
        switchType(body.actions, i, v, newAction);
        changed(); rerender(`action-${i}-type`);
      }, { blank: type ? undefined : "—", attrs: { "aria-label": `Action ${i + 1}: type`, "data-focus": `action-${i}-type`,
        "data-action-type": "" } });
      const head = h("div", { className: "pr-item-head", draggable: "true" },
        h("span", { className: "pr-handle", "aria-hidden": "true", title: "Drag to reorder" }, "⠿"),
        h("span", { className: "pr-step-number", "aria-hidden": "true" }, String(i + 1)),
        h("span", { className: "pr-item-name", "data-path": `${path}.type` }, typeSelect),
        h("span", { className: "pr-item-actions" }, up, down,
          h("button", { type: "button", className: "small danger", "aria-label": `Remove action ${i + 1}`,
            onclick: () => { actions.splice(i, 1); changed(); rerender("new-action-type"); } }, "Remove")));
      li.append(head);
      if (!isObj(action)) {
        li.append(h("p", { className: "help" }, "This action is not an object; edit it in JSON mode."));
        return li;
      }
      const panel = h("div", { className: "pr-panel pr-grid" });
      const settings = {
        assign: assignSettings, notify: notifySettings, email: emailSettings, move: stageSettings,
        request_approval: stageSettings, update: updateSettings, create: createSettings, webhook: webhookSettings,
      }[type];
      if (settings) settings(panel, action, path, i);
      else panel.append(h("p", { className: "help pr-wide" }, "Choose what this action does."));
      li.append(panel);
      return li;
    }

    function setOrDelete(holder, prop, value) {
      if (value === undefined || value === "" || (Array.isArray(value) && !value.length)) delete holder[prop];
      else holder[prop] = value;
      changed();
    }

    function assignSettings(panel, a, path, i) {
      const people = fields.filter((f) => f.type === "user");
      panel.append(field("Field to fill", choice(pairsOf(people), a.field, (v) => setOrDelete(a, "field", v),
        { blank: a.field ? undefined : "—", attrs: { "data-assign-field": "" } }), { path: `${path}.field` }));
      panel.append(field("How to choose", choice(STRATEGIES, a.strategy, (v) => {
        setOrDelete(a, "strategy", v); rerender(`action-${i}-strategy`);
      }, { blank: a.strategy ? undefined : "—", attrs: { "data-focus": `action-${i}-strategy`, "data-assign-strategy": "" } }),
      { path: `${path}.strategy` }));
      if (a.strategy === "by_field") {
        panel.append(mapEditor(a, path, i));
      } else {
        const among = checkList("Among these people", users.map((u) => [u, u]), () => a.users,
          (next) => setOrDelete(a, "users", next), { path: `${path}.users`, empty: "No users." });
        among.classList.add("pr-wide");
        among.dataset.assignUsers = "";
        panel.append(among);
        panel.append(field("…or the members with the role", choice(roles.map((r) => [r, r]), a.role,
          (v) => setOrDelete(a, "role", v), { blank: "No role" }), { path: `${path}.role` }));
        if (a.strategy === "least_open" || "open_when" in a) {
          const cond = B.conditionBuilder(a, "open_when", fields, data.operators || {}, () => changed(), `${path}.open_when`,
            "Records count as open when");
          cond.classList.add("pr-wide");
          panel.append(cond);
        }
      }
      panel.append(h("div", { className: "pr-field", "data-path": `${path}.only_if_empty` },
        checkbox("Only when the field is empty", a.only_if_empty !== false, (on) => { a.only_if_empty = on; changed(); })));
    }

    function mapEditor(a, path, i) {
      const box = h("div", { className: "pr-wide pr-block" });
      box.append(field("By the value of", choice(pairsOf(fields), a.map_field, (v) => {
        setOrDelete(a, "map_field", v); rerender(`action-${i}-map-field`);
      }, { blank: a.map_field ? undefined : "—", attrs: { "data-focus": `action-${i}-map-field` } }), { path: `${path}.map_field` }));
      const source = fields.find((f) => f.key === a.map_field);
      const map = isObj(a.map) ? a.map : {};
      const keys = [];
      for (const o of (source && source.options) || []) keys.push([String(o.value), o.label || String(o.value)]);
      for (const k of Object.keys(map)) if (!keys.some(([v]) => v === k)) keys.push([k, k]);
      const table = h("div", { className: "pr-rows", "data-path": `${path}.map`, role: "group", "aria-label": "Who gets which value" });
      for (const [value, label] of keys) {
        const select = choice(users.map((u) => [u, u]), map[value], (v) => {
          if (!isObj(a.map)) a.map = {};
          if (v) a.map[value] = v; else delete a.map[value];
          changed();
        }, { blank: "Nobody", attrs: { "aria-label": `Who gets ${label}` } });
        table.append(h("div", { className: "pr-row", "data-path": keyPath(`${path}.map`, value) },
          h("span", { className: "pr-row-key" }, label), h("span", { className: "pr-arrow", "aria-hidden": "true" }, "→"), select));
      }
      if (!source || !(source.options || []).length) {
        const input = h("input", { "aria-label": "Another value", placeholder: "Another value", "data-focus": `action-${i}-map-new` });
        table.append(h("div", { className: "pr-row" }, input, h("button", { type: "button", className: "small", onclick: () => {
          const value = input.value.trim();
          if (!value || !users.length) { input.focus(); return; }
          if (!isObj(a.map)) a.map = {};
          if (!(value in a.map)) a.map[value] = users[0];
          changed(); rerender(`action-${i}-map-new`);
        } }, "+ Value")));
      }
      box.append(h("span", { className: "label" }, "Who gets which value"), table);
      return box;
    }

    function peopleEditor(a, path, title) {
      const to = a.to;
      const box = h("fieldset", { className: "pr-people pr-wide", "data-path": `${path}.to` }, h("legend", { className: "label" }, title));
      if (to !== undefined && !isObj(to)) {
        box.append(h("p", { className: "help" }, "Not an object; edit it in JSON mode."));
        return box;
      }
      const get = () => (isObj(a.to) ? a.to : {});
      const ensure = () => { if (!isObj(a.to)) a.to = {}; return a.to; };
      const flag = (prop) => (on) => { if (on) ensure()[prop] = true; else delete ensure()[prop]; changed(); };
      const now = get();
      box.append(h("div", { className: "pr-chips" },
        checkbox("The record's owner", now.owner === true, flag("owner"), { "data-to-owner": "" }),
        checkbox("The owner's managers", now.owner_manager === true, flag("owner_manager"), { "data-to-owner-manager": "" })));
      const grid = h("div", { className: "pr-grid" });
      grid.append(field("Members with the role", choice(roles.map((r) => [r, r]), now.role, (v) => setOrDelete(ensure(), "role", v),
        { blank: "No role", attrs: { "data-to-role": "" } }), { path: `${path}.to.role` }));
      const personFields = fields.filter((f) => f.type === "user" || f.type === "users");
      grid.append(field("The people in the field", choice(pairsOf(personFields), now.field, (v) => setOrDelete(ensure(), "field", v),
        { blank: "No field" }), { path: `${path}.to.field` }));
      box.append(grid);
      box.append(checkList("These people", users.map((u) => [u, u]), () => get().users,
        (next) => setOrDelete(ensure(), "users", next), { path: `${path}.to.users`, empty: "No users." }));
      return box;
    }

    function notifySettings(panel, a, path) {
      panel.append(peopleEditor(a, path, "To"));
      panel.append(labelBox(a, "title", changed, "Title", `${path}.title`),
        textBox(a, "message", changed, "Message", `${path}.message`));
      panel.append(h("p", { className: "help pr-wide" }, "{title} stands for the record's title."));
      panel.append(h("div", { className: "pr-field", "data-path": `${path}.email` },
        checkbox("Also send it by e-mail", a.email === true, (on) => { a.email = on; changed(); })));
    }

    function emailSettings(panel, a, path) {
      panel.append(peopleEditor(a, path, "To"));
      panel.append(labelBox(a, "subject", changed, "Subject", `${path}.subject`),
        textBox(a, "body", changed, "Text", `${path}.body`));
    }

    function stageSettings(panel, a, path) {
      panel.append(field("Stage", choice(stagePairs, a.stage, (v) => setOrDelete(a, "stage", v),
        { blank: a.stage ? undefined : "—", attrs: { "data-action-stage": "" } }),
      { path: `${path}.stage`, help: pipeline ? (a.type === "move" ? "The stage's gate applies; a move needing approval asks for it."
        : "Asks for the approval the move needs, on behalf of the record's owner.") : "This entity has no pipeline." }));
      const comment = h("textarea", { rows: 2, maxlength: 2000, value: typeof a.comment === "string" ? a.comment : "" });
      comment.addEventListener("input", () => setOrDelete(a, "comment", comment.value));
      panel.append(field("Comment", comment, { path: `${path}.comment` }));
    }

    function updateSettings(panel, a, path, i) {
      panel.append(valuesEditor(a, "values", fields, path, i, "Set to a value"),
        formulasEditor(a, fields, path, i, "Set by a formula"));
    }

    function createSettings(panel, a, path, i) {
      const target = entityOf(a.entity);
      panel.append(field("Entity", choice(Object.entries(entities).map(([k, e]) => [k, e.label]), a.entity, (v) => {
        setOrDelete(a, "entity", v); rerender(`action-${i}-entity`);
      }, { blank: a.entity ? undefined : "—", attrs: { "data-focus": `action-${i}-entity` } }), { path: `${path}.entity` }));
      const targetFields = target ? target.fields : [];
      const links = targetFields.filter((f) => f.type === "relation");
      panel.append(field("Link back through", choice(pairsOf(links), a.link_field, (v) => setOrDelete(a, "link_field", v),
        { blank: "No link" }), { path: `${path}.link_field`, help: "A relation field of the new record pointing to this one." }));
      panel.append(valuesEditor(a, "values", targetFields, path, i, "Values"),
        formulasEditor(a, targetFields, path, i, "Formulas (read the record that triggered the rule)"));
    }

    function webhookSettings(panel, a, path) {
      const url = h("input", { type: "url", value: typeof a.url === "string" ? a.url : "", maxlength: 2000, placeholder: "https://",
        spellcheck: "false", autocomplete: "off" });
      url.addEventListener("input", () => setOrDelete(a, "url", url.value));
      panel.append(field("URL", url, { path: `${path}.url`, wide: true }));
      const secret = h("input", { value: typeof a.secret === "string" ? a.secret : "", maxlength: 200, spellcheck: "false",
        autocomplete: "off" });
      secret.addEventListener("input", () => setOrDelete(a, "secret", secret.value));
      panel.append(field("Signing secret", secret, { path: `${path}.secret`, help: "At least 8 characters; signs each request." }));
      panel.append(numberField("Attempts", a, "max_attempts", `${path}.max_attempts`, { min: 1, max: 10, help: "Empty: 5." }));
    }

    // Rows of field → something, in a map kept in order; renaming a row keeps its place.
    function rename(map, from, to) {
      const entries = Object.entries(map).map(([k, v]) => [k === from ? to : k, v]);
      for (const k of Object.keys(map)) delete map[k];
      for (const [k, v] of entries) Object.defineProperty(map, k, { value: v, writable: true, enumerable: true, configurable: true });
    }

    function rowsEditor(a, prop, targetFields, path, i, title, cell, fresh) {
      const map = isObj(a[prop]) ? a[prop] : null;
      const box = h("fieldset", { className: "pr-people pr-wide", "data-path": `${path}.${prop}` }, h("legend", { className: "label" }, title));
      if (a[prop] !== undefined && !map) {
        box.append(h("p", { className: "help" }, "Not an object; edit it in JSON mode."));
        return box;
      }
      const writable = targetFields.filter((f) => !(data.field_types || []).some((t) => t.type === f.type && t.computed));
      const rows = h("div", { className: "pr-rows" });
      Object.keys(map || {}).forEach((key, n) => {
        const f = targetFields.find((x) => x.key === key);
        const free = writable.filter((x) => x.key === key || !(x.key in map)).map((x) => [x.key, x.label]);
        const pickField = choice(free, key, (v) => {
          if (v === key || v in map) return;
          rename(map, key, v);
          const next = targetFields.find((x) => x.key === v);
          if (fresh) map[v] = fresh(next, map[v]);
          changed(); rerender(`action-${i}-${prop}-${n}`);
        }, { attrs: { "aria-label": `${title}: field ${n + 1}`, "data-focus": `action-${i}-${prop}-${n}` } });
        rows.append(h("div", { className: "pr-row", "data-path": keyPath(`${path}.${prop}`, key) },
          pickField, h("span", { className: "pr-arrow", "aria-hidden": "true" }, prop === "formulas" ? "=" : "→"),
          cell(map, key, f, n),
          h("button", { type: "button", className: "small icon", "aria-label": `Remove ${f ? f.label : key}`,
            onclick: () => { delete map[key]; if (!Object.keys(map).length) delete a[prop]; changed(); rerender(`action-${i}-${prop}-add`); } }, "✕")));
      });
      box.append(rows);
      const next = writable.find((x) => !map || !(x.key in map));
      box.append(h("button", { type: "button", className: "small", disabled: !next, "data-focus": `action-${i}-${prop}-add`,
        "data-add-row": prop, onclick: () => {
          if (!isObj(a[prop])) a[prop] = {};
          a[prop][next.key] = fresh ? fresh(next) : "";
          changed(); rerender(`action-${i}-${prop}-${Object.keys(a[prop]).length - 1}`);
        } }, prop === "formulas" ? "+ Formula" : "+ Value"));
      return box;
    }

    function valuesEditor(a, prop, targetFields, path, i, title) {
      const fresh = (f) => {
        if (!f) return "";
        if (f.options && f.options.length) return f.kind === "list" ? [] : String(f.options[0].value);
        if (f.kind === "boolean") return true;
        return "";
      };
      return rowsEditor(a, prop, targetFields, path, i, title,
        (map, key, f, n) => {
          if (f && f.kind === "list" && f.options && f.options.length && (Array.isArray(map[key]) || map[key] === undefined)) {
            const list = checkList(`Values of ${f.label}`, f.options.map((o) => [String(o.value), o.label || String(o.value)]),
              () => map[key], (next) => { map[key] = next; changed(); });
            list.classList.add("pr-inline-checks");
            return list;
          }
          return valueControl(map, key, f, `Value ${n + 1}`, undefined);
        }, fresh);
    }

    function formulasEditor(a, targetFields, path, i, title) {
      return rowsEditor(a, "formulas", targetFields, path, i, title, (map, key, f, n) => {
        const input = h("input", { className: "pr-code", value: typeof map[key] === "string" ? map[key] : "", maxlength: 2000,
          spellcheck: "false", autocomplete: "off", placeholder: "amount * 1.1", "aria-label": `Formula ${n + 1}` });
        input.addEventListener("input", () => { map[key] = input.value; changed(); });
        return input;
      }, (f, old) => (typeof old === "string" ? old : ""));
    }
  };
})();
