"""Simulated users and a simulated support agent, talking to the real model server over HTTP.

Users ask questions about Lumen Notes (``demo.sample_data.user_turns``: personal data in some, repeats and
near-repeats, a few abusive ones) through the real ``openai`` client, many at once as real users do (the
server batches them). A support agent who knows the right answers (``demo.domain``) reviews a share of the
answers: thumbs-up when right, thumbs-down plus a correction when wrong, sent to the server's feedback API
in the order the questions were asked. The same settings are used every week; only the seed and the
phrasings the users pick from change.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from demo.domain import SYSTEM_PROMPT, Fact, is_correct
from demo.sample_data import user_turns

AGENT = "support-agent"
CONCURRENT_USERS = 16


@dataclass
class WeekReport:
    conversations: int = 0
    rated: int = 0
    thumbs_down: int = 0
    corrections: int = 0
    wrong_facts: set[str] = field(default_factory=set)
    asked: list[str] = field(default_factory=list)  # the users' messages, in order

    @property
    def thumbs_down_rate(self) -> float:
        return self.thumbs_down / self.rated if self.rated else 0.0


def _client(base_url: str, api_key: str):
    from openai import OpenAI

    return OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=2, timeout=300)


ANSWER_TOKENS = 32  # every right answer fits (the longest is 19 tokens for SmolLM2's tokenizer)


def ask(client, model: str, question: str, max_tokens: int = ANSWER_TOKENS) -> tuple[str, str]:
    """One chat completion; returns (interaction id, answer text)."""
    completion = client.chat.completions.create(
        model=model, temperature=0.0, max_tokens=max_tokens,
        messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": question}])
    return completion.id, completion.choices[0].message.content or ""


def ask_all(base_url: str, questions: Sequence[str], model: str = "production",
            api_key: str = "unused") -> list[tuple[str, str]]:
    """Every question, ``CONCURRENT_USERS`` at a time; (interaction id, answer) in the order asked."""
    client = _client(base_url, api_key)
    with ThreadPoolExecutor(CONCURRENT_USERS) as pool:
        return list(pool.map(lambda q: ask(client, model, q), questions))


def simulate_week(base_url: str, seed: int, conversations: int, feedback_share: float = 0.7,
                  api_key: str = "unused", model: str = "production",
                  questions: Callable[[Fact], Sequence[str]] | None = None) -> WeekReport:
    """Run one week of traffic and agent feedback against the server at ``base_url``."""
    rng = random.Random(seed)
    report = WeekReport()
    turns = list(user_turns(conversations, seed=seed, questions=questions))
    report.asked = [t.user_text for t in turns]
    answered = ask_all(base_url, [t.user_text for t in turns], model, api_key)
    with httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {api_key}"}) as http:
        for turn, (iid, answer) in zip(turns, answered, strict=True):
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


def right_answers(base_url: str, probes: Sequence[tuple[Fact, str]], model: str = "production",
                  api_key: str = "unused") -> list[bool]:
    """Whether the model answers each (fact, question) probe right now."""
    answers = ask_all(base_url, [question for _, question in probes], model, api_key)
    return [is_correct(fact, answer) for (fact, _), (_, answer) in zip(probes, answers, strict=True)]
