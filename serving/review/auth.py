"""Reviewer accounts: argon2 password hashes, two roles, server-side sessions, the CSRF tokens kept in
the session, and the throttle on sign-in attempts.

Accounts live in the warehouse table ``review_users``; ``flywheel review add-user`` creates them. A lead
may see raw text (while it still exists); an annotator only ever sees the scrubbed rendering.

A sign-in makes a row in ``review_sessions``; the signed cookie only carries its random token. Each
request looks the token up and reads the account's role as it is now, so signing out ends the session
for every copy of the cookie, and a new role or password (``add-user`` on an existing name) ends all of
that account's sessions at once.

Password hashing (argon2: tens of milliseconds and 64 MiB each) never runs under the warehouse lock, and
at most ``HASHING_SLOTS`` run at once.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from flywheel.settings import Settings
from flywheel.warehouse import connect, now
from serving.review import store

ROLES = ("annotator", "lead")
USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MIN_PASSWORD_CHARS = 8
MAX_TRACKED_KEYS = 4096
SESSION_LIFETIME = timedelta(hours=8)
HASHING_SLOTS = 2  # argon2 verifications at once; a burst of sign-ins waits for a slot
HASHING_WAIT_S = 10.0

_hasher = PasswordHasher()
_hashing = threading.BoundedSemaphore(HASHING_SLOTS)


class HashingBusy(RuntimeError):
    """Every hashing slot stayed taken for HASHING_WAIT_S: the sign-in is answered 429, not queued forever."""


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
        return store.save_account(con, username, role, password_hash, now())


def list_users(settings: Settings) -> list[tuple[str, str, datetime]]:
    """(user name, role, created at) for every account, by name."""
    with connect(settings) as con:
        return store.accounts(con)


def password_record(con: duckdb.DuckDBPyConnection, username: str) -> tuple[str, str] | None:
    """(role, password hash) of an account: the short read that sign-in does under the warehouse lock."""
    return store.password_record(con, username)


def verify_password(record: tuple[str, str] | None, username: str, password: str) -> tuple[Reviewer | None, str | None]:
    """The reviewer when the password matches the record (and a new hash when the stored one is outdated);
    (None, None) otherwise, after the same amount of hashing work. Raises HashingBusy when no slot frees up."""
    if not _hashing.acquire(timeout=HASHING_WAIT_S):
        raise HashingBusy()
    try:
        if record is None:
            _hasher.hash(password)  # an unknown name costs as long as a wrong password: names stay private
            return None, None
        role, password_hash = record
        try:
            _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return None, None
        rehashed = _hasher.hash(password) if _hasher.check_needs_rehash(password_hash) else None
        return Reviewer(username, role), rehashed
    finally:
        _hashing.release()


def _token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(con: duckdb.DuckDBPyConnection, reviewer: Reviewer, rehashed: str | None = None) -> str:
    """A new session for ``reviewer``; returns the token for the cookie. Expired sessions are dropped here."""
    token, at = secrets.token_urlsafe(32), now()
    store.save_session(con, _token_id(token), reviewer.username, at, at + SESSION_LIFETIME, rehashed)
    return token


def session_reviewer(con: duckdb.DuckDBPyConnection, token: str | None) -> Reviewer | None:
    """The account of a live session, with its role as it is now; None for an ended or unknown session."""
    if not token:
        return None
    row = store.session_account(con, _token_id(token), now())
    return Reviewer(*row) if row else None


def end_session(con: duckdb.DuckDBPyConnection, token: str | None) -> None:
    if token:
        store.delete_session(con, _token_id(token))


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a session without a token never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(expected, given)


class SignInThrottle:
    """Refuses sign-in attempts for a key (an account, a client address) that tried too often lately.

    A sliding window: ``limit`` attempts within ``window_s`` seconds lock the key until the oldest of them
    leaves the window. ``attempt`` checks and counts in one step under a lock, before any password hashing,
    so a burst of concurrent guesses cannot all pass the check before the first of them is counted; a
    sign-in that succeeds takes its attempt back (``succeeded``). Kept in the app's memory: one review
    process serves the page, and a restart forgets the count.
    """

    def __init__(self, limits: dict[str, int], window_s: float = 15 * 60, clock: Callable[[], float] = time.monotonic):
        self.limits, self.window_s, self.clock = limits, window_s, clock
        self._attempts: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def attempt(self, keys: dict[str, str]) -> int:
        """Seconds until every given key (kind -> value, e.g. ``{"account": "alice"}``) may try again; when
        that is 0 the attempt is counted against each key and may go on."""
        with self._lock:
            wait = 0.0
            for kind, value in keys.items():
                attempts = self._recent((kind, value))
                if len(attempts) >= self.limits[kind]:
                    wait = max(wait, attempts[-self.limits[kind]] + self.window_s - self.clock())
            if wait > 0:
                return math.ceil(wait)
            for key in keys.items():
                self._attempts.setdefault(key, deque()).append(self.clock())
            if len(self._attempts) > MAX_TRACKED_KEYS:  # many made-up names: forget what left the window
                for key in list(self._attempts):
                    self._recent(key)
            return 0

    def succeeded(self, keys: dict[str, str]) -> None:
        """A right password: the account starts afresh and the address gets this attempt back."""
        with self._lock:
            for kind, value in keys.items():
                attempts = self._attempts.get((kind, value))
                if kind == "account" or not attempts:
                    self._attempts.pop((kind, value), None)
                else:
                    attempts.pop()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        attempts = self._attempts.get(key, deque())
        while attempts and attempts[0] <= self.clock() - self.window_s:
            attempts.popleft()
        if not attempts:
            self._attempts.pop(key, None)
        return attempts
