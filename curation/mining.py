"""Bad-case mining: score each interaction by weighted signals, cluster the bad ones, fill the review queue.

Signals (weights in ``settings.curate.signal_weights``; a signal with weight 0 is off):

* ``thumb_down`` / ``low_rating`` / ``correction`` / ``regenerate`` — explicit user feedback;
* ``negative_comment`` — a comment that says the answer was wrong or useless;
* ``refusal`` — the answer apologises or refuses; ``empty_answer`` — blank, or cut at ``max_tokens``;
* ``judge`` — an LLM judge's verdict from any OpenAI-compatible endpoint (off unless ``judge.url`` is
  set), cached in the ``judge_scores`` table so a re-run asks nothing twice.

The priority is the sum of the weights that fired. Every bad case is written to ``bad_cases`` with its
signals, its cluster (MinHash LSH over the user prompt, so annotators can take one cluster at a time)
and the suggested answer (the latest correction). The ``review_top_n`` highest not yet queued go to
``review_queue`` as ``new``; items still ``new`` are refreshed, decided items are never touched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from collectors import store as collected
from curation import review_queue, store
from curation.dedup import cluster_representatives
from flywheel.judge import Judge
from flywheel.settings import Settings
from flywheel.warehouse import connect, content_id

REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|apologies|i can(?:not|'t) help|i(?:'m| am) (?:not able|unable)|"
    r"as an ai|i (?:don'?t|do not) know|i(?:'m| am) not sure)\b", re.IGNORECASE)
NEGATIVE_COMMENT = re.compile(
    r"\b(wrong|incorrect|not (?:right|true|correct|helpful)|unhelpful|useless|outdated|false|doesn'?t work|"
    r"didn'?t (?:work|help)|bad answer|nonsense|makes no sense|mistake)\b", re.IGNORECASE)


@dataclass
class InteractionWithFeedback:
    """One stored interaction with its feedback: everything mining and example building need (the record as
    it came in is ``flywheel.records.Interaction``)."""

    id: str
    ts: datetime | None
    messages: list[dict[str, str]]
    response: str
    max_tokens: int | None = None
    completion_tokens: int | None = None
    feedback: list[dict[str, Any]] = field(default_factory=list)  # sorted by (ts, id)

    @property
    def prompt_text(self) -> str:
        """The last user message: what similar bad cases share."""
        users = [m["content"] for m in self.messages if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def correction(self) -> str | None:
        texts = [f["text"] for f in self.feedback if f["kind"] == "correction" and (f["text"] or "").strip()]
        return texts[-1].strip() if texts else None


@dataclass
class BadCase:
    interaction_id: str
    priority: float
    signals: dict[str, float]
    suggested_answer: str | None
    cluster_id: str | None = None


@dataclass
class MineResult:
    scanned: int = 0
    bad_cases: int = 0
    queued: int = 0
    clusters: int = 0
    by_signal: dict[str, int] = field(default_factory=dict)

    def as_rows(self) -> list[tuple[str, int]]:
        rows = [("interactions scanned", self.scanned), ("bad cases", self.bad_cases),
                ("clusters", self.clusters), ("added to review queue", self.queued)]
        return rows + [(f"  signal: {k}", v) for k, v in sorted(self.by_signal.items())]


def load_interactions(con: Any, since: datetime | None = None,
                      until: datetime | None = None) -> list[InteractionWithFeedback]:
    """Interactions in [since, until) with their feedback, oldest first (ties by id): a stable order."""
    feedback: dict[str, list[dict[str, Any]]] = {}
    for iid, kind, value, text, fid in collected.feedback_on_stored(con):
        feedback.setdefault(iid, []).append({"kind": kind, "value": value, "text": text, "id": fid})
    out = []
    for iid, ts, messages, response, request, completion_tokens in collected.interactions_in_window(con, since, until):
        req = orjson.loads(request) if request else {}
        max_tokens = req.get("max_tokens") or req.get("max_completion_tokens") if isinstance(req, dict) else None
        out.append(InteractionWithFeedback(iid, ts, orjson.loads(messages) if messages else [], response or "",
                                           max_tokens if isinstance(max_tokens, int) else None, completion_tokens,
                                           feedback.get(iid, [])))
    return out


def signals(ix: InteractionWithFeedback, settings: Settings, judge_score: float | None = None) -> dict[str, float]:
    """The weighted signals that fire for one interaction."""
    cfg = settings.curate
    fired: set[str] = set()
    for f in ix.feedback:
        if f["kind"] == "thumb" and f["value"] is not None and f["value"] < 0:
            fired.add("thumb_down")
        elif f["kind"] == "rating" and f["value"] is not None and f["value"] <= cfg.low_rating_max:
            fired.add("low_rating")
        elif f["kind"] == "correction" and (f["text"] or "").strip():
            fired.add("correction")
        elif f["kind"] == "regenerate":
            fired.add("regenerate")
        elif f["kind"] == "comment" and NEGATIVE_COMMENT.search(f["text"] or ""):
            fired.add("negative_comment")
    answer = ix.response.strip()
    if not answer or (ix.max_tokens and ix.completion_tokens and ix.completion_tokens >= ix.max_tokens):
        fired.add("empty_answer")
    elif REFUSAL.search(answer):
        fired.add("refusal")
    if judge_score is not None and judge_score < 0.5:
        fired.add("judge")
    weights = cfg.signal_weights
    return {name: float(weights.get(name, 0.0)) for name in sorted(fired) if weights.get(name, 0.0) > 0}


def is_positive(ix: InteractionWithFeedback, settings: Settings) -> bool:
    """A thumb up or a good rating, and nothing negative: the answer itself is a training target."""
    good = any((f["kind"] == "thumb" and (f["value"] or 0) > 0)
               or (f["kind"] == "rating" and (f["value"] or 0) >= settings.curate.good_rating_min)
               for f in ix.feedback)
    return good and not signals(ix, settings)


# ------------------------------------------------------------------------------------------- judge
JUDGE_PROMPT = ("You grade a support assistant's answer. Reply with one number from 1 (wrong or unhelpful) "
                "to 10 (correct and helpful) and nothing else.\n\nConversation:\n{conversation}\n\nAnswer:\n{answer}")


def judge_scores(con: Any, interactions: Sequence[InteractionWithFeedback], settings: Settings) -> dict[str, float]:
    """Scores in [0, 1] from the configured judge, read from / written to the ``judge_scores`` cache.

    An endpoint that fails or answers something unparseable leaves that interaction unscored (the other
    signals still count); the run goes on.
    """
    cfg = settings.judge
    if not cfg.url:
        return {}
    judge = Judge(cfg.url, cfg.model, cfg.api_key.get_secret_value())
    keys = {ix.id: content_id("judge", judge.model, ix.messages, ix.response) for ix in interactions}
    cached = store.judge_grades(con, list(keys.values()))
    scores: dict[str, float] = {}
    for ix in interactions:
        key = keys[ix.id]
        if key not in cached:
            conversation = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in ix.messages)
            score = judge.grade(JUDGE_PROMPT.format(conversation=conversation, answer=ix.response))
            if score is None:
                continue
            cached[key] = score
            store.save_judge_grade(con, key, judge.model, score)
        scores[ix.id] = cached[key]
    return scores


# ------------------------------------------------------------------------------------------ mining
def find_bad_cases(interactions: Sequence[InteractionWithFeedback], settings: Settings,
                   judged: dict[str, float] | None = None) -> list[BadCase]:
    """Bad cases in priority order (highest first; ties: oldest first), each with its cluster."""

    judged = judged or {}
    found, prompts = [], []
    for ix in interactions:
        fired = signals(ix, settings, judged.get(ix.id))
        if fired:
            found.append(BadCase(ix.id, round(sum(fired.values()), 6), fired, ix.correction))
            prompts.append(ix.prompt_text)
    # Clusters of similar prompts; the cluster is named after its earliest member, so it is stable.
    for case, rep in zip(found, cluster_representatives(prompts, settings.dedup) if found else [], strict=True):
        case.cluster_id = "cl-" + content_id(found[rep].interaction_id)[:12]
    order = {ix.id: pos for pos, ix in enumerate(interactions)}
    return sorted(found, key=lambda c: (-c.priority, order[c.interaction_id]))


def mine(settings: Settings, since: datetime | None = None, until: datetime | None = None) -> MineResult:
    """Mine the window, store every bad case and queue the top ``review_top_n`` new ones for review."""
    result = MineResult()
    with connect(settings) as con:
        interactions = load_interactions(con, since, until)
        result.scanned = len(interactions)
        cases = find_bad_cases(interactions, settings, judge_scores(con, interactions, settings))
        result.bad_cases = len(cases)
        result.clusters = len({c.cluster_id for c in cases})
        for case in cases:
            for name in case.signals:
                result.by_signal[name] = result.by_signal.get(name, 0) + 1
        con.execute("BEGIN TRANSACTION")
        store.save_bad_cases(con, [(c.interaction_id, c.priority, orjson.dumps(c.signals).decode(), c.cluster_id,
                                    c.suggested_answer) for c in cases])
        queued = review_queue.queue_statuses(con)
        fresh = [c for c in cases if c.interaction_id not in queued][: settings.curate.review_top_n]
        refresh = [c for c in cases if queued.get(c.interaction_id) == "new"]
        review_queue.enqueue(con, [(c.interaction_id, c.cluster_id, c.priority, c.suggested_answer) for c in fresh],
                             [(c.interaction_id, c.cluster_id, c.priority, c.suggested_answer) for c in refresh])
        con.execute("COMMIT")
        result.queued = len(fresh)
    return result
