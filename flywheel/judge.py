"""An LLM judge at any OpenAI-compatible endpoint: one question in, one grade out, scaled to [0, 1].

Mining asks it whether a served answer was bad; the evaluation gate asks it to grade held-out answers
against the reference. Both go through ``Judge.grade``, so both survive a judge that fails: an endpoint
error or a reply with no number is "no grade" (None), never a crash or a made-up score.
"""

from __future__ import annotations

import re

GRADE = re.compile(r"\d+(?:\.\d+)?")


class Judge:
    def __init__(self, url: str, model: str | None, api_key: str, lowest: int = 1, highest: int = 10):
        from openai import OpenAI

        self.client = OpenAI(base_url=url, api_key=api_key, max_retries=1, timeout=30.0)
        self.model = model or "judge"
        self.lowest, self.highest = lowest, highest

    def grade(self, prompt: str) -> float | None:
        """The judge's number for ``prompt`` mapped from [lowest, highest] to [0, 1]; None when it gave none."""
        try:
            reply = self.client.chat.completions.create(
                model=self.model, temperature=0.0, max_tokens=8, messages=[{"role": "user", "content": prompt}])
        except Exception:  # noqa: BLE001 - any transport/API error: no grade, the caller goes on
            return None
        number = GRADE.search(reply.choices[0].message.content or "")
        if number is None:
            return None
        return min(max((float(number.group()) - self.lowest) / (self.highest - self.lowest), 0.0), 1.0)
