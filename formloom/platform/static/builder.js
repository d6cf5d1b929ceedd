// The builder's shell: one definition as JSON, edited visually or as text, saved as a draft,
// checked by the server, previewed and published. Kind editors (builder-<kind>.js) register in
// FormloomBuilder.editors and change `ed.body` in place, then call `ed.changed()`.
// Every admin-typed string reaches the page through textContent or value, never as HTML.
"use strict";

const FormloomBuilder = (() => {
  const editors = {};

  // --- DOM --------------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
      else if (name === "className") el.className = value;
      else if (name === "value") el.value = value;
      else if (name === "checked") el.checked = Boolean(value);
      else if (name === "dataset") Object.assign(el.dataset, value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  let uid = 0;
  const nextId = (prefix) => `${prefix || "b"}-${++uid}`;

  function text(label, locale) {
    if (label === null || label === undefined) return "";
    if (typeof label === "string") return label;
    if (typeof label === "object") return label[locale] || label.en || label["zh-CN"] || Object.values(label)[0] || "";
    return String(label);
  }

  // A label is a string or {"en", "zh-CN"}: the English box edits a plain string in place, and
  // a Chinese text turns it into a map; clearing one language leaves the other as it was.
  function labelValue(label, lang) {
    if (typeof label === "string") return lang === "en" ? label : "";
    if (label && typeof label === "object") return label[lang] || "";
    return "";
  }

  function withLabel(label, lang, value) {
    if (lang === "en" && (label === undefined || typeof label === "string")) return value || undefined;
    const map = typeof label === "string" ? { en: label } : Object.assign({}, label || {});
    if (value) map[lang] = value; else delete map[lang];
    const langs = Object.keys(map);
    if (langs.length === 0) return undefined;
    if (langs.length === 1 && langs[0] === "en" && typeof label === "string") return map.en;
    return map;
  }

  function labelInputs(obj, prop, onChange, opts) {
    const o = opts || {};
    const wrap = h("div", { className: "label-inputs" });
    for (const [lang, name] of [["en", "English"], ["zh-CN", "中文"]]) {
      const id = nextId("label");
      const input = h("input", { id, value: labelValue(obj[prop], lang), lang, maxlength: o.multiline ? 2000 : 200,
        "data-lang": lang });
      input.addEventListener("input", () => {
        const next = withLabel(obj[prop], lang, input.value);
        if (next === undefined) delete obj[prop]; else obj[prop] = next;
        onChange(lang, input.value);
      });
      wrap.append(h("label", { className: "label", for: id }, `${o.title || "Label"} (${name})`), input);
    }
    return wrap;
  }

  // Up/down buttons always; drag and drop where a pointer is. `onMove(from, to)` reorders.
  function sortable(list, onMove) {
    let dragged = null;
    list.addEventListener("dragstart", (event) => {
      const item = event.target.closest("[data-sort-index]");
      if (!item || item.parentNode !== list) return;
      dragged = item;
      item.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", item.dataset.sortIndex);
    });
    list.addEventListener("dragover", (event) => {
      if (!dragged) return;
      event.preventDefault();
      const over = event.target.closest("[data-sort-index]");
      list.querySelectorAll(".drop-before").forEach((el) => el.classList.remove("drop-before"));
      if (over && over.parentNode === list && over !== dragged) over.classList.add("drop-before");
    });
    list.addEventListener("drop", (event) => {
      if (!dragged) return;
      event.preventDefault();
      const over = event.target.closest("[data-sort-index]");
      const from = Number(dragged.dataset.sortIndex);
      let to = over && over.parentNode === list ? Number(over.dataset.sortIndex) : list.children.length - 1;
      if (to > from && over) to -= 1;
      dragged = null;
      if (from !== to) onMove(from, to);
    });
    list.addEventListener("dragend", () => {
      if (dragged) dragged.classList.remove("dragging");
      dragged = null;
      list.querySelectorAll(".drop-before").forEach((el) => el.classList.remove("drop-before"));
    });
  }

  // --- small controls -------------------------------------------------------------------------
  // Shared by the kind editors. `controls(prefix)` gives them with ids made from that prefix.
  const isObj = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
  const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
  // The JSON path of `key` under `path`: "$.map.open", or "$.map[\"in progress\"]" for other keys.
  const keyPath = (path, key) => (IDENT.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`);

  function controls(prefix) {
    const uid = () => nextId(prefix);

    function field(label, input, opts) {
      const o = opts || {};
      if (!input.id) input.id = uid();
      const help = o.help ? h("p", { className: "help", id: uid() }, o.help) : null;
      if (help) input.setAttribute("aria-describedby", help.id);
      return h("div", { className: `pr-field${o.wide ? " pr-wide" : ""}`, "data-path": o.path },
        h("label", { className: "label", for: input.id }, label), input, help);
    }

    function checkbox(label, checked, onChange, attrs, className) {
      const id = uid();
      const input = h("input", Object.assign({ type: "checkbox", id, checked }, attrs || {}));
      input.addEventListener("change", () => onChange(input.checked, input));
      return h("div", { className: className || "check pr-check" }, input, h("label", { for: id }, label));
    }

    // A select over [value, text] pairs. A current value that is not offered stays listed (and
    // selected) so nothing is lost or silently replaced by the first option.
    function choice(pairs, current, onChange, opts) {
      const o = opts || {};
      const list = pairs.slice();
      const now = current === undefined || current === null ? "" : String(current);
      if (now !== "" && !list.some(([value]) => value === now)) list.unshift([now, `${now} (not found)`]);
      if (o.blank !== undefined) list.unshift(["", o.blank]);
      const select = h("select", o.attrs || {},
        ...list.map(([value, label]) => h("option", { value, selected: value === now || null }, label)));
      select.addEventListener("change", () => onChange(select.value, select));
      return select;
    }

    // Several values as checkboxes (a multi-select that works with a keyboard and on a phone).
    // `get()` reads the current list from the body; `set(next)` stores it.
    function checkList(legend, pairs, get, set, opts) {
      const o = opts || {};
      const current = Array.isArray(get()) ? get() : [];
      const all = pairs.slice();
      for (const v of current) if (!all.some(([value]) => value === v)) all.push([v, `${v} (not found)`]);
      const box = h("fieldset", { className: "pr-checks", "data-path": o.path },
        h("legend", { className: "label" }, legend));
      const chips = h("div", { className: "pr-chips" });
      const inputs = [];
      const limit = () => {
        if (!o.max) return;
        const full = (Array.isArray(get()) ? get() : []).length >= o.max;
        for (const input of inputs) input.disabled = full && !input.checked;
      };
      for (const [value, label] of all) {
        const id = uid();
        const input = h("input", { type: "checkbox", id, value, checked: current.includes(value),
          "data-focus": o.focus ? `${o.focus}:${value}` : null });
        input.addEventListener("change", () => {
          const list = Array.isArray(get()) ? get() : [];
          set(input.checked ? [...list.filter((v) => v !== value), value] : list.filter((v) => v !== value));
          limit();
        });
        inputs.push(input);
        chips.append(h("span", { className: "pr-chip" }, input, h("label", { for: id }, label)));
      }
      if (!all.length) chips.append(h("span", { className: "help" }, o.empty || "Nothing to choose from."));
      box.append(chips);
      if (o.help) box.append(h("p", { className: "help" }, o.help));
      limit();
      return box;
    }

    function labelBox(obj, prop, onChange, title, path, opts) {
      const inputs = labelInputs(obj, prop, onChange, Object.assign({ title }, opts || {}));
      return h("div", { className: "pr-field pr-wide", "data-path": path }, inputs);
    }

    return { uid, field, checkbox, choice, checkList, labelBox };
  }

  // `ed.rerender()` for structural edits, putting the focus back where it was (by data-focus).
  function refocus(root, ed) {
    function focus(key) {
      const el = root.querySelector(`[data-focus="${CSS.escape(key)}"]`);
      if (el && !el.disabled) { el.focus(); return true; }
      return false;
    }
    function rerender(focusKey) {
      const active = document.activeElement;
      const key = focusKey || (active && active.dataset ? active.dataset.focus : null);
      ed.rerender();
      if (key) focus(key);
    }
    return { focus, rerender };
  }

  function moveItem(array, from, to) {
    const [item] = array.splice(from, 1);
    array.splice(to, 0, item);
  }

  function moveButtons(array, index, what, onMove) {
    return [
      h("button", { type: "button", className: "small icon", "aria-label": `Move ${what} up`, disabled: index === 0,
        onclick: () => onMove(index, index - 1) }, "↑"),
      h("button", { type: "button", className: "small icon", "aria-label": `Move ${what} down`,
        disabled: index === array.length - 1, onclick: () => onMove(index, index + 1) }, "↓"),
    ];
  }

  // --- server -------------------------------------------------------------------------------
  async function api(method, url, body) {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "Accept": "application/json", "Content-Type": "application/json",
                 "X-CSRFToken": window.formloom ? window.formloom.csrfToken() : "" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data };
  }

  const keyCache = new Map();
  async function keyFor(label, taken, fallback) {
    const cacheKey = JSON.stringify([label, taken, fallback]);
    if (keyCache.has(cacheKey)) return keyCache.get(cacheKey);
    const result = await api("POST", "/api/v1/key-suggestion", { label, taken: taken || [], fallback });
    const key = result.ok ? result.data.key : (fallback || "field");
    keyCache.set(cacheKey, key);
    return key;
  }

  // A refused request's problems: {"error": {"fields": {path: [messages]}}} from the API.
  function problemsOf(err) {
    const out = [];
    for (const [path, messages] of Object.entries((err && err.fields) || {})) {
      for (const message of messages) out.push({ path, message });
    }
    return out;
  }

  // --- JSON paths in text ---------------------------------------------------------------------
  // Where each JSON path starts and ends in the text, so problems point into the JSON editor.
  function jsonPositions(source) {
    const spots = new Map();
    let i = 0;
    const ws = () => { while (i < source.length && " \t\r\n".includes(source[i])) i++; };
    const str = () => {
      const start = i++;
      while (i < source.length && source[i] !== '"') i += source[i] === "\\" ? 2 : 1;
      i++;
      return JSON.parse(source.slice(start, i));
    };
    const value = (path) => {
      ws();
      const start = i;
      if (source[i] === "{") {
        i++; ws();
        if (source[i] === "}") i++;
        else for (;;) {
          ws(); const name = str(); ws(); i++;
          value(keyPath(path, name));
          ws();
          if (source[i++] === "}") break;
        }
      } else if (source[i] === "[") {
        i++; ws();
        if (source[i] === "]") i++;
        else for (let n = 0; ; n++) {
          value(`${path}[${n}]`); ws();
          if (source[i++] === "]") break;
        }
      } else if (source[i] === '"') str();
      else while (i < source.length && !",}] \t\r\n".includes(source[i])) i++;
      spots.set(path, [start, i]);
    };
    try { value("$"); } catch (e) { /* positions up to the first oddity are enough */ }
    return spots;
  }

  function lineOf(source, offset) {
    const before = source.slice(0, offset);
    return { line: before.split("\n").length, column: offset - before.lastIndexOf("\n") };
  }

  // The nearest path that exists: "$.fields[2].options[9]" falls back to "$.fields[2].options".
  function nearest(spots, path) {
    let p = path;
    while (p && !spots.has(p)) {
      const cut = Math.max(p.lastIndexOf("."), p.lastIndexOf("["));
      if (cut <= 0) return spots.get("$");
      p = p.slice(0, cut);
    }
    return spots.get(p);
  }

  function syntaxProblem(source, error) {
    const match = /position (\d+)/.exec(error.message) || /column (\d+)/.exec(error.message);
    let where = "";
    if (match && /position/.test(match[0])) {
      const { line, column } = lineOf(source, Number(match[1]));
      where = ` (line ${line}, column ${column})`;
    } else if (/line (\d+) column (\d+)/.test(error.message)) {
      const [, line, column] = /line (\d+) column (\d+)/.exec(error.message);
      where = ` (line ${line}, column ${column})`;
    }
    return { path: "$", message: `The text is not valid JSON${where}: ${error.message}. Nothing is saved until it is.`,
             syntax: true };
  }

  // --- the editor -----------------------------------------------------------------------------
  function start(root) {
    const data = JSON.parse(document.getElementById("builder-data").textContent);
    const visual = root.querySelector("[data-visual]");
    const jsonPane = root.querySelector("[data-json]");
    const textarea = root.querySelector("[data-json-text]");
    const saveState = root.querySelector("[data-save-state]");
    const problemList = root.querySelector("[data-problems]");
    let mode = "visual";
    let problems = [];
    let saving = null;
    let again = false;
    let timer = null;
    let hasDraft = data.has_draft;
    let lastSaved = JSON.stringify(data.body);

    const ed = {
      data, body: data.body, locale: data.locale,
      h, text, labelInputs, sortable, moveItem, moveButtons, keyFor, nextId, api,
      changed() { markDirty(); },
      rerender() { renderVisual(); },
      problemsUnder(path) { return problems.filter((p) => p.path === path || p.path.startsWith(path + ".") || p.path.startsWith(path + "[")); },
      frozen(key) { return data.frozen_keys.includes(key); },
    };

    function renderVisual() {
      const editor = editors[data.kind];
      const scrollY = window.scrollY;
      visual.replaceChildren();
      if (!editor) { visual.append(h("p", { className: "help" }, "This kind is edited as JSON.")); return; }
      editor(visual, ed);
      showProblemsInline();
      window.scrollTo(0, scrollY);
    }

    function markDirty() {
      saveState.textContent = "Unsaved changes…";
      clearTimeout(timer);
      timer = setTimeout(save, 500);
    }

    async function save() {
      clearTimeout(timer);
      timer = null;
      if (saving) { again = true; return saving; }
      const snapshot = JSON.stringify(ed.body);
      if (snapshot === lastSaved && hasDraft) { saveState.textContent = "Draft saved"; return null; }
      saveState.textContent = "Saving…";
      saving = api("PUT", data.urls.definition, ed.body).then((result) => {
        if (result.ok) {
          lastSaved = snapshot;
          hasDraft = true;
          setProblems(result.data.problems || []);
          saveState.textContent = timer || JSON.stringify(ed.body) !== snapshot ? "Unsaved changes…"
            : problems.length ? `Draft saved · ${problems.length} problem${problems.length === 1 ? "" : "s"}` : "Draft saved";
          root.querySelector("[data-draft-badge]").hidden = false;
          root.querySelector("[data-discard]").disabled = false;
          refreshPreview();
        } else {
          const err = (result.data && result.data.error) || {};
          const found = problemsOf(err);
          setProblems(found.length ? found : [{ path: "$", message: err.message || "The draft could not be saved." }]);
          saveState.textContent = "Not saved: " + (err.message || `error ${result.status}`);
        }
      }).catch(() => {
        saveState.textContent = "Not saved: the server cannot be reached. Your edits are kept on this page.";
      }).finally(() => {
        saving = null;
        if (again) { again = false; save(); }
      });
      return saving;
    }

    // --- problems ---
    function setProblems(list) {
      problems = list;
      const count = root.querySelector("[data-problem-count]");
      count.hidden = list.length === 0;
      count.textContent = String(list.length);
      root.querySelector("[data-no-problems]").hidden = list.length > 0;
      renderProblemList();
      showProblemsInline();
    }

    function renderProblemList() {
      const spots = mode === "json" ? jsonPositions(textarea.value) : null;
      problemList.replaceChildren(...problems.map((p) => {
        let where = p.path;
        let range = null;
        if (spots) {
          range = p.syntax ? null : nearest(spots, p.path);
          if (range) where = `${p.path} · line ${lineOf(textarea.value, range[0]).line}`;
        }
        const button = h("button", { type: "button", className: "link problem-path" }, where);
        button.addEventListener("click", () => {
          if (mode === "json" && range) {
            textarea.focus();
            textarea.setSelectionRange(range[0], range[1]);
          } else {
            const el = inlineTarget(p.path);
            if (el) { el.scrollIntoView({ block: "center" }); const focusable = el.querySelector("input, select, textarea, button"); if (focusable) focusable.focus(); }
          }
        });
        return h("li", { "data-problem-path": p.path }, button, " ", h("span", {}, p.message));
      }));
    }

    function inlineTarget(path) {
      let best = null;
      for (const el of visual.querySelectorAll("[data-path]")) {
        const own = el.dataset.path;
        if ((path === own || path.startsWith(own + ".") || path.startsWith(own + "[")) &&
            (!best || own.length > best.dataset.path.length)) best = el;
      }
      return best;
    }

    function showProblemsInline() {
      visual.querySelectorAll(".problem-note").forEach((el) => el.remove());
      visual.querySelectorAll(".has-problem").forEach((el) => el.classList.remove("has-problem"));
      for (const p of problems) {
        const el = inlineTarget(p.path);
        if (!el) continue;
        el.classList.add("has-problem");
        el.append(h("p", { className: "problem-note error", role: "note" }, p.message));
      }
    }

    // --- JSON mode ---
    let jsonTimer = null;
    textarea.addEventListener("input", () => {
      clearTimeout(jsonTimer);
      saveState.textContent = "Checking…";
      jsonTimer = setTimeout(() => {
        let parsed;
        try {
          parsed = JSON.parse(textarea.value);
        } catch (error) {
          setProblems([syntaxProblem(textarea.value, error)]);
          saveState.textContent = "Not saved: the JSON has a syntax error";
          return;
        }
        ed.body = parsed;
        save();
      }, 350);
    });

    function setMode(next) {
      if (next === mode) return;
      if (next === "visual") {
        clearTimeout(jsonTimer);
        try {
          ed.body = JSON.parse(textarea.value);
        } catch (error) {
          setProblems([syntaxProblem(textarea.value, error)]);
          textarea.focus();
          return;
        }
        if (JSON.stringify(ed.body) !== lastSaved) save();
      } else {
        textarea.value = JSON.stringify(ed.body, null, 2);
      }
      mode = next;
      root.querySelectorAll("[data-mode]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === mode)));
      visual.hidden = mode !== "visual";
      jsonPane.hidden = mode !== "json";
      if (mode === "visual") renderVisual(); else renderProblemList();
    }
    root.querySelectorAll("[data-mode]").forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));

    // --- preview ---
    const previewPane = root.querySelector("[data-preview]");
    const frame = root.querySelector("[data-preview-frame]");
    let width = "desktop";
    function refreshPreview() {
      if (!previewPane || previewPane.hidden) return;
      frame.src = `${data.urls.preview}?width=${width}&t=${Date.now()}`;
    }
    const toggle = root.querySelector("[data-preview-toggle]");
    if (toggle) {
      toggle.addEventListener("click", async () => {
        previewPane.hidden = !previewPane.hidden;
        toggle.setAttribute("aria-expanded", String(!previewPane.hidden));
        if (!previewPane.hidden) { if (timer || saving) await save(); refreshPreview(); previewPane.scrollIntoView({ block: "start" }); }
      });
      root.querySelectorAll("[data-width]").forEach((b) => b.addEventListener("click", () => {
        width = b.dataset.width;
        root.querySelectorAll("[data-width]").forEach((o) => o.setAttribute("aria-pressed", String(o === b)));
        frame.classList.toggle("phone", width === "phone");
        refreshPreview();
      }));
    }

    // --- discard and publish ---
    root.querySelector("[data-discard]").addEventListener("click", async () => {
      const question = data.published_version ? `Discard the draft and return to version ${data.published_version}?`
        : "Discard this draft? It was never published, so it is removed.";
      if (!window.confirm(question)) return;
      clearTimeout(timer);
      if (saving) await saving;
      const result = await api("DELETE", data.urls.draft);
      if (result.ok) window.location.href = data.published_version ? window.location.pathname : data.urls.admin;
      else saveState.textContent = "Not discarded: " + ((result.data && result.data.error && result.data.error.message) || result.status);
    });

    const dialog = root.querySelector("[data-publish-dialog]");
    const impactsBox = dialog.querySelector("[data-impacts]");
    const publishError = dialog.querySelector("[data-publish-error]");
    let impacts = [];

    root.querySelector("[data-publish]").addEventListener("click", async () => {
      if (mode === "json") {
        try { ed.body = JSON.parse(textarea.value); } catch (error) { setProblems([syntaxProblem(textarea.value, error)]); return; }
      }
      if (timer || saving || JSON.stringify(ed.body) !== lastSaved) { clearTimeout(timer); timer = null; await save(); if (saving) await saving; }
      if (problems.length) {
        saveState.textContent = `Fix the ${problems.length} problem${problems.length === 1 ? "" : "s"} first`;
        root.querySelector(".problems-pane").scrollIntoView({ block: "start" });
        return;
      }
      const [impact, changes] = await Promise.all([api("GET", data.urls.impact),
        api("GET", `${data.urls.definition}/diff?locale=${encodeURIComponent(data.locale)}`)]);
      impacts = (impact.ok && impact.data.impacts) || [];
      const list = (changes.ok && changes.data.changes) || [];
      dialog.querySelector("[data-publish-summary]").textContent = list.length
        ? `Publishing makes version ${(data.published_version || 0) + 1} with ${list.length} change${list.length === 1 ? "" : "s"}:`
        : "Nothing changed since the live version.";
      dialog.querySelector("[data-publish-changes]").replaceChildren(...list.map((c) => h("li", {}, c.text)));
      renderImpacts();
      publishError.textContent = "";
      dialog.showModal();
    });

    function renderImpacts() {
      impactsBox.replaceChildren();
      if (!impacts.length) return;
      impactsBox.append(h("h3", {}, "Effect on live data"));
      for (const impact of impacts) {
        const name = nextId("impact");
        const box = h("fieldset", { className: "impact", "data-impact": impact.id },
          h("legend", {}, impact.message));
        const labels = { migrate: impact.code === "newly_required" ? "Fill the empty ones with" : "Move them to",
                         proceed: "Proceed: keep the stored values as they are", block: "Do not publish" };
        for (const choice of impact.choices) {
          const id = nextId("choice");
          const radio = h("input", { type: "radio", name, id, value: choice, checked: choice === impact.choices[0] });
          const row = h("div", { className: "check" }, radio, h("label", { for: id }, labels[choice] || choice));
          if (choice === "migrate") {
            if ((impact.targets || []).length) {
              row.append(h("select", { "data-target": "", "aria-label": labels.migrate },
                ...impact.targets.map((t) => h("option", { value: t }, targetLabel(impact, t)))));
            } else {
              row.append(h("input", { "data-value": "", "aria-label": labels.migrate }));
            }
          }
          box.append(row);
        }
        impactsBox.append(box);
      }
    }

    // A target as the admin knows it: the option's or stage's label in the draft, then its key.
    function targetLabel(impact, value) {
      const [, subject] = impact.id.split(":");
      const fieldKey = (subject || "").split(".")[1];
      const field = (ed.body.fields || []).find((f) => f && f.key === fieldKey);
      const pool = impact.code === "stage_removed" ? ed.body.stages : field && field.options;
      const found = (pool || []).find((o) => o && (o.key === value || o.value === value));
      const name = found ? text(found.label, data.locale) : "";
      return name && name !== value ? `${name} (${value})` : value;
    }

    function impactChoices() {
      const choices = {};
      for (const box of impactsBox.querySelectorAll("[data-impact]")) {
        const picked = box.querySelector("input[type=radio]:checked");
        const choice = { action: picked ? picked.value : "block" };
        if (choice.action === "migrate") {
          const target = box.querySelector("[data-target]");
          const value = box.querySelector("[data-value]");
          if (target) choice.to = target.value;
          if (value) choice.value = value.value;
        }
        choices[box.dataset.impact] = choice;
      }
      return choices;
    }

    dialog.querySelector("[data-publish-confirm]").addEventListener("click", async () => {
      const choices = impactChoices();
      if (Object.values(choices).some((c) => c.action === "block")) {
        publishError.textContent = "Not published: you chose to block it. Change the draft or choose another way.";
        return;
      }
      const result = await api("POST", data.urls.publish, { impact: choices });
      if (result.ok) {
        window.location.href = window.location.pathname + "?published=" + result.data.version;
        return;
      }
      const err = (result.data && result.data.error) || {};
      const details = err.impacts ? problemsOf(err).filter((p) => p.path.startsWith("impact.")).map((p) => p.message) : [];
      publishError.textContent = [err.message || `Not published (error ${result.status}).`, ...details].join(" ");
      if (err.impacts) { impacts = err.impacts; renderImpacts(); }
      if (err.fields && !err.impacts) setProblems(problemsOf(err));
    });

    const params = new URLSearchParams(window.location.search);
    if (params.get("published")) saveState.textContent = `Published as version ${params.get("published")}`;
    renderVisual();
    if (hasDraft) {
      api("POST", data.urls.check, ed.body).then((r) => { if (r.ok) setProblems(r.data.problems || []); });
    }
    window.formloomBuilder = ed;
    ed.setMode = setMode;
    ed.save = save;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const root = document.querySelector("[data-builder]");
    if (root) start(root);
  });

  return { editors, h, text, labelInputs, sortable, moveItem, moveButtons, keyFor, nextId, withLabel, labelValue,
           isObj, keyPath, controls, refocus };
})();
window.FormloomBuilder = FormloomBuilder;
