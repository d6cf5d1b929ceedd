// The kanban board of a pipeline: drag a card to another column to move the record there.
//
// The move goes through POST .../transition (the same gates, checklist and approvals as the Move
// page). Moved (200): the card goes to the top of its new column and both columns' counts and
// totals change. Waiting for approval (202): the card stays, with a badge and a note. Refused
// (422 gate, 409 conflict): the card stays and the server's message appears on it. Server text is
// only ever set as textContent. Each card's Move menu is the way without a mouse.
"use strict";

(() => {
  const board = document.querySelector(".board[data-msg-moved]");
  if (!board) return;

  const text = (name) => board.dataset["msg" + name[0].toUpperCase() + name.slice(1)] || "";
  const lang = () => document.documentElement.lang || "en";
  const status = document.querySelector(".board-status");

  function csrfToken() {
    if (window.formloom && typeof window.formloom.csrfToken === "function") return window.formloom.csrfToken();
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // --- amounts: kept in whole units of the last decimal place, shown like the server shows them ---
  const places = Number(board.dataset.amountPlaces || 0);
  const scale = 10 ** places;
  const numberFormat = new Intl.NumberFormat("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
  const units = (value) => {
    const number = Number(value);
    return Number.isFinite(number) ? Math.round(number * scale) : 0;
  };
  const stored = (amountUnits) => (amountUnits / scale).toFixed(places);
  const shown = (amountUnits) =>
    (board.dataset.amountPrefix || "") + numberFormat.format(amountUnits / scale) + (board.dataset.amountSuffix || "");

  // --- stage colours: from data-color, set through the CSSOM (no inline style attributes) ---
  for (const column of board.querySelectorAll(".board-column[data-color]")) {
    const color = column.dataset.color;
    if (color && CSS.supports("color", color)) column.style.setProperty("--stage-color", color);
  }

  const columns = () => Array.from(board.querySelectorAll(".board-column"));
  const columnOf = (node) => (node instanceof Element ? node.closest(".board-column") : null);

  function setColumn(column, countDelta, amountDelta) {
    const count = Math.max(Number(column.dataset.count || 0) + countDelta, 0);
    column.dataset.count = String(count);
    const countNode = column.querySelector(".column-count");
    if (countNode) countNode.textContent = String(count);
    if (board.dataset.amount) {
      const total = units(column.dataset.total) + amountDelta;
      column.dataset.total = stored(total);
      const totalNode = column.querySelector(".column-total");
      if (totalNode) totalNode.textContent = shown(total);
    }
    const empty = column.querySelector(".column-empty");
    if (empty) empty.hidden = column.querySelector(".board-card") !== null;
  }

  function announce(message) {
    if (!status) return;
    status.textContent = "";
    status.textContent = message;  // a change the polite live region reads out
  }

  // --- messages on a card ---
  function clearMessage(card) {
    card.querySelectorAll(".card-message").forEach((node) => node.remove());
  }

  function link(href, label) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    return a;
  }

  function showMessage(card, { kind = "error", message = "", missing = [], links = [] }) {
    clearMessage(card);
    const box = document.createElement("div");
    box.className = "card-message " + (kind === "error" ? "is-error" : "is-info");
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    const close = document.createElement("button");
    close.type = "button";
    close.className = "card-message-close";
    close.setAttribute("aria-label", text("dismiss"));
    close.textContent = "×";
    close.addEventListener("click", () => {
      box.remove();
      const title = card.querySelector(".card-title a");
      if (title) title.focus();
    });
    box.appendChild(close);
    const p = document.createElement("p");
    p.className = "card-message-text";
    p.textContent = message;
    box.appendChild(p);
    // Missing fields and checklist items by name; sentences the message already says are not repeated.
    const items = missing.filter((item) => item && typeof item.message === "string" &&
      (item.kind === "field" || item.kind === "checklist" || !message.includes(item.message)));
    if (items.length) {
      const list = document.createElement("ul");
      list.className = "card-message-items";
      for (const item of items) {
        const li = document.createElement("li");
        li.dataset.kind = String(item.kind || "");
        if (item.field) li.dataset.field = String(item.field);
        li.textContent = item.message;
        list.appendChild(li);
      }
      box.appendChild(list);
    }
    if (links.length) {
      const actions = document.createElement("p");
      actions.className = "card-message-links";
      for (const [href, label] of links) actions.appendChild(link(href, label));
      box.appendChild(actions);
    }
    card.appendChild(box);
  }

  function addWaitingBadge(card) {
    if (card.querySelector(".badge-waiting")) return;
    const holder = document.createElement("p");
    holder.className = "card-badges";
    const badge = document.createElement("span");
    badge.className = "badge badge-waiting";
    badge.textContent = text("waiting");
    holder.appendChild(badge);
    card.querySelector(".card-title").after(holder);
  }

  // --- moving ---
  function place(card, from, to) {
    const amount = units(card.dataset.amount);
    to.querySelector(".column-cards").prepend(card);  // the most recently updated card comes first
    card.dataset.stage = to.dataset.stage;
    setColumn(from, -1, -amount);
    setColumn(to, 1, amount);
    const next = (to.dataset.next || "").split(" ").filter(Boolean);
    for (const item of card.querySelectorAll(".card-move li[data-to]")) item.hidden = !next.includes(item.dataset.to);
    const menu = card.querySelector(".card-move");
    if (menu) menu.open = false;
  }

  async function move(card, target) {
    const from = columnOf(card);
    if (!from || from === target || card.classList.contains("is-saving")) return;
    const to = target.dataset.stage;
    clearMessage(card);
    card.classList.add("is-saving");
    card.setAttribute("aria-busy", "true");
    let response;
    let body = null;
    try {
      response = await fetch(card.dataset.transitionUrl + "?locale=" + encodeURIComponent(lang()), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ to, version: Number(card.dataset.version) }),
      });
      body = await response.json().catch(() => null);
    } catch (error) {
      showMessage(card, { message: text("network") });
      return;
    } finally {
      card.classList.remove("is-saving");
      card.removeAttribute("aria-busy");
    }
    const title = card.querySelector(".card-title").textContent.trim();
    if (response.ok && body && body.record && typeof body.record.version === "number") {
      card.dataset.version = String(body.record.version);
    }
    if (response.status === 200 && body && body.status === "moved") {
      place(card, from, target);
      announce(text("moved").replace("{title}", title).replace("{stage}", target.dataset.label || to));
      return;
    }
    if (response.status === 202) {
      addWaitingBadge(card);
      showMessage(card, { kind: "info", message: text("pending") });
      return;
    }
    if (response.ok) return;  // unchanged: it already was in that stage
    const error = (body && body.error) || {};
    const missing = Array.isArray(error.missing) ? error.missing : [];
    const links = [];
    // The move page asks for the gate's missing fields and checklist in place, and moves with them.
    if (missing.some((item) => item && item.kind === "field")) {
      links.push([card.dataset.moveUrl + "?to=" + encodeURIComponent(to), text("fill")]);
    } else if (missing.some((item) => item && item.kind === "checklist")) {
      links.push([card.dataset.moveUrl + "?to=" + encodeURIComponent(to), text("checklist")]);
    }
    if (error.code === "version_conflict") links.push([window.location.href, text("reload")]);
    showMessage(card, { message: typeof error.message === "string" ? error.message : text("failed"), missing, links });
  }

  // --- drag and drop ---
  let dragged = null;

  function clearTargets() {
    for (const column of columns()) column.classList.remove("is-drop-target", "is-drop-candidate");
  }

  board.addEventListener("dragstart", (event) => {
    const card = event.target instanceof Element ? event.target.closest(".board-card") : null;
    if (!card || card.classList.contains("is-saving")) return;
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.id);
    card.classList.add("is-dragging");
    const home = columnOf(card);
    for (const column of columns()) if (column !== home) column.classList.add("is-drop-candidate");
  });

  board.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("is-dragging");
    dragged = null;
    clearTargets();
  });

  board.addEventListener("dragover", (event) => {
    const column = columnOf(event.target);
    if (!dragged || !column || column === columnOf(dragged)) return;
    event.preventDefault();  // this column accepts the drop
    event.dataTransfer.dropEffect = "move";
    for (const other of columns()) other.classList.toggle("is-drop-target", other === column);
  });

  board.addEventListener("dragleave", (event) => {
    const column = columnOf(event.target);
    if (column && !column.contains(event.relatedTarget)) column.classList.remove("is-drop-target");
  });

  board.addEventListener("drop", (event) => {
    const column = columnOf(event.target);
    const id = event.dataTransfer.getData("text/plain");
    const card = dragged || (id ? board.querySelector(`.board-card[data-id="${CSS.escape(id)}"]`) : null);
    if (!column || !card) return;
    event.preventDefault();
    card.classList.remove("is-dragging");
    dragged = null;
    clearTargets();
    move(card, column);
  });
})();
