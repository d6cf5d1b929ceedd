"""Deliveries to the outside: signed webhooks retried with backoff, and e-mail through SMTP.

Both are scheduled jobs in the database, so a retry waits there (not in Redis) and survives a
restart. Every webhook attempt is logged (``webhook_deliveries``). A webhook carries its action's
idempotency key in ``X-Formloom-Delivery``, so a receiver can drop the rare repeat that a crash
between sending and recording can cause.

A webhook never reaches loopback, private, link-local, multicast or reserved addresses (the
server's own services, the cloud metadata endpoint, the office network) unless the setting
``WEBHOOK_ALLOWED_HOSTS`` names the host or a network holding its address. The host is resolved
once, every address checked, and the connection made to a checked address (the Host header and
TLS name stay the URL's), so a DNS answer that changes between check and connect cannot redirect
it. Redirects are not followed.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import smtplib
import socket
import ssl
import time as clock
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from formloom.platform.models import App, ScheduledJob, WebhookDelivery, WorkStatus

KINDS = frozenset({"webhook", "email"})
SIGNATURE_HEADER = "X-Formloom-Signature"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``timestamp.body`` (the receiver recomputes it)."""
    digest = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def webhook_payload(ctx, key: str, role: str | None = None) -> dict:
    """What a webhook sends: the rule, the trigger and the record as stored.

    With ``role``, the record as that role may see it (docs/access.md): an integration gets
    only the fields its role allows.
    """
    from formloom.runtime.access import redact_for_role

    record = ctx.record
    if record is None:
        shown = None
    elif role is not None:
        shown = redact_for_role(ctx.session, ctx.app, role, record)
    else:
        shown = {"id": record.id, "entity": record.entity_key, "title": record.title,
                 "version": record.version, "data": record.data}
    return {"delivery": key, "app": ctx.app.key, "rule": ctx.rule.key, "trigger": ctx.run.trigger,
            "at": ctx.now.isoformat().replace("+00:00", "Z"), "record": shown}


def deliver(session: Session, app: App, job: ScheduledJob, settings, now: datetime) -> None:
    (_webhook if job.kind == "webhook" else _email)(session, app, job, settings, now)


def _webhook(session: Session, app: App, job: ScheduledJob, settings, now: datetime) -> None:
    payload = dict(job.payload)
    attempt = payload.get("attempt", 0) + 1
    body = json.dumps(payload["body"], ensure_ascii=False, sort_keys=True).encode("utf-8")
    timestamp = str(int(now.timestamp()))
    headers = {"Content-Type": "application/json", "User-Agent": "Formloom-Webhook/1",
               "X-Formloom-Delivery": payload["body"]["delivery"], "X-Formloom-Attempt": str(attempt),
               "X-Formloom-Timestamp": timestamp}
    if payload.get("secret"):
        headers[SIGNATURE_HEADER] = sign(payload["secret"], timestamp, body)
    started = clock.perf_counter()
    status, error, refused = None, None, False
    try:
        target = webhook_target(payload["url"], settings.webhook_allowed_hosts)
        status, reason = _post(target, body, headers, settings.webhook_timeout)
        if not 200 <= status < 300:
            error = f"HTTP {status} {reason}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    except Refused as exc:
        error, refused = str(exc), True
    except (OSError, http.client.HTTPException, ValueError) as exc:
        error = str(exc) or type(exc).__name__
    ok = status is not None and 200 <= status < 300
    retry_at = None
    if not ok and not refused and attempt < payload.get("max_attempts", 5):  # a refusal would only repeat
        backoff = settings.webhook_backoff
        retry_at = now + timedelta(seconds=backoff[min(attempt - 1, len(backoff) - 1)])
    session.add(WebhookDelivery(app_id=app.id, action_key=payload["body"]["delivery"], url=payload["url"],
                                attempt=attempt, status_code=status, error=error, at=now,
                                duration_ms=int((clock.perf_counter() - started) * 1000), next_attempt_at=retry_at))
    job.payload = {**payload, "attempt": attempt}
    if retry_at is not None:  # wait in the database for the next try
        job.status, job.due_at, job.enqueued_at = WorkStatus.PENDING.value, retry_at, None
    else:
        job.status, job.done_at = WorkStatus.DONE.value, now
    session.commit()


# --- where a webhook may go ------------------------------------------------------------------

ALLOW_SETTING = "WEBHOOK_ALLOWED_HOSTS (FORMLOOM_WEBHOOK_ALLOWED_HOSTS)"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The webhook's target is one webhooks may not reach; trying again would not help."""


@dataclass(frozen=True)
class AllowList:
    """What an admin allowed: host names, and networks (an address is a network of one)."""

    hosts: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def of(cls, entries: Iterable[str] | str | None) -> AllowList:
        """From the setting: a list, or one string of comma-separated items."""
        hosts, networks = set(), []
        for entry in entries.split(",") if isinstance(entries, str) else entries or ():
            entry = entry.strip().lower().strip("[]").rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: Address | None = None) -> bool:
        if host.lower().rstrip(".") in self.hosts:
            return True
        return address is not None and any(a in net for a in _forms(address) for net in self.networks
                                           if a.version == net.version)


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect (the checked addresses) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def _forms(address: Address) -> list[Address]:
    """The IPv4 address an IPv6 one carries (IPv4-mapped, 6to4, Teredo), if any, then the address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is not None:
            return [embedded, address]
    return [address]


def address_problem(address: Address) -> str | None:
    """What kind of non-public address this is ('loopback', 'private'...), or None for a public one."""
    for form in _forms(address):
        for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
            if getattr(form, f"is_{kind}"):
                return kind.replace("_", "-")
        if not form.is_global:
            return "non-public"
    return None


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def webhook_target(url: str, allowed: Iterable[str] | str | None) -> Target:
    """Resolve the URL's host once and check every address; :class:`Refused` when one may not be reached."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"The webhook URL '{url}' is not an http:// or https:// URL with a host.")
    host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    allow = AllowList.of(allowed)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    for raw in addresses:
        address = ipaddress.ip_address(raw)
        problem = address_problem(address)
        if problem is not None and not allow.allows(host, address):
            named = f"'{host}' resolves to {address}" if raw != host else f"{address}"
            raise Refused(f"Refused: {named}, {_a(problem)} address; webhooks may not reach loopback, private or "
                          f"internal addresses unless an admin lists the host in {ALLOW_SETTING}.")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, addresses)


def literal_problem(url: str, allowed: Iterable[str] | str | None) -> str | None:
    """Why a URL naming a loopback/private address or ``localhost`` literally will be refused (for checks)."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    allow = AllowList.of(allowed)
    if host == "localhost" or host.endswith(".localhost"):
        problem, address = "loopback", ipaddress.ip_address("127.0.0.1")
    else:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None  # a name: checked when it is resolved, at delivery
        problem = address_problem(address)
    if problem is None or allow.allows(host, address):
        return None
    return (f"'{host}' is {_a(problem)} address; webhooks to loopback, private or internal addresses are refused "
            f"unless an admin lists the host in the setting {ALLOW_SETTING}.")


class _PinnedConnection(http.client.HTTPConnection):
    """Connects to checked addresses only; the Host header (and, for HTTPS, the TLS name) stay the URL's."""

    def __init__(self, target: Target, timeout: float, **kwargs):
        super().__init__(target.host, target.port, timeout=timeout, **kwargs)
        self._addresses = target.addresses
        self._create_connection = self._connect_checked

    def _connect_checked(self, _address, timeout, source_address=None) -> socket.socket:
        error: OSError | None = None
        for address in self._addresses:
            try:
                return socket.create_connection((address, self.port), timeout, source_address)
            except OSError as exc:
                error = exc
        raise error or OSError(f"No address to connect to for {self.host}.")


class _PinnedTLSConnection(_PinnedConnection, http.client.HTTPSConnection):
    pass


def _post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, str]:
    """POST the body to the target; the answer's status and reason (its body is read a little, then dropped)."""
    if target.scheme == "https":
        connection = _PinnedTLSConnection(target, timeout, context=ssl.create_default_context())
    else:
        connection = _PinnedConnection(target, timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)
        return response.status, response.reason
    finally:
        connection.close()


def email_due(session: Session, app: App, now: datetime) -> datetime:
    """Now, or the end of the app's quiet hours when now falls inside them."""
    from formloom.runtime import catalog, rules

    row = catalog.published_version(session, app, "app", app.key)
    quiet = (row.body if row else {}).get("quiet_hours")
    if not quiet:
        return now
    zone = rules.app_zone(session, app)
    local = now.astimezone(zone)
    start, end = (time(*map(int, quiet[k].split(":"))) for k in ("from", "to"))
    clock_now = local.time()
    inside = (start <= clock_now or clock_now < end) if start > end else (start <= clock_now < end)
    if not inside:
        return now
    day = local.date() if clock_now < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, zone).astimezone(now.tzinfo)


def _email(session: Session, app: App, job: ScheduledJob, settings, now: datetime) -> None:
    payload: dict[str, Any] = dict(job.payload)
    smtp = settings.smtp
    if not smtp:
        job.payload = {**payload, "result": "not sent: no SMTP server is configured (FORMLOOM_SMTP_HOST)"}
    else:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = smtp.get("from"), payload["to"], payload["subject"]
        message.set_content(payload.get("body") or payload["subject"])
        try:
            with smtplib.SMTP(smtp["host"], int(smtp.get("port") or 587), timeout=settings.webhook_timeout) as server:
                if smtp.get("starttls", True):
                    server.starttls()
                if smtp.get("user"):
                    server.login(smtp["user"], smtp.get("password") or "")
                server.send_message(message)
            job.payload = {**payload, "result": "sent"}
        except (OSError, smtplib.SMTPException) as exc:
            job.payload = {**payload, "result": f"failed: {exc}"}
    job.status, job.done_at = WorkStatus.DONE.value, now
    session.commit()
