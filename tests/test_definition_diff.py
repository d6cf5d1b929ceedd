"""Definition diffs: one change per semantic difference, each a sentence in English and in Chinese.

* Small edits of the CRM template's definitions give exactly the expected codes, paths and subjects.
* Random edits of those definitions give no change exactly when the two bodies are equal as JSON,
  every change describes itself in both languages and points at a path of the new body (of the old
  one for what was removed), and a pure reorder gives moves and nothing else.
"""
from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from formloom.builder.diff import CODES, Change, changes
from formloom.templates_library import TEMPLATES_DIR
from tests.factories import quick_quote_form, quote_body

CRM = TEMPLATES_DIR / "crm"
CRM_FILES = sorted(str(p.relative_to(CRM).with_suffix("")) for p in CRM.rglob("*.json"))


def crm(name: str) -> dict:
    return json.loads((CRM / f"{name}.json").read_text(encoding="utf-8"))


def field(body: dict, key: str) -> dict:
    return next(f for f in body["fields"] if f["key"] == key)


def stage(body: dict, key: str) -> dict:
    return next(s for s in body["stages"] if s["key"] == key)


def edited(base: dict, edit: Callable[[dict], Any]) -> dict:
    new = copy.deepcopy(base)
    edit(new)
    return new


def triples(kind: str, old: dict | None, new: dict | None) -> list[tuple[str, str, str]]:
    return [(c.code, c.path, c.subject) for c in changes(kind, old, new)]


def move(items: list, source: int, target: int) -> None:
    items.insert(target, items.pop(source))


OPPORTUNITY, CUSTOMER, QUOTE = crm("entities/opportunity"), crm("entities/customer"), quote_body()
ACCESS = {"formloom": 1, "kind": "access", "key": "access", "label": {"en": "Access", "zh-CN": "权限"},
          "roles": [{"key": "rep", "label": {"en": "Rep", "zh-CN": "业务员"},
                     "entities": {"*": {"create": True, "read": "all", "update": "all", "delete": "all"},
                                  "customer": {"read": "own"}},
                     "fields": {"opportunity": {"discount": "read_only"}}},
                    {"key": "manager", "entities": {"*": {"create": True, "read": "team", "export": True}}},
                    {"key": "east", "label": "East region", "description": "Reps of the east",
                     "entities": {"customer": {"read": {"scope": "all",
                                                        "when": {"field": "region", "op": "eq", "value": "east"}}}}}]}


def role(body: dict, key: str) -> dict:
    return next(r for r in body["roles"] if r["key"] == key)
FORM, SALES, WEB_RULE = crm("forms/opportunity"), crm("pipelines/sales"), crm("rules/assign_web_opportunities")
PERCENT = {"type": "percent", "label": "Margin"}

CASES = [
    # entity: fields
    ("entity", OPPORTUNITY, lambda b: b["fields"].append({"key": "budget", "type": "currency", "label": "Budget"}),
     [("field_added", "$.fields[15]", "budget")]),
    ("entity", OPPORTUNITY, lambda b: b["fields"].pop(11), [("field_removed", "$.fields[11]", "lost_reason")]),
    ("entity", OPPORTUNITY, lambda b: field(b, "amount").update(label={"en": "Deal value", "zh-CN": "金额"}),
     [("field_label_changed", "$.fields[3].label", "amount")]),
    ("entity", OPPORTUNITY, lambda b: field(b, "amount").update(type="decimal"),
     [("field_type_changed", "$.fields[3].type", "amount")]),
    ("entity", OPPORTUNITY, lambda b: field(b, "contact").update(required=True),
     [("field_required_changed", "$.fields[2].required", "contact")]),
    ("entity", OPPORTUNITY, lambda b: move(b["fields"], 3, 0), [("field_moved", "$.fields[0]", "amount")]),
    ("entity", OPPORTUNITY, lambda b: field(b, "lost_reason").update(
        visible_when={"field": "stage", "op": "eq", "value": "lost"}),
     [("field_condition_changed", "$.fields[11].visible_when", "lost_reason.visible_when")]),
    ("entity", OPPORTUNITY, lambda b: field(b, "discount").update(max=50),
     [("field_setting_changed", "$.fields[5].max", "discount.max")]),
    ("entity", OPPORTUNITY, lambda b: field(b, "customer").update(target="company"),
     [("field_setting_changed", "$.fields[1].target", "customer.target")]),
    ("entity", OPPORTUNITY, lambda b: field(b, "amount").pop("help"),
     [("field_setting_changed", "$.fields[3].help", "amount.help")]),
    # entity: options
    ("entity", CUSTOMER, lambda b: field(b, "tier")["options"].append({"value": "vip", "label": "VIP"}),
     [("option_added", "$.fields[2].options[3]", "tier.vip")]),
    ("entity", CUSTOMER, lambda b: field(b, "tier")["options"].pop(2),
     [("option_removed", "$.fields[2].options[2]", "tier.c")]),
    ("entity", CUSTOMER, lambda b: field(b, "tier")["options"][0].update(label="Key account"),
     [("option_label_changed", "$.fields[2].options[0].label", "tier.a")]),
    ("entity", CUSTOMER, lambda b: field(b, "tier")["options"][1].update(color="#000000"),
     [("option_color_changed", "$.fields[2].options[1].color", "tier.b")]),
    ("entity", CUSTOMER, lambda b: move(field(b, "tier")["options"], 2, 0),
     [("option_moved", "$.fields[2].options[0]", "tier.c")]),
    ("entity", CUSTOMER, lambda b: field(b, "tier")["options"][1].update(parent="a"),
     [("option_setting_changed", "$.fields[2].options[1].parent", "tier.b.parent")]),
    # entity: columns of a sub-table, reported with the field codes and a dotted subject
    ("entity", QUOTE, lambda b: field(b, "lines")["fields"].append({"key": "margin", **PERCENT}),
     [("field_added", "$.fields[11].fields[4]", "lines.margin")]),
    ("entity", QUOTE, lambda b: field(b, "lines")["fields"].pop(0),
     [("field_removed", "$.fields[11].fields[0]", "lines.product")]),
    ("entity", QUOTE, lambda b: move(field(b, "lines")["fields"], 0, 3),
     [("field_moved", "$.fields[11].fields[3]", "lines.product")]),
    ("entity", QUOTE, lambda b: field(b, "lines")["fields"][1].update(label="Quantity", min=2),
     [("field_label_changed", "$.fields[11].fields[1].label", "lines.qty"),
      ("field_setting_changed", "$.fields[11].fields[1].min", "lines.qty.min")]),
    ("entity", QUOTE, lambda b: field(b, "stage")["options"].reverse(),
     [("option_moved", "$.fields[6].options[0]", "stage.lost"),
      ("option_moved", "$.fields[6].options[1]", "stage.sent")]),
    # entity: the rest
    ("entity", OPPORTUNITY, lambda b: b.update(label="Deal"), [("label_changed", "$.label", "label")]),
    ("entity", OPPORTUNITY, lambda b: b.update(title_field="amount"),
     [("property_changed", "$.title_field", "title_field")]),
    ("entity", OPPORTUNITY, lambda b: b.update(x_note=1), [("property_changed", "$.x_note", "x_note")]),
    ("entity", OPPORTUNITY, lambda b: b.update(fields={}), [("property_changed", "$.fields", "fields")]),
    ("entity", OPPORTUNITY, lambda b: b.update({"odd key": 1}), [("property_changed", "$['odd key']", "odd key")]),
    ("entity", OPPORTUNITY, lambda b: field(b, "name").update(required=1),
     [("field_required_changed", "$.fields[0].required", "name")]),
    # form
    ("form", FORM, lambda b: b["sections"].append({"label": "Notes", "fields": ["budget"]}),
     [("section_added", "$.sections[3]", "section 4"), ("form_field_added", "$.sections[3].fields[0]", "budget")]),
    ("form", FORM, lambda b: b["sections"].pop(2),
     [("section_removed", "$.sections[2]", "section 3"), ("form_field_removed", "$.sections[2].fields[0]", "lost_reason"),
      ("form_field_removed", "$.sections[2].fields[1]", "closed_on")]),
    ("form", FORM, lambda b: b["sections"][1].update(label="Money"),
     [("section_label_changed", "$.sections[1].label", "section 2")]),
    ("form", FORM, lambda b: b["sections"][2].update(visible_when={"field": "stage", "op": "eq", "value": "lost"}),
     [("section_condition_changed", "$.sections[2].visible_when", "section 3.visible_when")]),
    ("form", FORM, lambda b: b["sections"][2].pop("help"),
     [("section_setting_changed", "$.sections[2].help", "section 3.help")]),
    ("form", FORM, lambda b: b["sections"][0]["fields"].remove("contact"),
     [("form_field_removed", "$.sections[0].fields[2]", "contact")]),
    ("form", FORM, lambda b: move(b["sections"][1]["fields"], 0, 5),
     [("form_field_moved", "$.sections[1].fields[5]", "stage")]),
    ("form", FORM, lambda b: b["sections"][2]["fields"].append(b["sections"][0]["fields"].pop()),
     [("form_field_moved", "$.sections[2].fields[2]", "lead")]),
    ("form", FORM, lambda b: b["sections"][1]["fields"].__setitem__(1, {"field": "amount", "width": "half"}),
     [("form_field_setting_changed", "$.sections[1].fields[1].width", "amount.width")]),
    ("form", FORM, lambda b: b["sections"][1]["fields"].__setitem__(1, {"field": "amount"}),
     [("form_field_setting_changed", "$.sections[1].fields[1]", "amount")]),
    ("form", FORM, lambda b: b["sections"][1]["fields"].__setitem__(
        1, {"field": "amount", "visible_when": {"field": "stage", "op": "ne", "value": "lead"}}),
     [("form_field_condition_changed", "$.sections[1].fields[1].visible_when", "amount.visible_when")]),
    ("form", FORM, lambda b: b["sections"][0]["fields"].insert(0, {"text": "Who is it for?"}),
     [("form_text_added", "$.sections[0].fields[0]", "section 1 text 1")]),
    ("form", quick_quote_form(), lambda b: b["sections"][0]["fields"].pop(0),
     [("form_text_removed", "$.sections[0].fields[0]", "section 1 text 1")]),
    ("form", quick_quote_form(), lambda b: b["sections"][0]["fields"][0].update(text="Just the basics."),
     [("form_text_changed", "$.sections[0].fields[0]", "section 1 text 1")]),
    ("form", quick_quote_form(), lambda b: move(b["sections"][0]["fields"], 0, 7),
     [("form_text_moved", "$.sections[0].fields[7]", "section 1 text 1")]),
    ("form", FORM, lambda b: b.update(entity="deal"), [("property_changed", "$.entity", "entity")]),
    ("form", FORM, lambda b: b["sections"][2].update(fields="lost_reason"),  # not a list: a setting of the section
     [("section_setting_changed", "$.sections[2].fields", "section 3.fields"),
      ("form_field_removed", "$.sections[2].fields[0]", "lost_reason"),
      ("form_field_removed", "$.sections[2].fields[1]", "closed_on")]),
    # pipeline
    ("pipeline", SALES, lambda b: b["stages"].insert(6, {"key": "on_hold", "label": "On hold"}),
     [("stage_added", "$.stages[6]", "stage on_hold")]),
    ("pipeline", SALES, lambda b: b["stages"].pop(2), [("stage_removed", "$.stages[2]", "stage proposal")]),
    ("pipeline", SALES, lambda b: stage(b, "proposal").update(label="Offer"),
     [("stage_label_changed", "$.stages[2].label", "stage proposal")]),
    ("pipeline", SALES, lambda b: stage(b, "lead").update(color="#000000"),
     [("stage_color_changed", "$.stages[0].color", "stage lead")]),
    ("pipeline", SALES, lambda b: stage(b, "lead").update(probability=5),
     [("stage_probability_changed", "$.stages[0].probability", "stage lead")]),
    ("pipeline", SALES, lambda b: stage(b, "contract").update(outcome="open"),
     [("stage_outcome_changed", "$.stages[4].outcome", "stage contract")]),
    ("pipeline", SALES, lambda b: stage(b, "proposal")["gate"]["required"].pop(),
     [("stage_gate_changed", "$.stages[2].gate.required", "stage proposal.gate.required")]),
    ("pipeline", SALES, lambda b: stage(b, "lead").update(gate={}),
     [("stage_gate_changed", "$.stages[0].gate", "stage lead.gate")]),
    ("pipeline", SALES, lambda b: stage(b, "contract")["gate"]["checklist"].append({"key": "po", "label": "PO received"}),
     [("checklist_item_added", "$.stages[4].gate.checklist[1]", "stage contract.po")]),
    ("pipeline", SALES, lambda b: stage(b, "won")["gate"]["checklist"].pop(),
     [("checklist_item_removed", "$.stages[5].gate.checklist[0]", "stage won.contract_signed")]),
    ("pipeline", SALES, lambda b: stage(b, "won")["gate"]["checklist"][0].update(label="Signed"),
     [("checklist_item_label_changed", "$.stages[5].gate.checklist[0].label", "stage won.contract_signed")]),
    ("pipeline", SALES, lambda b: stage(b, "won")["gate"]["checklist"].insert(0, {"key": "paid", "label": "Paid"}),
     [("checklist_item_added", "$.stages[5].gate.checklist[0]", "stage won.paid")]),
    ("pipeline", edited(SALES, lambda b: stage(b, "won")["gate"]["checklist"].append({"key": "paid", "label": "Paid"})),
     lambda b: stage(b, "won")["gate"]["checklist"].reverse(),
     [("checklist_item_moved", "$.stages[5].gate.checklist[0]", "stage won.paid")]),
    ("pipeline", SALES, lambda b: stage(b, "negotiation")["approval"].update(mode="all"),
     [("approval_changed", "$.stages[3].approval", "stage negotiation")]),
    ("pipeline", SALES, lambda b: move(b["stages"], 6, 0), [("stage_moved", "$.stages[0]", "stage lost")]),
    ("pipeline", SALES, lambda b: move(b["stages"], 6, 0) or b["stages"][0].pop("gate"),  # a removal: its old path
     [("stage_moved", "$.stages[0]", "stage lost"),
      ("stage_gate_changed", "$.stages[6].gate.required", "stage lost.gate.required")]),
    ("pipeline", SALES, lambda b: stage(b, "lead").update(help="Fresh leads."),
     [("stage_setting_changed", "$.stages[0].help", "stage lead.help")]),
    ("pipeline", SALES, lambda b: b.update(transitions="any"), [("transitions_changed", "$.transitions", "transitions")]),
    ("pipeline", SALES, lambda b: b["card_fields"].reverse(), [("property_changed", "$.card_fields", "card_fields")]),
    # rule
    ("rule", WEB_RULE, lambda b: b.update(trigger={"type": "updated"}), [("trigger_changed", "$.trigger", "trigger")]),
    ("rule", WEB_RULE, lambda b: b["condition"].update(value="referral"),
     [("condition_changed", "$.condition", "condition")]),
    ("rule", WEB_RULE, lambda b: b["actions"].append({"type": "move", "stage": "proposal"}),
     [("action_added", "$.actions[2]", "action 3")]),
    ("rule", WEB_RULE, lambda b: b["actions"].pop(), [("action_removed", "$.actions[1]", "action 2")]),
    ("rule", WEB_RULE, lambda b: b["actions"][1].update(email=True), [("action_changed", "$.actions[1]", "action 2")]),
    ("rule", WEB_RULE, lambda b: b.update(enabled=False), [("rule_enabled_changed", "$.enabled", "enabled")]),
    ("rule", WEB_RULE, lambda b: b.update(entity="customer"), [("property_changed", "$.entity", "entity")]),
    ("app", crm("app"), lambda b: b["navigation"].reverse(), [("property_changed", "$.navigation", "navigation")]),
    # access: roles by key, a grant per (entity, action), a field rule per (entity, field)
    ("access", ACCESS, lambda b: b["roles"].append({"key": "auditor", "entities": {"*": {"read": "all"}}}),
     [("role_added", "$.roles[3]", "role auditor")]),
    ("access", ACCESS, lambda b: b["roles"].pop(2), [("role_removed", "$.roles[2]", "role east")]),
    ("access", ACCESS, lambda b: move(b["roles"], 2, 0), [("role_moved", "$.roles[0]", "role east")]),
    ("access", ACCESS, lambda b: role(b, "east").update(label="East"),
     [("role_label_changed", "$.roles[2].label", "role east")]),
    ("access", ACCESS, lambda b: role(b, "rep")["entities"]["customer"].update(read="all", delete=False),
     [("grant_changed", "$.roles[0].entities.customer.read", "role rep.entities.customer.read"),
      ("grant_changed", "$.roles[0].entities.customer.delete", "role rep.entities.customer.delete")]),
    ("access", ACCESS, lambda b: role(b, "rep")["entities"].pop("customer"),  # a removal: its old path
     [("grant_changed", "$.roles[0].entities.customer.read", "role rep.entities.customer.read")]),
    ("access", ACCESS, lambda b: role(b, "manager")["entities"]["*"].pop("export"),
     [("grant_changed", "$.roles[1].entities['*'].export", "role manager.entities.*.export")]),
    ("access", ACCESS, lambda b: role(b, "rep")["fields"]["opportunity"].update(discount="hidden", amount="hidden"),
     [("field_access_changed", "$.roles[0].fields.opportunity.discount", "role rep.fields.opportunity.discount"),
      ("field_access_changed", "$.roles[0].fields.opportunity.amount", "role rep.fields.opportunity.amount")]),
    ("access", ACCESS, lambda b: role(b, "manager").update(members=True),
     [("role_power_changed", "$.roles[1].members", "role manager.members")]),
    ("access", ACCESS, lambda b: role(b, "east").pop("description"),
     [("role_setting_changed", "$.roles[2].description", "role east.description")]),
    ("access", ACCESS, lambda b: role(b, "rep").update(entities=[]),  # not a map: the role's catch-all
     [("role_setting_changed", "$.roles[0].entities", "role rep.entities")]),
]


@pytest.mark.parametrize("kind, base, edit, expected", CASES, ids=[f"{c[3][0][0]}-{i}" for i, c in enumerate(CASES)])
def test_each_edit_gives_exactly_its_changes(kind: str, base: dict, edit: Callable, expected: list) -> None:
    new = edited(base, edit)
    assert triples(kind, base, new) == expected
    for change in changes(kind, base, new):
        assert change.describe("en") and change.describe("zh-CN")


def test_every_code_has_a_case() -> None:
    covered = {code for *_, expected in CASES for code, _, _ in expected} | {"created", "deleted"}
    assert covered == set(CODES)


def test_equal_bodies_give_no_change() -> None:
    for kind, base, _, _ in CASES:
        assert changes(kind, base, copy.deepcopy(base)) == []
    assert changes("entity", None, None) == []
    assert changes("entity", {"fields": [], "label": "A"}, {"label": "A", "fields": []}) == []  # key order
    assert changes("entity", {"max": 1}, {"max": 1.0}) == []


@pytest.mark.parametrize("name", CRM_FILES)
def test_every_crm_definition_equals_its_copy_and_can_be_created(name: str) -> None:
    body = crm(name)
    assert changes(body["kind"], body, copy.deepcopy(body)) == []
    [created] = changes(body["kind"], None, body)
    assert (created.code, created.subject) == ("created", body["key"])
    assert created.describe().endswith("created.") and created.describe("zh-CN").startswith("新建")


def test_created_and_deleted() -> None:
    assert changes("rule", None, WEB_RULE) == [Change("created", "$", "assign_web_opportunities", after=WEB_RULE,
                                                      label=WEB_RULE["label"])]
    [deleted] = changes("pipeline", SALES, None)
    assert (deleted.code, deleted.subject) == ("deleted", "sales")
    assert deleted.describe() == 'Pipeline "Sales pipeline" (sales) deleted.'
    assert deleted.describe("zh-CN") == "删除流程“销售流程”（sales）。"


def test_a_string_label_that_becomes_a_map_is_a_change() -> None:
    [change] = changes("entity", {"label": "X"}, {"label": {"en": "X"}})
    assert (change.code, change.before, change.after) == ("label_changed", "X", {"en": "X"})
    assert change.describe() == 'Label "X": translations changed.'


def test_true_is_not_one() -> None:
    [change] = changes("rule", {"enabled": True}, {"enabled": 1})
    assert change.code == "rule_enabled_changed"
    assert change.describe() == "Rule enabled flag changed from true to 1."


def test_one_field_moved_far_is_one_move() -> None:
    new = edited(OPPORTUNITY, lambda b: move(b["fields"], 11, 0))
    assert triples("entity", OPPORTUNITY, new) == [("field_moved", "$.fields[0]", "lost_reason")]


def test_duplicate_keys_in_a_draft_are_matched_by_occurrence() -> None:
    old = edited(OPPORTUNITY, lambda b: b["fields"].append({"key": "amount", "type": "text", "label": "Again"}))
    new = edited(old, lambda b: b["fields"][15].update(label="Once more"))
    assert triples("entity", old, new) == [("field_label_changed", "$.fields[15].label", "amount#2")]


SENTENCES = [
    ("entity", OPPORTUNITY, lambda b: b["fields"].append({"key": "amount2", "type": "currency", "label": "Amount"}),
     'Field "Amount" (amount2) added (Currency).', "新增字段“Amount”（amount2），类型为金额。"),
    ("entity", OPPORTUNITY, lambda b: field(b, "amount").update(type="decimal"),
     'Field "Amount": type changed from Currency to Decimal number.', "字段“预计金额”：类型由金额改为小数。"),
    ("entity", CUSTOMER, lambda b: field(b, "tier")["options"].pop(0),
     'Option "A – key account" removed from field "Customer tier".', "从字段“客户等级”中删除选项“A类（重点客户）”。"),
    ("entity", CUSTOMER, lambda b: field(b, "tier")["options"][0].update(label="VIP"),
     'Option "A – key account" of field "Customer tier" renamed to "VIP".',
     "字段“客户等级”的选项“A类（重点客户）”改名为“VIP”。"),
    ("entity", OPPORTUNITY, lambda b: field(b, "contact").update(required=True),
     'Field "Main contact" is now required.', "字段“主要联系人”改为必填。"),
    ("entity", OPPORTUNITY, lambda b: field(b, "discount").update(max=50),
     'Field "Discount": max changed from 100 to 50.', "字段“折扣”：max由100改为50。"),
    ("entity", OPPORTUNITY, lambda b: move(b["fields"], 3, 0),
     'Field "Amount" moved from position 4 to 1.', "字段“预计金额”由第 4 位移到第 1 位。"),
    ("entity", QUOTE, lambda b: field(b, "lines")["fields"].pop(1),
     'Column "Qty" of sub-table "Line items" (lines.qty) removed.', "删除子表单“报价明细”的列“数量”（lines.qty）。"),
    ("form", FORM, lambda b: b["sections"][2]["fields"].append("budget"),
     'Field "budget" added to section 3 "Outcome".', "字段“budget”已添加到第 3 个分组“结果”。"),
    ("form", quick_quote_form(), lambda b: b["sections"][0]["fields"][0].update(text="Just the basics."),
     'A text line of section 1 "Quick quote" changed from "Only the essentials; add details later." to '
     '"Just the basics.".', "第 1 个分组“Quick quote”的说明文字由“只填必要信息，详情稍后补充。”改为“Just the basics.”。"),
    ("pipeline", SALES, lambda b: b["stages"].pop(2), 'Stage "Proposal" removed.', "删除阶段“方案制定”。"),
    ("pipeline", SALES, lambda b: stage(b, "proposal")["gate"]["required"].pop(),
     'Stage "Proposal": entry gate changed (required fields).', "阶段“方案制定”：进入条件已修改（必填字段）。"),
    ("pipeline", SALES, lambda b: stage(b, "lead").update(probability=5),
     'Stage "Lead capture": win probability changed from 10% to 5%.', "阶段“线索获取”：赢单概率由10%改为5%。"),
    ("pipeline", SALES, lambda b: stage(b, "won")["gate"]["checklist"].pop(),
     'Checklist item "The contract is signed by both sides" removed from stage "Won".',
     "从阶段“赢单”中删除检查项“合同已双方签署”。"),
    ("rule", WEB_RULE, lambda b: b["condition"].update(value="referral"), "Rule condition changed.", "规则条件已修改。"),
    ("rule", WEB_RULE, lambda b: b.update(enabled=False), "Rule disabled.", "规则已停用。"),
    ("rule", WEB_RULE, lambda b: b["actions"].pop(0), "Action 1 changed from \"assign\" to \"notify\".",
     "第 1 个动作由“assign”改为“notify”。"),
    ("access", ACCESS, lambda b: role(b, "rep")["entities"]["customer"].update(read="all"),
     'Role "Rep" may now read all "customer" records (before: their own).',
     "角色“业务员”现在可以查看全部“customer”记录（之前：自己负责的）。"),
    ("access", ACCESS, lambda b: role(b, "rep")["entities"]["*"].update(delete=False),
     'Role "Rep" may no longer delete records of any other entity (before: all).',
     "角色“业务员”不再可以删除其他实体的记录（之前：全部）。"),
    ("access", ACCESS, lambda b: role(b, "rep")["entities"]["customer"].pop("read"),
     'Role "Rep" may now read "customer" records as for any other entity (*) (before: their own).',
     "角色“业务员”现在按其他实体（*）的规则查看“customer”记录（之前：自己负责的）。"),
    ("access", ACCESS, lambda b: role(b, "manager")["entities"]["*"].__setitem__("import", True),
     'Role "manager" may now import records of any other entity.', "角色“manager”现在可以导入其他实体的记录。"),
    ("access", ACCESS, lambda b: role(b, "east")["entities"]["customer"]["read"].update(scope="team"),
     'Role "East region" may now read their team\'s "customer" records that meet a condition '
     '(before: all with a condition).',
     "角色“East region”现在可以查看团队负责的“customer”记录（限满足条件的）（之前：全部（附加条件））。"),
    ("access", ACCESS, lambda b: role(b, "rep")["fields"]["opportunity"].update(discount="hidden"),
     'Role "Rep": field "discount" of "opportunity" is now hidden.', "角色“业务员”：“opportunity”的字段“discount”现在隐藏。"),
    ("access", ACCESS, lambda b: role(b, "rep").pop("fields"),
     'Role "Rep": field "discount" of "opportunity" has no rule of its own any more (editable).',
     "角色“业务员”：“opportunity”的字段“discount”不再有单独规则（可编辑）。"),
    ("access", ACCESS, lambda b: role(b, "rep").update(build=True),
     'Role "Rep" may now build this app: edit and publish its definitions, access included.',
     "角色“业务员”现在可以搭建本应用：修改并发布其定义（包括权限）。"),
    ("access", ACCESS, lambda b: b["roles"].pop(0),
     "Role \"Rep\" removed: its members have the built-in powers of 'rep' again.",
     "删除角色“业务员”：其成员恢复内置角色“rep”的权限。"),
    ("access", ACCESS, lambda b: b["roles"].pop(2),
     'Role "East region" removed: its members may no longer do anything in the app.',
     "删除角色“East region”：其成员在本应用中不再有任何权限。"),
]


@pytest.mark.parametrize("kind, base, edit, english, chinese", SENTENCES, ids=range(len(SENTENCES)))
def test_changes_read_as_sentences(kind: str, base: dict, edit: Callable, english: str, chinese: str) -> None:
    [change, *_] = changes(kind, base, edited(base, edit))
    assert (change.describe(), change.describe("zh-CN")) == (english, chinese)


# --- properties -------------------------------------------------------------------------------

RICH_FORM = edited(FORM, lambda b: b["sections"][1]["fields"].__setitem__(slice(1, 3), [
    {"text": {"en": "Money", "zh-CN": "金额"}},
    {"field": "amount", "width": "half", "visible_when": {"field": "stage", "op": "ne", "value": "lead"}},
    {"text": "Before any discount."}, "discount"]))
BASES = [("entity", OPPORTUNITY), ("entity", QUOTE), ("form", RICH_FORM), ("form", quick_quote_form()),
         ("pipeline", SALES), ("pipeline", SALES), ("app", crm("app")), ("rule", WEB_RULE),
         ("rule", crm("rules/closing_this_week")), ("access", ACCESS), ("access", ACCESS)]
KINDS = ["entity", "form", "pipeline", "rule", "app", "view", "access"]
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from([0.0, 1.0, 2.5]),
                   st.sampled_from(["", "a", "lead", "amount", "X", "#000000"]))
NAMES = st.sampled_from(["key", "value", "label", "type", "fields", "options", "en", "zh-CN", "x_note", "odd key"])
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3),
                      max_leaves=5)


def json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON: true is not 1, 1 is 1.0, key order does not count."""
    return canonical(a) == canonical(b)


def canonical(value: Any) -> Any:
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, dict):
        return ("object", {k: canonical(v) for k, v in value.items()})
    if isinstance(value, list):
        return ("array", [canonical(v) for v in value])
    return ("other", value)


def containers(value: Any) -> list:
    found = [value] if isinstance(value, dict | list) else []
    for child in value.values() if isinstance(value, dict) else value if isinstance(value, list) else []:
        found += containers(child)
    return found


def same_value(value: Any) -> Any:
    """A value equal as JSON but not always the same in Python (1.0 for 1), or one that differs (1 for true)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return float(value)
    return copy.deepcopy(value)


def edit_object(data: st.DataObject, node: dict) -> None:
    keys = list(node)
    op = data.draw(st.sampled_from(["set", "delete", "relabel", "same"] if keys else ["set"]))
    if op == "set":
        node[data.draw(st.sampled_from([*keys, "x_note", "label", "help"]))] = data.draw(VALUES)
    elif op == "delete":
        del node[data.draw(st.sampled_from(keys))]
    elif op == "relabel":
        label = node.get("label")
        node["label"] = label.get("en", "X") if isinstance(label, dict) else {"en": label if isinstance(label, str) else "X"}
    else:
        key = data.draw(st.sampled_from(keys))
        node[key] = same_value(node[key])


def edit_list(data: st.DataObject, node: list) -> None:
    if not node:
        node.append(data.draw(VALUES))
        return
    i, j = data.draw(st.integers(0, len(node) - 1)), data.draw(st.integers(0, len(node) - 1))
    op = data.draw(st.sampled_from(["remove", "move", "swap", "reverse", "duplicate", "insert"]))
    if op == "remove":
        node.pop(i)
    elif op == "move":
        move(node, i, j)
    elif op == "swap":
        node[i], node[j] = node[j], node[i]
    elif op == "reverse":
        node.reverse()
    elif op == "duplicate":
        node.insert(j, copy.deepcopy(node[i]))
    else:
        node.insert(j, data.draw(VALUES))


def somewhere(data: st.DataObject, body: dict) -> dict | list:
    """An object or list of the body, found by walking down (deep places are as likely as wide ones)."""
    node: dict | list = body
    while True:
        children = [c for c in (node.values() if isinstance(node, dict) else node) if isinstance(c, dict | list)]
        if not children or data.draw(st.integers(0, 3)) == 0:
            return node
        node = data.draw(st.sampled_from(children))


def transplant(data: st.DataObject, body: dict) -> None:
    """Move an item from one list to another (a field to another section, an option to another field)."""
    lists = [c for c in containers(body) if isinstance(c, list)] or [[]]
    source, target = data.draw(st.sampled_from(lists)), data.draw(st.sampled_from(lists))
    if source:
        item = source.pop(data.draw(st.integers(0, len(source) - 1)))
        target.insert(data.draw(st.integers(0, len(target))), item)


def items_of_lists(body: dict) -> list:
    """Lists that hold objects, and their items: fields, options, columns, sections, stages, checklists, actions."""
    lists = [c for c in containers(body) if isinstance(c, list) and any(isinstance(x, dict) for x in c)]
    return lists + [x for c in lists for x in c if isinstance(x, dict | list)]


def random_edit(data: st.DataObject, body: dict) -> None:
    how = data.draw(st.integers(0, 5))
    if how == 0:
        transplant(data, body)
        return
    node = somewhere(data, body) if how < 3 else data.draw(st.sampled_from(items_of_lists(body) or [body]))
    (edit_object if isinstance(node, dict) else edit_list)(data, node)


STEP = re.compile(r"\.(\w+)|\['(.*?)'\]|\[(\d+)\]")


def resolves(path: str, body: Any) -> bool:
    """Whether a JSON path of a change names something in ``body``."""
    node, rest = body, path.removeprefix("$")
    while rest:
        found = STEP.match(rest)
        if found is None:
            return False
        name, quoted, index = found.groups()
        if index is not None:
            if not (isinstance(node, list) and int(index) < len(node)):
                return False
            node = node[int(index)]
        elif isinstance(node, dict) and (name or quoted) in node:
            node = node[name or quoted]
        else:
            return False
        rest = rest[found.end():]
    return True


STRUCTURES = {("entity", "property_changed", "fields"), ("form", "property_changed", "sections"),
              ("pipeline", "property_changed", "stages"), ("rule", "property_changed", "actions"),
              ("entity", "field_setting_changed", "fields"), ("entity", "field_setting_changed", "options"),
              ("form", "section_setting_changed", "fields"), ("pipeline", "stage_gate_changed", "checklist"),
              ("access", "property_changed", "roles")}


def objects(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def assert_detailed(change: Change, kind: str) -> None:
    """A structure the differ understands is never reported as one coarse change."""
    name = change.subject.rsplit(".", 1)[-1]
    if (kind, change.code, name) in STRUCTURES and change.path.endswith(f".{name}"):
        lists = change.code == "section_setting_changed"
        assert not all(isinstance(v, list) if lists else objects(v) for v in (change.before, change.after)), change
    if change.code == "form_field_setting_changed" and change.path.endswith("]"):
        assert json_equal(*({"field": x} if isinstance(x, str) else x for x in (change.before, change.after))), change


def assert_sound(kind: str, found: list[Change], old: dict, new: dict) -> None:
    for change in found:
        assert change.code in CODES
        assert_detailed(change, kind)
        assert change.describe("en").strip() and change.describe("zh-CN").strip()
        assert resolves(change.path, new) or (change.after is None and resolves(change.path, old)), change


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(BASES), data=st.data())
def test_no_change_exactly_when_equal(base: tuple[str, dict], data: st.DataObject) -> None:
    kind, old = base
    new = copy.deepcopy(old)
    for _ in range(data.draw(st.integers(0, 3))):
        random_edit(data, new)
    kind = data.draw(st.sampled_from([kind] * 8 + KINDS))
    forward, backward = changes(kind, old, new), changes(kind, new, old)
    assert (forward == []) == (backward == []) == json_equal(old, new)
    assert_sound(kind, forward, old, new)
    assert_sound(kind, backward, new, old)


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_a_pure_reorder_gives_moves_and_nothing_else(data: st.DataObject) -> None:
    kind, body, items, code = data.draw(st.sampled_from([
        ("entity", OPPORTUNITY, lambda b: b["fields"], "field_moved"),
        ("entity", OPPORTUNITY, lambda b: field(b, "source")["options"], "option_moved"),
        ("entity", QUOTE, lambda b: field(b, "lines")["fields"], "field_moved"),
        ("pipeline", SALES, lambda b: b["stages"], "stage_moved"),
        ("form", FORM, lambda b: b["sections"][1]["fields"], "form_field_moved"),
    ]))
    order = data.draw(st.permutations(range(len(items(body)))))
    new = edited(body, lambda b: items(b).__setitem__(slice(None), [items(b)[i] for i in order]))
    found = changes(kind, body, new)
    assert {c.code for c in found} <= {code}
    assert bool(found) == (list(order) != sorted(order))
    assert len(found) == len(order) - longest_increasing_run(order)  # as few moves as can be


def longest_increasing_run(seq: list[int]) -> int:
    best = [1] * len(seq)
    for i in range(len(seq)):
        best[i] += max((best[j] for j in range(i) if seq[j] < seq[i]), default=0)
    return max(best, default=0)
