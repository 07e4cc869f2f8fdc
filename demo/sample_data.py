"""Synthetic support traffic for the Lumen Notes domain, shared by the tests, benchmarks and the demo.

Users are fake (Faker, seeded); questions come from ``demo.domain``, sometimes with personal data
in them (name, email, phone, street address), sometimes repeated or near-repeated, sometimes abusive.
``answer_fn`` decides what "the model" said: by default what the embedded base model was taught (right
for known facts, wrong otherwise), so feedback follows: a thumbs-down and a correction from the
support agent for wrong answers, a thumbs-up for right ones.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from demo.domain import FACTS, SYSTEM_PROMPT, Fact, is_correct

ABUSIVE = (
    "This app is garbage and you are a useless idiot.",
    "Answer me properly, you stupid bot.",
    "What a damn joke of a product.",
)
PII_TEMPLATES = (
    "Hi, I'm {name}. {q}",
    "{q} My email is {email} if you need it.",
    "{q} You can call me at {phone}.",
    "Hello, this is {name} from {city}. {q}",
    "{q} My billing address is {address}.",
    "{q} Thanks, {first}",
)


@dataclass(frozen=True)
class Turn:
    """One simulated user question, and which fact it is about."""

    fact: Fact
    user_text: str
    user: str
    abusive: bool


def base_model_answer(fact: Fact) -> str:
    return fact.answer if fact.known else fact.wrong


def user_turns(n: int, seed: int = 0, pii_rate: float = 0.4, abuse_rate: float = 0.05,
               repeat_rate: float = 0.15, questions: Callable[[Fact], Sequence[str]] | None = None) -> Iterator[Turn]:
    """Questions a population of fake users asks, deterministic for a seed.

    ``questions`` gives the phrasings users pick from per fact (default: ``Fact.questions``, week 1's); the
    demo's week 2 passes the frozen unseen paraphrases instead.
    """
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    users = [fake.user_name() for _ in range(max(5, n // 8))]
    asked: list[Turn] = []
    for _ in range(n):
        if asked and rng.random() < repeat_rate:
            prev = rng.choice(asked)
            text = prev.user_text if rng.random() < 0.5 else _near_variant(prev.user_text, rng)
            turn = Turn(prev.fact, text, rng.choice(users), prev.abusive)
        else:
            fact = rng.choice(FACTS)
            q = rng.choice(questions(fact) if questions else fact.questions)
            abusive = rng.random() < abuse_rate
            if abusive:
                text = f"{rng.choice(ABUSIVE)} {q}"
            elif rng.random() < pii_rate:
                name = fake.name()
                text = rng.choice(PII_TEMPLATES).format(
                    q=q, name=name, first=name.split()[0], email=fake.email(), phone=fake.phone_number(),
                    city=fake.city(), address=fake.address().replace("\n", ", "))
            else:
                text = q
            turn = Turn(fact, text, rng.choice(users), abusive)
        asked.append(turn)
        yield turn


def _near_variant(text: str, rng: random.Random) -> str:
    choice = rng.randrange(4)
    if choice == 0:
        return text.lower()
    if choice == 1:
        return "Hello! " + text
    if choice == 2:
        return text.rstrip("?.!") + " thanks"
    return text.replace(" ", "  ", 1)


def interactions(n: int, seed: int = 0, start: datetime | None = None,
                 answer_fn: Callable[[Fact], str] = base_model_answer, shape: str = "mixed",
                 adapter: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` interactions (OpenAI shape, flat shape, or mixed) and the feedback on them."""
    start = start or datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    rng = random.Random(seed + 1)
    records, feedback = [], []
    for i, turn in enumerate(user_turns(n, seed)):
        ts = start + timedelta(minutes=7 * i)
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": turn.user_text}]
        answer = answer_fn(turn.fact)
        iid = f"chatcmpl-{seed}-{i:06d}"
        use_openai = shape == "openai" or (shape == "mixed" and i % 2 == 0)
        if use_openai:
            records.append({
                "timestamp": ts.isoformat(), "workload_id": "support", "client_id": turn.user,
                "request": {"model": "lumen-support", "messages": messages, "temperature": 0.0},
                "response": {"id": iid, "object": "chat.completion", "created": int(ts.timestamp()),
                             "model": "lumen-support",
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": answer}}],
                             "usage": {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32}},
                "adapter": adapter,
            })
        else:
            records.append({"id": iid, "timestamp": ts.isoformat(), "messages": messages, "response": answer,
                            "model": "lumen-support", "adapter": adapter, "workload_id": "support",
                            "client_id": turn.user})
        feedback.extend(_feedback_for(iid, turn, answer, ts, rng))
    return records, feedback


def _feedback_for(iid: str, turn: Turn, answer: str, ts: datetime, rng: random.Random) -> list[dict[str, Any]]:
    when = (ts + timedelta(minutes=2)).isoformat()
    if rng.random() > 0.7:  # most users leave no feedback
        return []
    if is_correct(turn.fact, answer):
        if rng.random() < 0.5:
            return [{"interaction_id": iid, "timestamp": when, "kind": "thumb", "value": 1, "user": turn.user}]
        return [{"interaction_id": iid, "timestamp": when, "kind": "rating", "value": 5, "user": turn.user}]
    out = [{"interaction_id": iid, "timestamp": when, "kind": "thumb", "value": -1, "user": turn.user}]
    if rng.random() < 0.8:  # the support agent who knows the answer corrects it
        out.append({"interaction_id": iid, "timestamp": when, "kind": "correction",
                    "text": turn.fact.answer, "user": "support-agent"})
    elif rng.random() < 0.5:
        out.append({"interaction_id": iid, "timestamp": when, "kind": "regenerate", "user": turn.user})
    return out


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for rec in records:
            fh.write(orjson.dumps(rec) + b"\n")
    return path


def write_inbox(directory: Path, n: int = 200, seed: int = 0) -> tuple[Path, Path]:
    """An inbox with one interactions file and one feedback file; returns their paths."""
    records, feedback = interactions(n, seed)
    return (write_jsonl(directory / f"interactions-{seed}.jsonl", records),
            write_jsonl(directory / f"feedback-{seed}.jsonl", feedback))
