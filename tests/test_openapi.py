"""The OpenAPI document (/api/v1/openapi.json) and the reference page (/api/docs)."""
from __future__ import annotations

import re

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from formloom.builder import definitions
from formloom.platform import auth
from formloom.runtime import catalog
from formloom.templates_library import install
from formloom.templates_library.demo import load_demo_data
from tests.conftest import bearer
from tests.factories import company_body, login, make_pipeline_app, make_quote_app, make_user

METHODS = ("get", "put", "post", "patch", "delete")


def fetch(client, headers, **params) -> dict:
    response = client.get("/api/v1/openapi.json", headers=headers, query_string=params)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def operations(document: dict):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def assert_valid(document: dict) -> None:
    errors = [e.message for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


@pytest.fixture
def crm(db, admin):
    app = install(db, admin)
    db.commit()
    return app


# --- the document ---------------------------------------------------------------------------

def test_crm_document_is_valid_openapi_3_1(client, db, admin, crm, admin_headers):
    load_demo_data(db, admin, crm, scale=0.01)
    db.commit()
    document = fetch(client, admin_headers)
    assert document["openapi"] == "3.1.0"
    assert document["jsonSchemaDialect"] == "https://json-schema.org/draft/2020-12/schema"
    assert_valid(document)
    for entity in ("customer", "contact", "opportunity", "follow_up"):
        assert f"/api/v1/apps/crm/records/{entity}" in document["paths"]


def test_factory_apps_documents_are_valid(client, db, admin, sales, admin_headers):
    make_quote_app(db, admin)
    make_pipeline_app(db, admin)
    document = fetch(client, admin_headers)
    assert_valid(document)
    assert {"/api/v1/apps/sales/records/deal", "/api/v1/apps/quotes/records/quote",
            "/api/v1/apps/pipes/records/deal/{id}/transition"} <= set(document["paths"])
    assert_valid(fetch(client, admin_headers, locale="zh-CN"))


def test_operation_ids_are_unique_and_the_same_on_every_fetch(client, crm, sales, admin_headers):
    first = [op["operationId"] for _, _, op in operations(fetch(client, admin_headers))]
    assert len(first) == len(set(first))
    assert first == [op["operationId"] for _, _, op in operations(fetch(client, admin_headers))]
    assert {"records.crm.customer.list", "records.crm.opportunity.transition", "records.sales.deal.update",
            "apps.list", "definitions.publish"} <= set(first)


def test_record_schemas_come_from_the_compiled_entity(client, db, crm, admin_headers):
    schemas = fetch(client, admin_headers)["components"]["schemas"]
    compiled = catalog.entity(db, crm, "opportunity")
    data = schemas["crm.opportunity.Data"]
    assert set(data["properties"]) == {f.key for f in compiled.fields}
    amount = data["properties"]["amount"]
    assert amount["pattern"] == compiled.by_key["amount"].schema["pattern"]
    assert amount["x-formloom-type"] == "currency" and amount["title"] == "Amount"
    assert "decimalRange" not in amount  # the compiler's own keyword, shown as an extension
    assert data["properties"]["stage"]["enum"] == compiled.by_key["stage"].schema["enum"]
    create = schemas["crm.opportunity.Create"]
    assert create["additionalProperties"] is False
    assert set(create["required"]) <= set(compiled.schema["required"]) and "name" in create["required"]
    assert "required" not in schemas["crm.opportunity.Patch"]
    assert schemas["crm.opportunity.Record"]["properties"]["data"] == {"$ref": "#/components/schemas/crm.opportunity.Data"}


def test_computed_fields_are_read_only_and_absent_from_create(client, db, admin, admin_headers):
    make_quote_app(db, admin)
    schemas = fetch(client, admin_headers)["components"]["schemas"]
    for key in ("number", "total", "tier"):  # serial, formula, lookup
        assert schemas["quotes.quote.Data"]["properties"][key]["readOnly"] is True
        assert key not in schemas["quotes.quote.Create"]["properties"]
        assert key not in schemas["quotes.quote.Patch"]["properties"]
    # Defaulted and conditionally required fields need not be sent.
    assert schemas["quotes.quote.Create"]["required"] == ["title"]  # lost_reason: only when lost
    # File fields take the ids of uploaded files and answer file objects.
    assert schemas["quotes.quote.Data"]["properties"]["photo"]["items"]["required"] == ["id"]
    assert {"type": "integer", "minimum": 1, "maximum": 2**31 - 1} in \
        schemas["quotes.quote.Create"]["properties"]["photo"]["items"]["anyOf"]


def test_list_parameters_follow_the_field_types(client, sales, admin_headers):
    listing = fetch(client, admin_headers)["paths"]["/api/v1/apps/sales/records/deal"]["get"]
    params = {p["name"]: p for p in listing["parameters"]}
    assert {"q", "sort", "limit", "cursor", "deleted", "locale"} <= set(params)
    assert {"-amount", "amount", "name", "-updated_at"} <= set(params["sort"]["schema"]["enum"])
    assert "notes" not in params["sort"]["schema"]["enum"]  # textarea: not sortable
    assert "f.notes.contains" in params and "f.notes" not in params  # textarea: contains only
    assert params["f.stage"]["schema"] == {"type": "string", "enum": ["lead", "proposal", "won"]}
    assert params["f.stage.in"]["schema"]["items"]["enum"] == ["lead", "proposal", "won"]
    assert (params["f.stage.in"]["style"], params["f.stage.in"]["explode"]) == ("form", False)
    assert params["f.products.contains"]["schema"]["enum"] == ["crm", "erp", "bi"]
    assert {"f.amount", "f.amount.gte", "f.amount.lte", "f.close_date.gte", "f.strategic"} <= set(params)
    assert "f.meeting_at" not in params and "f.meeting_at.gte" in params  # datetimes: ranges only
    assert params["limit"]["schema"]["maximum"] == 200


def test_transition_only_for_entities_with_a_pipeline(client, crm, admin_headers):
    paths = fetch(client, admin_headers)["paths"]
    transition = paths["/api/v1/apps/crm/records/opportunity/{id}/transition"]["post"]
    body = transition["requestBody"]["content"]["application/json"]["schema"]
    assert "won" in body["properties"]["to"]["enum"]
    assert {"200", "202", "422"} <= set(transition["responses"])
    assert "/api/v1/apps/crm/records/customer/{id}/transition" not in paths


def test_every_error_response_is_the_shared_error(client, crm, admin_headers):
    document = fetch(client, admin_headers)
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["properties"]["error"]["required"] == ["code", "message"]
    for path, method, op in operations(document):
        if not path.startswith("/api/"):
            continue
        assert "401" in op["responses"], (method, path)
        for status, response in op["responses"].items():
            if status.startswith("4") and "$ref" not in response:
                # The try endpoint's 422 is its refused values, or the shared error.
                assert {"$ref": "#/components/schemas/Error"} in \
                    response["content"]["application/json"]["schema"]["anyOf"], (method, path, status)
            elif status.startswith("4"):
                assert response["$ref"] == f"#/components/responses/{status}"
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"][
            "description"]}
    assert document["security"] == [{"bearer": []}]


def test_labels_follow_the_locale(client, crm, admin_headers):
    schemas = fetch(client, admin_headers, locale="zh-CN")["components"]["schemas"]
    assert schemas["crm.customer.Data"]["title"] == "客户"
    assert schemas["crm.customer.Data"]["properties"]["name"]["title"] == "客户名称"


def test_a_member_sees_only_their_apps(client, db, admin, sales, rep_headers, crm):
    document = fetch(client, rep_headers)
    assert any(p.startswith("/api/v1/apps/sales/records/") for p in document["paths"])
    assert not any(p.startswith("/api/v1/apps/crm/") for p in document["paths"])
    assert [a["key"] for a in document["info"]["x-formloom-apps"]] == ["sales"]
    app_param = document["paths"]["/api/v1/apps/{app}"]["parameters"][0]
    assert app_param["schema"] == {"enum": ["sales"]}


def test_the_document_needs_authentication(client, sales):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_the_document_changes_with_a_publish(client, db, admin, sales, admin_headers):
    definitions.save_and_publish(db, admin, sales, company_body(fields=[
        {"key": "name", "type": "text", "label": "Company name", "required": True},
        {"key": "vat_id", "type": "text", "label": "VAT id"}]))
    db.commit()
    data = fetch(client, admin_headers)["components"]["schemas"]["sales.company.Data"]
    assert "vat_id" in data["properties"]


def test_download_link_answers_a_file(client, sales, admin_headers):
    response = client.get("/api/v1/openapi.json?download=1", headers=admin_headers)
    assert response.headers["Content-Disposition"] == 'attachment; filename="formloom-openapi.json"'


# --- the reference page ----------------------------------------------------------------------

def test_reference_page_lists_operations_by_app_and_entity(client, db, admin, crm):
    login(client, "admin")
    page = client.get("/api/docs?lang=en").get_data(as_text=True)
    assert '<a class="api-link" href="/api/docs">API</a>' in page  # in the top bar
    assert "API reference" in page
    assert 'id="tag-crm.opportunity"' in page and 'id="op-records.crm.opportunity.transition"' in page
    assert "/api/v1/apps/crm/records/customer/{id}/history" in page
    assert 'href="/api/v1/openapi.json?locale=en&amp;download=1"' in page
    # The opportunity fields with their labels and required marks.
    section = page.split('id="schema-crm.opportunity.Data"', 1)[1].split("</article>", 1)[0]
    assert re.search(r'<code class="api-key">name</code> <span class="req"', section)
    assert "Expected close" in section and "currency" in section
    assert "f.amount.gte" in page


def test_reference_page_in_chinese(client, crm, admin):
    login(client, "admin")
    page = client.get("/api/docs?lang=zh-CN").get_data(as_text=True)
    assert "API 参考" in page and "客户名称" in page


def test_reference_page_escapes_admin_labels(client, db, admin, sales):
    definitions.save_and_publish(db, admin, sales, company_body(
        label="<script>alert('entity')</script>",
        fields=[{"key": "name", "type": "text", "label": '<img src=x onerror="alert(1)">', "required": True,
                 "help": "<b>bold</b>"}]))
    db.commit()
    login(client, "admin")
    page = client.get("/api/docs").get_data(as_text=True)
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&#39;entity&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


def test_reference_page_sends_visitors_to_log_in(client, sales):
    response = client.get("/api/docs")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_reference_page_works_with_a_token(client, db, sales, rep):
    response = client.get("/api/docs", headers=bearer(db, rep))
    assert response.status_code == 200
    assert "/api/v1/apps/sales/records/deal" in response.get_data(as_text=True)


def test_outsider_reference_page_has_no_app_sections(client, db, sales):
    make_user(db, "visitor")
    db.commit()
    login(client, "visitor")
    page = client.get("/api/docs").get_data(as_text=True)
    assert "/api/v1/apps/sales/records" not in page and "/api/v1/apps/{app}" in page


def test_members_added_later_see_the_app(client, db, sales):
    visitor = make_user(db, "visitor")
    auth.grant_app(db, visitor, sales)
    db.commit()
    assert "/api/v1/apps/sales/records/deal" in fetch(client, bearer(db, visitor))["paths"]
