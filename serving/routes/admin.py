"""``/admin/*``: the live adapter set (load, unload, promote, roll back), always behind the admin key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from serving.adapters import LiveAdapters, NothingToRollBack
from serving.deps import ServerDep, admin_key
from serving.errors import ApiError
from training.registry import AdapterError

router = APIRouter(prefix="/admin", dependencies=[admin_key])


@router.get("/adapters")
async def adapters(srv: ServerDep) -> dict[str, Any]:
    return srv.live.snapshot()


@router.post("/adapters/{version}/load")
async def load(version: str, srv: ServerDep) -> dict[str, Any]:
    return await _change(srv, lambda live: live.load(version))


@router.post("/adapters/{version}/unload")
async def unload(version: str, srv: ServerDep) -> dict[str, Any]:
    return await _change(srv, lambda live: live.unload(version))


@router.post("/promote/{version}")
async def promote(version: str, srv: ServerDep) -> dict[str, Any]:
    return await _change(srv, lambda live: live.promote(version))


@router.post("/rollback")
async def rollback(srv: ServerDep) -> dict[str, Any]:
    return await _change(srv, lambda live: live.rollback())


async def _change(srv: ServerDep, change: Callable[[LiveAdapters], dict[str, Any]]) -> dict[str, Any]:
    try:
        result = await run_in_threadpool(change, srv.live)
    except AdapterError as exc:
        raise ApiError(409, str(exc), param="version", code="adapter_refused") from None
    except NothingToRollBack as exc:
        raise ApiError(409, str(exc), code="nothing_to_roll_back") from None
    srv.metrics.set_production(srv.live.production or "base")
    return result
