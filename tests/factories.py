"""Definitions and users for tests, as plain functions with no shared mutable defaults."""
from __future__ import annotations

import re
from typing import Any

from formloom.builder import definitions
from formloom.platform import auth

PASSWORD = "correct-horse-42"


def company_body(**overrides: Any) -> dict:
    body = {"formloom": 1, "kind": "entity", "key": "company", "label": {"en": "Company", "zh-CN": "公司"},
            "title_field": "name",
            "fields": [{"key": "name", "type": "text", "label": "Company name", "required": True}]}
    body.update(overrides)
    return body


def deal_fields() -> list[dict]:
    """Sixteen fields, one of every type in the foundation's registry."""
    return [
        {"key": "name", "type": "text", "label": {"en": "Deal name", "zh-CN": "商机名称"}, "required": True,
         "max_length": 40},
        {"key": "notes", "type": "textarea", "label": "Notes", "max_length": 500},
        {"key": "seats", "type": "integer", "label": "Seats", "min": 1, "max": 10000},
        {"key": "weight", "type": "decimal", "label": "Weight", "precision": 3, "min": 0},
        {"key": "amount", "type": "currency", "label": "Amount", "min": 0, "currency": "CNY"},
        {"key": "discount", "type": "percent", "label": "Discount", "min": 0, "max": 100},
        {"key": "close_date", "type": "date", "label": "Expected close"},
        {"key": "meeting_at", "type": "datetime", "label": "Next meeting"},
        {"key": "strategic", "type": "boolean", "label": "Strategic"},
        {"key": "stage", "type": "select", "label": "Stage", "default": "lead",
         "options": [{"value": "lead", "label": "Lead", "color": "#90caf9"},
                     {"value": "proposal", "label": "Proposal"},
                     {"value": "won", "label": {"en": "Won", "zh-CN": "赢单"}}]},
        {"key": "products", "type": "multiselect", "label": "Products",
         "options": [{"value": "crm", "label": "CRM"}, {"value": "erp", "label": "ERP"},
                     {"value": "bi", "label": "BI"}]},
        {"key": "contact_email", "type": "email", "label": "Contact e-mail"},
        {"key": "contact_phone", "type": "phone", "label": "Contact phone"},
        {"key": "website", "type": "url", "label": "Website"},
        {"key": "owner", "type": "user", "label": "Owner"},
        {"key": "company", "type": "relation", "label": "Company", "target": "company"},
    ]


def deal_body(**overrides: Any) -> dict:
    body = {"formloom": 1, "kind": "entity", "key": "deal", "label": {"en": "Deal", "zh-CN": "商机"},
            "title_field": "name", "fields": deal_fields()}
    body.update(overrides)
    return body


def make_user(session, username: str = "rep", **overrides: Any):
    return auth.create_user(session, username, overrides.pop("password", PASSWORD), **overrides)


def make_sales_app(session, admin, key: str = "sales"):
    """An app with a company and a deal entity, both published."""
    app = definitions.create_app(session, admin, key, {"en": "Sales", "zh-CN": "销售"})
    definitions.save_and_publish(session, admin, app, company_body())
    definitions.save_and_publish(session, admin, app, deal_body())
    session.commit()
    return app


def csrf_token(client, url: str = "/login") -> str:
    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    token = csrf_token(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


# --- the form engine's showcase: customers and quotes -----------------------------------------

PROVINCES = [{"value": "gd", "label": {"en": "Guangdong", "zh-CN": "广东"}},
             {"value": "zj", "label": {"en": "Zhejiang", "zh-CN": "浙江"}}]
CITIES = [{"value": "sz", "label": {"en": "Shenzhen", "zh-CN": "深圳"}, "parent": "gd"},
          {"value": "gz", "label": {"en": "Guangzhou", "zh-CN": "广州"}, "parent": "gd"},
          {"value": "hz", "label": {"en": "Hangzhou", "zh-CN": "杭州"}, "parent": "zj"}]


def customer_body() -> dict:
    return {"formloom": 1, "kind": "entity", "key": "customer", "label": {"en": "Customer", "zh-CN": "客户"},
            "title_field": "name",
            "fields": [
                {"key": "name", "type": "text", "label": {"en": "Customer name", "zh-CN": "客户名称"},
                 "required": True},
                {"key": "phone", "type": "phone", "label": {"en": "Phone", "zh-CN": "电话"}, "unique": True},
                {"key": "address", "type": "address", "label": {"en": "Address", "zh-CN": "地址"}},
                {"key": "tier", "type": "select", "label": {"en": "Tier", "zh-CN": "客户等级"},
                 "options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]},
                {"key": "discount", "type": "percent", "label": {"en": "Standard discount", "zh-CN": "标准折扣"}},
            ]}


def quote_fields() -> list[dict]:
    return [
        {"key": "number", "type": "serial", "label": {"en": "Quote number", "zh-CN": "报价单号"},
         "pattern": "QT-{YYYY}{MM}-{0000}"},
        {"key": "title", "type": "text", "label": {"en": "Title", "zh-CN": "标题"}, "required": True},
        {"key": "customer", "type": "relation", "label": {"en": "Customer", "zh-CN": "客户"}, "target": "customer",
         "fill": {"contact_phone": "phone", "ship_to": "address"}},
        {"key": "contact_phone", "type": "phone", "label": {"en": "Contact phone", "zh-CN": "联系电话"}},
        {"key": "ship_to", "type": "address", "label": {"en": "Ship to", "zh-CN": "收货地址"}},
        {"key": "tier", "type": "lookup", "label": {"en": "Customer tier", "zh-CN": "客户等级"},
         "relation": "customer", "field": "tier"},
        {"key": "stage", "type": "select", "label": {"en": "Stage", "zh-CN": "阶段"}, "default": "draft",
         "options": [{"value": "draft", "label": {"en": "Draft", "zh-CN": "草稿"}},
                     {"value": "sent", "label": {"en": "Sent", "zh-CN": "已发送"}},
                     {"value": "lost", "label": {"en": "Lost", "zh-CN": "丢单"}}]},
        {"key": "lost_reason", "type": "textarea", "label": {"en": "Why was it lost?", "zh-CN": "丢单原因"},
         "required": True, "max_length": 500,
         "visible_when": {"field": "stage", "op": "eq", "value": "lost"}},
        {"key": "close_date", "type": "date", "label": {"en": "Expected close date", "zh-CN": "预计成交日期"},
         "required_when": {"field": "stage", "op": "eq", "value": "sent"}},
        {"key": "province", "type": "select", "label": {"en": "Province", "zh-CN": "省份"}, "options": PROVINCES},
        {"key": "city", "type": "select", "label": {"en": "City", "zh-CN": "城市"}, "options": CITIES,
         "filter_by": "province"},
        {"key": "lines", "type": "table", "label": {"en": "Line items", "zh-CN": "报价明细"}, "min_rows": 1,
         "max_rows": 50,
         "fields": [
             {"key": "product", "type": "text", "label": {"en": "Product", "zh-CN": "产品"}, "required": True},
             {"key": "qty", "type": "integer", "label": {"en": "Qty", "zh-CN": "数量"}, "min": 1, "required": True},
             {"key": "price", "type": "currency", "label": {"en": "Unit price", "zh-CN": "单价"}, "min": 0},
             {"key": "amount", "type": "formula", "label": {"en": "Amount", "zh-CN": "金额"},
              "expression": "qty * price", "currency": "CNY"}]},
        {"key": "total", "type": "formula", "label": {"en": "Total", "zh-CN": "合计"},
         "expression": "SUM(lines.qty * lines.price)", "currency": "CNY"},
        {"key": "discount", "type": "percent", "label": {"en": "Discount", "zh-CN": "折扣"}, "min": 0, "max": 100},
        {"key": "net", "type": "formula", "label": {"en": "Net total", "zh-CN": "折后合计"},
         "expression": "ROUND(total * (1 - discount / 100), 2)", "currency": "CNY"},
        {"key": "priority", "type": "rating", "label": {"en": "Priority", "zh-CN": "优先级"}},
        {"key": "call_at", "type": "time", "label": {"en": "Best time to call", "zh-CN": "方便致电时间"}},
        {"key": "effort", "type": "duration", "label": {"en": "Effort", "zh-CN": "工时"}},
        {"key": "labels", "type": "tags", "label": {"en": "Tags", "zh-CN": "标签"}},
        {"key": "site", "type": "geolocation", "label": {"en": "Site", "zh-CN": "现场位置"}},
        {"key": "owner", "type": "user", "label": {"en": "Owner", "zh-CN": "负责人"}, "default_from": "current_user"},
        {"key": "team", "type": "users", "label": {"en": "Team", "zh-CN": "协作成员"}},
        {"key": "quoted_on", "type": "date", "label": {"en": "Quoted on", "zh-CN": "报价日期"}, "default_from": "today"},
        {"key": "attachments", "type": "file", "label": {"en": "Attachments", "zh-CN": "附件"},
         "accept": [".pdf", ".txt", ".png"], "max_size_mb": 1},
        {"key": "photo", "type": "image", "label": {"en": "Photo", "zh-CN": "照片"}, "max_files": 2},
        {"key": "signature", "type": "signature", "label": {"en": "Customer signature", "zh-CN": "客户签名"}},
    ]


def quote_body(**overrides: Any) -> dict:
    body = {"formloom": 1, "kind": "entity", "key": "quote", "label": {"en": "Quote", "zh-CN": "报价单"},
            "title_field": "title", "fields": quote_fields(),
            "checks": [{"condition": {"any": [{"field": "close_date", "op": "empty"},
                                              {"field": "close_date", "op": "gt", "value": {"$today": 0}}]},
                        "field": "close_date",
                        "message": {"en": "Expected close date must be after today.",
                                    "zh-CN": "预计成交日期必须晚于今天。"}}]}
    body.update(overrides)
    return body


def quick_quote_form() -> dict:
    return {"formloom": 1, "kind": "form", "key": "quote_quick", "entity": "quote",
            "label": {"en": "Quick quote", "zh-CN": "快速报价"},
            "sections": [{"label": "Quick quote", "fields": [
                {"text": {"en": "Only the essentials; add details later.", "zh-CN": "只填必要信息，详情稍后补充。"}},
                "title", "customer", "contact_phone", "stage", "lost_reason", "close_date", "lines"]}]}


def make_quote_app(session, admin, key: str = "quotes"):
    """An app with customers and quotes that uses every form-engine feature, published."""
    app = definitions.create_app(session, admin, key, {"en": "Quotes", "zh-CN": "报价"})
    definitions.save_and_publish(session, admin, app, customer_body())
    definitions.save_and_publish(session, admin, app, quote_body())
    definitions.save_and_publish(session, admin, app, quick_quote_form())
    session.commit()
    return app


# --- pipelines -------------------------------------------------------------------------------

def pipeline_deal_body() -> dict:
    """A deal entity with a stage field for the pipeline tests."""
    return {"formloom": 1, "kind": "entity", "key": "deal", "label": {"en": "Deal", "zh-CN": "商机"},
            "title_field": "name", "owner_field": "owner",
            "fields": [
                {"key": "name", "type": "text", "label": "Deal name", "required": True},
                {"key": "company", "type": "relation", "label": "Customer", "target": "company"},
                {"key": "amount", "type": "currency", "label": {"en": "Amount", "zh-CN": "金额"}, "min": 0},
                {"key": "discount", "type": "percent", "label": "Discount", "min": 0, "max": 100},
                {"key": "close_date", "type": "date", "label": "Expected close"},
                {"key": "stage", "type": "select", "label": "Stage", "default": "lead", "options": [
                    {"value": key, "label": key.replace("_", " ").capitalize()}
                    for key in ("lead", "qualified", "proposal", "negotiation", "won", "lost", "archived")]},
                {"key": "lost_reason", "type": "textarea", "label": "Lost reason"},
                {"key": "owner", "type": "user", "label": "Owner", "default_from": "current_user"},
            ]}


def pipeline_body(**overrides: Any) -> dict:
    """The deal pipeline: gates, a checklist, a discount approval and a lost reason."""
    body = {
        "formloom": 1, "kind": "pipeline", "key": "deals", "label": {"en": "Deals", "zh-CN": "商机流程"},
        "entity": "deal", "stage_field": "stage", "amount_field": "amount", "date_field": "close_date",
        "card_fields": ["company", "close_date"],
        "stages": [
            {"key": "lead", "label": "Lead", "color": "#90a4ae", "probability": 10},
            {"key": "qualified", "label": "Qualified", "color": "#42a5f5", "probability": 25},
            {"key": "proposal", "label": {"en": "Proposal", "zh-CN": "方案"}, "color": "#5c6bc0", "probability": 50,
             "gate": {"required": ["amount", "company"]}},
            {"key": "negotiation", "label": "Negotiation", "color": "#ffa000", "probability": 70,
             "gate": {"conditions": [{"condition": {"field": "close_date", "op": "not_empty"},
                                      "message": "Set the expected close date."}]},
             "approval": {"label": "Discount approval", "when": {"field": "discount", "op": "gt", "value": 20},
                          "approvers": {"role": "manager"}, "mode": "any", "self_approval": False}},
            {"key": "won", "label": "Won", "color": "#2e7d32", "probability": 100, "outcome": "won",
             "gate": {"checklist": [{"key": "contract_signed", "label": "Contract signed"}]}},
            {"key": "lost", "label": "Lost", "color": "#c62828", "probability": 0, "outcome": "lost",
             "gate": {"required": ["lost_reason"]}},
        ],
        "transitions": [
            {"from": "lead", "to": "qualified"},
            {"from": ["lead", "qualified"], "to": "proposal"},
            {"from": "proposal", "to": "negotiation"},
            {"from": "negotiation", "to": "proposal"},
            {"from": "negotiation", "to": "won"},
            {"from": "*", "to": "lost"},
            {"from": "lost", "to": "lead"},
        ],
    }
    body.update(overrides)
    return body


def make_pipeline_app(session, admin, key: str = "pipes"):
    """An app with companies, deals and the deal pipeline, all published."""
    app = definitions.create_app(session, admin, key, {"en": "Pipes", "zh-CN": "流程"})
    definitions.save_and_publish(session, admin, app, company_body())
    definitions.save_and_publish(session, admin, app, pipeline_deal_body())
    definitions.save_and_publish(session, admin, app, pipeline_body())
    session.commit()
    return app


# --- imports: a plain entity with a unique e-mail, a number and a select ------------------------

def person_body() -> dict:
    return {"formloom": 1, "kind": "entity", "key": "person", "label": {"en": "Person", "zh-CN": "人员"},
            "title_field": "name",
            "fields": [
                {"key": "name", "type": "text", "label": {"en": "Name", "zh-CN": "姓名"}, "required": True},
                {"key": "email", "type": "email", "label": {"en": "E-mail", "zh-CN": "邮箱"}, "unique": True},
                {"key": "age", "type": "integer", "label": {"en": "Age", "zh-CN": "年龄"}, "min": 0},
                {"key": "code", "type": "text", "label": {"en": "Code", "zh-CN": "编号"}, "unique": True},
                {"key": "joined", "type": "date", "label": {"en": "Joined", "zh-CN": "加入日期"}},
                {"key": "tier", "type": "select", "label": {"en": "Tier", "zh-CN": "等级"},
                 "options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]},
            ]}


def make_people_app(session, admin, key: str = "people"):
    """An app with one entity, person, published."""
    app = definitions.create_app(session, admin, key, {"en": "People", "zh-CN": "人员"})
    definitions.save_and_publish(session, admin, app, person_body())
    session.commit()
    return app
