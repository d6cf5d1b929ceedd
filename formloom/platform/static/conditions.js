// Formloom conditions in the browser: the same JSON language, with the same results, as
// formloom/runtime/conditions.py on the server (both run tests/cases/conditions/*.json).
// A condition is {"field", "op", "value"}, or {"all": [...]}, {"any": [...]}, {"not": ...}.
// Numbers compare as exact decimals (digit by digit), never as binary floats.
(function () {
  "use strict";

  const ORDERED = ["eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "empty", "not_empty"];
  const COLLECTION = ["eq", "ne", "contains", "not_contains", "in", "not_in", "empty", "not_empty"];
  const OPERATORS_BY_KIND = {
    text: ["eq", "ne", "contains", "not_contains", "starts_with", "in", "not_in", "empty", "not_empty"],
    number: ORDERED, date: ORDERED, datetime: ORDERED, time: ORDERED,
    boolean: ["eq", "ne", "empty", "not_empty"],
    list: COLLECTION,
    id: ["eq", "ne", "in", "not_in", "empty", "not_empty"],
    ids: COLLECTION,
    object: ["empty", "not_empty"],
  };
  const ELEMENT_KINDS = { list: "text", ids: "id" };
  const COLLECTION_OF = { text: "list", id: "ids" };
  const NEGATIONS = { ne: "eq", not_in: "in", not_contains: "contains" };
  const REFERENCES = ["$field", "$today", "$now", "$user"];
  const EMPTY = Symbol("empty");
  const INVALID = Symbol("invalid");

  const DECIMAL_RE = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$/;
  const DATE_RE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
  const DATETIME_RE = /^([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z$/;
  const TIME_RE = /^([0-9]{2}):([0-9]{2})$/;
  const MOMENT_RE = /^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?Z$/;
  // Case folding is limited to characters whose lowercase Python and JavaScript agree on (Latin,
  // Greek, Cyrillic); scripts without case, such as CJK, are compared as they are.
  const FOLDED_BELOW = "\u0530";

  const own = (object, key) => Object.prototype.hasOwnProperty.call(object, key);
  const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

  // Missing (undefined, null), "" and [] are empty; 0, false and "0" are values.
  function isEmpty(raw) {
    return raw === undefined || raw === null || raw === "" || (Array.isArray(raw) && raw.length === 0);
  }

  function daysInMonth(year, month) {
    if (month === 2) return (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) ? 29 : 28;
    return [4, 6, 9, 11].includes(month) ? 30 : 31;
  }

  function validDateText(text) {
    const match = DATE_RE.exec(text);
    if (!match) return false;
    const [year, month, day] = match.slice(1).map(Number);
    return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
  }

  // --- exact decimals -----------------------------------------------------------------------

  // "1.5e-7" (how JavaScript writes some numbers) as plain digits: "0.00000015".
  function plainDigits(text) {
    const match = /^(-?)([0-9]+)(?:\.([0-9]+))?e([+-][0-9]+)$/.exec(text);
    if (!match) return text;
    const digits = match[2] + (match[3] || "");
    const point = match[2].length + Number(match[4]);
    let body;
    if (point <= 0) body = "0." + "0".repeat(-point) + digits;
    else if (point >= digits.length) body = digits + "0".repeat(point - digits.length);
    else body = digits.slice(0, point) + "." + digits.slice(point);
    return match[1] + body;
  }

  // A decimal as sign, integer digits and fraction digits, without leading or trailing zeros.
  function parseNumber(raw) {
    let text;
    if (typeof raw === "number") {
      // A number literal means the decimal it is written as: 0.3 is exactly 3/10, as in Python.
      if (!Number.isFinite(raw)) return INVALID;
      text = plainDigits(String(raw));
    } else if (typeof raw === "string" && DECIMAL_RE.test(raw)) {
      text = raw;
    } else {
      return INVALID;
    }
    let negative = text[0] === "-";
    if (text[0] === "-" || text[0] === "+") text = text.slice(1);
    const [whole, fraction = ""] = text.split(".");
    const int = whole.replace(/^0+/, "");
    const frac = fraction.replace(/0+$/, "");
    if (!int && !frac) negative = false;  // -0.00 is zero
    return { negative, int, frac };
  }

  function compareMagnitude(a, b) {
    if (a.int.length !== b.int.length) return a.int.length < b.int.length ? -1 : 1;
    if (a.int !== b.int) return a.int < b.int ? -1 : 1;
    const width = Math.max(a.frac.length, b.frac.length);
    const fa = a.frac.padEnd(width, "0");
    const fb = b.frac.padEnd(width, "0");
    return fa === fb ? 0 : (fa < fb ? -1 : 1);
  }

  function compareDecimal(a, b) {
    if (a.negative !== b.negative) return a.negative ? -1 : 1;
    const magnitude = compareMagnitude(a, b);
    return a.negative ? -magnitude : magnitude;
  }

  // --- typed values -------------------------------------------------------------------------

  const SCALAR_PARSERS = {
    text: (raw) => (typeof raw === "string" ? raw : INVALID),
    number: parseNumber,
    date: (raw) => (typeof raw === "string" && validDateText(raw) ? raw : INVALID),
    datetime(raw) {
      const match = typeof raw === "string" ? DATETIME_RE.exec(raw) : null;
      if (!match || !validDateText(match[1])) return INVALID;
      return Number(match[2]) < 24 && Number(match[3]) < 60 && Number(match[4]) < 60 ? raw : INVALID;
    },
    time(raw) {
      const match = typeof raw === "string" ? TIME_RE.exec(raw) : null;
      return match && Number(match[1]) < 24 && Number(match[2]) < 60 ? raw : INVALID;
    },
    boolean: (raw) => (typeof raw === "boolean" ? raw : INVALID),
    id: (raw) => (typeof raw === "number" && Number.isInteger(raw) ? raw : INVALID),
    object: (raw) => raw,
  };

  // The typed value (string, decimal, boolean, integer, or an array for collections), EMPTY or INVALID.
  function parse(raw, kind) {
    if (isEmpty(raw)) return EMPTY;
    const element = ELEMENT_KINDS[kind];
    if (element === undefined) return own(SCALAR_PARSERS, kind) ? SCALAR_PARSERS[kind](raw) : INVALID;
    if (!Array.isArray(raw)) return INVALID;
    const items = raw.map(SCALAR_PARSERS[element]);
    return items.includes(INVALID) ? INVALID : items;
  }

  const present = (parsed) => parsed !== EMPTY && parsed !== INVALID;

  function same(kind, a, b) {
    return kind === "number" ? compareDecimal(a, b) === 0 : a === b;
  }

  function order(kind, a, b) {
    if (kind === "number") return compareDecimal(a, b);
    return a === b ? 0 : (a < b ? -1 : 1);  // canonical ISO text sorts as the dates and times do
  }

  function fold(text) {
    let folded = "";
    for (const char of text) folded += char < FOLDED_BELOW ? char.toLowerCase() : char;
    return folded;
  }

  // --- references ---------------------------------------------------------------------------

  function isReference(operand) {
    if (!isObject(operand)) return false;
    const keys = Object.keys(operand);
    return keys.length === 1 && REFERENCES.includes(keys[0]);
  }

  function shiftDate(today, days) {
    if (!Number.isInteger(days)) return INVALID;
    const [year, month, day] = today.split("-").map(Number);
    const moment = new Date(0);
    moment.setUTCFullYear(year, month - 1, day + days);  // setUTCFullYear: years below 100 stay as they are
    const shifted = moment.getUTCFullYear();
    if (Number.isNaN(shifted) || shifted < 1 || shifted > 9999) return INVALID;  // no such date
    return String(shifted).padStart(4, "0") + "-" +
      String(moment.getUTCMonth() + 1).padStart(2, "0") + "-" +
      String(moment.getUTCDate()).padStart(2, "0");
  }

  // The raw value an operand stands for: itself, or what its reference points at. A reference to
  // another field gives that field's value, empty or not; $user with no one signed in, or $today
  // beyond the calendar, gives INVALID: it matches nothing.
  function resolve(operand, ctx) {
    if (!isReference(operand)) return operand;
    const [name] = Object.keys(operand);
    const argument = operand[name];
    if (name === "$field") return typeof argument === "string" && own(ctx.values, argument) ? ctx.values[argument] : null;
    if (name === "$today") return shiftDate(ctx.today, argument);
    if (name === "$now") return ctx.now;
    return ctx.userId === null ? INVALID : ctx.userId;
  }

  // --- operators ----------------------------------------------------------------------------

  function eq(value, operand, kind, ctx) {
    const other = parse(resolve(operand, ctx), kind);
    if (value === EMPTY || other === EMPTY) return value === other;  // empty equals empty (null), nothing else
    if (value === INVALID || other === INVALID) return false;
    if (ELEMENT_KINDS[kind] !== undefined) {
      return value.every((item) => other.includes(item)) && other.every((item) => value.includes(item));
    }
    return same(kind, value, other);
  }

  function ordering(accept) {
    return function (value, operand, kind, ctx) {
      const other = parse(resolve(operand, ctx), kind);
      return present(value) && present(other) && accept(order(kind, value, other));
    };
  }

  function between(value, operand, kind, ctx) {
    if (!Array.isArray(operand) || operand.length !== 2) return false;
    const [low, high] = operand.map((bound) => parse(resolve(bound, ctx), kind));
    return present(value) && present(low) && present(high) &&
      order(kind, low, value) <= 0 && order(kind, value, high) <= 0;
  }

  // The parsed items of an "in" operand: a literal list, or a reference to a list field.
  function items(operand, element, ctx) {
    if (Array.isArray(operand)) return operand.map((item) => parse(resolve(item, ctx), element));
    const referenced = parse(resolve(operand, ctx), COLLECTION_OF[element] || "");
    return Array.isArray(referenced) ? referenced : [];
  }

  function isIn(value, operand, kind, ctx) {
    const element = ELEMENT_KINDS[kind] || kind;
    const candidates = items(operand, element, ctx);
    if (value === EMPTY) return candidates.includes(EMPTY);  // a null item stands for "empty"
    if (value === INVALID) return false;
    const members = ELEMENT_KINDS[kind] !== undefined ? value : [value];
    return members.some((member) => candidates.some((item) => present(item) && same(element, member, item)));
  }

  function contains(value, operand, kind, ctx) {
    const needle = parse(resolve(operand, ctx), ELEMENT_KINDS[kind] || kind);
    if (!present(value) || !present(needle)) return false;
    return kind === "text" ? fold(value).includes(fold(needle)) : value.includes(needle);
  }

  function startsWith(value, operand, kind, ctx) {
    const prefix = parse(resolve(operand, ctx), kind);
    return present(value) && present(prefix) && fold(value).startsWith(fold(prefix));
  }

  const TESTS = {
    eq,
    gt: ordering((c) => c > 0), gte: ordering((c) => c >= 0),
    lt: ordering((c) => c < 0), lte: ordering((c) => c <= 0),
    between, in: isIn, contains, starts_with: startsWith,
  };

  // --- evaluation ---------------------------------------------------------------------------

  function evaluateLeaf(node, ctx) {
    const field = node.field;
    const op = node.op;
    if (typeof field !== "string") return false;
    const kind = own(ctx.kinds, field) && own(OPERATORS_BY_KIND, ctx.kinds[field]) ? ctx.kinds[field] : "object";
    if (!OPERATORS_BY_KIND[kind].includes(op)) return false;
    const raw = own(ctx.values, field) ? ctx.values[field] : undefined;
    if (op === "empty" || op === "not_empty") return isEmpty(raw) === (op === "empty");
    const test = TESTS[NEGATIONS[op] || op];
    return test(parse(raw, kind), node.value, kind, ctx) !== own(NEGATIONS, op);
  }

  function evaluateNode(node, ctx) {
    if (!isObject(node)) return false;
    for (const combinator of ["all", "any"]) {
      if (own(node, combinator)) {
        const children = node[combinator];
        if (!Array.isArray(children)) return false;
        return combinator === "all"
          ? children.every((child) => evaluateNode(child, ctx))
          : children.some((child) => evaluateNode(child, ctx));
      }
    }
    if (own(node, "not")) return !evaluateNode(node.not, ctx);
    return evaluateLeaf(node, ctx);
  }

  // The moment as stored datetimes are written ("YYYY-MM-DDTHH:MM:SSZ"); INVALID when unreadable.
  function momentText(now) {
    const moment = now === undefined || now === null ? new Date() : now;
    if (moment instanceof Date && Number.isNaN(moment.getTime())) return INVALID;
    const match = MOMENT_RE.exec(moment instanceof Date ? moment.toISOString() : String(moment));
    return match ? match[1] + "Z" : INVALID;
  }

  // Whether the record's values meet the condition. options.today ("YYYY-MM-DD", from the server
  // page, not the browser clock) anchors {"$today": N}; options.now (default: this moment)
  // anchors {"$now": true}; options.userId is {"$user": true}. Wrong-typed values never throw:
  // they simply do not match.
  function evaluate(condition, values, kinds, options) {
    const settings = options || {};
    if (typeof settings.today !== "string" || !validDateText(settings.today)) {
      throw new TypeError("evaluate needs options.today as \"YYYY-MM-DD\"");
    }
    const ctx = {
      values: values || {},
      kinds: kinds || {},
      today: settings.today,
      now: momentText(settings.now),
      userId: settings.userId === undefined ? null : settings.userId,  // null: no one signed in
    };
    return evaluateNode(condition, ctx);
  }

  function collectOperandFields(operand, found) {
    if (isReference(operand) && typeof operand.$field === "string") found.add(operand.$field);
    else if (Array.isArray(operand)) operand.forEach((item) => collectOperandFields(item, found));
  }

  function collectFields(node, found) {
    if (!isObject(node)) return;
    if (typeof node.field === "string") found.add(node.field);
    collectOperandFields(node.value, found);
    for (const combinator of ["all", "any"]) {
      if (Array.isArray(node[combinator])) node[combinator].forEach((child) => collectFields(child, found));
    }
    collectFields(node.not, found);
  }

  // Every field key a condition reads (as a Set), including {"$field": ...} operands: the inputs
  // whose changes should re-evaluate it.
  function fieldsUsed(condition) {
    const found = new Set();
    collectFields(condition, found);
    return found;
  }

  const api = { evaluate, fieldsUsed, isEmpty, OPERATORS_BY_KIND };
  if (typeof window !== "undefined") window.FormloomConditions = api;
  if (typeof module !== "undefined") module.exports = api;
})();
