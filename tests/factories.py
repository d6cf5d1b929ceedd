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
