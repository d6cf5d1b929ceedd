"""Files: upload rules, storage on disk, download headers, permissions, signatures, CSRF."""
from __future__ import annotations

import base64
import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from formloom.platform.errors import Forbidden, NotFound
from formloom.platform.models import StoredFile
from formloom.platform.storage import LocalStorage, storage_for
from formloom.runtime import files
from formloom.runtime.files import FileRejected, FileRules, sanitize_filename
from tests.factories import csrf_token, login, make_sales_app

UPLOAD = "/api/v1/apps/sales/files"
PDF = b"%PDF-1.7\n" + b"quote body " * 100
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64


def png(width: int = 1, height: int = 1) -> bytes:
    """A real PNG of white pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + b"\xff" * (3 * width) for _ in range(height))
    return (files.PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def post_file(client, headers, name: str, data: bytes, query: str = "", url: str = UPLOAD, **extra):
    return client.post(f"{url}{query}", data={"file": (io.BytesIO(data), name), **extra},
                       content_type="multipart/form-data", headers=headers)


def blobs(app) -> list[Path]:
    root = Path(app.instance_path) / "files"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def file_rows(db) -> int:
    db.rollback()  # see the latest committed state
    return db.scalar(select(func.count()).select_from(StoredFile))


def assert_nothing_stored(app, db) -> None:
    assert file_rows(db) == 0
    assert blobs(app) == []


def error_of(response, status: int = 422) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()["error"]


# --- upload and download ---------------------------------------------------------------------

def test_upload_then_download_returns_the_same_bytes_with_safe_headers(app, db, client, rep, rep_headers):
    created = post_file(client, rep_headers, "quote.pdf", PDF)
    assert created.status_code == 201
    body = created.get_json()
    assert body == {"id": body["id"], "name": "quote.pdf", "size": len(PDF), "type": "application/pdf",
                    "url": f"/apps/sales/files/{body['id']}/quote.pdf"}
    row = db.get(StoredFile, body["id"])
    assert row.created_by == rep.id and row.storage_key == row.sha256 and len(blobs(app)) == 1

    got = client.get(body["url"], headers=rep_headers)
    assert got.status_code == 200
    assert got.data == PDF
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Length"] == str(len(PDF))
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert "quote.pdf" in got.headers["Content-Disposition"]
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert got.headers["Cache-Control"].startswith("private")
    again = client.get(body["url"], headers={**rep_headers, "If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304


def test_images_are_shown_inline_and_other_files_downloaded(client, rep_headers):
    image = post_file(client, rep_headers, "logo.png", png(4, 4)).get_json()
    assert image["type"] == "image/png"
    shown = client.get(image["url"], headers=rep_headers)
    assert shown.headers["Content-Disposition"].startswith("inline;")
    assert shown.headers["Content-Type"] == "image/png" and shown.data == png(4, 4)
    page = post_file(client, rep_headers, "page.html", b"<script>alert(1)</script>").get_json()
    assert page["type"] == "text/html"
    served = client.get(page["url"], headers=rep_headers)
    assert served.headers["Content-Disposition"].startswith("attachment;")
    assert served.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_the_clients_content_type_is_not_trusted(client, rep_headers):
    claimed = client.post(UPLOAD, data={"file": (io.BytesIO(b"<html>hi</html>"), "note.txt", "image/png")},
                          content_type="multipart/form-data", headers=rep_headers).get_json()
    assert claimed["type"] == "text/plain"
    jpeg_named_png = post_file(client, rep_headers, "photo.png", JPEG).get_json()
    assert jpeg_named_png["type"] == "image/jpeg"
    text_named_png = post_file(client, rep_headers, "fake.png", b"not an image").get_json()
    assert text_named_png["type"] == "application/octet-stream"
    assert client.get(text_named_png["url"], headers=rep_headers).headers["Content-Disposition"].startswith(
        "attachment;")


def test_the_same_content_is_stored_once(app, db, client, rep_headers):
    first = post_file(client, rep_headers, "a.pdf", PDF).get_json()
    second = post_file(client, rep_headers, "b.pdf", PDF).get_json()
    assert first["id"] != second["id"]
    assert file_rows(db) == 2 and len(blobs(app)) == 1


# --- who may upload and download -------------------------------------------------------------

def test_outsider_can_neither_upload_nor_download(app, db, client, rep_headers, outsider_headers):
    refused = post_file(client, outsider_headers, "quote.pdf", PDF)
    assert error_of(refused, 403)["code"] == "forbidden"
    assert file_rows(db) == 0
    url = post_file(client, rep_headers, "quote.pdf", PDF).get_json()["url"]
    assert client.get(url, headers=outsider_headers).status_code in (403, 404)


def test_anonymous_requests_are_refused(app, db, client, rep_headers):
    url = post_file(client, rep_headers, "quote.pdf", PDF).get_json()["url"]
    assert client.get(url).status_code == 302  # to the login page
    refused = post_file(client, {}, "other.pdf", b"other")  # the CSRF check answers first
    assert refused.status_code in (400, 401)
    bad_token = post_file(client, {"Authorization": "Bearer flm_wrong"}, "other.pdf", b"other")
    assert error_of(bad_token, 401)["code"] == "unauthorized"
    assert file_rows(db) == 1 and len(blobs(app)) == 1


def test_a_file_is_only_reachable_through_its_own_app(db, client, admin, admin_headers, sales):
    make_sales_app(db, admin, key="other")
    created = post_file(client, admin_headers, "quote.pdf", PDF).get_json()
    assert client.get(created["url"], headers=admin_headers).status_code == 200
    assert client.get(f"/apps/other/files/{created['id']}/quote.pdf", headers=admin_headers).status_code == 404
    assert client.get(f"/apps/sales/files/{created['id'] + 1}/quote.pdf", headers=admin_headers).status_code == 404


def test_service_get_file_and_existing_files(app, db, admin, rep, outsider, sales):
    other = make_sales_app(db, admin, key="other")
    storage = storage_for(app)
    stored = files.save_upload(db, storage, sales, rep, "quote.pdf", PDF, "application/pdf", FileRules())
    elsewhere = files.save_upload(db, storage, other, admin, "x.pdf", PDF, None, FileRules())
    db.commit()
    assert files.get_file(db, rep, sales, stored.id) is stored
    with pytest.raises(NotFound):
        files.get_file(db, admin, sales, elsewhere.id)
    with pytest.raises(Forbidden):
        files.get_file(db, outsider, sales, stored.id)
    with pytest.raises(Forbidden):
        files.save_upload(db, storage, sales, outsider, "quote.pdf", PDF, None, FileRules())
    assert files.file_value(stored) == {"id": stored.id, "name": "quote.pdf", "size": len(PDF),
                                        "type": "application/pdf"}
    found = files.existing_files(db, sales.id, [stored.id, elsewhere.id, 9999, "1", True])
    assert found == {stored.id: stored}
    assert files.existing_files(db, sales.id, []) == {}


# --- rejections ------------------------------------------------------------------------------

def test_too_big_is_refused_with_sizes_and_nothing_stored(app, db, client, rep_headers):
    data = b"x" * int(1.5 * files.MB)
    error = error_of(post_file(client, rep_headers, "big.pdf", data, "?max_mb=1"))
    assert error["code"] == "file_rejected"
    assert error["message"] == "big.pdf is 1.5 MB; the limit is 1 MB."
    assert error["fields"] == {"file": [error["message"]]}
    assert_nothing_stored(app, db)


def test_the_limit_cannot_be_raised_by_the_client(client, rep_headers):
    error = error_of(post_file(client, rep_headers, "big.pdf", PDF, "?max_mb=500"), 400)
    assert "max_mb" in error["message"] and "between 1 and 20" in error["message"]


def test_size_message_at_the_default_limit(app, db, rep, sales):
    with pytest.raises(FileRejected) as caught:
        files.save_upload(db, storage_for(app), sales, rep, "x.pdf", b"x" * int(25.3 * files.MB), None,
                          FileRules())
    assert caught.value.message == "x.pdf is 25.3 MB; the limit is 20 MB."
    with pytest.raises(FileRejected, match=r"x.pdf is 20.1 MB; the limit is 20 MB\."):
        files.save_upload(db, storage_for(app), sales, rep, "x.pdf", b"x" * (20 * files.MB + 1), None,
                          FileRules())
    assert_nothing_stored(app, db)


def test_wrong_type_is_refused_naming_the_accepted_types(app, db, client, rep_headers):
    error = error_of(post_file(client, rep_headers, "x.exe", b"MZ\x90\x00", "?accept=.pdf,.docx"))
    assert error["message"] == "x.exe is not an accepted type; accepted: .pdf, .docx."
    assert_nothing_stored(app, db)
    assert post_file(client, rep_headers, "Quote.PDF", PDF, "?accept=.pdf,.docx").status_code == 201


def test_accept_by_mime_type(app, db, rep, sales):
    storage = storage_for(app)
    rules = FileRules(accept=("image/*", "application/pdf"))
    assert files.save_upload(db, storage, sales, rep, "a.jpg", JPEG, None, rules).content_type == "image/jpeg"
    assert files.save_upload(db, storage, sales, rep, "a.pdf", PDF, None, rules).content_type == "application/pdf"
    with pytest.raises(FileRejected, match=r"a.txt is not an accepted type; accepted: image/\*, application/pdf\."):
        files.save_upload(db, storage, sales, rep, "a.txt", b"text", "image/png", rules)


def test_fake_image_is_refused_when_only_images_are_allowed(app, db, client, rep_headers):
    error = error_of(post_file(client, rep_headers, "photo.png", b"just some text", "?images_only=1"))
    assert error["message"] == "photo.png is not a PNG, JPEG, GIF or WebP image; choose an image file."
    assert_nothing_stored(app, db)
    for name, data, kind in [("a.png", png(), "image/png"), ("b.jpg", JPEG, "image/jpeg"),
                             ("c.gif", b"GIF89a" + b"\x00" * 20, "image/gif"),
                             ("d.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8, "image/webp")]:
        accepted = post_file(client, rep_headers, name, data, "?images_only=1")
        assert accepted.status_code == 201 and accepted.get_json()["type"] == kind


def test_empty_file_and_missing_field_are_refused(app, db, client, rep_headers):
    assert error_of(post_file(client, rep_headers, "empty.pdf", b""))["message"] == (
        "empty.pdf is empty; choose a file that has content.")
    missing = error_of(client.post(UPLOAD, data={"other": "x"}, content_type="multipart/form-data",
                                   headers=rep_headers), 400)
    assert "field named 'file'" in missing["message"]
    assert_nothing_stored(app, db)


# --- signatures ------------------------------------------------------------------------------

def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def test_signature_round_trip(client, rep_headers):
    drawn = png(40, 10)
    created = client.post(UPLOAD, data={"signature": data_url(drawn)}, headers=rep_headers)
    assert created.status_code == 201
    body = created.get_json()
    assert body["name"] == "signature.png" and body["type"] == "image/png" and body["size"] == len(drawn)
    shown = client.get(body["url"], headers=rep_headers)
    assert shown.data == drawn and shown.headers["Content-Disposition"].startswith("inline;")
    as_json = client.post(UPLOAD, json={"signature": data_url(drawn)}, headers=rep_headers)
    assert as_json.status_code == 201


@pytest.mark.parametrize("value, message", [
    ("data:image/jpeg;base64," + base64.b64encode(JPEG).decode(), "must be a PNG image sent as a"),
    ("https://example.com/sig.png", "must be a PNG image sent as a"),
    ("data:image/png;base64,@@@not-base64@@@", "not valid base64"),
    ("data:image/png;base64,", "empty"),
    (data_url(b"GIF89a" + b"\x00" * 10), "not a PNG image"),
    (data_url(files.PNG_SIGNATURE + b"\x00" * files.SIGNATURE_MAX_BYTES), "larger than 1 MB"),
])
def test_signature_rejections(app, db, client, rep_headers, value, message):
    error = error_of(client.post(UPLOAD, data={"signature": value}, headers=rep_headers))
    assert message in error["message"]
    assert error["fields"] == {"signature": [error["message"]]}
    assert_nothing_stored(app, db)


def test_signature_close_to_the_limit_passes_the_form_size_check(client, rep):
    """A signature bigger than the default limit for a multipart text field (500 kB), CSRF-checked."""
    login(client, "rep")
    token = csrf_token(client, "/apps/sales/")
    large = files.PNG_SIGNATURE + os.urandom(700 * 1024)
    created = client.post(UPLOAD, data={"signature": data_url(large)}, headers={"X-CSRFToken": token},
                          content_type="multipart/form-data")  # as a browser's FormData sends it
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["size"] == len(large)


# --- names and storage -----------------------------------------------------------------------

@pytest.mark.parametrize("raw, clean", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\Windows\\system32\\evil.exe", "evil.exe"),
    ("/abs/path/report.pdf", "report.pdf"),
    ("..", "file"),
    ("", "file"),
    ("  .hidden  ", "hidden"),
    ("a\x00b\nc\r\x1b.txt", "abc.txt"),
    ("bidi\u202egpj.exe", "bidigpj.exe"),
    ('what?<is>:"this"|*.pdf', "what__is___this___.pdf"),
    ("报价单 2026年11月.pdf", "报价单 2026年11月.pdf"),
    ("x" * 300 + ".pdf", "x" * 251 + ".pdf"),
    ("y" * 300, "y" * 255),
])
def test_sanitize_filename(raw, clean):
    assert sanitize_filename(raw) == clean
    assert len(sanitize_filename(raw)) <= 255


def test_path_traversal_names_are_stored_sanitised_and_inside_the_storage(app, client, rep_headers):
    created = post_file(client, rep_headers, "../../../secret/../quote.pdf", PDF).get_json()
    assert created["name"] == "quote.pdf"
    root = (Path(app.instance_path) / "files").resolve()
    (blob,) = blobs(app)
    assert blob.resolve().is_relative_to(root)
    assert len(blob.name) == 64 and all(c in "0123456789abcdef" for c in blob.name)
    # The name in a download link is decoration: the id alone chooses the (authorised) file.
    odd = client.get(f"/apps/sales/files/{created['id']}/../../etc/passwd", headers=rep_headers)
    assert odd.data == PDF and "quote.pdf" in odd.headers["Content-Disposition"]


def test_local_storage_round_trip_and_key_checks(tmp_path):
    storage = LocalStorage(tmp_path / "files")
    key = storage.put(b"hello")
    assert storage.exists(key)
    assert storage.put(b"hello") == key
    with storage.open(key) as stream:
        assert stream.read() == b"hello"
    assert storage.path(key) == tmp_path / "files" / key[:2] / key[2:4] / key
    assert not [p for p in (tmp_path / "files").rglob(".upload-*")]
    for bad in ["../../etc/passwd", key.upper(), key[:-1], key + "0", "", "a" * 63 + "/"]:
        with pytest.raises(ValueError):
            storage.path(bad)
    storage.delete(key)
    assert not storage.exists(key)
    storage.delete(key)  # deleting twice is fine


def test_files_dir_setting_overrides_the_instance_folder(app, tmp_path):
    assert storage_for(app).root == Path(app.instance_path) / "files"
    app.config["FILES_DIR"] = str(tmp_path / "elsewhere")
    assert storage_for(app).root == tmp_path / "elsewhere"


def test_missing_content_is_a_clear_404(app, client, rep_headers):
    created = post_file(client, rep_headers, "quote.pdf", PDF).get_json()
    for blob in blobs(app):
        blob.unlink()
    missing = client.get(created["url"], headers=rep_headers)
    assert missing.status_code == 404 and "missing" in missing.get_data(as_text=True)


# --- API and cookie sessions -----------------------------------------------------------------

def test_bearer_upload_needs_no_csrf_token(client, rep_headers):
    assert post_file(client, rep_headers, "quote.pdf", PDF).status_code == 201


def test_cookie_upload_needs_the_csrf_token(app, db, client, rep):
    login(client, "rep")
    refused = post_file(client, {}, "quote.pdf", PDF)
    assert error_of(refused, 400)["code"] == "csrf_failed"
    assert_nothing_stored(app, db)
    token = csrf_token(client, "/apps/sales/")
    created = post_file(client, {"X-CSRFToken": token}, "quote.pdf", PDF)
    assert created.status_code == 201
    assert client.get(created.get_json()["url"]).data == PDF
    in_form = post_file(client, {}, "again.pdf", PDF, csrf_token=token)
    assert in_form.status_code == 201
