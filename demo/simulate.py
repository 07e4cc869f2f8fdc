"""Simulated users and a simulated support agent, talking to the real model server over HTTP.

Users ask questions about Lumen Notes (``demo.sample_data.user_turns``: personal data in some,
repeats and near-repeats, a few abusive ones) through the real ``openai`` client. A support agent who
knows the right answers (``demo.domain``) reviews a share of the answers: thumbs-up when right,
thumbs-down plus a correction when wrong, sent to the server's feedback API. The same settings are
used every week; only the seed changes, so week-over-week differences come from the model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import httpx

from demo.domain import FACTS, SYSTEM_PROMPT, Fact, is_correct
from demo.sample_data import user_turns

AGENT = "support-agent"


@dataclass
class WeekReport:
    conversations: int = 0
    rated: int = 0
    thumbs_down: int = 0
    corrections: int = 0
    wrong_facts: set[str] = field(default_factory=set)

    @property
    def thumbs_down_rate(self) -> float:
        return self.thumbs_down / self.rated if self.rated else 0.0


def ask(client, model: str, question: str, max_tokens: int = 48) -> tuple[str, str]:
    """One chat completion; returns (interaction id, answer text)."""
    completion = client.chat.completions.create(
        model=model, temperature=0.0, max_tokens=max_tokens,
        messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}])
    return completion.id, completion.choices[0].message.content or ""


def simulate_week(base_url: str, seed: int, conversations: int, feedback_share: float = 0.7,
                  api_key: str = "unused", model: str = "production") -> WeekReport:
    """Run one week of traffic and agent feedback against the server at ``base_url``."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=2, timeout=60)
    rng = random.Random(seed)
    report = WeekReport()
    with httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {api_key}"}) as http:
        for turn in user_turns(conversations, seed=seed):
            iid, answer = ask(client, model, turn.user_text)
            report.conversations += 1
            if rng.random() >= feedback_share:
                continue
            report.rated += 1
            if is_correct(turn.fact, answer):
                _feedback(http, {"interaction_id": iid, "kind": "thumb", "value": 1, "user": AGENT})
            else:
                report.thumbs_down += 1
                report.corrections += 1
                report.wrong_facts.add(turn.fact.id)
                _feedback(http, {"interaction_id": iid, "kind": "thumb", "value": -1, "user": AGENT})
                _feedback(http, {"interaction_id": iid, "kind": "correction", "text": turn.fact.answer,
                                 "user": AGENT})
    return report


def _feedback(http: httpx.Client, body: dict) -> None:
    response = http.post("/v1/feedback", json=body)
    response.raise_for_status()


def fix_rate(base_url: str, fact_ids: set[str], model: str = "production", api_key: str = "unused") -> float:
    """Share of held-out paraphrases (never trained on) of the given facts that the model now answers right."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=2, timeout=60)
    probes: list[tuple[Fact, str]] = [(f, q) for f in FACTS if f.id in fact_ids for q in f.dev]
    if not probes:
        return 0.0
    right = sum(is_correct(fact, ask(client, model, question)[1]) for fact, question in probes)
    return right / len(probes)
