"""``Idempotency-Key``: a POST to the API is done once per (user, key); retries get the first answer.

The key is claimed with an INSERT that the unique constraint on (user, key) decides, in a short
transaction of its own committed before the work, so two concurrent requests with the same key
cannot both run. The answer (status and JSON body) is stored after the work; a 5xx answer releases
the claim instead, so a retry can run. Keys expire after ``IDEMPOTENCY_TTL_HOURS``.

``init_app`` registers the hooks once for every POST under ``/api/v1``; views know nothing of it.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, Request, current_app, g, jsonify, request
from flask.wrappers import Response
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from formloom.platform.db import get_session, utcnow
from formloom.platform.errors import Conflict, FormloomError
from formloom.platform.models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX = 200
API_PREFIX = "/api/v1/"
CLEANUP_EVERY_SECONDS = 60
CLAIM_ATTEMPTS = 3  # an expired or released row may vanish between our INSERT and our SELECT


class IdempotencyKeyInvalid(FormloomError):
    code = "idempotency_key_invalid"


class IdempotencyKeyReused(FormloomError):
    http_status = 422
    code = "idempotency_key_reused"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"


@dataclass(frozen=True)
class Claim:
    """What one request asks for: its key and the fingerprint of what it sends."""

    user_id: int
    key: str
    method: str
    path: str
    request_hash: str


@dataclass(frozen=True)
class Stored:
    """The first answer to a key, to be given again."""

    status: int
    body: dict | list | None


class Sweeper:
    """Deletes expired keys at most once every ``CLEANUP_EVERY_SECONDS`` in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = float("-inf")

    def due(self) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last < CLEANUP_EVERY_SECONDS:
                return False
            self._last = now
            return True


# --- the service -------------------------------------------------------------------------------

def parse_key(raw: str) -> str:
    """The header's value, or :class:`IdempotencyKeyInvalid` saying what a valid key looks like."""
    if not 1 <= len(raw) <= KEY_MAX or not all(" " <= ch <= "~" for ch in raw) or not raw.strip():
        raise IdempotencyKeyInvalid(
            f"The {HEADER} header must be 1 to {KEY_MAX} printable ASCII characters (a UUID is a good "
            f"choice); got {len(raw)} character{'s' if len(raw) != 1 else ''}"
            f"{' with unprintable ones' if any(not ' ' <= ch <= '~' for ch in raw) else ''}.")
    return raw


def claim(session: Session, wanted: Claim, now: datetime, ttl: timedelta, *, sweep: bool = False) -> Stored | None:
    """Claim ``wanted.key`` for this request (None), or return the stored answer to replay.

    Raises :class:`IdempotencyKeyReused` when the key was used for another request and
    :class:`IdempotencyInProgress` while the first request with it still runs. Commits.
    """
    for _ in range(CLAIM_ATTEMPTS):
        if _insert(session, wanted, now, now - ttl if sweep else None):
            return None
        existing = session.scalar(select(IdempotencyKey).where(
            IdempotencyKey.user_id == wanted.user_id, IdempotencyKey.key == wanted.key))
        if existing is None:
            continue  # released after a failure, between our INSERT and SELECT
        if existing.created_at <= now - ttl:
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == existing.id))
            session.commit()
            continue
        session.commit()
        return _answer_for(existing, wanted)
    raise IdempotencyInProgress(f"Another request with this {HEADER} is being handled; try again in a moment.")


def _insert(session: Session, wanted: Claim, now: datetime, expired_before: datetime | None) -> bool:
    """INSERT the claim in a transaction of its own; False when the key is already taken."""
    try:
        if expired_before is not None:
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at <= expired_before))
        session.execute(insert(IdempotencyKey).values(
            user_id=wanted.user_id, key=wanted.key, method=wanted.method, path=wanted.path,
            request_hash=wanted.request_hash, status=None, response=None, created_at=now))
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
        return False


def _answer_for(existing: IdempotencyKey, wanted: Claim) -> Stored:
    if (existing.method, existing.path, existing.request_hash) != (wanted.method, wanted.path, wanted.request_hash):
        what = "path" if (existing.method, existing.path) != (wanted.method, wanted.path) else "body"
        raise IdempotencyKeyReused(
            f"The {HEADER} '{wanted.key}' was already used for {existing.method} {existing.path} with a "
            f"different {'request' if what == 'path' else 'body'}; send a new {HEADER} for a new request, "
            f"or the same request unchanged to get its answer again.")
    if existing.status is None:
        raise IdempotencyInProgress(
            f"The first request with this {HEADER} is still being handled; try again in a moment.")
    return Stored(existing.status, existing.response)


def store(session: Session, wanted: Claim, status: int, body: dict | list | None) -> None:
    """Keep the first answer for replays. Commits."""
    session.execute(update(IdempotencyKey).where(
        IdempotencyKey.user_id == wanted.user_id, IdempotencyKey.key == wanted.key,
        IdempotencyKey.status.is_(None)).values(status=status, response=body))
    session.commit()


def release(session: Session, wanted: Claim) -> None:
    """Give the key up (the work failed on our side), so a retry runs the request. Commits."""
    session.execute(delete(IdempotencyKey).where(
        IdempotencyKey.user_id == wanted.user_id, IdempotencyKey.key == wanted.key,
        IdempotencyKey.status.is_(None)))
    session.commit()


def fingerprint(req: Request) -> str:
    """SHA-256 of the query string and the body; JSON and form bodies in a canonical form.

    Canonical forms let a client that re-serialises its request (other key order, other
    multipart boundary) still be recognised as sending the same request.
    """
    digest = hashlib.sha256(req.query_string + b"\n")
    if req.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        digest.update(json.dumps(sorted(req.form.items(multi=True))).encode())
        for name, upload in sorted(req.files.items(multi=True), key=lambda item: item[0]):
            digest.update(json.dumps([name, upload.filename, upload.mimetype]).encode())
            digest.update(hashlib.sha256(upload.stream.read()).digest())
            upload.stream.seek(0)
        return digest.hexdigest()
    raw = req.get_data(cache=True)
    try:
        digest.update(json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode())
    except ValueError:
        digest.update(raw)
    return digest.hexdigest()


# --- the Flask hooks -----------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    """Register the hooks; call after identity and CSRF checks are registered (they must run first)."""
    app.extensions["formloom.idempotency"] = Sweeper()
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_release_unfinished)


def _covered() -> bool:
    return request.method == "POST" and request.path.startswith(API_PREFIX) and HEADER in request.headers


def _begin() -> Response | None:
    """Claim the key before the view runs, or answer a replay without running it."""
    if not _covered():
        return None
    key = parse_key(request.headers[HEADER])
    too_large = request.max_content_length is not None and (request.content_length or 0) > request.max_content_length
    if g.get("user") is None or too_large:
        return None  # the view answers 401 / 413 itself, the same every time
    wanted = Claim(g.user.id, key, request.method, request.path[:500], fingerprint(request))
    ttl = timedelta(hours=float(current_app.config["IDEMPOTENCY_TTL_HOURS"]))
    stored = claim(get_session(), wanted, utcnow(), ttl, sweep=current_app.extensions["formloom.idempotency"].due())
    if stored is None:
        g.idempotency_claim = wanted
        return None
    response = jsonify(stored.body)
    response.status_code = stored.status
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _finish(response: Response) -> Response:
    """Store the answer to a claimed key; release the key after a 5xx (or an answer that is not JSON)."""
    wanted = g.get("idempotency_claim")
    if wanted is None:
        return response
    session = get_session()
    session.rollback()  # what the view did not commit is not kept, and must not ride on our commit
    if response.status_code >= 500 or not response.is_json:
        release(session, wanted)
    else:
        store(session, wanted, response.status_code, response.get_json())
    g.pop("idempotency_claim")
    return response


def _release_unfinished(_exc: BaseException | None) -> None:
    """A request that ended without :func:`_finish` (an error in an after-request hook) frees its key."""
    wanted = g.pop("idempotency_claim", None)
    if wanted is None:
        return
    try:
        session = get_session()
        session.rollback()
        release(session, wanted)
    except Exception:  # teardown must not raise; the key expires with its TTL
        current_app.logger.exception("Could not release %s %r", HEADER, wanted.key)
