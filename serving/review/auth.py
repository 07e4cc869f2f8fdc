"""Reviewer accounts: argon2 password hashes, two roles, the CSRF tokens kept in the session, and the
throttle on failed sign-ins.

Accounts live in the warehouse table ``review_users``; ``flywheel review add-user`` creates them. A lead
may see raw text (while it still exists); an annotator only ever sees the scrubbed rendering.
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from flywheel.settings import Settings
from flywheel.warehouse import connect, now

ROLES = ("annotator", "lead")
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MIN_PASSWORD_CHARS = 8
MAX_TRACKED_KEYS = 4096

_hasher = PasswordHasher()


class AccountError(ValueError):
    """A user name, role or password that cannot be accepted; the message says what to change."""


@dataclass(frozen=True)
class Reviewer:
    username: str
    role: str

    @property
    def is_lead(self) -> bool:
        return self.role == "lead"


def add_user(settings: Settings, username: str, role: str, password: str) -> bool:
    """Create the account, or replace its role and password; returns True when it is new."""
    if not USERNAME_PATTERN.match(username):
        raise AccountError(f"user name {username!r}: use 1-64 lower-case letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"password for {username!r}: use at least {MIN_PASSWORD_CHARS} characters")
    password_hash = _hasher.hash(password)
    with connect(settings) as con:
        existed = con.execute("SELECT count(*) FROM review_users WHERE username = ?", [username]).fetchone()[0]
        con.execute(
            "INSERT INTO review_users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (username) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash",
            [username, role, password_hash, now()],
        )
    return not existed


def list_users(settings: Settings) -> list[tuple[str, str, datetime]]:
    """(user name, role, created at) for every account, by name."""
    with connect(settings) as con:
        return con.execute("SELECT username, role, created_at FROM review_users ORDER BY username").fetchall()


def authenticate(con: duckdb.DuckDBPyConnection, username: str, password: str) -> Reviewer | None:
    """The reviewer when the password matches; None otherwise, after the same amount of hashing work."""
    row = con.execute("SELECT role, password_hash FROM review_users WHERE username = ?", [username]).fetchone()
    if row is None:
        _hasher.hash(password)  # an unknown name costs as long as a wrong password: names stay private
        return None
    role, password_hash = row
    try:
        _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(password_hash):
        con.execute("UPDATE review_users SET password_hash = ? WHERE username = ?", [_hasher.hash(password), username])
    return Reviewer(username, role)


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a session without a token never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(expected, given)


class SignInThrottle:
    """Refuses sign-in attempts for a key (an account, a client address) that failed too often lately.

    A sliding window: ``limit`` failures within ``window_s`` seconds lock the key until the oldest of them
    leaves the window. Checked before any password hashing, so guessing costs the server nothing either.
    Kept in the app's memory: one review process serves the page, and a restart forgets the count.
    """

    def __init__(self, limits: dict[str, int], window_s: float = 15 * 60, clock: Callable[[], float] = time.monotonic):
        self.limits, self.window_s, self.clock = limits, window_s, clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, keys: dict[str, str]) -> int:
        """Seconds until every given key (kind -> value, e.g. ``{"account": "alice"}``) may try again; 0: now."""
        wait = 0.0
        with self._lock:
            for kind, value in keys.items():
                failures = self._recent((kind, value))
                if len(failures) >= self.limits[kind]:
                    wait = max(wait, failures[-self.limits[kind]] + self.window_s - self.clock())
        return math.ceil(wait)

    def failed(self, keys: dict[str, str]) -> None:
        with self._lock:
            for key in keys.items():
                self._failures.setdefault(key, deque()).append(self.clock())
            if len(self._failures) > MAX_TRACKED_KEYS:  # many made-up names: forget what left the window
                for key in list(self._failures):
                    self._recent(key)

    def succeeded(self, kind: str, value: str) -> None:
        with self._lock:
            self._failures.pop((kind, value), None)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        failures = self._failures.get(key, deque())
        while failures and failures[0] <= self.clock() - self.window_s:
            failures.popleft()
        if not failures:
            self._failures.pop(key, None)
        return failures
