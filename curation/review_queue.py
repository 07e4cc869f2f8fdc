"""The review queue (``review_queue``): bad cases waiting for annotators, and their decisions.

Mining puts the top new bad cases in as ``new`` and refreshes items still ``new``; the review page records
decisions (accepted, edited, rejected); building examples reads them. Every statement on the table is here.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from flywheel.warehouse import bulk

Con = duckdb.DuckDBPyConnection
QUEUED = ("interaction_id", "cluster_id", "priority", "suggested_answer")


@dataclass(frozen=True)
class Verdict:
    """Where an item of the queue stands, as example building reads it."""

    status: str
    suggested_answer: str | None
    edited_answer: str | None
    reason: str | None
    reviewer: str | None
    revision: int


def queue_statuses(con: Con) -> dict[str, str]:
    return dict(con.execute("SELECT interaction_id, status FROM review_queue").fetchall())


def enqueue(con: Con, fresh: list[tuple[str, str | None, float, str | None]],
            refresh: list[tuple[str, str | None, float, str | None]]) -> None:
    """Add ``fresh`` (interaction_id, cluster_id, priority, suggested_answer) items as ``new``, and update the
    ``refresh`` items that are still ``new``: a changed item gets a new revision, so an annotator looking at the
    old one cannot decide on it."""
    bulk(con, "INSERT INTO review_queue (interaction_id, cluster_id, priority, status, suggested_answer) "
         "SELECT interaction_id, cluster_id, priority, 'new', suggested_answer FROM batch", QUEUED, fresh)
    bulk(con, "UPDATE review_queue q SET cluster_id = b.cluster_id, priority = b.priority, "
         "suggested_answer = b.suggested_answer, revision = q.revision + 1 FROM batch b "
         "WHERE q.interaction_id = b.interaction_id AND q.status = 'new' AND (q.cluster_id IS DISTINCT FROM "
         "b.cluster_id OR q.priority IS DISTINCT FROM b.priority OR q.suggested_answer IS DISTINCT FROM "
         "b.suggested_answer)", QUEUED, refresh)


def verdicts(con: Con) -> dict[str, Verdict]:
    """Every queued item's status and decision, by interaction id."""
    rows = con.execute("SELECT interaction_id, status, suggested_answer, edited_answer, reason, reviewer, revision "
                       "FROM review_queue ORDER BY interaction_id").fetchall()
    return {r[0]: Verdict(*r[1:]) for r in rows}


def count_reviewed(con: Con) -> int:
    """Items an annotator has decided."""
    return con.execute("SELECT count(*) FROM review_queue WHERE status <> 'new'").fetchone()[0]
