"""Test helpers for the review page: a warehouse with synthetic traffic, a review queue, and accounts.

Traffic comes from ``demo.sample_data`` (fake people, Lumen Notes questions) through the real
collector. The queue is filled the simple way a miner would (thumbs-down / correction / regenerate,
weighted by the curate settings; clusters by the fact asked about), so these tests do not depend on
the curation engineer's miner. Two items are planted: one whose conversation carries HTML and script,
one with a known email address and phone number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import orjson

from collectors.ingest import collect
from curation.step import Step
from demo import sample_data
from demo.domain import FACTS, SYSTEM_PROMPT
from flywheel.settings import Settings, load_settings
from flywheel.warehouse import connect
from serving.review.auth import add_user
from serving.review.scrubbed import make_scrubber

PASSWORD = "correct horse battery staple"
SCRIPT_PAYLOAD = ('<script>window.__pwned = 1; document.title = "pwned"</script>'
                  '<img src="x" onerror="window.__pwned = 2"><b>bold?</b>')
XSS_ID = "planted-xss"
PII_ID = "planted-pii"


@dataclass(frozen=True)
class SeededQueue:
    items: int
    clusters: dict[str, list[str]]  # cluster id -> item ids in queue order
    pii_email: str
    pii_phone: str


def _fact_of(text: str):
    norm = " ".join(text.lower().split())
    for fact in FACTS:
        if any(q.lower().rstrip("?.!") in norm for q in fact.questions):
            return fact
    return None


def _planted(seed: int) -> tuple[list[dict], list[dict], str, str]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    email, phone = fake.email(), "+1 415-555-0142"
    when = datetime(2026, 11, 3, 12, 0, tzinfo=UTC).isoformat()
    export, plus = FACTS[4], FACTS[0]
    records = [
        {"id": XSS_ID, "timestamp": when, "workload_id": "support", "model": "lumen-support",
         "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                      {"role": "user", "content": f"{export.questions[0]} {SCRIPT_PAYLOAD}"}],
         "response": f"Sure {SCRIPT_PAYLOAD}"},
        {"id": PII_ID, "timestamp": when, "workload_id": "billing", "model": "lumen-support",
         "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                      {"role": "user", "content": f"{plus.questions[0]} My email is {email} and you can "
                                                  f"call me on {phone}."}],
         "response": plus.wrong},
    ]
    feedback = [
        {"interaction_id": XSS_ID, "timestamp": when, "kind": "thumb", "value": -1, "user": "tester"},
        {"interaction_id": XSS_ID, "timestamp": when, "kind": "correction", "text": export.answer,
         "user": "support-agent"},
        {"interaction_id": PII_ID, "timestamp": when, "kind": "thumb", "value": -1, "user": "tester"},
        {"interaction_id": PII_ID, "timestamp": when, "kind": "comment",
         "text": f"Wrong price. Write to me at {email}", "user": "tester"},
        {"interaction_id": PII_ID, "timestamp": when, "kind": "correction", "text": plus.answer,
         "user": "support-agent"},
    ]
    return records, feedback, email, phone


def seed_review_queue(settings: Settings, n: int = 80, seed: int = 7) -> SeededQueue:
    """Ingest synthetic traffic (plus the planted items) and queue every interaction with a bad signal."""
    settings.ensure_dirs()
    records, feedback = sample_data.interactions(n, seed)
    planted_records, planted_feedback, email, phone = _planted(seed)
    inbox: Path = settings.inbox_dir
    sources = [sample_data.write_jsonl(inbox / "review-interactions.jsonl", records + planted_records),
               sample_data.write_jsonl(inbox / "review-feedback.jsonl", feedback + planted_feedback)]
    collect(settings, sources)
    weights = settings.curate.signal_weights
    with connect(settings) as con:
        rows = con.execute(
            "SELECT i.id, i.messages, i.ts, list(f.kind ORDER BY f.id), list(f.value ORDER BY f.id), "
            "       list(f.text ORDER BY f.id) "
            "FROM interactions i JOIN feedback f ON f.interaction_id = i.id GROUP BY ALL ORDER BY i.id").fetchall()
        queue = []
        for iid, messages, _ts, kinds, values, texts in rows:
            signals: dict[str, float] = {}
            for kind, value in zip(kinds, values, strict=True):
                if kind == "thumb" and value == -1:
                    signals["thumb_down"] = weights["thumb_down"]
                elif kind in ("correction", "regenerate"):
                    signals[kind] = weights[kind]
                elif kind == "comment":
                    signals["negative_comment"] = weights["negative_comment"]
            if not signals:
                continue
            question = next(m["content"] for m in orjson.loads(messages) if m["role"] == "user")
            fact = _fact_of(question)
            cluster = f"c-{fact.id}" if fact else f"c-{iid}"
            suggestion = next((t for k, t in zip(kinds, texts, strict=True) if k == "correction"), None)
            queue.append((iid, sum(signals.values()), orjson.dumps(signals).decode(), cluster, suggestion))
        con.executemany("INSERT INTO bad_cases (interaction_id, priority, signals, cluster_id, suggested_answer) "
                        "VALUES (?, ?, ?, ?, ?)", queue)
        con.executemany("INSERT INTO review_queue (interaction_id, priority, cluster_id, suggested_answer) "
                        "VALUES (?, ?, ?, ?)", [(q[0], q[1], q[3], q[4]) for q in queue])
    clusters: dict[str, list[str]] = {}
    for iid, _priority, _, cluster, _ in sorted(queue, key=lambda q: (-q[1], q[0])):
        clusters.setdefault(cluster, []).append(iid)
    return SeededQueue(items=len(queue), clusters=clusters, pii_email=email, pii_phone=phone)


def add_accounts(settings: Settings) -> None:
    """Two annotators and a lead, all with ``PASSWORD``."""
    for name, role in (("alice", "annotator"), ("bob", "annotator"), ("lena", "lead")):
        add_user(settings, name, role, PASSWORD)


@cache
def shared_scrubber() -> Step:
    """One loaded scrubber (spaCy takes seconds to load) for every review test app in this test session.

    The apps under test use the default scrub settings too, so this is the scrubber they would build.
    """
    return make_scrubber(load_settings())
