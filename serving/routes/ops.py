"""``/health`` and ``/metrics``: what ops and load balancers poll; no key, no CPU work."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from serving.deps import ServerDep

router = APIRouter()


@router.get("/health")
async def health(srv: ServerDep) -> dict[str, Any]:
    return {"status": "ok", **srv.live.snapshot(), "queue_depth": srv.engine.queue_depth(),
            "pending_requests": srv.admission.pending, "generating": srv.engine.busy.is_set()}


@router.get("/metrics")
async def prometheus(srv: ServerDep) -> Response:
    return Response(srv.metrics.render(), media_type=srv.metrics.content_type)
