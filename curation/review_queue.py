"""The review queue (``review_queue``) and its decision log (``review_decisions``): bad cases waiting for
annotators, and what they decided.

Mining puts the top new bad cases in as ``new`` and refreshes items still ``new``; the review page lists,
filters and decides items (accepted, edited, rejected); building examples reads the verdicts. Every statement
on the two tables is here. Queue order is the same everywhere (list, j/k, "next after a decision"): clusters by
their highest priority, then items by priority inside a cluster. The page's reads join ``bad_cases`` (signals)
and ``interactions`` (workload, time) for its filters; it never reads raw text here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import duckdb
import orjson

from flywheel.warehouse import bulk, content_id, now

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


def suggested_answers(con: Con, interaction_ids: list[str]) -> dict[str, str | None]:
    """The suggested answer of each of these queued items (None where mining had none)."""
    return dict(con.execute("SELECT interaction_id, suggested_answer FROM review_queue "
                            "WHERE interaction_id IN (SELECT unnest(?))", [interaction_ids]).fetchall())


# --- the review page ------------------------------------------------------------------------------

STATUSES = ("new", "accepted", "edited", "rejected")
DECISIONS = ("accepted", "edited", "rejected")
MAX_ANSWER_CHARS = 20_000
MAX_REASON_CHARS = 500

_BASE = """
FROM review_queue q
LEFT JOIN bad_cases b ON b.interaction_id = q.interaction_id
LEFT JOIN interactions i ON i.id = q.interaction_id
JOIN (SELECT coalesce(cluster_id, interaction_id) AS grp, max(priority) AS grp_priority
      FROM review_queue GROUP BY 1) g ON g.grp = coalesce(q.cluster_id, q.interaction_id)
"""
_ORDER = "ORDER BY g.grp_priority DESC NULLS LAST, g.grp, q.priority DESC NULLS LAST, q.interaction_id"


class FilterError(ValueError):
    """A queue filter value that cannot be used; the message names the parameter."""


class DecisionError(ValueError):
    """A decision that cannot be stored as given; the message says what to change."""


@dataclass(frozen=True)
class QueueFilter:
    """What part of the queue an annotator is working through; travels in the query string."""

    status: str = "new"
    signal: str | None = None
    workload: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    cluster: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> QueueFilter:
        status = params.get("status") or "new"
        if status not in (*STATUSES, "all"):
            raise FilterError(f"status={status!r}: use one of {', '.join(STATUSES)} or all")
        return cls(status=status, signal=params.get("signal") or None, workload=params.get("workload") or None,
                   date_from=_date_param(params, "from"), date_to=_date_param(params, "to"),
                   cluster=params.get("cluster") or None)

    def params(self) -> dict[str, str]:
        """The non-default values, for links that keep the annotator's view."""
        out = {"status": self.status, "signal": self.signal, "workload": self.workload,
               "from": self.date_from.isoformat() if self.date_from else None,
               "to": self.date_to.isoformat() if self.date_to else None, "cluster": self.cluster}
        return {k: v for k, v in out.items() if v and not (k == "status" and v == "new")}

    def where(self, with_status: bool = True) -> tuple[str, list[Any]]:
        clauses, args = ["TRUE"], []
        if with_status and self.status != "all":
            clauses.append("q.status = ?")
            args.append(self.status)
        if self.signal:
            clauses.append("list_contains(json_keys(b.signals), ?)")
            args.append(self.signal)
        if self.workload:
            clauses.append("i.workload_id = ?")
            args.append(self.workload)
        if self.date_from:
            clauses.append("i.ts >= ?")
            args.append(datetime.combine(self.date_from, time.min, tzinfo=UTC))
        if self.date_to:
            clauses.append("i.ts < ?")
            args.append(datetime.combine(self.date_to + timedelta(days=1), time.min, tzinfo=UTC))
        if self.cluster:
            clauses.append("q.cluster_id = ?")
            args.append(self.cluster)
        return " AND ".join(clauses), args


def _date_param(params: Mapping[str, str], name: str) -> date | None:
    value = params.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{name}={value!r}: use a date like 2026-11-02") from None


def _rows(cursor: Con) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _signals(raw: str | None) -> dict[str, float]:
    return orjson.loads(raw) if raw else {}


def queue_page(con: Con, filt: QueueFilter, limit: int, offset: int = 0
               ) -> tuple[list[dict[str, Any]], int]:
    """One page of queue items in queue order, and how many items the filter matches in all."""
    where, args = filt.where()
    total = con.execute(f"SELECT count(*) {_BASE} WHERE {where}", args).fetchone()[0]
    rows = _rows(con.execute(
        f"""SELECT q.interaction_id, q.cluster_id, q.priority, q.status, q.reviewer, q.decided_at,
                   b.signals, i.workload_id, i.ts,
                   count(*) OVER (PARTITION BY q.cluster_id) AS cluster_size
            {_BASE} WHERE {where} {_ORDER} LIMIT ? OFFSET ?""", [*args, limit, offset]))
    for row in rows:
        row["signals"] = _signals(row["signals"])
    return rows, total


def status_counts(con: Con, filt: QueueFilter) -> dict[str, int]:
    """Items per status under the filter's other conditions: what is left and what is done."""
    where, args = filt.where(with_status=False)
    found = dict(con.execute(f"SELECT q.status, count(*) {_BASE} WHERE {where} GROUP BY 1", args).fetchall())
    return {s: found.get(s, 0) for s in STATUSES}


def filter_choices(con: Con) -> dict[str, list[str]]:
    """The signals and workloads present in the queue, for the filter menus."""
    signals = con.execute(
        "SELECT DISTINCT unnest(json_keys(b.signals)) AS s FROM review_queue q "
        "JOIN bad_cases b ON b.interaction_id = q.interaction_id WHERE b.signals IS NOT NULL ORDER BY s"
    ).fetchall()
    workloads = con.execute(
        "SELECT DISTINCT i.workload_id FROM review_queue q JOIN interactions i ON i.id = q.interaction_id "
        "WHERE i.workload_id IS NOT NULL ORDER BY 1"
    ).fetchall()
    return {"signals": [s for (s,) in signals], "workloads": [w for (w,) in workloads]}


def queue_item(con: Con, interaction_id: str) -> dict[str, Any] | None:
    """The queue row with its signals and the interaction's metadata (no raw text)."""
    rows = _rows(con.execute(
        f"""SELECT q.*, b.signals, i.ts, i.workload_id, i.model, i.adapter, i.raw_purged_at,
                   i.id IS NOT NULL AS interaction_exists
            {_BASE} WHERE q.interaction_id = ?""", [interaction_id]))
    if not rows:
        return None
    rows[0]["signals"] = _signals(rows[0]["signals"])
    return rows[0]


def cluster_members(con: Con, cluster_id: str | None, limit: int = 20
                    ) -> list[dict[str, Any]]:
    """The items of one cluster in queue order: near-duplicates an annotator can decide together."""
    if not cluster_id:
        return []
    return _rows(con.execute(
        f"SELECT q.interaction_id, q.status, q.priority, q.reviewer {_BASE} WHERE q.cluster_id = ? {_ORDER} LIMIT ?",
        [cluster_id, limit]))


def neighbours(con: Con, filt: QueueFilter, interaction_id: str
               ) -> tuple[str | None, str | None]:
    """Previous and next item in the filtered queue order, relative to ``interaction_id``.

    The item itself may no longer match the filter (it was just decided); its place in the full
    order still tells what comes next.
    """
    where, args = filt.where(with_status=False)
    ordered = con.execute(f"SELECT q.interaction_id, q.status {_BASE} WHERE {where} {_ORDER}", args).fetchall()
    ids = [iid for iid, _ in ordered]
    matches = [filt.status in ("all", status) for _, status in ordered]
    if interaction_id not in ids:
        return None, next((iid for iid, ok in zip(ids, matches, strict=True) if ok), None)
    at = ids.index(interaction_id)
    before = [iid for iid, ok in zip(ids[:at], matches[:at], strict=True) if ok]
    after = [iid for iid, ok in zip(ids[at + 1:], matches[at + 1:], strict=True) if ok]
    return (before[-1] if before else None), (after[0] if after else None)


@dataclass(frozen=True)
class Decision:
    """One annotator's verdict on one item, taken on the item as it was at ``revision``."""

    interaction_id: str
    status: str
    reviewer: str
    revision: int
    edited_answer: str | None = None
    reason: str | None = None

    def checked(self) -> Decision:
        if self.status not in DECISIONS:
            raise DecisionError(f"decision {self.status!r}: use one of {', '.join(DECISIONS)}")
        answer = (self.edited_answer or "").strip()
        reason = (self.reason or "").strip()
        if self.status == "edited" and not answer:
            raise DecisionError("The edited answer is empty: write the answer, or reject the item with a reason.")
        if len(answer) > MAX_ANSWER_CHARS:
            raise DecisionError(f"The edited answer is {len(answer)} characters; keep it under {MAX_ANSWER_CHARS}.")
        if self.status == "rejected" and not reason:
            raise DecisionError("A rejection needs a reason: say what is wrong with this case.")
        if len(reason) > MAX_REASON_CHARS:
            raise DecisionError(f"The reason is {len(reason)} characters; keep it under {MAX_REASON_CHARS}.")
        return replace(self, edited_answer=answer if self.status == "edited" else None,
                       reason=reason if self.status == "rejected" else None)


@dataclass
class Outcome:
    """What a decision changed: the items saved, or the newer state that stopped it."""

    saved: list[str] = field(default_factory=list)
    left_alone: int = 0  # cluster members already decided by someone (or with nothing to accept)
    conflict: dict[str, Any] | None = None


def decide(con: Con, decision: Decision, whole_cluster: bool = False) -> Outcome:
    """Store a decision unless the item changed since the annotator loaded it (then report who changed it).

    Accepting takes the suggested answer as the target, or the model's own answer when there is no
    suggestion (the bad-case signal was wrong). With ``whole_cluster`` the same decision also goes to
    the cluster's other items that are still new, except that a cluster-wide accept only takes items
    with a suggestion; items someone already decided are left as they are.
    """
    decision = decision.checked()
    con.execute("BEGIN TRANSACTION")
    try:
        outcome = _decide(con, decision, whole_cluster)
        con.execute("COMMIT" if outcome.saved else "ROLLBACK")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return outcome


def _decide(con: Con, d: Decision, whole_cluster: bool) -> Outcome:
    current = con.execute(
        "SELECT status, revision, reviewer, decided_at, cluster_id FROM review_queue "
        "WHERE interaction_id = ?", [d.interaction_id]).fetchone()
    if current is None:
        raise DecisionError(f"item {d.interaction_id!r} is not in the review queue")
    status, revision, reviewer, decided_at, cluster_id = current
    if revision != d.revision:
        return Outcome(conflict={"status": status, "reviewer": reviewer, "decided_at": decided_at,
                                 "revision": revision})
    when = now()
    assignment = ("SET status = ?, edited_answer = ?, reason = ?, reviewer = ?, decided_at = ?, "
                  "revision = revision + 1")
    values = [d.status, d.edited_answer, d.reason, d.reviewer, when]
    saved = con.execute(f"UPDATE review_queue {assignment} WHERE interaction_id = ? AND revision = ? "
                        "RETURNING interaction_id, revision", [*values, d.interaction_id, d.revision]).fetchall()
    others: list[tuple[str, int]] = []
    left_alone = 0
    if whole_cluster and cluster_id is not None:
        needs_suggestion = "AND suggested_answer IS NOT NULL" if d.status == "accepted" else ""
        others = con.execute(
            f"UPDATE review_queue {assignment} WHERE cluster_id = ? AND interaction_id <> ? AND status = 'new' "
            f"{needs_suggestion} RETURNING interaction_id, revision",
            [*values, cluster_id, d.interaction_id]).fetchall()
        size = con.execute("SELECT count(*) FROM review_queue WHERE cluster_id = ?", [cluster_id]).fetchone()[0]
        left_alone = size - 1 - len(others)
    log = [(content_id(iid, rev, d.reviewer, d.status), iid, cluster_id, d.reviewer, d.status, d.edited_answer,
            d.reason, rev, iid != d.interaction_id, when) for iid, rev in [*saved, *others]]
    con.executemany(
        "INSERT INTO review_decisions (id, interaction_id, cluster_id, reviewer, status, edited_answer, reason, "
        "revision, via_cluster, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", log)
    return Outcome(saved=[iid for iid, _ in [*saved, *others]], left_alone=left_alone)


def audit_summary(con: Con) -> list[dict[str, Any]]:
    """Per annotator: decisions by kind and the last one's time."""
    return _rows(con.execute(
        """SELECT reviewer,
                  count(*) FILTER (WHERE status = 'accepted') AS accepted,
                  count(*) FILTER (WHERE status = 'edited') AS edited,
                  count(*) FILTER (WHERE status = 'rejected') AS rejected,
                  count(*) AS total, max(decided_at) AS last_decided_at
           FROM review_decisions GROUP BY reviewer ORDER BY reviewer"""))


def audit_decisions(con: Con, reviewer: str, limit: int = 500) -> list[dict[str, Any]]:
    """One annotator's decisions, newest first, including ones that were later replaced."""
    return _rows(con.execute(
        """SELECT d.*, q.revision AS current_revision FROM review_decisions d
           LEFT JOIN review_queue q ON q.interaction_id = d.interaction_id
           WHERE d.reviewer = ? ORDER BY d.decided_at DESC, d.interaction_id LIMIT ?""", [reviewer, limit]))
