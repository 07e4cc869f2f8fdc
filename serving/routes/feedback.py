"""``POST /v1/feedback``: what a user said about an interaction this server served.

The body is the feedback contract (``flywheel.records.Feedback``): unknown fields, unknown kinds, a
thumb that is not +1/-1, a rating outside 1-5, NaN or infinite values and times outside 1970-2099 are
refused with 422 naming the field. The interaction must be one this server issued (its id carries a
MAC, ``serving.ids``), else 404. The same feedback sent again (same interaction, kind, value, text and
user) is answered ``duplicate`` and not written again; the warehouse keeps it once in any case, since
that is its id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import ConfigDict, ValidationError

from flywheel.records import Feedback, RecordError
from serving.deps import ServerDep, feedback_key
from serving.errors import ApiError, invalid

router = APIRouter(dependencies=[feedback_key])


class FeedbackRequest(Feedback):
    """The body of POST /v1/feedback: the feedback contract, timestamped by the server when absent."""

    model_config = ConfigDict(extra="forbid")


@router.post("/v1/feedback")
async def feedback(request: Request, srv: ServerDep) -> dict[str, Any]:
    try:
        fb = FeedbackRequest.model_validate(orjson.loads(await request.body()))
        fb.check_kind()
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body: not valid JSON ({exc})") from None
    except ValidationError as exc:
        raise invalid(exc, status=422) from None
    except RecordError as exc:
        field = str(exc).split(":", 1)[0].removeprefix("feedback.")
        raise ApiError(422, str(exc), param=field) from None
    if not srv.ids.issued(fb.interaction_id):
        raise ApiError(404, f"interaction_id: {fb.interaction_id[:80]!r} is not an interaction this server served; "
                            "send the `id` of a chat completion it returned", param="interaction_id",
                       code="interaction_not_found")
    answer = {"id": fb.id, "object": "feedback", "interaction_id": fb.interaction_id}
    if fb.id in srv.feedback_seen:
        return {**answer, "status": "duplicate"}
    when = fb.timestamp or datetime.now(UTC)
    srv.spool.append({"interaction_id": fb.interaction_id, "timestamp": when.isoformat(), "kind": fb.kind,
                      "value": fb.value, "text": fb.text, "user": fb.user})
    srv.feedback_seen.add(fb.id)  # only once it is written: a failed write may be sent again
    srv.metrics.feedback.labels(kind=fb.kind).inc()
    return {**answer, "status": "recorded"}
