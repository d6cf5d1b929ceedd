"""The admin audit page and API: what admins see, filters, paging, and who may look."""
from __future__ import annotations

import re

from formloom.platform import audit
from formloom.platform.audit import AuditKind
from tests.factories import PASSWORD, csrf_token, login


def rows(html: str) -> list[tuple[int, str]]:
    """The page's entries as (id, kind), top to bottom."""
    return [(int(i), k) for i, k in re.findall(r'<tr data-entry="(\d+)" data-kind="([a-z_]+)">', html)]


def fail_login(client, username: str) -> None:
    client.post("/login", data={"username": username, "password": "not-it", "csrf_token": csrf_token(client)},
                environ_base={"REMOTE_ADDR": "203.0.113.5"})


def test_admins_see_who_did_what_newest_first(app, client, db, admin, rep, sales):
    fail_login(app.test_client(), "rep")
    login(client, "admin")
    page = client.get("/admin/audit")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    found = rows(html)
    assert [kind for _, kind in found][:2] == ["login", "login_failed"]
    assert [i for i, _ in found] == sorted((i for i, _ in found), reverse=True)
    assert "definition_published" in {kind for _, kind in found}
    failed = html[html.index(f'data-entry="{found[1][0]}"'):]
    failed = failed[:failed.index("</tr>")]
    assert "Login failed" in failed and ">rep<" in failed and "203.0.113.5" in failed
    published = html[html.index('data-kind="definition_published"'):]
    published = published[:published.index("</tr>")]
    assert "Ada Admin" in published and "Sales" in published and "entity/deal" in published


def test_the_page_filters_by_kind_and_app_and_pages_back(client, db, admin, sales):
    for n in range(105):
        audit.record(db, AuditKind.USER_CHANGED, admin, subject=f"user-{n}")
    audit.record(db, AuditKind.MEMBER_CHANGED, admin, app=sales, subject="rep", detail={"role": "manager"})
    db.commit()
    login(client, "admin")
    first = client.get("/admin/audit?kind=user_changed").get_data(as_text=True)
    assert len(rows(first)) == 100 and {k for _, k in rows(first)} == {"user_changed"}
    older = re.search(r'href="(/admin/audit\?[^"]*before=\d+[^"]*)"', first).group(1).replace("&amp;", "&")
    rest = client.get(older).get_data(as_text=True)
    assert len(rows(rest)) == 5 and "user-0<" in rest and "Older" not in rest
    assert {i for i, _ in rows(first)}.isdisjoint(i for i, _ in rows(rest))
    by_app = client.get("/admin/audit?app=sales&kind=member_changed").get_data(as_text=True)
    assert [k for _, k in rows(by_app)] == ["member_changed"] and "role: manager" in by_app


def test_the_api_gives_the_same_entries_as_json(client, db, admin, admin_headers, sales):
    for n in range(3):
        fail_login(client, f"ghost-{n}")
    first = client.get("/api/v1/audit?kind=login_failed&limit=2", headers=admin_headers)
    assert first.status_code == 200
    body = first.get_json()
    assert [e["subject"] for e in body["entries"]] == ["ghost-2", "ghost-1"]
    entry = body["entries"][0]
    assert (entry["kind"], entry["actor"], entry["app"], entry["ip"]) == ("login_failed", None, None, "203.0.113.5")
    assert entry["at"].endswith("Z")
    rest = client.get(f"/api/v1/audit?kind=login_failed&before={body['next_before']}", headers=admin_headers)
    assert [e["subject"] for e in rest.get_json()["entries"]] == ["ghost-0"]
    assert rest.get_json()["next_before"] is None
    published = client.get("/api/v1/audit?app=sales&kind=definition_published", headers=admin_headers).get_json()
    assert {e["app"] for e in published["entries"]} == {"sales"}
    assert published["entries"][0]["actor"]["username"] == "admin"


def test_wrong_filters_are_named(client, admin_headers):
    kind = client.get("/api/v1/audit?kind=coffee", headers=admin_headers)
    assert kind.status_code == 400 and "Parameter 'kind' must be one of login," in kind.get_json()["error"]["message"]
    app = client.get("/api/v1/audit?app=nowhere", headers=admin_headers)
    assert app.status_code == 400 and "no app 'nowhere'" in app.get_json()["error"]["message"]
    limit = client.get("/api/v1/audit?limit=0", headers=admin_headers)
    assert limit.status_code == 400 and "'limit'" in limit.get_json()["error"]["message"]


def test_only_admins_may_read_the_audit(client, db, rep, rep_headers):
    assert client.get("/api/v1/audit").status_code == 401
    assert client.get("/admin/audit").status_code == 302
    assert client.get("/api/v1/audit", headers=rep_headers).status_code == 403
    login(client, "rep")
    assert client.get("/admin/audit").status_code == 403
    assert "/admin/audit" not in client.get("/account/tokens").get_data(as_text=True)


def test_the_page_speaks_chinese(client, db, admin, rep):
    client.post("/login", data={"username": "rep", "password": PASSWORD, "csrf_token": csrf_token(client)})
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account/tokens")})
    login(client, "admin")
    html = client.get("/admin/audit?lang=zh-CN").get_data(as_text=True)
    assert "<h1>审计日志</h1>" in html and "登录" in html and "退出" in html and "全部事件" in html
    assert 'href="/admin/audit">审计日志</a>' in html
