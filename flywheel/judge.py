"""An LLM judge at any OpenAI-compatible endpoint: one question in, one grade out, scaled to [0, 1].

Mining asks it whether a served answer was bad; the evaluation gate asks it to grade held-out answers
against the reference. Both go through ``Judge.grade``, so both survive a judge that fails: an endpoint
error (unreachable, timeout, an HTTP error) or a reply with no number is "no grade" (None), never a
crash or a made-up score. A failure is never silent either: each kind is logged as a warning the first
time it happens (then at debug level) and counted in ``Judge.failures``, which callers report. Errors
that are not the judge's (a bug in the caller) are not caught.
"""

from __future__ import annotations

import logging
import re
from collections import Counter

log = logging.getLogger(__name__)

GRADE = re.compile(r"\d+(?:\.\d+)?")


class Judge:
    def __init__(self, url: str, model: str | None, api_key: str, lowest: int = 1, highest: int = 10):
        from openai import OpenAI

        self.url = url
        self.client = OpenAI(base_url=url, api_key=api_key, max_retries=1, timeout=30.0)
        self.model = model or "judge"
        self.lowest, self.highest = lowest, highest
        self.failures: Counter[str] = Counter()  # why grades were missing, by kind

    def grade(self, prompt: str) -> float | None:
        """The judge's number for ``prompt`` mapped from [lowest, highest] to [0, 1]; None when it gave none."""
        from openai import APIError

        try:
            reply = self.client.chat.completions.create(
                model=self.model, temperature=0.0, max_tokens=8, messages=[{"role": "user", "content": prompt}])
        except APIError as exc:  # connection errors, timeouts and HTTP errors are all APIErrors
            return self._failed(type(exc).__name__, str(exc))
        choices = getattr(reply, "choices", None) or []
        message = getattr(choices[0], "message", None) if choices else None
        if message is None:
            return self._failed("no_choice", "the reply holds no choices[0].message")
        number = GRADE.search(message.content or "")
        if number is None:
            return self._failed("no_number", f"the reply {str(message.content)[:80]!r} holds no grade")
        return min(max((float(number.group()) - self.lowest) / (self.highest - self.lowest), 0.0), 1.0)

    def _failed(self, kind: str, detail: str) -> None:
        self.failures[kind] += 1
        level = logging.WARNING if self.failures[kind] == 1 else logging.DEBUG
        log.log(level, "judge at %s gave no grade (%s: %s); counted, the run goes on", self.url, kind, detail)
        return None
