"""Settings: defaults, then the instance folder's ``formloom.json``, then ``FORMLOOM_*`` variables."""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

DEFAULTS: dict = {
    "DATABASE_URL": None,  # None: SQLite file ``formloom.db`` in the instance folder
    "REDIS_URL": None,  # None: the embedded in-process queue
    "DEFAULT_LOCALE": "en",
    "PAGE_SIZE": 25,
    "EXPORT_MAX_ROWS": 100_000,  # rows per export (CSV or XLSX); more is refused with the count
    "IMPORT_INLINE_ROWS": 1000,  # imports of up to this many rows run in the request; longer ones as a job
    "IMPORT_MAX_ROWS": 200_000,  # rows per imported file; more is refused with the count
    "API_PAGE_SIZE_MAX": 200,
    "IDEMPOTENCY_TTL_HOURS": 24,  # how long an API POST's Idempotency-Key answers replays
    "WTF_CSRF_CHECK_DEFAULT": False,  # CSRF is enforced in before_request (see app.py)
    "WTF_CSRF_TIME_LIMIT": None,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # Send the session cookie over HTTPS only. Off in the embedded default (plain http on
    # localhost would lose the cookie); every production install behind HTTPS turns it on.
    "SESSION_COOKIE_SECURE": False,
    "PERMANENT_SESSION_LIFETIME": 12 * 3600,  # seconds: a session ends after 12 h without a request
    "HSTS_SECONDS": 365 * 24 * 3600,  # Strict-Transport-Security on HTTPS answers; 0: not sent
    "TRUSTED_PROXIES": 0,  # reverse proxies in front whose X-Forwarded-For/-Proto/-Host are believed
    # Failed logins: this many failures of one username from one address, or of any usernames
    # from one address, within the window lock that username+address (or address) for the lockout.
    "LOGIN_MAX_FAILURES_PER_ACCOUNT": 5,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,
    "LOGIN_FAILURE_WINDOW_SECONDS": 15 * 60,
    "LOGIN_LOCKOUT_SECONDS": 15 * 60,
    "LOGIN_THROTTLE_KEY_PREFIX": "formloom:login:",  # Redis keys, when REDIS_URL is set
    # Automation: "inline" runs events in a background thread of the web process (embedded
    # default), "redis" leaves them to `formloom worker`, "off" to whoever calls the dispatcher.
    "AUTOMATION": "inline",
    "AUTOMATION_POLL_SECONDS": 0.5,
    "AUTOMATION_STALE_SECONDS": 60,  # work handed to the queue but not done by then is handed again
    "AUTOMATION_MAX_DEPTH": 5,  # rule actions that trigger rules: stop at this depth
    "WEBHOOK_TIMEOUT_SECONDS": 10,
    "WEBHOOK_BACKOFF_SECONDS": [10, 60, 300, 1800, 7200],
    # Webhooks never reach loopback, private, link-local or reserved addresses unless the host
    # name or a network (CIDR) holding its address is listed here.
    "WEBHOOK_ALLOWED_HOSTS": [],
    "SMTP_HOST": None,  # e-mail is sent only when an SMTP host is configured
    "SMTP_PORT": 587,
    "SMTP_USER": None,
    "SMTP_PASSWORD": None,
    "SMTP_FROM": "formloom@localhost",
    "SMTP_STARTTLS": True,
}


def _flag(raw: str) -> bool:
    return raw.strip().lower() in ("1", "true", "yes", "on")


def _items(raw: str) -> list[str]:
    """A comma-separated list: ``"hooks.internal, 10.0.0.0/8"``."""
    return [item.strip() for item in raw.split(",") if item.strip()]


# Variables read from the environment, with their type.
ENV_SETTINGS = {
    "DATABASE_URL": str,
    "REDIS_URL": str,
    "SECRET_KEY": str,
    "DEFAULT_LOCALE": str,
    "PAGE_SIZE": int,
    "EXPORT_MAX_ROWS": int,
    "IMPORT_INLINE_ROWS": int,
    "IMPORT_MAX_ROWS": int,
    "IDEMPOTENCY_TTL_HOURS": float,
    "SESSION_COOKIE_SECURE": _flag,
    "PERMANENT_SESSION_LIFETIME": int,
    "HSTS_SECONDS": int,
    "TRUSTED_PROXIES": int,
    "LOGIN_MAX_FAILURES_PER_ACCOUNT": int,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": int,
    "LOGIN_FAILURE_WINDOW_SECONDS": int,
    "LOGIN_LOCKOUT_SECONDS": int,
    "LOGIN_THROTTLE_KEY_PREFIX": str,
    "WEBHOOK_ALLOWED_HOSTS": _items,
    "AUTOMATION": str,
    "AUTOMATION_POLL_SECONDS": float,
    "AUTOMATION_STALE_SECONDS": int,
    "AUTOMATION_MAX_DEPTH": int,
    "SMTP_HOST": str,
    "SMTP_PORT": int,
    "SMTP_USER": str,
    "SMTP_PASSWORD": str,
    "SMTP_FROM": str,
}


def instance_path_from_env() -> str | None:
    return os.environ.get("FORMLOOM_INSTANCE_PATH")


def load_settings(instance_path: Path, environ: dict[str, str]) -> dict:
    """Return the settings for one app: defaults, instance file, environment, in that order."""
    settings = dict(DEFAULTS)
    settings_file = instance_path / "formloom.json"
    if settings_file.exists():
        settings.update(json.loads(settings_file.read_text(encoding="utf-8")))
    for name, convert in ENV_SETTINGS.items():
        raw = environ.get(f"FORMLOOM_{name}")
        if raw not in (None, ""):
            settings[name] = convert(raw)
    return settings


def ensure_secret_key(instance_path: Path) -> str:
    """Read the instance's secret key, creating it on first use (never a shared default)."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32), encoding="utf-8")
        key_file.chmod(0o600)
    return key_file.read_text(encoding="utf-8").strip()


def sqlite_url(instance_path: Path) -> str:
    return f"sqlite:///{instance_path / 'formloom.db'}"
