"""One review item (scrubbed, or raw for a lead while it exists) and the decision posted on it."""

from __future__ import annotations

from typing import Any

import duckdb
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from curation import review_queue
from serving.review.auth import Reviewer
from serving.review.scrubbed import ScrubbedView, ScrubberFactory, raw_sources, scrubbed_views
from serving.review.web import (
    SignedIn,
    Warehouse,
    csrf_checked,
    item_url,
    path_for,
    queue_url,
    render,
    scrubber,
    signed_in,
    with_query,
)

router = APIRouter()


@router.get("/items/{interaction_id}", response_class=HTMLResponse, name="item")
def item(request: Request, interaction_id: str, con: Warehouse, user: SignedIn, raw: str | None = None,
         scrub: ScrubberFactory = Depends(scrubber)) -> HTMLResponse:
    filt = review_queue.QueueFilter.from_params(request.query_params)
    return item_page(request, con, scrub, user, interaction_id, filt, show_raw=raw == "1")


@router.post("/items/{interaction_id}/decision", dependencies=[Depends(signed_in), Depends(csrf_checked)],
             name="decide")
def decide(request: Request, interaction_id: str, con: Warehouse, user: SignedIn,
           action: str = Form(""), revision: int = Form(...), answer: str = Form(""), reason: str = Form(""),
           scope: str = Form("item"), scrub: ScrubberFactory = Depends(scrubber)) -> Response:
    filt = review_queue.QueueFilter.from_params(request.query_params)
    whole_cluster = scope == "cluster"
    status = {"accept": "accepted", "edit": "edited", "reject": "rejected"}.get(action, action)
    if status == "edited":
        shown = scrubbed_views(con, request.app.state.settings, scrub, [interaction_id]).get(interaction_id)
        if shown and shown.suggested_answer and answer.strip() == shown.suggested_answer.strip():
            status = "accepted"  # "edited" to the suggestion unchanged is an acceptance
    decision = review_queue.Decision(interaction_id, status, user.username, revision, answer, reason)
    try:
        outcome = review_queue.decide(con, decision, whole_cluster=whole_cluster)
    except review_queue.DecisionError as exc:
        return item_page(request, con, scrub, user, interaction_id, filt, show_raw=False, status_code=422,
                         error=str(exc), answer=answer, reason=reason)
    if outcome.conflict:
        return item_page(request, con, scrub, user, interaction_id, filt, show_raw=False, status_code=409,
                         conflict=outcome.conflict, answer=answer, reason=reason)
    _, next_id = review_queue.neighbours(con, filt, interaction_id)
    done = len(outcome.saved)
    message = f"{status.capitalize()} {done} item{'s' if done != 1 else ''}"
    if whole_cluster:
        message += " in this cluster"
    if outcome.left_alone:
        message += f"; {outcome.left_alone} already decided (or without a suggestion) left as they were"
    request.session["flash"] = message + "."
    target = item_url(request, next_id, filt) if next_id else queue_url(request, filt)
    return RedirectResponse(target, status_code=303)


def item_page(request: Request, con: duckdb.DuckDBPyConnection, scrub: ScrubberFactory, user: Reviewer,
              interaction_id: str, filt: review_queue.QueueFilter, show_raw: bool, status_code: int = 200,
              **context: Any) -> HTMLResponse:
    item = review_queue.queue_item(con, interaction_id)
    if item is None:
        return render(request, "message.html", status_code=404, user=user, title="Not in the queue",
                      message=f"There is no review item {interaction_id!r}.")
    members = review_queue.cluster_members(con, item["cluster_id"])
    views = scrubbed_views(con, request.app.state.settings, scrub,
                           sorted({interaction_id, *(m["interaction_id"] for m in members)}))
    raw = None
    if show_raw:
        if not user.is_lead:  # the role the account has now: a demoted lead is an annotator at once
            return render(request, "message.html", status_code=403, user=user, title="Lead only",
                          message="Raw text is shown to the lead role only.")
        if item["raw_purged_at"] is None and item["interaction_exists"]:
            raw = raw_sources(con, [interaction_id])[interaction_id]
    prev_id, next_id = review_queue.neighbours(con, filt, interaction_id)
    for m in members:
        m["preview"] = views[m["interaction_id"]].preview
        m["url"] = item_url(request, m["interaction_id"], filt)
    view: ScrubbedView = views[interaction_id]
    context.setdefault("answer", view.suggested_answer or "")
    context.setdefault("reason", "")
    return render(
        request, "item.html", status_code=status_code, user=user, item=item, view=view, raw=raw,
        show_raw=show_raw, members=members, open_in_cluster=sum(m["status"] == "new" for m in members), filt=filt,
        suggestion_scrubbed=view.suggested_answer != item["suggested_answer"],
        queue_url=queue_url(request, filt),
        prev_url=item_url(request, prev_id, filt) if prev_id else None,
        next_url=item_url(request, next_id, filt) if next_id else None,
        raw_url=item_url(request, interaction_id, filt, raw="1"),
        scrubbed_url=item_url(request, interaction_id, filt),
        decision_url=with_query(path_for(request, "decide", interaction_id=interaction_id), filt.params()),
        **context)
