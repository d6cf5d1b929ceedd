"""Security: login audit and throttling (in process and in Redis), session cookies and HSTS, and
webhooks that refuse loopback, private and internal addresses unless an admin allows them."""
from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from redis import Redis
from sqlalchemy import select

from formloom import create_app
from formloom.builder import definitions
from formloom.platform import config, throttle
from formloom.platform.errors import DefinitionError
from formloom.platform.models import AuditEvent, ScheduledJob, WebhookDelivery
from formloom.runtime import deliveries, dispatch
from tests.factories import PASSWORD, csrf_token, login
from tests.test_automation import Receiver, new_deal, rule

LOCKED = "Too many failed logins for this account from your address; try again in 15 minutes."
REDIS_URL = "redis://127.0.0.1:6379/0"


def make_app(tmp_path, database_url, **settings):
    """Another app on the test's database (a second web process, or other settings)."""
    return create_app({"INSTANCE_PATH": str(tmp_path / f"instance-{uuid.uuid4().hex[:6]}"),
                       "DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "test-secret", **settings})


def attempt(client, username: str, password: str, address: str = "127.0.0.1"):
    token = csrf_token(client)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address})


def audit_rows(db, kind: str | None = None) -> list[AuditEvent]:
    """Audit entries of one kind, or of every login and logout (read afresh)."""
    db.rollback()
    db.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.id)
    return list(db.scalars(query.where(AuditEvent.kind == kind) if kind
                           else query.where(AuditEvent.kind.in_(["login", "login_failed", "logout"]))))


# --- login audit -------------------------------------------------------------------------------

def test_login_and_logout_are_audited_with_who_and_address(client, db, rep):
    assert login(client, "rep").status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/notifications/")})
    rows = audit_rows(db)
    assert [(r.kind, r.actor_id, r.subject, r.ip) for r in rows] == [
        ("login", rep.id, "rep", "127.0.0.1"), ("logout", rep.id, "rep", "127.0.0.1")]


def test_a_failed_login_is_audited_with_the_username_tried_and_never_the_password(client, db, rep):
    response = attempt(client, " rep ", "Sup3r-secret-guess", address="203.0.113.7")
    assert response.status_code == 401 and "Wrong username or password." in response.get_data(as_text=True)
    [row] = audit_rows(db)
    assert (row.kind, row.actor_id, row.subject, row.ip) == ("login_failed", None, "rep", "203.0.113.7")
    assert "Sup3r-secret-guess" not in repr((row.subject, row.detail))


# --- throttling in this process ------------------------------------------------------------------

def test_five_failures_lock_the_account_from_that_address_even_for_the_right_password(client, db, rep):
    for _ in range(4):
        assert attempt(client, "rep", "wrong-guess").status_code == 401
    fifth = attempt(client, "rep", "wrong-guess")
    assert fifth.status_code == 429 and LOCKED in fifth.get_data(as_text=True)
    right = attempt(client, "rep", PASSWORD)
    assert right.status_code == 429 and LOCKED in right.get_data(as_text=True)
    assert int(right.headers["Retry-After"]) == 900
    assert client.get("/notifications/").status_code == 302  # still not logged in
    throttled = audit_rows(db, "login_throttled")
    assert [(r.subject, r.detail["lock"]) for r in throttled] == [("rep", "account")]
    assert [r.detail for r in audit_rows(db, "login_failed")][-1] == {"locked": "account"}


def test_the_lock_is_per_address_so_the_owner_elsewhere_still_logs_in(app, client, db, rep):
    for _ in range(5):
        attempt(client, "rep", "wrong-guess", address="198.51.100.66")
    assert attempt(client, "rep", PASSWORD, address="198.51.100.66").status_code == 429
    assert attempt(app.test_client(), "rep", PASSWORD, address="192.0.2.10").status_code == 302


def test_a_successful_login_clears_the_account_count(client, db, rep):
    for _ in range(4):
        attempt(client, "rep", "wrong-guess")
    assert attempt(client, "rep", PASSWORD).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client, "/notifications/")})
    for _ in range(4):
        assert attempt(client, "rep", "wrong-guess").status_code == 401  # counting starts again


def test_guessing_many_usernames_from_one_address_locks_the_address(tmp_path, database_url, db, rep):
    client = make_app(tmp_path, database_url, LOGIN_MAX_FAILURES_PER_ADDRESS=6).test_client()
    for name in ("ann", "bob", "cat", "dan", "eve"):
        assert attempt(client, name, "password1").status_code == 401
    sixth = attempt(client, "fay", "password1")
    assert sixth.status_code == 429
    assert "Too many failed logins from your address; try again in 15 minutes." in sixth.get_data(as_text=True)
    assert attempt(client, "rep", PASSWORD).status_code == 429  # even a real account, from there
    assert attempt(client, "rep", PASSWORD, address="192.0.2.10").status_code == 302


def test_the_lock_lifts_after_the_lockout(app, client, db, rep):
    now = [1000.0]
    throttle.throttle_of(app).counter.clock = lambda: now[0]
    for _ in range(5):
        attempt(client, "rep", "wrong-guess")
    now[0] += 14 * 60
    response = attempt(client, "rep", PASSWORD)
    assert response.status_code == 429
    assert "try again in 1 minute." in response.get_data(as_text=True)
    now[0] += 60
    assert attempt(client, "rep", PASSWORD).status_code == 302


def test_the_lock_message_is_translated(client, db, rep):
    for _ in range(5):
        attempt(client, "rep", "wrong-guess")
    client.get("/login?lang=zh-CN")
    page = attempt(client, "rep", PASSWORD).get_data(as_text=True)
    assert "您所在的地址对此账号的登录失败次数过多，请 15 分钟后再试。" in page


# --- throttling in Redis -------------------------------------------------------------------------

@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own on the shared Redis; its keys are deleted afterwards."""
    connection = Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except Exception as exc:  # any failure to reach it means the same
        pytest.skip(f"No Redis at {REDIS_URL}: {exc}")
    prefix = f"formloom-test:{uuid.uuid4().hex}:login:"
    yield prefix
    for key in connection.scan_iter(match=prefix + "*"):
        connection.delete(key)
    connection.close()


def test_redis_counts_are_shared_by_every_web_process(tmp_path, database_url, db, rep, redis_prefix):
    settings = {"REDIS_URL": REDIS_URL, "LOGIN_THROTTLE_KEY_PREFIX": redis_prefix}
    first, second = make_app(tmp_path, database_url, **settings), make_app(tmp_path, database_url, **settings)
    assert isinstance(throttle.throttle_of(first).counter, throttle.RedisCounter)
    for number in range(5):
        process = first if number % 2 == 0 else second
        attempt(process.test_client(), "rep", "wrong-guess")
    response = attempt(second.test_client(), "rep", PASSWORD)
    assert response.status_code == 429 and LOCKED in response.get_data(as_text=True)
    redis = Redis.from_url(REDIS_URL)
    account_key = f"{redis_prefix}acct:127.0.0.1:rep"
    assert int(redis.get(account_key)) == 5 and 890 <= redis.ttl(account_key) <= 900
    assert int(redis.get(f"{redis_prefix}addr:127.0.0.1")) == 5
    assert attempt(first.test_client(), "rep", PASSWORD, address="192.0.2.10").status_code == 302
    assert redis.get(f"{redis_prefix}acct:192.0.2.10:rep") is None  # success clears its own count
    redis.close()


def test_logins_still_work_when_redis_is_down(tmp_path, database_url, db, rep):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_app(tmp_path, database_url, REDIS_URL=f"redis://127.0.0.1:{port}/0").test_client()
    assert attempt(client, "rep", "wrong-guess").status_code == 401
    assert attempt(client, "rep", PASSWORD).status_code == 302


# --- cookies and HTTPS ---------------------------------------------------------------------------

def session_cookie(response) -> str:
    [cookie] = [v for v in response.headers.getlist("Set-Cookie") if v.startswith("session=")]
    return cookie


def test_production_cookie_is_secure_httponly_lax_and_lasts_twelve_hours(tmp_path, database_url, db, rep):
    settings = config.load_settings(tmp_path, {"FORMLOOM_SESSION_COOKIE_SECURE": "1"})
    app = make_app(tmp_path, database_url, SESSION_COOKIE_SECURE=settings["SESSION_COOKIE_SECURE"])
    client = app.test_client()
    site = "https://formloom.example.com"
    page = client.get("/login", base_url=site).get_data(as_text=True)
    token = page.split('name="csrf-token" content="')[1].split('"')[0]
    response = client.post("/login", data={"username": "rep", "password": PASSWORD, "csrf_token": token},
                           base_url=site, headers={"Referer": f"{site}/login"})  # HTTPS: same-origin check
    assert response.status_code == 302
    flags = [part.strip() for part in session_cookie(response).split(";")]
    assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} <= set(flags)
    expires = parsedate_to_datetime(next(f for f in flags if f.startswith("Expires="))[8:])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=12))) < timedelta(minutes=1)


def test_embedded_default_cookie_works_over_plain_http(client, rep):
    response = login(client, "rep")
    flags = [part.strip() for part in session_cookie(response).split(";")]
    assert "Secure" not in flags and "HttpOnly" in flags and "SameSite=Lax" in flags


def test_hsts_only_over_https(client):
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = client.get("/login", base_url="https://formloom.example.com")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_forwarded_headers_count_only_behind_a_trusted_proxy(tmp_path, database_url, db, rep):
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    direct = make_app(tmp_path, database_url).test_client()
    assert "Strict-Transport-Security" not in direct.get("/login", headers=forwarded).headers
    attempt_with = direct.post("/login", headers=forwarded, data={
        "username": "rep", "password": "wrong-guess", "csrf_token": csrf_token(direct)})
    assert attempt_with.status_code == 401
    assert audit_rows(db, "login_failed")[-1].ip == "127.0.0.1"  # a client cannot choose its address
    proxied = make_app(tmp_path, database_url, TRUSTED_PROXIES=1).test_client()
    assert proxied.get("/login", headers=forwarded).headers["Strict-Transport-Security"]
    tried = proxied.post("/login", headers={**forwarded, "Referer": "https://localhost/login"}, data={
        "username": "rep", "password": "wrong-guess", "csrf_token": csrf_token(proxied)})
    assert tried.status_code == 401, tried.get_data(as_text=True)
    assert audit_rows(db, "login_failed")[-1].ip == "203.0.113.9"


# --- webhooks ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "kind"), [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://10.20.30.40/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]:8080/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://localhost:8080/hook", "loopback"),
    ("http://0.0.0.0:8080/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
])
def test_webhook_targets_inside_are_refused(url, kind):
    with pytest.raises(deliveries.Refused, match=f"an? {kind} address.*WEBHOOK_ALLOWED_HOSTS"):
        deliveries.webhook_target(url, [])


@pytest.mark.parametrize(("url", "allowed"), [
    ("http://127.0.0.1:8080/hook", ["127.0.0.1"]),
    ("http://10.20.30.40/hook", ["10.0.0.0/8"]),
    ("http://[::1]:8080/hook", ["::1"]),
    ("http://localhost:8080/hook", ["localhost"]),
    ("http://localhost:8080/hook", "127.0.0.0/8, ::1"),  # the environment variable's form
])
def test_webhook_targets_inside_are_allowed_when_the_setting_lists_them(url, allowed):
    target = deliveries.webhook_target(url, allowed)
    assert target.port == 8080 or target.host == "10.20.30.40"


def test_a_public_webhook_target_needs_no_setting():
    target = deliveries.webhook_target("https://93.184.215.14/hook?x=1", [])
    assert (target.scheme, target.port, target.path, target.addresses) == ("https", 443, "/hook?x=1",
                                                                           ("93.184.215.14",))


@pytest.fixture
def hook_receiver():
    server = Receiver({"/hook": [200], "/moved": [302]})
    yield server
    server.close()


def publish_hook(app, db, admin, pipes, url: str) -> None:
    with app.app_context():
        definitions.save_and_publish(db, admin, pipes, rule("hook", {"type": "created"}, [
            {"type": "webhook", "url": url}]))
        db.commit()


def deliver_all(app, db) -> list[WebhookDelivery]:
    now = datetime.now(UTC) + timedelta(minutes=1)
    for later in (0, 60, 3600, 86400):
        dispatch.run_pending(app, now=now + timedelta(seconds=later))
    db.rollback()
    db.expire_all()
    return list(db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_delivery_to_a_host_resolving_to_loopback_fails_once_with_the_reason(app, db, admin, rep, pipes,
                                                                               hook_receiver):
    port = hook_receiver.server.server_address[1]
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ["localhost"]
    publish_hook(app, db, admin, pipes, f"http://localhost:{port}/hook")
    app.config["WEBHOOK_ALLOWED_HOSTS"] = []  # the admin took the allowance back
    new_deal(db, rep, pipes)
    [delivery] = deliver_all(app, db)
    assert delivery.status_code is None and delivery.next_attempt_at is None
    assert delivery.error.startswith("Refused: 'localhost' resolves to ")
    assert "loopback address" in delivery.error and "WEBHOOK_ALLOWED_HOSTS" in delivery.error
    assert hook_receiver.to("/hook") == []
    assert db.scalar(select(ScheduledJob.status).where(ScheduledJob.kind == "webhook")) == "done"


def test_a_delivery_to_an_allowed_internal_host_arrives(app, db, admin, rep, pipes, hook_receiver):
    port = hook_receiver.server.server_address[1]
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ["localhost"]
    publish_hook(app, db, admin, pipes, f"http://localhost:{port}/hook")
    new_deal(db, rep, pipes)
    [delivery] = deliver_all(app, db)
    assert (delivery.status_code, delivery.error) == (200, None)
    [request] = hook_receiver.to("/hook")
    assert request["headers"]["Host"] == f"localhost:{port}"


def test_the_checked_address_is_the_one_connected_to(app, db, admin, rep, pipes, hook_receiver, monkeypatch):
    """A DNS answer that changes between check and connect (rebinding) does not move the request."""
    port = hook_receiver.server.server_address[1]
    real = socket.getaddrinfo
    answers = iter(["127.0.0.1", "192.0.2.1"])  # the second answer would lead nowhere
    asked = []

    def resolve(host, *args, **kwargs):
        if host == "hooks.example.test":
            asked.append(host)
            return real(next(answers), *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    app.config.update(WEBHOOK_ALLOWED_HOSTS=["127.0.0.1/32"], WEBHOOK_TIMEOUT_SECONDS=2)
    publish_hook(app, db, admin, pipes, f"http://hooks.example.test:{port}/hook")
    new_deal(db, rep, pipes)
    [delivery] = deliver_all(app, db)
    assert (delivery.status_code, delivery.error) == (200, None)
    assert asked == ["hooks.example.test"]
    assert hook_receiver.to("/hook")[0]["headers"]["Host"] == f"hooks.example.test:{port}"


@pytest.fixture
def tls_receiver(tmp_path):
    """An HTTPS receiver with a certificate for hooks.example.test; records the TLS name each client asked for."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
                    "-out", str(cert), "-subj", "/CN=hooks.example.test",
                    "-addext", "subjectAltName=DNS:hooks.example.test"], check=True, capture_output=True)
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], cert, names
    server.shutdown()
    server.server_close()


def test_https_keeps_the_urls_name_for_sni_and_the_certificate(app, db, admin, rep, pipes, tls_receiver,
                                                                monkeypatch):
    port, cert, names = tls_receiver
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        "127.0.0.1" if host == "hooks.example.test" else host, *a, **k))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the receiver's certificate, for its name only
    app.config.update(WEBHOOK_ALLOWED_HOSTS=["127.0.0.1"], WEBHOOK_TIMEOUT_SECONDS=5)
    publish_hook(app, db, admin, pipes, f"https://hooks.example.test:{port}/hook")
    new_deal(db, rep, pipes)
    [delivery] = deliver_all(app, db)
    assert (delivery.status_code, delivery.error) == (200, None)
    assert names == ["hooks.example.test"]


def test_redirects_are_not_followed(app, db, admin, rep, pipes, hook_receiver):
    port = hook_receiver.server.server_address[1]
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ["127.0.0.1"]
    app.config["WEBHOOK_BACKOFF_SECONDS"] = [1]
    publish_hook(app, db, admin, pipes, f"http://127.0.0.1:{port}/moved")
    new_deal(db, rep, pipes)
    first = deliver_all(app, db)[0]
    assert first.status_code == 302 and "redirects are not followed" in first.error


@pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://localhost:8080/x", "http://10.0.0.5/x",
                                 "http://169.254.169.254/", "http://[::1]/", "http://app.localhost/x"])
def test_publishing_a_webhook_to_an_internal_address_names_the_setting(app, db, admin, pipes, url):
    with app.app_context(), pytest.raises(DefinitionError) as caught:
        definitions.save_and_publish(db, admin, pipes, rule("hook", {"type": "created"}, [
            {"type": "webhook", "url": url}]))
    [message] = caught.value.field_messages()["$.actions[0].url"]
    assert "WEBHOOK_ALLOWED_HOSTS" in message


def test_publishing_a_webhook_to_an_allowed_internal_address_works(app, db, admin, pipes):
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ["10.0.0.0/8", "localhost"]
    for url in ("http://10.0.0.5/x", "http://localhost:8080/x", "https://hooks.example.com/x"):
        publish_hook(app, db, admin, pipes, url)
