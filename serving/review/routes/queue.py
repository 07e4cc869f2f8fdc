"""The queue: review items grouped by cluster in priority order, with filters and pages."""

from __future__ import annotations

from itertools import groupby

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from curation import review_queue
from serving.review.scrubbed import ScrubberFactory, scrubbed_views
from serving.review.web import SignedIn, Warehouse, item_url, queue_url, render, scrubber, with_query

router = APIRouter()
PAGE_SIZE = 100


@router.get("/", response_class=HTMLResponse, name="queue")
def queue(request: Request, con: Warehouse, user: SignedIn, page: int = 0,
          scrub: ScrubberFactory = Depends(scrubber)) -> HTMLResponse:
    filt = review_queue.QueueFilter.from_params(request.query_params)
    page = max(page, 0)
    rows, total = review_queue.queue_page(con, filt, PAGE_SIZE, page * PAGE_SIZE)
    counts = review_queue.status_counts(con, filt)
    choices = review_queue.filter_choices(con)
    views = scrubbed_views(con, request.app.state.settings, scrub, [r["interaction_id"] for r in rows])
    for row in rows:
        row["preview"] = views[row["interaction_id"]].preview
        row["url"] = item_url(request, row["interaction_id"], filt)
    clusters = [(cluster_id, list(items)) for cluster_id, items in groupby(rows, key=lambda r: r["cluster_id"])]

    def page_link(number: int) -> str:
        return with_query(queue_url(request, filt).split("?")[0], {**filt.params(), "page": str(number)})

    return render(request, "queue.html", user=user, filt=filt, clusters=clusters, total=total, counts=counts,
                  choices=choices, statuses=review_queue.STATUSES,
                  cluster_url=lambda c: queue_url(request, review_queue.QueueFilter(status=filt.status, cluster=c)),
                  prev_page=page_link(page - 1) if page > 0 else None,
                  next_page=page_link(page + 1) if (page + 1) * PAGE_SIZE < total else None,
                  first_shown=page * PAGE_SIZE + 1 if rows else 0, last_shown=page * PAGE_SIZE + len(rows))
