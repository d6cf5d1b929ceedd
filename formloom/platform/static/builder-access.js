// The access editor: the app's roles, and per role what it may do with the records of each entity
// (a matrix of entities × create/read/change/delete/export/import, where read, change and delete
// have a scope and may be narrowed by a condition), which fields it finds read-only or hidden,
// and whether it builds the app or gives people roles. It edits `ed.body` in place and only on
// the admin's edits: rendering never fills in defaults, so switching to JSON and back changes
// nothing. Every admin-typed string reaches the page through textContent or value.
"use strict";

(() => {
  const B = window.FormloomBuilder;
  const { h, isObj } = B;
  const { uid, field, checkbox, choice, labelBox } = B.controls("ac");

  const ACTIONS = [["create", "Create"], ["read", "Read"], ["update", "Change"], ["delete", "Delete"],
    ["export", "Export"], ["import", "Import"]];
  const VERBS = { create: "create", read: "read", update: "change", delete: "delete", export: "export", import: "import" };
  const SCOPED = new Set(["read", "update", "delete"]);
  const SCOPES = [["none", "None"], ["own", "Own"], ["team", "Team"], ["all", "All"]];
  const FIELD_RULES = [["editable", "Editable"], ["read_only", "Read-only"], ["hidden", "Hidden"]];
  const KEY_RE = /^[a-z][a-z0-9_]{0,63}$/;
  const ANY = "*";

  // UI state that survives `ed.rerender()`, kept by object so it follows a role that moves.
  const openRoles = new WeakSet();
  const fieldEntity = new WeakMap(); // role -> the entity whose field rules are shown
  const stash = new WeakMap(); // entity entry -> {action: condition} kept while the action is set to none
  let notice = null; // {text, undo} after a role is removed
  let shown = null; // the editor on the page, for the problem list's links

  // A problem in the side list may point into a closed role: open it before the shell looks for
  // the place to scroll to (this listener runs first, in the capture phase).
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("[data-problem-path] button");
    if (!link || !shown) return;
    const found = /^\$\.roles\[(\d+)\]\.(?:entities|fields|label|build|members)/.exec(link.closest("[data-problem-path]").dataset.problemPath);
    const roles = shown.body.roles;
    const role = found && Array.isArray(roles) ? roles[Number(found[1])] : null;
    if (isObj(role) && !openRoles.has(role)) {
      openRoles.add(role);
      const fields = /\.fields\.(\w+)/.exec(link.closest("[data-problem-path]").dataset.problemPath);
      if (fields) fieldEntity.set(role, fields[1]);
      shown.rerender();
    }
  }, true);

  // The value a select shows for a grant: "" (not named: as for "*"), none, own, team or all.
  function scopeOf(grant) {
    if (grant === undefined) return "";
    if (grant === true) return "all";
    if (grant === false || grant === null) return "none";
    if (isObj(grant)) return grant.scope === true ? "all" : String(grant.scope ?? "");
    return String(grant);
  }

  function scopeWord(grant) {
    const scope = scopeOf(grant);
    const word = scope || "none";
    return isObj(grant) && isObj(grant.when) ? `${word}, only when…` : word;
  }

  // The JSON path of an entity under a role, as the server writes it ("*" in brackets).
  const entityPath = (i, key) => `$.roles[${i}].entities${key === ANY ? "['*']" : `.${key}`}`;

  // --- the editor -----------------------------------------------------------------------------
  B.editors.access = function accessEditor(root, ed) {
    shown = ed;
    const body = ed.body;
    if (!isObj(body)) {
      root.append(h("p", { className: "help" }, "The definition is not a JSON object; edit it in JSON mode."));
      return;
    }
    const data = ed.data;
    const info = data.access || { built_in: {}, role_labels: {}, members: {}, when_operators: {}, admin_role: "admin" };
    const text = (label) => ed.text(label, ed.locale);
    const entities = data.entities || {};
    const entityKeys = Object.keys(entities);
    const published = isObj(data.published) && Array.isArray(data.published.roles)
      ? new Set(data.published.roles.filter(isObj).map((r) => r.key)) : new Set();
    const builtIn = (key) => Object.hasOwn(info.built_in, key);
    const members = (key) => (Object.hasOwn(info.members, key) ? info.members[key] : 0);
    const rolesOf = () => (Array.isArray(body.roles) ? body.roles.filter(isObj) : []);
    const changed = () => ed.changed();

    const { rerender, focus } = B.refocus(root, ed);

    const wrap = h("div", { className: "pr-editor ac-editor" });
    wrap.append(rolesSection());
    root.append(wrap);

    function section(title, help, path) {
      const head = uid();
      return h("section", { className: "pr-section", "aria-labelledby": head, "data-path": path },
        h("div", { className: "pr-section-head" }, h("h2", { id: head }, title), help ? h("p", { className: "help" }, help) : null));
    }

    function roleName(role) {
      const key = String(role.key ?? "");
      return text(role.label) || text(info.role_labels[key]) || key || "New role";
    }

    function peopleWords(n) {
      return `${n} member${n === 1 ? "" : "s"}`;
    }

    // --- roles ---
    function rolesSection() {
      const sec = section("Roles", "What each role of this app may do. A built-in role this list leaves out keeps its " +
        "defaults; any other role may do only what it is given here. Open a role to set its records, fields and powers.",
      "$.roles");
      if (!Array.isArray(body.roles)) {
        sec.append(h("p", { className: "help" }, "The roles are not a list; edit them in JSON mode."));
        return sec;
      }
      if (notice) {
        const note = h("p", { className: "pr-notice", role: "status" }, notice.text, " ");
        note.append(h("button", { type: "button", className: "small", "data-focus": "undo-remove", onclick: () => {
          const undo = notice.undo; notice = null; undo(); changed(); rerender();
        } }, "Undo"), h("button", { type: "button", className: "small link", onclick: () => { notice = null; rerender("new-role-en"); } },
          "Dismiss"));
        sec.append(note);
      }
      const list = h("ol", { className: "pr-list ac-roles" });
      list.append(adminItem());
      body.roles.forEach((role, i) => list.append(roleItem(role, i)));
      sec.append(list, unlistedRoles(), addRole());
      return sec;
    }

    function adminItem() {
      const key = info.admin_role;
      const count = members(key);
      return h("li", { className: "pr-item ac-role ac-admin", "data-role": key },
        h("div", { className: "pr-item-head" },
          h("span", { className: "pr-item-name" }, h("span", { className: "pr-item-title" }, text(info.role_labels[key]) || key),
            h("code", { className: "key" }, key), h("span", { className: "ac-badge" }, "built-in"),
            count ? h("span", { className: "ac-badge ac-members" }, peopleWords(count)) : null),
          h("span", { className: "ac-everything" }, "Everything")),
        h("p", { className: "help ac-admin-note" }, "Every record and field, builds the app and gives people roles. " +
          "It cannot be restricted, so no one is ever locked out of the app."));
    }

    function summary(role) {
      const bits = [];
      const all = isObj(role.entities) && isObj(role.entities[ANY]) ? role.entities[ANY] : null;
      bits.push(`other entities: read ${scopeWord(all ? all.read : undefined)}`);
      const named = isObj(role.entities) ? Object.keys(role.entities).filter((k) => k !== ANY).length : 0;
      if (named) bits.push(`${named} entit${named === 1 ? "y" : "ies"} set apart`);
      let hidden = 0;
      let locked = 0;
      for (const rules of Object.values(isObj(role.fields) ? role.fields : {})) {
        for (const v of Object.values(isObj(rules) ? rules : {})) { if (v === "hidden") hidden++; if (v === "read_only") locked++; }
      }
      if (hidden) bits.push(`${hidden} hidden field${hidden === 1 ? "" : "s"}`);
      if (locked) bits.push(`${locked} read-only field${locked === 1 ? "" : "s"}`);
      if (role.build === true) bits.push("builds the app");
      if (role.members === true) bits.push("gives roles");
      return bits.join(" · ");
    }

    function roleItem(role, i) {
      const path = `$.roles[${i}]`;
      const item = h("li", { className: "pr-item ac-role", "data-path": path, "data-role": isObj(role) ? String(role.key ?? "") : "" });
      if (!isObj(role)) {
        item.append(h("p", { className: "help" }, "This role is not an object; edit it in JSON mode."));
        return item;
      }
      const isOpen = openRoles.has(role);
      const panelId = uid();
      const title = h("span", { className: "pr-item-title" });
      const meta = h("span", { className: "pr-meta" });
      const toggle = h("button", { type: "button", className: "small pr-toggle", "aria-expanded": String(isOpen),
        "aria-controls": panelId, "data-focus": `role-${i}-toggle`, "data-role-toggle": String(role.key ?? "") },
      isOpen ? "Close" : "Edit");
      const refreshHead = () => {
        title.textContent = roleName(role);
        meta.textContent = summary(role);
        toggle.setAttribute("aria-label", `${isOpen ? "Close" : "Edit"} role ${roleName(role)}`);
      };
      const edited = () => { refreshHead(); changed(); };
      toggle.addEventListener("click", () => {
        if (openRoles.has(role)) openRoles.delete(role); else openRoles.add(role);
        rerender(`role-${i}-toggle`);
      });
      const count = members(role.key);
      const remove = h("button", { type: "button", className: "small danger", "aria-label": `Remove role ${roleName(role)}`,
        "data-remove-role": String(role.key ?? ""), onclick: () => removeRole(role) }, "Remove");
      item.append(h("div", { className: "pr-item-head" },
        h("span", { className: "pr-item-name" }, title, h("code", { className: "key" }, String(role.key ?? "")),
          builtIn(role.key) ? h("span", { className: "ac-badge" }, "built-in") : null,
          count ? h("span", { className: "ac-badge ac-members" }, peopleWords(count)) : null),
        meta, h("span", { className: "pr-item-actions" }, toggle, remove)));
      refreshHead();
      const panel = h("div", { className: "pr-panel", id: panelId, hidden: !isOpen });
      if (isOpen) fillRole(panel, role, i, path, edited);
      item.append(panel);
      return item;
    }

    function removeRole(role) {
      const index = body.roles.indexOf(role);
      if (index < 0) return;
      body.roles.splice(index, 1);
      const count = members(role.key);
      let words = `Role “${roleName(role)}” removed.`;
      if (builtIn(role.key)) words += ` Its members keep the built-in defaults of ${role.key}.`;
      else if (count) words += ` Its ${peopleWords(count)} may do nothing in the app once this is published.`;
      notice = { text: words, undo: () => body.roles.splice(Math.min(index, body.roles.length), 0, role) };
      changed();
      rerender("undo-remove");
    }

    // Roles members hold that the definition does not list: built-in ones keep their defaults, others get nothing.
    function unlistedRoles() {
      const listed = new Set(rolesOf().map((r) => r.key));
      const box = h("div", { className: "pr-add ac-unlisted" });
      const missing = Object.keys(info.built_in).filter((k) => !listed.has(k));
      if (missing.length) {
        box.append(h("p", { className: "help pr-options" }, "Built-in roles not listed (they keep their defaults): ",
          ...missing.map((key) => h("button", { type: "button", className: "small", "data-add-built-in": key,
            onclick: () => addRoleBody({ key, label: JSON.parse(JSON.stringify(info.role_labels[key] || key)),
              ...JSON.parse(JSON.stringify(info.built_in[key])) }) },
          `+ ${text(info.role_labels[key]) || key}`))));
      }
      const orphans = Object.entries(info.members).filter(([key]) => key !== info.admin_role && !listed.has(key) && !builtIn(key));
      for (const [key, count] of orphans) {
        box.append(h("p", { className: "pr-notice" },
          h("span", {}, `${peopleWords(count)} of the app ${count === 1 ? "has" : "have"} the role `, h("code", {}, key),
            ", which this list does not name: they may do nothing in the app."),
          h("button", { type: "button", className: "small", onclick: () => addRoleBody({ key }) }, `+ Add role ${key}`)));
      }
      return box;
    }

    function addRoleBody(role) {
      body.roles.push(role);
      openRoles.add(role);
      changed();
      rerender();
      focus(`role-${body.roles.length - 1}-label`);
    }

    function addRole() {
      const head = uid();
      const box = h("div", { className: "pr-add ac-add", role: "group", "aria-labelledby": head },
        h("span", { className: "label", id: head }, "New role"));
      const full = rolesOf().length >= 50;
      const en = h("input", { id: uid(), maxlength: 200, placeholder: "e.g. East region", "data-new-role-en": "",
        "data-focus": "new-role-en", disabled: full });
      const zh = h("input", { id: uid(), maxlength: 200, lang: "zh-CN", placeholder: "例如 华东区", "data-new-role-zh": "",
        disabled: full });
      const key = h("input", { id: uid(), maxlength: 64, spellcheck: "false", autocomplete: "off", pattern: "[a-z][a-z0-9_]*",
        className: "pr-key-input", "data-new-role-key": "", disabled: full });
      const error = h("p", { className: "error", role: "alert", id: uid() });
      let typed = false;
      let asked = 0;
      const taken = () => [info.admin_role, ...rolesOf().map((r) => String(r.key ?? ""))];
      const suggest = async () => {
        if (typed) return;
        const label = en.value.trim() || zh.value.trim();
        const n = ++asked;
        const made = label ? await ed.keyFor(label, taken(), "field") : "";
        if (n === asked && !typed) key.value = made;
      };
      en.addEventListener("input", suggest);
      zh.addEventListener("input", suggest);
      key.addEventListener("input", () => { typed = key.value !== ""; key.removeAttribute("aria-invalid"); });
      const submit = () => {
        const label = B.withLabel(B.withLabel(undefined, "en", en.value.trim()), "zh-CN", zh.value.trim());
        const k = key.value.trim();
        let problem = "";
        if (!label) problem = "Give the role a name (in English, Chinese or both).";
        else if (!KEY_RE.test(k)) problem = "The key uses lowercase letters, digits and underscores, starting with a letter.";
        else if (k === info.admin_role) problem = "“admin” is the app admin, who may do everything; choose another key.";
        else if (taken().includes(k)) problem = `There is a role “${k}” already; choose another key.`;
        error.textContent = problem;
        if (problem) {
          const bad = !label ? en : key;
          bad.setAttribute("aria-invalid", "true");
          bad.setAttribute("aria-describedby", error.id);
          bad.focus();
          return;
        }
        addRoleBody({ key: k, label });
      };
      for (const input of [en, zh, key]) {
        input.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); submit(); } });
      }
      const grid = h("div", { className: "ac-add-grid" },
        h("label", { className: "label", for: en.id }, "Name (English)"), en,
        h("label", { className: "label", for: zh.id }, "Name (中文)"), zh,
        h("label", { className: "label", for: key.id }, "Key"), key);
      box.append(grid, h("div", { className: "pr-inline" },
        h("button", { type: "button", className: "primary-soft", "data-add-role": "", disabled: full, onclick: submit }, "+ Add role"),
        h("span", { className: "help" }, full ? "An app has at most 50 roles." : "A new role may do nothing until you give it powers.")),
      error);
      return box;
    }

    // --- one role ---
    function fillRole(panel, role, i, path, edited) {
      const grid = h("div", { className: "pr-grid" });
      const labels = labelBox(role, "label", edited, "Role name", `${path}.label`);
      const first = labels.querySelector('input[data-lang="en"]');
      if (first) first.dataset.focus = `role-${i}-label`;
      grid.append(labels);
      if (published.has(role.key) || builtIn(role.key)) {
        const id = uid();
        grid.append(h("div", { className: "pr-field", "data-path": `${path}.key` },
          h("span", { className: "label", id }, "Key"),
          h("p", { className: "pr-readonly", "aria-labelledby": id }, h("code", {}, String(role.key ?? "")),
            builtIn(role.key) ? " · built-in" : " · published, so it stays (members hold it)")));
      } else {
        const key = h("input", { value: role.key ?? "", maxlength: 64, spellcheck: "false", autocomplete: "off",
          pattern: "[a-z][a-z0-9_]*", "data-focus": `role-${i}-key`, "data-role-key": "" });
        key.addEventListener("input", () => { role.key = key.value; edited(); });
        grid.append(field("Key", key, { path: `${path}.key`, help: "What members' roles name; fixed once published." }));
      }
      panel.append(grid, recordsBox(role, i, path, edited), fieldsBox(role, i, path, edited), powersBox(role, i, path, edited));
      if (builtIn(role.key)) {
        panel.append(h("div", { className: "pr-row-actions" }, h("button", { type: "button", className: "small",
          "data-reset-role": "", onclick: () => {
            for (const prop of ["entities", "fields", "build", "members"]) delete role[prop];
            Object.assign(role, JSON.parse(JSON.stringify(info.built_in[role.key])));
            edited(); rerender(`role-${i}-toggle`);
          } }, `Reset to the built-in defaults of ${role.key}`)));
      }
    }

    function sub(title, path, help) {
      const head = uid();
      return h("section", { className: "pr-sub", "aria-labelledby": head, "data-path": path },
        h("h3", { id: head }, title), help ? h("p", { className: "help" }, help) : null);
    }

    // --- records: the matrix ---
    function recordsBox(role, i, path, edited) {
      const box = sub("Records", `${path}.entities`, "Own: records they own (the entity's owner field, else whoever " +
        "created them). Team: records owned by anyone in their teams. All: every record. “as *” follows the last " +
        "row, for all other entities.");
      if (role.entities !== undefined && !isObj(role.entities)) {
        box.append(h("p", { className: "help" }, "Not an object; edit it in JSON mode."));
        return box;
      }
      const rows = [...entityKeys, ...Object.keys(isObj(role.entities) ? role.entities : {})
        .filter((k) => k !== ANY && !entityKeys.includes(k)), ANY];
      const name = roleName(role);
      const caption = h("caption", { className: "visually-hidden" }, `What ${name} may do with records`);
      const table = h("table", { className: "ac-matrix" }, caption,
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Entity"),
          ...ACTIONS.map(([, label]) => h("th", { scope: "col" }, label)))));
      const tbody = h("tbody", {});
      const conditions = h("div", { className: "pr-block ac-conditions" });
      for (const key of rows) tbody.append(matrixRow(role, i, key, edited, conditions));
      table.append(tbody);
      const scroller = h("div", { className: "ac-scroll", role: "region", tabindex: "0", "aria-label": `Records: ${name}` }, table);
      box.append(h("p", { className: "help ac-scroll-hint" }, "The table scrolls sideways: change, delete, export, import."),
        scroller, conditions);
      return box;
    }

    function entryOf(role, key) {
      return isObj(role.entities) && isObj(role.entities[key]) ? role.entities[key] : null;
    }

    function ensureEntry(role, key) {
      if (!isObj(role.entities)) role.entities = {};
      if (!isObj(role.entities[key])) role.entities[key] = {};
      return role.entities[key];
    }

    function tidy(role, key) {
      const entry = entryOf(role, key);
      if (entry && !Object.keys(entry).length && key !== ANY) delete role.entities[key];
    }

    function matrixRow(role, i, key, edited, conditions) {
      const known = key === ANY || entityKeys.includes(key);
      const entity = key === ANY ? null : entities[key];
      const label = key === ANY ? "All other entities" : entity ? entity.label : key;
      const where = entityPath(i, key);
      const head = h("th", { scope: "row", "data-path": where },
        h("span", { className: "ac-entity" }, label), " ", h("code", { className: "key" }, key));
      if (!known) {
        head.append(" ", h("span", { className: "error" }, "(not in this app)"), " ",
          h("button", { type: "button", className: "small icon", "aria-label": `Remove the rules for ${key}`,
            onclick: () => { delete role.entities[key]; edited(); rerender(`role-${i}-toggle`); } }, "✕"));
      }
      const row = h("tr", { className: key === ANY ? "ac-any" : null, "data-entity": key }, head);
      const entry = entryOf(role, key);
      if (role.entities && isObj(role.entities) && role.entities[key] !== undefined && !entry) {
        row.append(h("td", { colspan: ACTIONS.length }, h("span", { className: "help" }, "Not an object; edit it in JSON mode.")));
        return row;
      }
      for (const [action] of ACTIONS) {
        const cell = h("td", { "data-path": `${where}.${action}` });
        cell.append(SCOPED.has(action) ? scopeControl(role, i, key, label, action, edited, conditions)
          : flagControl(role, i, key, label, action, edited));
        row.append(cell);
      }
      return row;
    }

    // create / export / import: a checkbox; an entity's row not naming the action shows the "*" row's value.
    function flagControl(role, i, key, label, action, edited) {
      const entry = entryOf(role, key);
      const own = entry && Object.hasOwn(entry, action);
      const inherited = key !== ANY && !own;
      const fallback = entryOf(role, ANY);
      const on = own ? entry[action] === true : inherited && fallback ? fallback[action] === true : false;
      const input = h("input", { type: "checkbox", checked: on, "data-focus": `role-${i}-${key}-${action}`,
        "data-grant": `${key}.${action}`,
        "aria-label": `${label}: ${VERBS[action]}${inherited ? " (as for all other entities)" : ""}` });
      input.addEventListener("change", () => {
        const target = ensureEntry(role, key);
        if (input.checked) target[action] = true;
        else if (key === ANY) delete target[action];
        else target[action] = false;
        edited(); rerender(`role-${i}-${key}-${action}`);
      });
      const wrapCell = h("span", { className: `ac-flag${inherited ? " ac-inherited" : ""}` }, input);
      if (inherited) wrapCell.title = "As for all other entities (*)";
      return wrapCell;
    }

    // read / change / delete: none, own, team, all (or, in an entity's row, as for "*"), and "only when…".
    function scopeControl(role, i, key, label, action, edited, conditions) {
      const entry = entryOf(role, key);
      const grant = entry ? entry[action] : undefined;
      const fallback = entryOf(role, ANY);
      const pairs = SCOPES.slice();
      if (key !== ANY) pairs.unshift(["", `as * (${scopeWord(fallback ? fallback[action] : undefined)})`]);
      const current = key === ANY && grant === undefined ? "none" : scopeOf(grant);
      const focusKey = `role-${i}-${key}-${action}`;
      const select = choice(pairs, current, (v) => {
        const target = ensureEntry(role, key);
        const before = target[action];
        const kept = stash.get(target) || {};
        if (isObj(before) && isObj(before.when)) { kept[action] = before.when; stash.set(target, kept); }
        if (v === "") delete target[action];
        else if (v === "none") { if (key === ANY) delete target[action]; else target[action] = false; }
        else if (kept[action] && key !== ANY) target[action] = { scope: v, when: kept[action] };
        else if (isObj(before)) target[action] = Object.assign(before, { scope: v });
        else target[action] = v;
        if (target[action] && isObj(target[action]) && kept[action] === target[action].when) delete kept[action];
        tidy(role, key);
        edited(); rerender(focusKey);
      }, { attrs: { "aria-label": `${label}: ${VERBS[action]}`, "data-focus": focusKey, "data-grant": `${key}.${action}`,
        className: current === "" ? "ac-inherited" : null } });
      const out = h("span", { className: "ac-scope" }, select);
      const scoped = ["own", "team", "all"].includes(scopeOf(grant));
      if (key === ANY || !scoped || !entities[key]) return out;
      const when = isObj(grant) && grant.when !== undefined;
      const whenKey = `role-${i}-${key}-${action}-when`;
      out.append(h("button", { type: "button", className: `small link ac-when${when ? " ac-when-on" : ""}`,
        "data-when": `${key}.${action}`, "data-focus": `${focusKey}-when-button`,
        "aria-label": when ? `Edit the condition on ${VERBS[action]}ing ${label} records`
          : `Only ${VERBS[action]} ${label} records when a condition holds`,
        onclick: () => {
          if (!when) {
            const target = ensureEntry(role, key);
            target[action] = { scope: scopeOf(target[action]), when: firstTest(key) };
            edited(); rerender();
          }
          const box = root.querySelector(`[data-when-box="${CSS.escape(whenKey)}"]`);
          if (box) { box.scrollIntoView({ block: "nearest" }); const control = box.querySelector("select, input, button"); if (control) control.focus(); }
        } }, when ? "only when… ✓" : "+ only when…"));
      if (when) conditions.append(conditionBox(role, i, key, label, action, grant, whenKey, edited));
      return out;
    }

    // The fields a scope condition may test: those SQL reads the same way (choice, text, yes/no, user, relation).
    function testable(key) {
      const ops = info.when_operators || {};
      return (entities[key] ? entities[key].fields : []).filter((f) => Object.hasOwn(ops, f.kind));
    }

    function firstTest(key) {
      const f = testable(key)[0];
      if (!f) return { field: "", op: "eq", value: "" };
      const op = (info.when_operators[f.kind] || ["eq"])[0];
      const leaf = { field: f.key, op };
      if (op !== "empty" && op !== "not_empty") leaf.value = f.options && f.options.length ? f.options[0].value : "";
      return leaf;
    }

    function conditionBox(role, i, key, label, action, grant, whenKey, edited) {
      const path = `${entityPath(i, key)}.${action}.when`;
      const card = h("div", { className: "pr-card ac-when-box", "data-when-box": whenKey });
      const fields = testable(key);
      const builder = B.conditionBuilder(grant, "when", fields, info.when_operators || {}, () => edited(), path,
        `${VERBS[action][0].toUpperCase()}${VERBS[action].slice(1)} ${label} records (${scopeWord(grant.scope)}) only when`);
      card.append(builder);
      if (!fields.length) card.append(h("p", { className: "help" }, "This entity has no choice, text, yes/no, user or relation field to test."));
      // "The person asking" is a reference the pickers above cannot make: one button per person field.
      const people = fields.filter((f) => f.type === "user" || f.type === "users");
      if (people.length) {
        card.append(h("div", { className: "pr-options" }, ...people.map((f) => {
          const several = f.type === "users";
          return h("button", { type: "button", className: "small", "data-add-me": f.key, onclick: () => {
            const test = { field: f.key, op: several ? "contains" : "eq", value: { $user: true } };
            const now = grant.when;
            if (isObj(now) && Array.isArray(now.all)) now.all.push(test);
            else grant.when = isObj(now) && (typeof now.field === "string" || Array.isArray(now.any)) ? { all: [now, test] } : test;
            edited(); rerender(`${whenKey}-me-${f.key}`);
          }, "data-focus": `${whenKey}-me-${f.key}` }, `+ ${f.label} ${several ? "includes" : "is"} the person asking`);
        })));
      }
      card.append(h("p", { className: "help" }, "Scope conditions run in the database, so they test choice, text, " +
        "yes/no, user and relation fields, and “the person asking” is shown as {\"$user\": true}."),
      h("div", { className: "pr-row-actions" }, h("button", { type: "button", className: "small danger",
        "aria-label": `Remove the condition on ${VERBS[action]}ing ${label} records`, onclick: () => {
          const target = entryOf(role, key);
          if (target && isObj(target[action])) target[action] = scopeOf(target[action]);
          edited(); rerender(`role-${i}-${key}-${action}`);
        } }, "Remove condition")));
      return card;
    }

    // --- fields ---
    function fieldsBox(role, i, path, edited) {
      const box = sub("Fields", `${path}.fields`, "Hidden fields are never sent to this role: not in forms, record " +
        "pages, lists, exports or the API. Read-only fields are shown but cannot be changed.");
      if (role.fields !== undefined && !isObj(role.fields)) {
        box.append(h("p", { className: "help" }, "Not an object; edit it in JSON mode."));
        return box;
      }
      const rules = isObj(role.fields) ? role.fields : {};
      const keys = [...entityKeys, ...Object.keys(rules).filter((k) => !entityKeys.includes(k))];
      if (!keys.length) { box.append(h("p", { className: "help" }, "The app has no entities yet.")); return box; }
      let chosen = fieldEntity.get(role);
      if (!keys.includes(chosen)) chosen = keys.find((k) => isObj(rules[k]) && Object.keys(rules[k]).length) || keys[0];
      const countOf = (k) => (isObj(rules[k]) ? Object.values(rules[k]).filter((v) => v !== "editable").length : 0);
      const pick = choice(keys.map((k) => {
        const n = countOf(k);
        return [k, `${entities[k] ? entities[k].label : `${k} (not in this app)`}${n ? ` · ${n} rule${n === 1 ? "" : "s"}` : ""}`];
      }), chosen, (v) => { fieldEntity.set(role, v); rerender(`role-${i}-field-entity`); },
      { attrs: { "data-focus": `role-${i}-field-entity`, "data-field-entity": "" } });
      box.append(field("Fields of", pick, { path: `${path}.fields.${chosen}` }));
      const entity = entities[chosen];
      const own = isObj(rules[chosen]) ? rules[chosen] : {};
      if (rules[chosen] !== undefined && !isObj(rules[chosen])) {
        box.append(h("p", { className: "help" }, "Not an object; edit it in JSON mode."));
        return box;
      }
      const list = [...(entity ? entity.fields : []).map((f) => [f.key, f.label]),
        ...Object.keys(own).filter((k) => !(entity && entity.fields.some((f) => f.key === k))).map((k) => [k, null])];
      const table = h("table", { className: "ac-fields" },
        h("caption", { className: "visually-hidden" }, `Fields of ${entity ? entity.label : chosen} for ${roleName(role)}`),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "This role"))));
      const tbody = h("tbody", {});
      for (const [fieldKey, fieldLabel] of list) {
        const at = `${path}.fields.${chosen}.${fieldKey}`;
        const title = entity && entity.title_field === fieldKey;
        const value = Object.hasOwn(own, fieldKey) ? own[fieldKey] : "editable";
        const helpId = title ? uid() : null;
        const select = choice(FIELD_RULES.map(([v, l]) => [v, l]), value, (v) => {
          if (!isObj(role.fields)) role.fields = {};
          if (!isObj(role.fields[chosen])) role.fields[chosen] = {};
          if (v === "editable") delete role.fields[chosen][fieldKey]; else role.fields[chosen][fieldKey] = v;
          if (!Object.keys(role.fields[chosen]).length) delete role.fields[chosen];
          if (!Object.keys(role.fields).length) delete role.fields;
          edited(); rerender(`role-${i}-field-${fieldKey}`);
        }, { attrs: { "aria-label": `${fieldLabel || fieldKey}: ${roleName(role)} finds it`, "data-focus": `role-${i}-field-${fieldKey}`,
          "data-field-rule": fieldKey, "aria-describedby": helpId, className: value !== "editable" ? `ac-rule-${value}` : null } });
        if (title) {
          const hidden = select.querySelector('option[value="hidden"]');
          if (hidden && value !== "hidden") hidden.disabled = true;
        }
        const nameCell = h("th", { scope: "row" }, fieldLabel || fieldKey, " ", h("code", { className: "key" }, fieldKey));
        if (!fieldLabel) {
          nameCell.append(" ", h("span", { className: "error" }, "(not in this entity)"));
        }
        const cell = h("td", { "data-path": at }, select);
        if (title) cell.append(h("p", { className: "help", id: helpId }, "Names the record everywhere, so it is never hidden."));
        tbody.append(h("tr", { "data-field": fieldKey }, nameCell, cell));
      }
      table.append(tbody);
      box.append(h("div", { className: "ac-scroll ac-fields-wrap" }, table));
      return box;
    }

    // --- the app ---
    function powersBox(role, i, path, edited) {
      const box = sub("The app", null);
      const flag = (prop) => (on) => { if (on) role[prop] = true; else delete role[prop]; edited(); };
      const warnId = uid();
      const build = checkbox("Builds the app: edits and publishes its entities, forms, pipelines, rules and access",
        role.build === true, flag("build"), { "data-power": "build", "aria-describedby": warnId });
      box.append(h("div", { className: "pr-field", "data-path": `${path}.build` }, build,
        h("p", { className: "ac-warning", id: warnId }, "This includes changing access, this page too: give it only " +
          "to people you would make app admins.")));
      box.append(h("div", { className: "pr-field", "data-path": `${path}.members` },
        checkbox("Gives people roles in this app", role.members === true, flag("members"), { "data-power": "members" })));
      return box;
    }
  };
})();
