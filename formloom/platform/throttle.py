"""Failed-login throttling: count failures per username+address and per address, lock a key at its limit.

Each failed login counts against two keys: the username tried from the client's address, and
the address alone. A key that reaches its limit within the window is locked for the lockout time;
while any of a login's keys is locked, the login is refused before the password is checked. A
successful login clears its username+address count (not the address's: a botnet that knows one
password must not reset its budget for guessing others).

Counts live in Redis when ``REDIS_URL`` is set (``INCR`` + ``EXPIRE``, shared by every web process)
and in a dictionary of this process otherwise (the embedded mode runs one process).
"""
from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from flask import Flask

log = logging.getLogger(__name__)
EXTENSION = "formloom.login_throttle"


class LockScope(str, Enum):
    ACCOUNT = "account"  # this username from this address
    ADDRESS = "address"  # any username from this address


@dataclass(frozen=True)
class Limits:
    per_account: int = 5
    per_address: int = 20
    window_seconds: int = 900
    lockout_seconds: int = 900

    @classmethod
    def from_config(cls, config) -> Limits:
        return cls(per_account=int(config["LOGIN_MAX_FAILURES_PER_ACCOUNT"]),
                   per_address=int(config["LOGIN_MAX_FAILURES_PER_ADDRESS"]),
                   window_seconds=int(config["LOGIN_FAILURE_WINDOW_SECONDS"]),
                   lockout_seconds=int(config["LOGIN_LOCKOUT_SECONDS"]))


@dataclass(frozen=True)
class Lock:
    """A refused login: which key is locked, and for how many more seconds."""

    scope: LockScope
    seconds: int

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.seconds / 60))


class Counter(Protocol):
    def hit(self, key: str, limit: int, window: int, lockout: int) -> int: ...
    def state(self, key: str) -> tuple[int, int]: ...
    def clear(self, key: str) -> None: ...


class MemoryCounter:
    """Counts with expiry in a dictionary of this process, safe to share between threads."""

    SWEEP_EVERY = 1000  # drop expired keys now and then, so guessed usernames cannot fill memory

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._writes = 0

    def hit(self, key: str, limit: int, window: int, lockout: int) -> int:
        """Count one failure; the first starts the window, the one reaching ``limit`` starts the lockout."""
        with self._lock:
            now = self.clock()
            count, expires = self._live(key, now)
            count += 1
            if count == 1:
                expires = now + window
            if count >= limit:
                expires = now + lockout
            self._counts[key] = (count, expires)
            self._writes += 1
            if self._writes % self.SWEEP_EVERY == 0:
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            return count

    def state(self, key: str) -> tuple[int, int]:
        """The count and the seconds until it expires (0, 0 when there is none)."""
        with self._lock:
            now = self.clock()
            count, expires = self._live(key, now)
            return count, max(0, math.ceil(expires - now)) if count else 0

    def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)

    def _live(self, key: str, now: float) -> tuple[int, float]:
        count, expires = self._counts.get(key, (0, 0.0))
        return (count, expires) if expires > now else (0, 0.0)


class RedisCounter:
    """Counts in Redis, shared by every web process: ``INCR`` and ``EXPIRE`` on prefixed keys."""

    def __init__(self, connection, prefix: str):
        self.connection = connection
        self.prefix = prefix

    def hit(self, key: str, limit: int, window: int, lockout: int) -> int:
        name = self.prefix + key
        pipe = self.connection.pipeline()
        pipe.incr(name)
        pipe.expire(name, window, nx=True)  # the first failure starts the window
        count = pipe.execute()[0]
        if count >= limit:
            self.connection.expire(name, lockout)
        return int(count)

    def state(self, key: str) -> tuple[int, int]:
        pipe = self.connection.pipeline()
        pipe.get(self.prefix + key)
        pipe.ttl(self.prefix + key)
        raw, ttl = pipe.execute()
        return (int(raw), ttl if ttl > 0 else 0) if raw is not None else (0, 0)

    def clear(self, key: str) -> None:
        self.connection.delete(self.prefix + key)


class LoginThrottle:
    """Asks whether a login may be tried, and counts how it went."""

    def __init__(self, counter: Counter, limits: Limits):
        self.counter = counter
        self.limits = limits

    def check(self, username: str, address: str | None) -> Lock | None:
        """The lock that refuses this login now, or None when it may be tried."""
        for scope, key, limit in self._keys(username, address):
            count, seconds = self._safely(lambda k=key: self.counter.state(k), (0, 0))
            if count >= limit:
                return Lock(scope, seconds or self.limits.lockout_seconds)
        return None

    def failed(self, username: str, address: str | None) -> Lock | None:
        """Count a failed login; return the lock it started, if it reached a limit."""
        lock = None
        for scope, key, limit in self._keys(username, address):
            count = self._safely(lambda k=key, n=limit: self.counter.hit(
                k, n, self.limits.window_seconds, self.limits.lockout_seconds), 0)
            if count >= limit and lock is None:
                lock = Lock(scope, self.limits.lockout_seconds)
        return lock

    def succeeded(self, username: str, address: str | None) -> None:
        self._safely(lambda: self.counter.clear(self._account_key(username, address)), None)

    def _keys(self, username: str, address: str | None) -> list[tuple[LockScope, str, int]]:
        keys = [(LockScope.ACCOUNT, self._account_key(username, address), self.limits.per_account),
                (LockScope.ADDRESS, f"addr:{address or '-'}", self.limits.per_address)]
        return [k for k in keys if k[2] > 0]  # a limit of 0 turns that count off

    @staticmethod
    def _account_key(username: str, address: str | None) -> str:
        return f"acct:{address or '-'}:{username.strip().lower()[:200]}"

    @staticmethod
    def _safely(call, fallback):
        """Redis being down must not stop everyone from logging in: count nothing, log it."""
        from redis.exceptions import RedisError

        try:
            return call()
        except RedisError:
            log.exception("Login throttling is unavailable (Redis); logins are not throttled meanwhile.")
            return fallback


def init_app(app: Flask) -> None:
    """One throttle per app: in Redis when it is configured, else in this process."""
    limits = Limits.from_config(app.config)
    if app.config.get("REDIS_URL"):
        from redis import Redis

        connection = Redis.from_url(app.config["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2)
        counter: Counter = RedisCounter(connection, app.config["LOGIN_THROTTLE_KEY_PREFIX"])
    else:
        counter = MemoryCounter()
    app.extensions[EXTENSION] = LoginThrottle(counter, limits)


def throttle_of(app: Flask) -> LoginThrottle:
    return app.extensions[EXTENSION]
