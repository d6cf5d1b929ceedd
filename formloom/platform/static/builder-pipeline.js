// The pipeline editor: the entity's stages in order (colour, win probability, outcome, help), what
// each stage asks before a record enters it (gate: required fields, conditions, checklist), who
// approves moves into it, and which moves are allowed. It edits `ed.body` in place and only when the
// admin changes something: rendering reads the body and never fills in defaults, so opening a
// pipeline, switching to JSON and back, or re-rendering leaves the definition exactly as it was.
// Every admin-typed string reaches the page through textContent or value.
"use strict";

(() => {
  const B = window.FormloomBuilder;
  const { h, isObj } = B;
  const { uid, field, checkbox, choice, checkList, labelBox } = B.controls("pl");

  // UI state that survives `ed.rerender()`: kept by object, so it follows a stage that moves.
  const openStages = new WeakSet();
  const openMoves = new WeakSet();
  const stash = new WeakMap(); // holder -> what the admin switched off (an approval, a list of moves)
  let notice = null; // {text, undo} after a stage is removed
  let shown = null; // {ed} of the editor on the page, for the problem list's links

  // A problem in the side list may point into a closed stage or move: open it before the shell
  // looks for the place to scroll to (this listener runs first, in the capture phase).
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("[data-problem-path] button");
    if (!link || !shown) return;
    const path = link.closest("[data-problem-path]").dataset.problemPath;
    const body = shown.ed.body;
    const stage = /^\$\.stages\[(\d+)\]\./.exec(path);
    const move = /^\$\.transitions\[(\d+)\]\.(label|message|condition|approval)/.exec(path);
    let target = null;
    if (stage && Array.isArray(body.stages) && isObj(body.stages[stage[1]]) && !openStages.has(body.stages[stage[1]])) {
      target = body.stages[stage[1]];
      openStages.add(target);
    } else if (move && Array.isArray(body.transitions) && isObj(body.transitions[move[1]]) && !openMoves.has(body.transitions[move[1]])) {
      target = body.transitions[move[1]];
      openMoves.add(target);
    }
    if (target) shown.ed.rerender();
  }, true);

  const OUTCOMES = [["open", "Open"], ["won", "Won"], ["lost", "Lost"]];
  const MODES = [["any", "Any one of them approves"], ["all", "Every one of them approves"]];
  const NO_COLOR = "#9fb3c8";

  function paint(el, color) {
    if (typeof color === "string" && /^#[0-9a-fA-F]{6}$/.test(color)) el.style.setProperty("--stage-color", color);
    else el.style.removeProperty("--stage-color");
  }

  // --- the editor -----------------------------------------------------------------------------
  B.editors.pipeline = function pipelineEditor(root, ed) {
    shown = { ed };
    const body = ed.body;
    if (!isObj(body)) {
      root.append(h("p", { className: "help" }, "The definition is not a JSON object; edit it in JSON mode."));
      return;
    }
    const data = ed.data;
    const text = (label) => ed.text(label, ed.locale);
    const entity = typeof body.entity === "string" && Object.hasOwn(data.entities || {}, body.entity) ? data.entities[body.entity] : null;
    const fields = entity ? entity.fields : [];
    const fieldPairs = fields.map((f) => [f.key, f.label]);
    const published = isObj(data.published) && Array.isArray(data.published.stages) ? data.published.stages : [];
    const publishedKeys = new Set(published.filter(isObj).map((s) => s.key));
    const roles = data.roles || [];
    const stagesOf = () => (Array.isArray(body.stages) ? body.stages.filter(isObj) : []);
    const stagePairs = () => stagesOf().map((s) => [String(s.key ?? ""), text(s.label) || String(s.key ?? "")]);
    const changed = () => ed.changed();

    const { rerender, focus } = B.refocus(root, ed);

    const wrap = h("div", { className: "pr-editor pr-pipeline" });
    const movesHolder = h("div", { className: "pr-holder" });
    const renderMoves = (focusKey) => {
      const active = document.activeElement;
      const key = focusKey || (active && movesHolder.contains(active) ? active.dataset.focus : null);
      movesHolder.replaceChildren(movesSection());
      if (key) focus(key);
    };
    wrap.append(generalSection(), stagesSection(), movesHolder);
    movesHolder.append(movesSection());
    root.append(wrap);

    // --- the pipeline itself ---
    function generalSection() {
      const head = uid();
      const section = h("section", { className: "pr-section", "aria-labelledby": head },
        h("h2", { id: head }, "Pipeline"));
      const grid = h("div", { className: "pr-grid" });
      grid.append(labelBox(body, "label", changed, "Name", "$.label"),
        labelBox(body, "description", changed, "Description", "$.description", { multiline: true }));
      const entityText = entity ? `${entity.label} (${body.entity})` : `${body.entity ?? "—"} (not found)`;
      grid.append(h("div", { className: "pr-field", "data-path": "$.entity" },
        h("span", { className: "label", id: `${head}-entity` }, "Entity"),
        h("p", { className: "pr-readonly", "aria-labelledby": `${head}-entity` }, entityText)));
      const selects = fields.filter((f) => f.type === "select").map((f) => [f.key, f.label]);
      grid.append(field("Stage field", choice(selects, body.stage_field, (v) => {
        if (v) body.stage_field = v; else delete body.stage_field;
        changed(); rerender("stage-field");
      }, { blank: body.stage_field ? undefined : "—", attrs: { "data-focus": "stage-field" } }),
      { path: "$.stage_field", help: "A single-choice field; every stage is one of its options." }));
      const numbers = fields.filter((f) => f.kind === "number").map((f) => [f.key, f.label]);
      grid.append(field("Amount field", choice(numbers, body.amount_field, (v) => {
        if (v) body.amount_field = v; else delete body.amount_field;
        changed();
      }, { blank: "None" }), { path: "$.amount_field", help: "Summed in each board column." }));
      const dates = fields.filter((f) => f.kind === "date" || f.kind === "datetime").map((f) => [f.key, f.label]);
      grid.append(field("Date field", choice(dates, body.date_field, (v) => {
        if (v) body.date_field = v; else delete body.date_field;
        changed();
      }, { blank: "Creation date" }), { path: "$.date_field", help: "What the board's date filter reads." }));
      const cards = checkList("Fields shown on each card (up to 6)", fieldPairs, () => body.card_fields, (next) => {
        if (next.length) body.card_fields = next; else delete body.card_fields;
        changed();
      }, { max: 6, path: "$.card_fields", focus: "card-field" });
      cards.classList.add("pr-wide");
      grid.append(cards);
      section.append(grid);
      return section;
    }

    // --- stages ---
    function stagesSection() {
      const head = uid();
      const section = h("section", { className: "pr-section", "aria-labelledby": head, "data-path": "$.stages" },
        h("div", { className: "pr-section-head" }, h("h2", { id: head }, "Stages"),
          h("p", { className: "help" }, "In board order. Drag a stage by its handle, or use ↑ and ↓. Open a stage to " +
            "set its gate (what a record needs to enter it) and its approval.")));
      if (!Array.isArray(body.stages)) {
        section.append(h("p", { className: "help" }, "The stages are not a list; edit them in JSON mode."));
        return section;
      }
      if (notice) {
        const note = h("p", { className: "pr-notice", role: "status" }, notice.text, " ");
        if (notice.undo) {
          note.append(h("button", { type: "button", className: "small", "data-focus": "undo-remove", onclick: () => {
            const undo = notice.undo; notice = null; undo(); changed(); rerender();
          } }, "Undo"));
        }
        note.append(h("button", { type: "button", className: "small link", onclick: () => { notice = null; rerender(); } },
          "Dismiss"));
        section.append(note);
      }
      const list = h("ol", { className: "pr-list pr-stages" });
      body.stages.forEach((stage, i) => list.append(stageItem(stage, i)));
      ed.sortable(list, (from, to) => {
        ed.moveItem(body.stages, from, to);
        changed();
        const moved = body.stages[to];
        rerender();
        if (isObj(moved)) focusStage(moved, "handle");
      });
      section.append(list, addStage());
      return section;
    }

    function focusStage(stage, what) {
      const i = body.stages.indexOf(stage);
      if (i < 0) return;
      const order = what === "down" ? ["down", "up", "toggle"] : what === "up" ? ["up", "down", "toggle"] : [what, "toggle"];
      for (const w of order) if (focus(`stage-${i}-${w}`)) return;
    }

    function stageItem(stage, i) {
      const path = `$.stages[${i}]`;
      const item = h("li", { className: "pr-item pr-stage", "data-path": path, "data-sort-index": i });
      if (!isObj(stage)) {
        item.append(h("p", { className: "help" }, "This stage is not an object; edit it in JSON mode."));
        return item;
      }
      const isOpen = openStages.has(stage);
      const panelId = uid();
      const swatch = h("span", { className: "pr-swatch", "aria-hidden": "true" });
      const title = h("span", { className: "pr-item-title" });
      const meta = h("span", { className: "pr-meta" });
      const toggle = h("button", { type: "button", className: "small pr-toggle", "aria-expanded": String(isOpen),
        "aria-controls": panelId, "data-focus": `stage-${i}-toggle`, "data-stage-toggle": stage.key ?? "" },
      isOpen ? "Close" : "Edit");
      const name = () => text(stage.label) || String(stage.key ?? "") || "New stage";
      const refreshHead = () => {
        title.textContent = name();
        paint(item, stage.color);
        const bits = [];
        if (typeof stage.probability === "number") bits.push(`${stage.probability}%`);
        if (stage.outcome === "won" || stage.outcome === "lost") bits.push(stage.outcome === "won" ? "Won" : "Lost");
        const gate = isObj(stage.gate) ? stage.gate : {};
        const needs = (Array.isArray(gate.required) ? gate.required.length : 0) +
          (Array.isArray(gate.conditions) ? gate.conditions.length : 0) + (Array.isArray(gate.checklist) ? gate.checklist.length : 0);
        if (needs) bits.push(`gate: ${needs} check${needs === 1 ? "" : "s"}`);
        if (isObj(stage.approval)) bits.push("needs approval");
        meta.textContent = bits.join(" · ");
        toggle.setAttribute("aria-label", `${isOpen ? "Close" : "Edit"} stage ${name()}`);
      };
      const edited = () => { refreshHead(); changed(); };
      const [up, down] = ed.moveButtons(body.stages, i, `stage ${name()}`, (from, to) => {
        ed.moveItem(body.stages, from, to);
        changed();
        rerender();
        focusStage(stage, from > to ? "up" : "down");
      });
      up.dataset.focus = `stage-${i}-up`;
      down.dataset.focus = `stage-${i}-down`;
      toggle.addEventListener("click", () => {
        if (openStages.has(stage)) openStages.delete(stage); else openStages.add(stage);
        rerender();
      });
      const remove = h("button", { type: "button", className: "small danger", "aria-label": `Remove stage ${name()}`,
        "data-remove-stage": stage.key ?? "", onclick: () => removeStage(stage) }, "Remove");
      const handle = h("span", { className: "pr-handle", "aria-hidden": "true", title: "Drag to reorder" }, "⠿");
      const headRow = h("div", { className: "pr-item-head", draggable: "true" },
        handle, swatch, h("span", { className: "pr-item-name" }, title,
          h("code", { className: "key" }, String(stage.key ?? ""))), meta,
        h("span", { className: "pr-item-actions" }, toggle, up, down, remove));
      item.append(headRow);
      refreshHead();
      const panel = h("div", { className: "pr-panel", id: panelId, hidden: !isOpen });
      if (isOpen) fillStage(panel, stage, i, path, edited);
      item.append(panel);
      return item;
    }

    function fillStage(panel, stage, i, path, edited) {
      const grid = h("div", { className: "pr-grid" });
      const labels = labelBox(stage, "label", () => { edited(); renderMoves(); }, "Stage name", `${path}.label`);
      const en = labels.querySelector('input[data-lang="en"]');
      if (en) en.dataset.focus = `stage-${i}-label`;
      grid.append(labels);
      if (publishedKeys.has(stage.key)) {
        const id = uid();
        grid.append(h("div", { className: "pr-field", "data-path": `${path}.key` },
          h("span", { className: "label", id }, "Key"),
          h("p", { className: "pr-readonly", "aria-labelledby": id }, h("code", {}, String(stage.key)),
            " · published, so it stays")));
      } else {
        const key = h("input", { value: stage.key ?? "", maxlength: 64, spellcheck: "false", autocomplete: "off",
          pattern: "[a-z][a-z0-9_]*", "data-focus": `stage-${i}-key`, "data-stage-key": "" });
        key.addEventListener("input", () => {
          renameStage(stage, stage.key, key.value);
          stage.key = key.value;
          edited(); renderMoves();
        });
        grid.append(field("Key", key, { path: `${path}.key`,
          help: `An option of the stage field${body.stage_field ? ` (${body.stage_field})` : ""}; fixed once published.` }));
      }
      const color = h("input", { type: "color", value: /^#[0-9a-fA-F]{6}$/.test(stage.color || "") ? stage.color.toLowerCase() : NO_COLOR,
        className: stage.color ? null : "pr-unset", "data-stage-color": "" });
      const clear = h("button", { type: "button", className: "small link", hidden: stage.color === undefined,
        onclick: () => { delete stage.color; color.value = NO_COLOR; color.classList.add("pr-unset"); clear.hidden = true; edited(); color.focus(); } },
      "No colour");
      color.addEventListener("input", () => { stage.color = color.value; color.classList.remove("pr-unset"); clear.hidden = false; edited(); });
      const colorId = uid();
      color.id = colorId;
      grid.append(h("div", { className: "pr-field", "data-path": `${path}.color` },
        h("label", { className: "label", for: colorId }, "Colour"), h("div", { className: "pr-inline" }, color, clear)));
      const probability = h("input", { type: "number", min: 0, max: 100, step: "any", inputmode: "decimal",
        value: stage.probability ?? "", "data-stage-probability": "" });
      probability.addEventListener("input", () => {
        if (probability.value === "") delete stage.probability;
        else if (!Number.isNaN(Number(probability.value))) stage.probability = Number(probability.value);
        edited();
      });
      grid.append(field("Win probability (%)", probability, { path: `${path}.probability` }));
      grid.append(field("Outcome", choice(OUTCOMES, stage.outcome ?? "open", (v) => {
        if (v === "open" && stage.outcome === undefined) return;
        stage.outcome = v;
        edited();
      }), { path: `${path}.outcome`, help: "Won and lost stages end the process." }));
      grid.append(labelBox(stage, "help", changed, "Help", `${path}.help`,
        { multiline: true }));
      panel.append(grid, gateEditor(stage, i, `${path}.gate`, edited),
        approvalEditor(stage, `${path}.approval`, "Entering this stage needs approval", edited));
    }

    function renameStage(stage, from, to) {
      if (!Array.isArray(body.transitions) || !from || from === to) return;
      if (stagesOf().some((s) => s !== stage && s.key === from)) return;
      for (const t of body.transitions) {
        if (!isObj(t)) continue;
        if (t.to === from) t.to = to;
        if (t.from === from) t.from = to;
        else if (Array.isArray(t.from)) t.from.forEach((k, n) => { if (k === from) t.from[n] = to; });
      }
    }

    // Removing a stage also removes the moves that name it (a list of sources loses just that one).
    function removeStage(stage) {
      const index = body.stages.indexOf(stage);
      if (index < 0) return;
      const before = Array.isArray(body.transitions) ? JSON.parse(JSON.stringify(body.transitions)) : null;
      body.stages.splice(index, 1);
      let dropped = 0;
      const key = stage.key;
      if (Array.isArray(body.transitions) && !stagesOf().some((s) => s.key === key)) {
        for (let j = body.transitions.length - 1; j >= 0; j--) {
          const t = body.transitions[j];
          if (!isObj(t)) continue;
          if (t.to === key || t.from === key) { body.transitions.splice(j, 1); dropped++; continue; }
          if (Array.isArray(t.from) && t.from.includes(key)) {
            const rest = t.from.filter((k) => k !== key);
            if (rest.length) t.from.splice(0, t.from.length, ...rest);
            else { body.transitions.splice(j, 1); dropped++; }
          }
        }
      }
      const label = text(stage.label) || key;
      let words = `Stage “${label}” removed`;
      if (dropped) words += ` with the ${dropped} move${dropped === 1 ? "" : "s"} that named it`;
      words += publishedKeys.has(key) ? ". Records in it are given a new stage when you publish." : ".";
      const transitionsNow = body.transitions;
      notice = { text: words, undo: () => {
        body.stages.splice(Math.min(index, body.stages.length), 0, stage);
        if (before && body.transitions === transitionsNow) body.transitions = before;
      } };
      changed();
      rerender("undo-remove");
    }

    function addStage() {
      const stages = body.stages;
      const full = stages.length >= 30;
      const input = h("input", { id: uid(), maxlength: 200, placeholder: "e.g. Contract signed", "data-new-stage": "",
        "data-focus": "new-stage", disabled: full });
      const add = async (label, key) => {
        const stage = { key: key || await ed.keyFor(label, stagesOf().map((s) => s.key), "stage"), label };
        body.stages.push(stage);
        openStages.add(stage);
        changed();
        rerender();
        focus(`stage-${body.stages.length - 1}-label`);
      };
      const submit = () => {
        const label = input.value.trim();
        if (!label) { input.focus(); input.setAttribute("aria-invalid", "true"); return; }
        add(label);
      };
      input.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); submit(); } });
      input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
      const box = h("div", { className: "pr-add" },
        h("label", { className: "label", for: input.id }, "New stage"),
        h("div", { className: "pr-inline" }, input,
          h("button", { type: "button", className: "primary-soft", "data-add-stage": "", disabled: full, onclick: submit },
            "+ Add stage")));
      const stageField = fields.find((f) => f.key === body.stage_field);
      const used = new Set(stagesOf().map((s) => s.key));
      const unused = stageField ? (stageField.options || []).filter((o) => !used.has(o.value)) : [];
      if (unused.length && !full) {
        box.append(h("p", { className: "help pr-options" },
          `Options of ${stageField.label} not in the pipeline yet: `,
          ...unused.map((o) => h("button", { type: "button", className: "small", "data-add-option": o.value,
            onclick: () => add(o.label || o.value, o.value) }, `+ ${o.label || o.value}`))));
      }
      if (full) box.append(h("p", { className: "help" }, "A pipeline has at most 30 stages."));
      return box;
    }

    // --- gate ---
    function gateEditor(stage, i, path, edited) {
      const gate = isObj(stage.gate) ? stage.gate : null;
      const ensure = () => { if (!isObj(stage.gate)) stage.gate = {}; return stage.gate; };
      const tidy = (prop) => {
        const g = stage.gate;
        if (!isObj(g)) return;
        if (Array.isArray(g[prop]) && !g[prop].length) delete g[prop];
        if (!Object.keys(g).length) delete stage.gate;
      };
      const head = uid();
      const box = h("section", { className: "pr-sub", "data-path": path, "aria-labelledby": head },
        h("h3", { id: head }, "Gate: to enter this stage"));
      if (stage.gate !== undefined && !gate) {
        box.append(h("p", { className: "help" }, "The gate is not an object; edit it in JSON mode."));
        return box;
      }
      box.append(checkList("Fields that must be filled", fieldPairs, () => (isObj(stage.gate) ? stage.gate.required : undefined), (next) => {
        ensure().required = next;
        tidy("required");
        edited();
      }, { path: `${path}.required`, focus: `stage-${i}-required`, empty: "The entity has no fields." }));

      // conditions
      const conditions = gate && Array.isArray(gate.conditions) ? gate.conditions : [];
      const condHead = uid();
      const condBox = h("div", { className: "pr-block", "data-path": `${path}.conditions`, role: "group", "aria-labelledby": condHead },
        h("span", { className: "label", id: condHead }, "Conditions"));
      conditions.forEach((rule, j) => {
        const at = `${path}.conditions[${j}]`;
        const row = h("div", { className: "pr-card", "data-path": at });
        if (!isObj(rule)) { row.append(h("p", { className: "help" }, "Not an object; edit it in JSON mode.")); condBox.append(row); return; }
        row.append(B.conditionBuilder(rule, "condition", fields, data.operators || {}, () => edited(), `${at}.condition`,
          `Condition ${j + 1}`));
        row.append(labelBox(rule, "message", changed, "Message when it fails", `${at}.message`));
        row.append(h("div", { className: "pr-row-actions" }, h("button", { type: "button", className: "small danger",
          "aria-label": `Remove condition ${j + 1}`, onclick: () => {
            stage.gate.conditions.splice(j, 1); tidy("conditions"); edited(); rerender(`stage-${i}-add-condition`);
          } }, "Remove condition")));
        condBox.append(row);
      });
      condBox.append(h("button", { type: "button", className: "small", "data-focus": `stage-${i}-add-condition`,
        "data-add-gate-condition": "", disabled: !fields.length, onclick: () => {
          const g = ensure();
          if (!Array.isArray(g.conditions)) g.conditions = [];
          const f = fields[0];
          const ops = (data.operators || {})[f.kind] || [];
          const op = ops.includes("not_empty") ? "not_empty" : ops[0] || "not_empty";
          const condition = { field: f.key, op };
          if (op !== "not_empty" && op !== "empty") condition.value = "";
          g.conditions.push({ condition, message: "" });
          edited(); rerender(`stage-${i}-add-condition`);
        } }, "+ Condition"));
      box.append(condBox);

      // checklist
      const items = gate && Array.isArray(gate.checklist) ? gate.checklist : [];
      const publishedItems = new Set();
      const before = published.find((s) => isObj(s) && s.key === stage.key);
      if (before && isObj(before.gate) && Array.isArray(before.gate.checklist)) {
        before.gate.checklist.forEach((it) => { if (isObj(it)) publishedItems.add(it.key); });
      }
      const listHead = uid();
      const listBox = h("div", { className: "pr-block", "data-path": `${path}.checklist`, role: "group", "aria-labelledby": listHead },
        h("span", { className: "label", id: listHead }, "Checklist the person moving a record confirms"));
      const ol = h("ol", { className: "pr-list pr-checklist" });
      items.forEach((item, j) => {
        const at = `${path}.checklist[${j}]`;
        const li = h("li", { className: "pr-card pr-check-item", "data-path": at });
        if (!isObj(item)) { li.append(h("p", { className: "help" }, "Not an object; edit it in JSON mode.")); ol.append(li); return; }
        li.append(labelBox(item, "label", changed, `Item ${j + 1}`, `${at}.label`));
        let keyEl;
        if (publishedItems.has(item.key)) {
          keyEl = h("p", { className: "pr-readonly pr-key-note", "data-path": `${at}.key` }, "Key ", h("code", {}, String(item.key)));
        } else {
          const key = h("input", { id: uid(), value: item.key ?? "", maxlength: 64, spellcheck: "false", autocomplete: "off",
            className: "pr-key-input" });
          key.addEventListener("input", () => { item.key = key.value; changed(); });
          keyEl = h("div", { className: "pr-inline pr-key-field", "data-path": `${at}.key` },
            h("label", { for: key.id }, "Key", h("span", { className: "visually-hidden" }, ` of item ${j + 1}`)), key);
        }
        const [up, down] = ed.moveButtons(items, j, `item ${j + 1}`, (from, to) => {
          ed.moveItem(items, from, to); edited(); rerender(`stage-${i}-item-${to}-${from > to ? "up" : "down"}`);
        });
        up.dataset.focus = `stage-${i}-item-${j}-up`;
        down.dataset.focus = `stage-${i}-item-${j}-down`;
        li.append(h("div", { className: "pr-row-actions" }, keyEl, up, down,
          h("button", { type: "button", className: "small danger", "aria-label": `Remove item ${j + 1}`, onclick: () => {
            items.splice(j, 1); tidy("checklist"); edited(); rerender(`stage-${i}-new-item`);
          } }, "Remove")));
        ol.append(li);
      });
      if (items.length) listBox.append(ol);
      const newItem = h("input", { id: uid(), maxlength: 200, placeholder: "e.g. The customer signed the contract",
        "data-focus": `stage-${i}-new-item`, "data-new-check-item": "" });
      const addItem = async () => {
        const label = newItem.value.trim();
        if (!label) { newItem.setAttribute("aria-invalid", "true"); newItem.focus(); return; }
        const g = ensure();
        if (!Array.isArray(g.checklist)) g.checklist = [];
        const taken = g.checklist.filter(isObj).map((it) => it.key);
        const key = await ed.keyFor(label, taken, "field");
        g.checklist.push({ key, label });
        edited(); rerender(`stage-${i}-new-item`);
      };
      newItem.addEventListener("keydown", (event) => { if (event.key === "Enter") { event.preventDefault(); addItem(); } });
      newItem.addEventListener("input", () => newItem.removeAttribute("aria-invalid"));
      listBox.append(h("div", { className: "pr-add" }, h("label", { className: "visually-hidden", for: newItem.id }, "New checklist item"),
        h("div", { className: "pr-inline" }, newItem,
          h("button", { type: "button", className: "small", "data-add-check-item": "", onclick: addItem }, "+ Item"))));
      box.append(listBox);
      return box;
    }

    // --- approvals (a stage's or a move's) ---
    function defaultRole() { return roles.includes("manager") ? "manager" : roles[0] || "admin"; }

    function approvalEditor(holder, path, question, edited) {
      const head = uid();
      const box = h("section", { className: "pr-sub", "data-path": path, "aria-labelledby": head },
        h("h3", { id: head }, "Approval"));
      const a = holder.approval;
      box.append(checkbox(question, isObj(a), (on) => {
        if (on) holder.approval = stash.get(holder) || { approvers: { role: defaultRole() }, mode: "any" };
        else { stash.set(holder, holder.approval); delete holder.approval; }
        edited(); rerender(`${path}:on`);
      }, { "data-focus": `${path}:on`, "data-approval-toggle": "" }));
      if (a === undefined) return box;
      if (!isObj(a)) { box.append(h("p", { className: "help" }, "The approval is not an object; edit it in JSON mode.")); return box; }
      box.append(labelBox(a, "label", changed, "Approval name", `${path}.label`));
      box.append(B.conditionBuilder(a, "when", fields, data.operators || {}, () => edited(), `${path}.when`, "Only when"),
        h("p", { className: "help" }, "Without a condition, every such move needs approval."));
      const steps = "steps" in a;
      const name = uid();
      const shape = h("fieldset", { className: "pr-radios", "data-path": `${path}.steps` },
        h("legend", { className: "label" }, "Who approves"));
      for (const [value, label] of [["one", "One group of approvers"], ["steps", "Steps, one after another"]]) {
        const id = uid();
        const radio = h("input", { type: "radio", name, id, value, checked: (value === "steps") === steps,
          "data-focus": `${path}:shape-${value}` });
        radio.addEventListener("change", () => {
          if (value === "steps") {
            const step = { approvers: isObj(a.approvers) ? a.approvers : { role: defaultRole() } };
            if (a.mode) step.mode = a.mode;
            a.steps = stash.get(a) || [step];
            delete a.approvers; delete a.mode;
          } else {
            stash.set(a, a.steps);
            const first = Array.isArray(a.steps) && isObj(a.steps[0]) ? a.steps[0] : {};
            a.approvers = isObj(first.approvers) ? first.approvers : { role: defaultRole() };
            if (first.mode) a.mode = first.mode;
            delete a.steps;
          }
          edited(); rerender(`${path}:shape-${value}`);
        });
        shape.append(h("span", { className: "pr-chip" }, radio, h("label", { for: id }, label)));
      }
      box.append(shape);
      if (steps) box.append(stepsEditor(a, path, edited));
      if (!steps || "approvers" in a) {
        box.append(approversEditor(a, `${path}.approvers`, edited));
        box.append(field("Mode", choice(MODES, a.mode ?? "any", (v) => { a.mode = v; edited(); }), { path: `${path}.mode` }));
      }
      box.append(checkbox("The person asking may approve their own request", a.self_approval !== false, (on) => {
        a.self_approval = on; edited();
      }, { "data-self-approval": "" }));
      return box;
    }

    function stepsEditor(a, path, edited) {
      const list = h("ol", { className: "pr-list pr-steps", "data-path": `${path}.steps` });
      const steps = Array.isArray(a.steps) ? a.steps : [];
      steps.forEach((step, k) => {
        const at = `${path}.steps[${k}]`;
        const li = h("li", { className: "pr-card", "data-path": at });
        if (!isObj(step)) { li.append(h("p", { className: "help" }, "Not an object; edit it in JSON mode.")); list.append(li); return; }
        const [up, down] = ed.moveButtons(steps, k, `step ${k + 1}`, (from, to) => {
          ed.moveItem(steps, from, to); edited(); rerender(`${path}:step-${to}-${from > to ? "up" : "down"}`);
        });
        up.dataset.focus = `${path}:step-${k}-up`;
        down.dataset.focus = `${path}:step-${k}-down`;
        li.append(h("div", { className: "pr-card-head" }, h("strong", {}, `Step ${k + 1}`),
          h("span", { className: "pr-item-actions" }, up, down,
            h("button", { type: "button", className: "small danger", "aria-label": `Remove step ${k + 1}`,
              disabled: steps.length === 1, onclick: () => { steps.splice(k, 1); edited(); rerender(`${path}:add-step`); } }, "Remove"))));
        li.append(labelBox(step, "label", changed, "Step name", `${at}.label`),
          approversEditor(step, `${at}.approvers`, edited),
          field("Mode", choice(MODES, step.mode ?? "any", (v) => { step.mode = v; edited(); }), { path: `${at}.mode` }));
        list.append(li);
      });
      return h("div", { className: "pr-block" }, list,
        h("button", { type: "button", className: "small", "data-focus": `${path}:add-step`, disabled: steps.length >= 10,
          onclick: () => {
            if (!Array.isArray(a.steps)) a.steps = [];
            a.steps.push({ approvers: { role: defaultRole() }, mode: "any" });
            edited(); rerender(`${path}:add-step`);
          } }, "+ Step"));
    }

    function approversEditor(holder, path, edited) {
      const get = () => (isObj(holder.approvers) ? holder.approvers : {});
      const ensure = () => { if (!isObj(holder.approvers)) holder.approvers = {}; return holder.approvers; };
      const box = h("fieldset", { className: "pr-people", "data-path": path },
        h("legend", { className: "label" }, "Approvers"));
      if (holder.approvers !== undefined && !isObj(holder.approvers)) {
        box.append(h("p", { className: "help" }, "Not an object; edit it in JSON mode."));
        return box;
      }
      const now = get();
      box.append(field("Members with the role", choice(roles.map((r) => [r, r]), now.role, (v) => {
        if (v) ensure().role = v; else delete ensure().role;
        edited();
      }, { blank: "No role", attrs: { "data-approver-role": "" } }), { path: `${path}.role` }));
      box.append(checkbox("The managers of the record owner's teams", now.owner_manager === true, (on) => {
        if (on) ensure().owner_manager = true; else delete ensure().owner_manager;
        edited();
      }, { "data-owner-manager": "" }));
      box.append(checkList("These people", (data.users || []).map((u) => [u, u]), () => get().users, (next) => {
        if (next.length) ensure().users = next; else delete ensure().users;
        edited();
      }, { path: `${path}.users`, empty: "No users." }));
      return box;
    }

    // --- moves between stages ---
    function movesSection() {
      const t = body.transitions;
      const head = uid();
      const section = h("section", { className: "pr-section", "aria-labelledby": head, "data-path": "$.transitions" },
        h("div", { className: "pr-section-head" }, h("h2", { id: head }, "Moves between stages")));
      const any = t === undefined || t === "any";
      section.append(checkbox("Any stage may move to any stage", any, (on) => {
        if (on) { if (Array.isArray(body.transitions)) stash.set(body, body.transitions); body.transitions = "any"; }
        else {
          const keys = stagesOf().map((s) => s.key);
          const chain = keys.slice(1).map((to, n) => ({ from: keys[n], to }));
          body.transitions = stash.get(body) || (chain.length ? chain : [{ from: "*", to: keys[0] || "" }]);
        }
        changed(); renderMoves("moves-any");
      }, { "data-focus": "moves-any", "data-any-transition": "" }));
      if (any) {
        section.append(h("p", { className: "help" }, "Each stage's gate and approval still apply. Untick to list the allowed moves."));
        return section;
      }
      if (!Array.isArray(t)) {
        section.append(h("p", { className: "help" }, "The moves are neither \"any\" nor a list; edit them in JSON mode."));
        return section;
      }
      section.append(h("p", { className: "help" }, "Only these moves are allowed. A move may have its own condition and approval, " +
        "which wins over the target stage's."));
      const list = h("ol", { className: "pr-list pr-moves" });
      t.forEach((move, i) => list.append(moveRow(move, i)));
      section.append(list, h("button", { type: "button", className: "small", "data-add-transition": "",
        "data-focus": "add-move", disabled: t.length >= 500, onclick: () => {
          const keys = stagesOf().map((s) => s.key);
          body.transitions.push({ from: keys[0] || "*", to: keys[1] || keys[0] || "" });
          changed(); renderMoves(); focus(`move-${body.transitions.length - 1}-from`);
        } }, "+ Move"));
      return section;
    }

    function moveRow(move, i) {
      const path = `$.transitions[${i}]`;
      const li = h("li", { className: "pr-item pr-move", "data-path": path });
      if (!isObj(move)) { li.append(h("p", { className: "help" }, "Not an object; edit it in JSON mode.")); return li; }
      const pairs = stagePairs();
      const several = Array.isArray(move.from);
      const fromValue = move.from === "*" ? "*" : several ? "+several" : move.from;
      const from = choice([["*", "Any stage"], ...pairs, ["+several", "Several stages…"]], fromValue, (v) => {
        if (v === "*") move.from = "*";
        else if (v === "+several") move.from = typeof move.from === "string" && move.from !== "*" ? [move.from] : [];
        else move.from = v;
        changed(); renderMoves(`move-${i}-from`);
      }, { attrs: { "aria-label": `Move ${i + 1}: from`, "data-focus": `move-${i}-from`, "data-move-from": "" } });
      const to = choice(pairs, move.to, (v) => { move.to = v; changed(); },
        { blank: move.to ? undefined : "—", attrs: { "aria-label": `Move ${i + 1}: to`, "data-move-to": "" } });
      const isOpen = openMoves.has(move);
      const panelId = uid();
      const extras = [];
      if (move.label !== undefined) extras.push(text(move.label));
      if (move.condition !== undefined) extras.push("condition");
      if (move.approval !== undefined) extras.push("approval");
      const more = h("button", { type: "button", className: "small pr-toggle", "aria-expanded": String(isOpen),
        "aria-controls": panelId, "data-focus": `move-${i}-more`, "aria-label": `${isOpen ? "Less" : "More"} for move ${i + 1}`,
        onclick: () => { if (openMoves.has(move)) openMoves.delete(move); else openMoves.add(move); renderMoves(`move-${i}-more`); } },
      isOpen ? "Less" : "More");
      const remove = h("button", { type: "button", className: "small danger", "aria-label": `Remove move ${i + 1}`,
        onclick: () => { body.transitions.splice(i, 1); changed(); renderMoves(); focus("add-move"); } }, "✕");
      li.append(h("div", { className: "pr-move-row" },
        h("span", { className: "pr-move-end", "data-path": `${path}.from` }, from),
        h("span", { className: "pr-arrow", "aria-hidden": "true" }, "→"),
        h("span", { className: "pr-move-end", "data-path": `${path}.to` }, to),
        h("span", { className: "pr-meta" }, extras.join(" · ")),
        h("span", { className: "pr-item-actions" }, more, remove)));
      if (several) {
        li.append(checkList("From these stages", pairs, () => move.from, (next) => { move.from = next; changed(); },
          { path: `${path}.from`, focus: `move-${i}-from-stage` }));
      }
      const panel = h("div", { className: "pr-panel", id: panelId, hidden: !isOpen });
      if (isOpen) {
        panel.append(h("div", { className: "pr-grid" },
          labelBox(move, "label", changed, "Button text", `${path}.label`),
          labelBox(move, "message", changed, "Message when the condition fails", `${path}.message`)));
        panel.append(B.conditionBuilder(move, "condition", fields, data.operators || {}, () => changed(), `${path}.condition`,
          "Only when"));
        panel.append(approvalEditor(move, `${path}.approval`, "This move needs its own approval", () => changed()));
      }
      li.append(panel);
      return li;
    }
  };
})();
