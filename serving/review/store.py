"""The review page's own tables: accounts (``review_users``), sessions (``review_sessions``) and the stored
scrubbed renderings (``review_scrubbed``). Every statement on them is here; ``auth`` and ``scrubbed`` hold
the rules (hashing, expiry, when to scrub again). The queue itself is the curation stage's
(``curation.review_queue``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb

Con = duckdb.DuckDBPyConnection


def save_account(con: Con, username: str, role: str, password_hash: str, at: datetime) -> bool:
    """Create the account or replace its role and hash, ending its sessions; True when it is new."""
    con.execute("BEGIN TRANSACTION")
    existed = con.execute("SELECT count(*) FROM review_users WHERE username = ?", [username]).fetchone()[0]
    con.execute(
        "INSERT INTO review_users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (username) DO UPDATE SET role = excluded.role, password_hash = excluded.password_hash",
        [username, role, password_hash, at],
    )
    con.execute("DELETE FROM review_sessions WHERE username = ?", [username])  # signed in as before: no more
    con.execute("COMMIT")
    return not existed


def accounts(con: Con) -> list[tuple[str, str, datetime]]:
    """(user name, role, created at) for every account, by name."""
    return con.execute("SELECT username, role, created_at FROM review_users ORDER BY username").fetchall()


def password_record(con: Con, username: str) -> tuple[str, str] | None:
    """(role, password hash) of an account."""
    return con.execute("SELECT role, password_hash FROM review_users WHERE username = ?", [username]).fetchone()


def save_session(con: Con, session_id: str, username: str, at: datetime, expires_at: datetime,
                 rehashed: str | None) -> None:
    """A new session (expired ones are dropped here), and the account's new hash when it was outdated."""
    con.execute("DELETE FROM review_sessions WHERE expires_at <= ?", [at])
    con.execute("INSERT INTO review_sessions (id, username, created_at, expires_at) VALUES (?, ?, ?, ?)",
                [session_id, username, at, expires_at])
    if rehashed is not None:
        con.execute("UPDATE review_users SET password_hash = ? WHERE username = ?", [rehashed, username])


def session_account(con: Con, session_id: str, at: datetime) -> tuple[str, str] | None:
    """(user name, role as it is now) of a session live at ``at``."""
    return con.execute("SELECT u.username, u.role FROM review_sessions s JOIN review_users u "
                       "ON u.username = s.username WHERE s.id = ? AND s.expires_at > ?", [session_id, at]).fetchone()


def delete_session(con: Con, session_id: str) -> None:
    con.execute("DELETE FROM review_sessions WHERE id = ?", [session_id])


def scrubbed_rows(con: Con, interaction_ids: list[str]) -> dict[str, tuple]:
    """Stored renderings by interaction id: (source_key, messages, response, suggested_answer, feedback,
    withheld), the JSON columns as stored."""
    rows = con.execute("SELECT interaction_id, source_key, messages, response, suggested_answer, feedback, withheld "
                       "FROM review_scrubbed WHERE interaction_id IN (SELECT unnest(?))", [interaction_ids]).fetchall()
    return {row[0]: row[1:] for row in rows}


def save_scrubbed(con: Con, rows: Sequence[tuple]) -> None:
    """Store (interaction_id, source_key, messages, response, suggested_answer, feedback, withheld, scrubbed_at)
    rows, replacing older renderings."""
    con.executemany(
        "INSERT OR REPLACE INTO review_scrubbed (interaction_id, source_key, messages, response, suggested_answer, "
        "feedback, withheld, scrubbed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
