"""Bad-case mining on the warehouse: signals, priority, clusters, the review queue, the cached LLM judge."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from net import judge_server

from collectors.ingest import collect
from curation.examples import build_examples
from curation.mining import load_interactions, mine
from curation.review_queue import verdicts
from demo.domain import SYSTEM_PROMPT
from demo.sample_data import write_inbox
from flywheel.warehouse import connect

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _add(settings, rows: list[tuple[str, str, str, list[tuple]]], request: dict | None = None) -> None:
    """rows: (interaction id, user text, answer, [(kind, value, text), ...])."""
    with connect(settings) as con:
        for n, (iid, question, answer, feedback) in enumerate(rows):
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}]
            con.execute("INSERT INTO interactions (id, ts, messages, response, request, completion_tokens) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        [iid, T0 + timedelta(minutes=n), json.dumps(messages), answer,
                         json.dumps(request) if request else None, 64 if request else 12])
            for k, (kind, value, text) in enumerate(feedback):
                con.execute("INSERT INTO feedback (id, interaction_id, ts, kind, value, text) VALUES (?, ?, ?, ?, ?, ?)",
                            [f"{iid}-f{k}", iid, T0 + timedelta(minutes=n, seconds=k), kind, value, text])


def test_each_signal_fires_with_its_weight(settings) -> None:
    _add(settings, [
        ("down", "How much does the Plus plan cost?", "The Plus plan costs 5 dollars per month.", [("thumb", -1, None)]),
        ("low", "What is your refund policy?", "Refunds within 14 days.", [("rating", 1, None)]),
        ("fix", "Does Lumen work offline?", "No, Lumen needs internet.",
         [("correction", None, "Yes, the apps work offline and sync when you reconnect.")]),
        ("regen", "Student pricing?", "There is no student discount.", [("regenerate", None, None)]),
        ("comment", "Team plan minimum seats?", "At least 10 seats.", [("comment", None, "That is wrong, it's 3.")]),
        ("sorry", "Can I pay with PayPal?", "I'm sorry, I can't help with that.", []),
        ("empty", "How do I export my notes?", "   ", []),
        ("fine", "How do I share a note?", "Open the note and click Share.", [("thumb", 1, None),
                                                                           ("comment", None, "great, thanks")]),
    ])
    result = mine(settings)
    with connect(settings) as con:
        rows = {r[0]: (r[1], orjson.loads(r[2])) for r in
                con.execute("SELECT interaction_id, priority, signals FROM bad_cases").fetchall()}
    weights = settings.curate.signal_weights
    expected = {"down": "thumb_down", "low": "low_rating", "fix": "correction", "regen": "regenerate",
                "comment": "negative_comment", "sorry": "refusal", "empty": "empty_answer"}
    assert set(rows) == set(expected)  # the well-rated answer is not a bad case
    for iid, signal in expected.items():
        assert rows[iid] == (weights[signal], {signal: weights[signal]})
    assert result.bad_cases == 7 and result.by_signal["correction"] == 1


def test_truncated_answer_and_disabled_signal(settings) -> None:
    settings.curate.signal_weights["refusal"] = 0.0
    _add(settings, [("cut", "Explain sharing in detail", "Open the note, click Share, and then", [])],
         request={"max_tokens": 64, "messages": []})
    _add(settings, [("sorry2", "Who are you?", "I'm sorry, I cannot help.", [])])
    mine(settings)
    with connect(settings) as con:
        found = dict(con.execute("SELECT interaction_id, signals FROM bad_cases").fetchall())
    assert set(found) == {"cut"} and "empty_answer" in found["cut"]


def test_priority_orders_the_queue_and_clusters_group_similar_prompts(settings) -> None:
    settings.curate.review_top_n = 3
    _add(settings, [
        ("a1", "How much does the Plus plan cost?", "5 dollars.", [("thumb", -1, None)]),
        ("a2", "how much does the plus plan cost", "5 dollars.", [("thumb", -1, None), ("correction", None, "8 dollars.")]),
        ("b1", "Can I import notes from Evernote?", "No.", [("thumb", -1, None), ("rating", 1, None)]),
        ("c1", "Is there a discount for students?", "No.", [("regenerate", None, None)]),
    ])
    result = mine(settings)
    with connect(settings) as con:
        queue = con.execute("SELECT interaction_id, cluster_id, suggested_answer, status FROM review_queue "
                            "ORDER BY priority DESC, interaction_id").fetchall()
    assert [q[0] for q in queue] == ["a2", "b1", "a1"] and result.queued == 3  # c1 (lowest) did not fit
    by_id = {q[0]: q for q in queue}
    assert by_id["a1"][1] == by_id["a2"][1] != by_id["b1"][1]  # one cluster for the same question
    assert by_id["a2"][2] == "8 dollars." and by_id["a1"][2] is None
    assert result.clusters == 3


def test_decided_items_are_never_touched_and_rerunning_adds_nothing(settings) -> None:
    _add(settings, [("x", "Offline mode?", "No.", [("thumb", -1, None)]),
                    ("y", "Payment options?", "Cards only.", [("thumb", -1, None)])])
    mine(settings)
    with connect(settings) as con:
        con.execute("UPDATE review_queue SET status = 'rejected', reviewer = 'ann', reason = 'off topic', "
                    "decided_at = now(), revision = revision + 1 WHERE interaction_id = 'x'")
        con.execute("INSERT INTO feedback (id, interaction_id, kind, text) VALUES "
                    "('x-late', 'x', 'correction', 'Yes, it works offline.'), "
                    "('y-late', 'y', 'correction', 'Cards and PayPal.')")
    again = mine(settings)
    with connect(settings) as con:
        rows = {r[0]: r[1:] for r in con.execute(
            "SELECT interaction_id, status, suggested_answer, revision FROM review_queue").fetchall()}
    assert again.queued == 0
    assert rows["x"] == ("rejected", None, 1)  # the annotator's decision stands
    assert rows["y"] == ("new", "Cards and PayPal.", 1)  # refreshed, with a new revision


def test_sample_traffic_mines_wrong_answers_and_builds_examples(settings, tmp_path: Path) -> None:
    collect(settings, list(write_inbox(tmp_path / "inbox", n=120, seed=3)))
    result = mine(settings)
    with connect(settings) as con:
        interactions = load_interactions(con)
        decisions = verdicts(con)
        corrected = con.execute("SELECT count(DISTINCT interaction_id) FROM feedback WHERE kind = 'correction'"
                                ).fetchone()[0]
    assert result.scanned == 120 and result.bad_cases >= corrected > 0
    built = build_examples(interactions, decisions, settings)
    sft = [e for e in built.examples if e["kind"] == "sft"]
    dpo = [e for e in built.examples if e["kind"] == "dpo"]
    assert len(dpo) == corrected and built.stats["target:positive"] > 0
    for pair in dpo:
        assert pair["chosen"][0]["content"] != pair["rejected"][0]["content"]
        assert pair["prompt"][-1]["role"] == "user" and len(pair["source_interactions"]) == 1
    assert all(e["messages"][-1]["role"] == "assistant" for e in sft)


def test_review_decisions_decide_the_target(settings) -> None:
    _add(settings, [("r", "Refund rules?", "14 days.", [("thumb", -1, None), ("correction", None, "30 days.")]),
                    ("e", "Support hours?", "Weekdays.", [("thumb", -1, None), ("correction", None, "Every day.")]),
                    ("u", "Team seats?", "10.", [("thumb", -1, None), ("correction", None, "3 seats.")])])
    mine(settings)
    with connect(settings) as con:
        con.execute("UPDATE review_queue SET status = 'rejected' WHERE interaction_id = 'r'")
        con.execute("UPDATE review_queue SET status = 'edited', edited_answer = 'Every day, 8 am to 8 pm UTC.' "
                    "WHERE interaction_id = 'e'")
        interactions, decisions = load_interactions(con), verdicts(con)
    built = build_examples(interactions, decisions, settings)
    targets = {e["source_interactions"][0]: e["messages"][-1]["content"] for e in built.examples if e["kind"] == "sft"}
    assert targets == {"e": "Every day, 8 am to 8 pm UTC.", "u": "3 seats."}
    assert [reason for _, reason in built.rejected] == ["rejected in review by an annotator"]
    settings.curate.use_unreviewed_corrections = False
    built = build_examples(interactions, decisions, settings)
    assert {e["source_interactions"][0] for e in built.examples} == {"e"}


def test_llm_judge_over_openai_compatible_http_is_cached(settings) -> None:
    def grade(prompt: str) -> str:
        return "2" if "costs 5 dollars" in prompt.rsplit("Answer:\n", 1)[1] else "9"

    with judge_server(grade) as (url, asked):
        settings.judge.url = url
        settings.judge.model = "grader"
        _add(settings, [("bad", "Plus plan price?", "The Plus plan costs 5 dollars per month.", []),
                        ("good", "Team plan price?", "The Team plan costs 15 dollars per user per month.", [])])
        mine(settings)
        assert len(asked) == 2
        mine(settings)
        assert len(asked) == 2  # the second run reads the cache
    with connect(settings) as con:
        found = dict(con.execute("SELECT interaction_id, signals FROM bad_cases").fetchall())
    assert set(found) == {"bad"} and "judge" in found["bad"]
