"""Who decided what and when: per annotator, then one annotator's decisions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from curation import review_queue
from serving.review.web import SignedIn, Warehouse, item_url, render

router = APIRouter()


@router.get("/audit", response_class=HTMLResponse, name="audit")
def audit(request: Request, con: Warehouse, user: SignedIn) -> HTMLResponse:
    return render(request, "audit.html", user=user, summary=review_queue.audit_summary(con))


@router.get("/audit/{reviewer}", response_class=HTMLResponse, name="audit_reviewer")
def audit_reviewer(request: Request, reviewer: str, con: Warehouse, user: SignedIn) -> HTMLResponse:
    decisions = review_queue.audit_decisions(con, reviewer)
    for d in decisions:
        d["url"] = item_url(request, d["interaction_id"], review_queue.QueueFilter(status="all"))
    return render(request, "audit_reviewer.html", user=user, reviewer=reviewer, decisions=decisions)
