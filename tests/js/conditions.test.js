// The browser's condition evaluator on the cases the server's evaluator runs too
// (tests/cases/conditions/*.json; check.json is for the server's save-time checker only).
"use strict";

const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const SCRIPT = path.join(__dirname, "..", "..", "formloom", "platform", "static", "conditions.js");
const CASES_DIR = path.join(__dirname, "..", "cases", "conditions");
const { evaluate, fieldsUsed } = require(SCRIPT);

const files = fs.readdirSync(CASES_DIR).filter((name) => name.endsWith(".json") && name !== "check.json").sort();
const allCases = [];

function run(c, values) {
  const options = { today: c.today };
  if (c.now !== undefined) options.now = c.now;
  if (c.user_id !== undefined) options.userId = c.user_id;
  return evaluate(c.condition, values === undefined ? c.values : values, c.kinds, options);
}

for (const file of files) {
  const cases = JSON.parse(fs.readFileSync(path.join(CASES_DIR, file), "utf8"));
  allCases.push(...cases);
  test.describe(file, () => {
    for (const c of cases) {
      test(c.name, () => {
        assert.equal(run(c), c.expect);
        if (c.fields_used) assert.deepEqual([...fieldsUsed(c.condition)].sort(), c.fields_used);
      });
    }
  });
}

test("the case files are there", () => {
  assert.ok(files.length >= 7, files.join(", "));
  assert.ok(allCases.length >= 110, String(allCases.length));
});

test("a page finds the evaluator on window without any module system", () => {
  const sandbox = { window: {} };
  vm.runInNewContext(fs.readFileSync(SCRIPT, "utf8"), sandbox);
  const { FormloomConditions } = sandbox.window;
  const condition = { field: "amount", op: "gt", value: "9.99" };
  assert.equal(FormloomConditions.evaluate(condition, { amount: "10.00" }, { amount: "number" }, { today: "2026-03-31" }), true);
});

test("today must come from the server page", () => {
  assert.throws(() => evaluate({ all: [] }, {}, {}, {}), TypeError);
  assert.throws(() => evaluate({ all: [] }, {}, {}, { today: "31/03/2026" }), TypeError);
});

test("now may be given as a Date", () => {
  const condition = { field: "at", op: "eq", value: { $now: true } };
  const options = { today: "2026-03-31", now: new Date("2026-03-31T09:00:00.250Z") };
  assert.equal(evaluate(condition, { at: "2026-03-31T09:00:00Z" }, { at: "datetime" }, options), true);
});

test("values of any shape never throw", () => {
  const garbage = [undefined, null, true, 0, -1.5, NaN, Infinity, "", "x", "0", [], [null], [[1]], {}, { a: [1] },
    ["a", 1], "2026-02-30", "1e3", "-0"];
  for (const c of allCases) {
    for (const value of garbage) {
      const values = Object.fromEntries(Object.keys(c.kinds).map((key) => [key, value]));
      assert.equal(typeof run(c, values), "boolean", c.name);
    }
  }
});

test("record keys never reach the object prototype", () => {
  const condition = { field: "constructor", op: "not_empty" };
  assert.equal(evaluate(condition, {}, { constructor: "text" }, { today: "2026-03-31" }), false);
});
