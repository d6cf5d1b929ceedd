"""Deliveries to the outside: signed webhooks retried with backoff, and e-mail through SMTP.

Both are scheduled jobs in the database, so a retry waits there (not in Redis) and survives a
restart. Every webhook attempt is logged (``webhook_deliveries``). A webhook carries its action's
idempotency key in ``X-Formloom-Delivery``, so a receiver can drop the rare repeat that a crash
between sending and recording can cause.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time as clock
import urllib.error
import urllib.request
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from typing import Any

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
    status, error = None, None
    try:
        request = urllib.request.Request(payload["url"], data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=settings.webhook_timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        error = str(getattr(exc, "reason", exc))
    ok = status is not None and 200 <= status < 300
    retry_at = None
    if not ok and attempt < payload.get("max_attempts", 5):
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
