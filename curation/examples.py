"""Turn interactions, feedback and review decisions into SFT examples and DPO pairs.

The target answer of an interaction, in order of authority:

1. an annotator's decision in ``review_queue``: ``rejected`` -> no example at all; ``edited`` -> the
   edited answer; ``accepted`` -> the suggested answer (or, with none, the model's own answer);
2. otherwise the latest user/agent correction, when ``curate.use_unreviewed_corrections`` (default on:
   the demo's simulated support agent has no human to click "accept", and a later decision overrides);
3. otherwise the model's own answer when it was rated well (thumb up / rating >= ``good_rating_min``)
   and no bad-case signal fired.

A target from 1 or 2 gives an SFT example (prompt + target) and, when the model's answer is not blank and
differs from it, a DPO pair (chosen = target, rejected = the model's answer). A target from 3 gives an
SFT example only. Each example's id hashes its kind, its interactions and its target, so rebuilding the
same window gives the same ids. Records keep ``source_interactions`` (lineage) and ``kind``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from curation.mining import InteractionWithFeedback, is_positive
from curation.review_queue import Verdict
from curation.step import Record
from flywheel.settings import Settings
from flywheel.warehouse import content_id


@dataclass
class BuildResult:
    examples: list[Record] = field(default_factory=list)
    rejected: list[tuple[Record, str]] = field(default_factory=list)  # (record, reason) for quarantine
    stats: dict[str, int] = field(default_factory=dict)

    def count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1


def sft_record(messages: list[dict[str, str]], target: str, sources: list[str]) -> Record:
    return {"id": "sft-" + content_id("sft", sources, target), "kind": "sft", "origin": "mined",
            "messages": [*messages, {"role": "assistant", "content": target}], "source_interactions": sources}


def dpo_record(prompt: list[dict[str, str]], chosen: str, rejected: str, sources: list[str]) -> Record:
    return {"id": "dpo-" + content_id("dpo", sources, chosen, rejected), "kind": "dpo", "origin": "mined",
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "source_interactions": sources}


def _prompt_messages(ix: InteractionWithFeedback) -> list[dict[str, str]]:
    # The prompt as the model saw it, without a trailing assistant turn (the answer is the target).
    msgs = [{"role": m.get("role", ""), "content": m.get("content") or ""} for m in ix.messages]
    while msgs and msgs[-1]["role"] == "assistant":
        msgs.pop()
    return msgs


def _target(ix: InteractionWithFeedback, decision: Verdict | None, settings: Settings) -> tuple[str | None, str]:
    """(target answer, where it came from); target None means no example."""
    if decision is not None and decision.status == "rejected":
        return None, "rejected"
    if decision is not None and decision.status == "edited" and (decision.edited_answer or "").strip():
        return decision.edited_answer.strip(), "edited"
    if decision is not None and decision.status == "accepted":
        accepted = (decision.suggested_answer or "").strip() or ix.correction
        return (accepted, "accepted") if accepted else (ix.response.strip() or None, "accepted_answer")
    if ix.correction and settings.curate.use_unreviewed_corrections:
        return ix.correction, "correction"
    if is_positive(ix, settings) and ix.response.strip():
        return ix.response.strip(), "positive"
    return None, "no_target"


def build_examples(interactions: Sequence[InteractionWithFeedback], decisions: dict[str, Verdict],
                   settings: Settings) -> BuildResult:
    """SFT and DPO records for the interactions, in interaction order (SFT before DPO per interaction)."""
    out = BuildResult()
    for ix in interactions:
        decision = decisions.get(ix.id)
        target, why = _target(ix, decision, settings)
        out.count(f"target:{why}")
        if target is None:
            if why == "rejected":
                reason = f"rejected in review by {decision.reviewer or 'an annotator'}"
                out.rejected.append(({"interaction_id": ix.id, "response": ix.response},
                                     reason + (f": {decision.reason}" if decision.reason else "")))
            continue
        prompt = _prompt_messages(ix)
        if not any(m["role"] == "user" for m in prompt):
            out.count("no_user_turn")
            out.rejected.append(({"interaction_id": ix.id}, "messages: no user turn to learn an answer for"))
            continue
        out.examples.append(sft_record(prompt, target, [ix.id]))
        bad = ix.response.strip()
        if why not in ("positive", "accepted_answer") and bad and bad != target:
            out.examples.append(dpo_record(prompt, target, bad, [ix.id]))
    return out
