"""What annotators see: each review item scrubbed of personal data once, then read from the warehouse.

The data-safety scrubber (``curation.pii.Scrub``) runs on the conversation, the model's answer, the
suggested correction and the feedback texts *as one conversation*, so a name gets the same surrogate
everywhere on the page. The result is kept in ``review_scrubbed`` keyed by a hash of the raw fields
and the scrub settings: the next view reads it instead of running presidio again, and a changed item
or changed settings make it scrub again — while the raw text still exists; after the purge the stored
rendering is all there is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson

from curation.step import ExclusionWriter, Step
from flywheel.settings import Settings
from flywheel.warehouse import content_id, now
from serving.review.store import raw_sources

ScrubberFactory = Callable[[], Step]
PREVIEW_CHARS = 160


@dataclass(frozen=True)
class ScrubbedView:
    messages: list[dict[str, str]]
    response: str | None
    suggested_answer: str | None
    feedback: list[dict[str, Any]]
    withheld: str | None = None  # the scrubber dropped this conversation; show nothing of it

    @property
    def preview(self) -> str:
        """The last user turn, shortened: how the queue list names an item."""
        if self.withheld:
            return "(withheld by the scrubber)"
        text = next((m["content"] for m in reversed(self.messages) if m.get("role") == "user"), "")
        return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def make_scrubber(settings: Settings) -> Step:
    """The data-safety scrubber over the one field this module fills; loads spaCy, so built once per server."""
    from curation.pii import Scrub

    return Scrub(settings.scrub, fields=["messages"])


def source_key(settings: Settings, raw: dict[str, Any]) -> str:
    return content_id(settings.scrub.model_dump(mode="json"), settings.scrub.hash_key.get_secret_value(),
                      raw["messages"], raw["response"], raw["suggested_answer"], raw["feedback"])


def _as_conversation(iid: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Every text of the item as turns of one conversation, in a fixed order ``_from_conversation`` undoes."""
    turns = [{"role": m.get("role", "user"), "content": m.get("content") or ""} for m in raw["messages"]]
    turns.append({"role": "assistant", "content": raw["response"] or ""})
    turns.append({"role": "assistant", "content": raw["suggested_answer"] or ""})
    turns.extend({"role": "user", "content": fb["text"] or ""} for fb in raw["feedback"])
    return {"id": iid, "messages": turns}


def _from_conversation(raw: dict[str, Any], scrubbed_turns: list[dict[str, Any]]) -> ScrubbedView:
    n = len(raw["messages"])
    texts = [t["content"] for t in scrubbed_turns]
    return ScrubbedView(
        messages=[{"role": t["role"], "content": t["content"]} for t in scrubbed_turns[:n]],
        response=texts[n] if raw["response"] is not None else None,
        suggested_answer=texts[n + 1] if raw["suggested_answer"] is not None else None,
        feedback=[{**fb, "text": text if fb["text"] is not None else None}
                  for fb, text in zip(raw["feedback"], texts[n + 2:], strict=True)],
    )


def _scrub(step: Step, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    step.exclusions = ExclusionWriter()  # one batch's drops, so their reasons can be shown
    yield from step(records)


def scrubbed_views(con: duckdb.DuckDBPyConnection, settings: Settings, scrubber: ScrubberFactory,
                   interaction_ids: list[str]) -> dict[str, ScrubbedView]:
    """Scrubbed renderings of these items, scrubbing (and storing) only the ones not stored yet."""
    raws = raw_sources(con, interaction_ids)
    stored = {
        row[0]: row[1:]
        for row in con.execute(
            "SELECT interaction_id, source_key, messages, response, suggested_answer, feedback, withheld "
            "FROM review_scrubbed WHERE interaction_id IN (SELECT unnest(?))", [list(raws)]).fetchall()
    }
    views: dict[str, ScrubbedView] = {}
    pending: dict[str, tuple[str, dict[str, Any]]] = {}
    for iid, raw in raws.items():
        key = source_key(settings, raw)
        if iid in stored and (stored[iid][0] == key or raw["raw_purged_at"] is not None):
            _, messages, response, suggested, feedback, withheld = stored[iid]
            views[iid] = ScrubbedView(orjson.loads(messages or "[]"), response, suggested,
                                      orjson.loads(feedback or "[]"), withheld)
        else:
            pending[iid] = (key, raw)
    if pending:
        views.update(_scrub_and_store(con, scrubber, pending))
    return views


def _scrub_and_store(con: duckdb.DuckDBPyConnection, scrubber: ScrubberFactory,
                     pending: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, ScrubbedView]:
    step = scrubber()
    records = [_as_conversation(iid, raw) for iid, (_, raw) in sorted(pending.items())]
    kept = {rec["id"]: rec["messages"] for rec in _scrub(step, records)}
    withheld = {ex.record.get("id"): ex.reason for ex in step.exclusions.items}
    views = {}
    for iid, (_, raw) in pending.items():
        if iid in kept:
            views[iid] = _from_conversation(raw, kept[iid])
        else:
            views[iid] = ScrubbedView([], None, None, [], withheld.get(iid, "dropped by the scrubber"))
    when = now()
    con.executemany(
        "INSERT OR REPLACE INTO review_scrubbed (interaction_id, source_key, messages, response, suggested_answer, "
        "feedback, withheld, scrubbed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(iid, key, orjson.dumps(views[iid].messages).decode(), views[iid].response, views[iid].suggested_answer,
          orjson.dumps(views[iid].feedback).decode(), views[iid].withheld, when)
         for iid, (key, _) in sorted(pending.items())])
    return views
