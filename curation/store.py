"""Curation's tables: ``bad_cases``, ``judge_scores``, ``examples``, ``dataset_versions`` and
``imported_examples``, and every statement on them. (The review queue has its own module:
``curation.review_queue``.) Callers pass an open connection, so one transaction can span several calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import orjson

from flywheel.warehouse import bulk

Con = duckdb.DuckDBPyConnection


# --- bad cases and judge grades ------------------------------------------------------------------
def save_bad_cases(con: Con, rows: list[tuple[str, float, str, str | None, str | None]]) -> None:
    """Upsert (interaction_id, priority, signals JSON, cluster_id, suggested_answer) rows."""
    bulk(con, "INSERT INTO bad_cases (interaction_id, priority, signals, cluster_id, suggested_answer) "
         "SELECT * FROM batch ON CONFLICT (interaction_id) DO UPDATE SET priority = excluded.priority, "
         "signals = excluded.signals, cluster_id = excluded.cluster_id, suggested_answer = excluded.suggested_answer",
         ("interaction_id", "priority", "signals", "cluster_id", "suggested_answer"), rows)


def count_bad_cases(con: Con) -> int:
    return con.execute("SELECT count(*) FROM bad_cases").fetchone()[0]


def judge_grades(con: Con, keys: list[str]) -> dict[str, float]:
    """Stored judge grades by content key."""
    if not keys:
        return {}
    return dict(con.execute("SELECT key, score FROM judge_scores WHERE key IN (SELECT unnest(?))", [keys]).fetchall())


def save_judge_grade(con: Con, key: str, model: str, score: float) -> None:
    con.execute("INSERT INTO judge_scores (key, model, score) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [key, model, score])


# --- examples and dataset versions -----------------------------------------------------------------
def example_ids(con: Con) -> set[str]:
    """Ids of every example an earlier version holds."""
    return {row[0] for row in con.execute("SELECT id FROM examples").fetchall()}


def training_rows(con: Con) -> list[dict[str, Any]]:
    """Every earlier version's training rows (with their kind), in id order: the replay pool."""
    return [{**orjson.loads(payload), "kind": kind} for kind, payload in con.execute(
        "SELECT kind, payload FROM examples WHERE split = 'train' ORDER BY id").fetchall()]


def version_windows(con: Con) -> dict[str, str]:
    """Dataset version -> the key of the window it was curated from."""
    return dict(con.execute("SELECT version, window_key FROM dataset_versions").fetchall())


def save_version(con: Con, version: str, uri: str, window_key: str, counts: tuple[int, int, int], content_hash: str,
                 stats: dict[str, Any], examples: list[tuple[str, str, str, str, str]]) -> None:
    """Record a written version (n_sft, n_dpo, n_new in ``counts``) and its new examples
    (id, kind, payload JSON, source_interactions JSON, split), in one transaction."""
    columns = ("id", "kind", "payload", "source_interactions", "split", "dataset_version")
    con.execute("BEGIN TRANSACTION")
    bulk(con, f"INSERT INTO examples ({', '.join(columns)}) SELECT * FROM batch ON CONFLICT DO NOTHING", columns,
         [(*row, version) for row in examples])
    con.execute(
        "INSERT INTO dataset_versions (version, uri, window_key, n_sft, n_dpo, n_new, content_hash, stats) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [version, uri, window_key, *counts, content_hash, orjson.dumps(stats).decode()])
    con.execute("COMMIT")


# --- imported data ---------------------------------------------------------------------------------
def imported_examples(con: Con, use_as: str) -> Iterator[dict[str, Any]]:
    """Imported seed or replay records (see ``curation.importers``), oldest import first."""
    for row_id, kind, payload, source in con.execute(
            "SELECT id, kind, payload, source FROM imported_examples WHERE use_as = ? ORDER BY imported_at, id",
            [use_as]).fetchall():
        record = orjson.loads(payload)
        yield {**record, "id": row_id, "kind": kind, "origin": use_as,
               "source_interactions": record.get("source_interactions") or [f"import:{source}"]}


def save_imported(con: Con, rows: list[tuple[str, str, str, str, str]]) -> int:
    """Store (id, kind, use_as, payload JSON, source) rows not stored yet; returns how many were new."""
    before = con.execute("SELECT count(*) FROM imported_examples").fetchone()[0]
    bulk(con, "INSERT INTO imported_examples (id, kind, use_as, payload, source) SELECT * FROM batch "
         "ON CONFLICT DO NOTHING", ("id", "kind", "use_as", "payload", "source"), rows)
    return con.execute("SELECT count(*) FROM imported_examples").fetchone()[0] - before
