"""The collectors' tables: ``interactions``, ``feedback`` and ``ingest_state``, and every statement on them.

Ingest writes through these functions; other stages read interactions and feedback only through them
(mining, the review page), and raw-text retention happens here. Callers pass an open connection, so a
caller's transaction spans several calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from flywheel.settings import Settings
from flywheel.warehouse import connect, now, purge_quarantined_raw

Con = duckdb.DuckDBPyConnection


@dataclass(frozen=True)
class FileState:
    """Where a collect run stopped in a file, and the file's identity at that point."""

    offset: int
    line: int
    size: int
    mtime: float
    done: bool
    device: int | None = None
    inode: int | None = None
    head_hash: str | None = None


# --- ingest --------------------------------------------------------------------------------------
def file_states(con: Con, sources: list[str]) -> dict[str, FileState]:
    return {row[0]: FileState(*row[1:]) for row in con.execute(
        'SELECT source, "offset", line, size, mtime, done, device, inode, head_hash FROM ingest_state '
        "WHERE source IN (SELECT unnest(?))", [sources]).fetchall()}


def stored_offset(con: Con, source: str) -> int | None:
    rows = con.execute('SELECT "offset" FROM ingest_state WHERE source = ?', [source]).fetchall()
    return rows[0][0] if rows else None


def save_file_state(con: Con, source: str, state: FileState) -> None:
    con.execute(
        'INSERT INTO ingest_state (source, "offset", line, size, mtime, done, device, inode, head_hash, '
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
        '"offset" = excluded."offset", line = excluded.line, size = excluded.size, mtime = excluded.mtime, '
        "done = excluded.done, device = excluded.device, inode = excluded.inode, "
        "head_hash = excluded.head_hash, updated_at = excluded.updated_at",
        [source, state.offset, state.line, state.size, state.mtime, state.done, state.device, state.inode,
         state.head_hash, now()])


def changed_interactions(con: Con, incoming: pa.Table, content_columns: list[str]) -> list[str]:
    """Ids of ``incoming`` interactions stored with other content (raw text not purged), in id order."""
    if incoming.num_rows == 0:
        return []
    changed = " OR ".join(f"t.{c} IS DISTINCT FROM n.{c}" for c in content_columns if c != "messages")
    return [row[0] for row in con.execute(
        "SELECT n.id FROM incoming n JOIN interactions t ON t.id = n.id WHERE t.raw_purged_at IS NULL AND "
        f"(t.messages::VARCHAR IS DISTINCT FROM n.messages OR {changed}) ORDER BY n.id").fetchall()]


def insert_new(con: Con, table: str, incoming: pa.Table) -> int:
    """Insert the rows whose id is not stored yet into ``interactions`` or ``feedback``; returns how many."""
    if table not in ("interactions", "feedback"):
        raise ValueError(f"collectors.store.insert_new: {table!r} is not a collectors table")
    if incoming.num_rows == 0:
        return 0
    columns = ", ".join(incoming.schema.names)
    before = con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    con.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming ON CONFLICT DO NOTHING")
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0] - before


# --- reads for other stages ----------------------------------------------------------------------
def interactions_in_window(con: Con, since: datetime | None, until: datetime | None) -> list[tuple]:
    """(id, ts, messages, response, request, completion_tokens) of the interactions in [since, until) whose raw
    text is still there, oldest first (ties by id): a stable order."""
    return con.execute(
        "SELECT id, ts, messages, response, request, completion_tokens FROM interactions "
        "WHERE (? IS NULL OR ts >= ?) AND (? IS NULL OR ts < ?) AND raw_purged_at IS NULL "
        "ORDER BY ts NULLS FIRST, id", [since, since, until, until]).fetchall()


def feedback_on_stored(con: Con) -> list[tuple]:
    """(interaction_id, kind, value, text, id) of feedback whose interaction is stored, in time order."""
    return con.execute(
        "SELECT f.interaction_id, f.kind, f.value, f.text, f.id FROM feedback f JOIN interactions i "
        "ON i.id = f.interaction_id ORDER BY f.ts NULLS FIRST, f.id").fetchall()


def interaction_details(con: Con, ids: list[str]) -> dict[str, dict[str, Any]]:
    """What the review page shows of interactions: time, workload, model, adapter, raw text and purge time."""
    rows = con.execute(
        "SELECT id, ts, workload_id, model, adapter, messages, response, raw_purged_at FROM interactions "
        "WHERE id IN (SELECT unnest(?))", [ids]).fetchall()
    names = ("id", "ts", "workload_id", "model", "adapter", "messages", "response", "raw_purged_at")
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows}


def feedback_of(con: Con, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The feedback on these interactions (kind, value, text), in time order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for iid, kind, value, text in con.execute(
            "SELECT interaction_id, kind, value, text FROM feedback WHERE interaction_id IN (SELECT unnest(?)) "
            "ORDER BY ts NULLS FIRST, id", [ids]).fetchall():
        out.setdefault(iid, []).append({"kind": kind, "value": value, "text": text})
    return out


# --- retention -----------------------------------------------------------------------------------
def purge_raw_text(settings: Settings, older_than_days: int | None = None) -> dict[str, int]:
    """Remove raw interaction text (and raw quarantined lines) older than the retention period.

    ``interactions.messages/response/request`` become NULL and ``raw_purged_at`` is set; the id,
    timestamps, model and token counts stay for the metrics. Curated datasets hold scrubbed text only,
    so they are untouched. Runs again without changing anything more."""
    days = settings.scrub.raw_retention_days if older_than_days is None else older_than_days
    if days < 0:
        raise ValueError(f"--older-than-days must be >= 0, got {days}")
    with connect(settings) as con:
        con.execute("BEGIN TRANSACTION")
        interactions = con.execute(
            "UPDATE interactions SET messages = NULL, response = NULL, request = NULL, raw_purged_at = now() "
            "WHERE raw_purged_at IS NULL AND coalesce(ts, ingested_at) < now() - to_days(CAST(? AS INTEGER))",
            [days]).fetchone()[0]
        quarantined = purge_quarantined_raw(con, days)
        con.execute("COMMIT")
    return {"interactions_purged": int(interactions), "quarantine_raw_purged": quarantined, "older_than_days": days}
