"""What annotators see: each review item scrubbed of personal data once, then read from the warehouse.

The data-safety scrubber (``curation.pii.Scrub``) runs on the conversation, the model's answer, the
suggested correction and the feedback texts as one record, so a name gets the same surrogate
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

from collectors.store import feedback_of, interaction_details
from curation.pii import Scrub
from curation.review_queue import suggested_answers
from curation.step import ExclusionWriter, Step
from flywheel.settings import Settings
from flywheel.warehouse import content_id, now
from serving.review import store

ScrubberFactory = Callable[[], Step]
SCRUBBED_FIELDS = ("messages", "response", "suggested_answer", "feedback")
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
    """The data-safety scrubber over an item's text fields; it loads spaCy, so it is built once per server."""
    return Scrub(settings.scrub, fields=list(SCRUBBED_FIELDS))


def source_key(settings: Settings, raw: dict[str, Any]) -> str:
    return content_id(settings.scrub.model_dump(mode="json"), settings.scrub.hash_key.get_secret_value(),
                      raw["messages"], raw["response"], raw["suggested_answer"], raw["feedback"])


def _as_record(iid: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Every text of the item as one record; feedback texts ride as message contents."""
    return {"id": iid, "messages": raw["messages"], "response": raw["response"],
            "suggested_answer": raw["suggested_answer"],
            "feedback": [{"kind": fb["kind"], "value": fb["value"], "content": fb["text"]} for fb in raw["feedback"]]}


def _view(scrubbed: dict[str, Any]) -> ScrubbedView:
    return ScrubbedView(
        messages=[{"role": m.get("role", "user"), "content": m.get("content") or ""} for m in scrubbed["messages"]],
        response=scrubbed["response"], suggested_answer=scrubbed["suggested_answer"],
        feedback=[{"kind": fb["kind"], "value": fb["value"], "text": fb["content"]} for fb in scrubbed["feedback"]])


def _scrub(step: Step, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    step.exclusions = ExclusionWriter()  # one batch's drops, so their reasons can be shown
    yield from step(records)


def raw_sources(con: duckdb.DuckDBPyConnection, interaction_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Raw messages, answer, suggestion and feedback per queued item: what is scrubbed, or shown to a lead."""
    if not interaction_ids:
        return {}
    suggested = suggested_answers(con, interaction_ids)
    details = interaction_details(con, list(suggested))
    feedback = feedback_of(con, list(suggested))
    sources = {}
    for iid, suggested_answer in suggested.items():
        interaction = details.get(iid, {})
        messages = interaction.get("messages")
        sources[iid] = {"messages": orjson.loads(messages) if messages else [],
                        "response": interaction.get("response"), "suggested_answer": suggested_answer,
                        "feedback": feedback.get(iid, []), "raw_purged_at": interaction.get("raw_purged_at")}
    return sources


def scrubbed_views(con: duckdb.DuckDBPyConnection, settings: Settings, scrubber: ScrubberFactory,
                   interaction_ids: list[str]) -> dict[str, ScrubbedView]:
    """Scrubbed renderings of these items, scrubbing (and storing) only the ones not stored yet."""
    raws = raw_sources(con, interaction_ids)
    stored = store.scrubbed_rows(con, list(raws))
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
    records = [_as_record(iid, raw) for iid, (_, raw) in sorted(pending.items())]
    kept = {rec["id"]: rec for rec in _scrub(step, records)}
    withheld = {ex.record.get("id"): ex.reason for ex in step.exclusions.items}
    views = {}
    for iid in pending:
        if iid in kept:
            views[iid] = _view(kept[iid])
        else:
            views[iid] = ScrubbedView([], None, None, [], withheld.get(iid, "dropped by the scrubber"))
    when = now()
    store.save_scrubbed(con, [(iid, key, orjson.dumps(views[iid].messages).decode(), views[iid].response,
                               views[iid].suggested_answer, orjson.dumps(views[iid].feedback).decode(),
                               views[iid].withheld, when) for iid, (key, _) in sorted(pending.items())])
    return views
