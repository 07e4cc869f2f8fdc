"""What every route depends on: the server's state and the key its resource needs.

``Server`` holds the parts the lifespan builds (engine, live adapters, spool, metrics, ids, admission);
routes get it with ``ServerDep``. Each router declares its key once (``dependencies=[inference_key]``);
the check is constant-time on ``Authorization: Bearer <key>`` and passes when that key is not configured
(the admin key always is).
"""

from __future__ import annotations

import asyncio
import hmac
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Depends, Request
from pydantic import SecretStr

from flywheel.settings import Settings
from flywheel.spool import SpoolWriter
from serving.adapters import LiveAdapters
from serving.engine import GenerationEngine
from serving.errors import ApiError
from serving.ids import InteractionIds
from serving.metrics import ServingMetrics

T = TypeVar("T")


class Admission:
    """Bounds the requests in the server and keeps their CPU work off the event loop.

    ``enter`` counts a request in before any of its work starts and refuses it with 429 past ``limit``
    (counted on the event loop only, so the check and the count are one step); ``run`` does a request's
    parsing, validation and tokenisation on a small pool of worker threads, so a flood of huge bodies
    waits there while ``/health`` and small requests are still answered.
    """

    def __init__(self, threads: int, limit: int) -> None:
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="flywheel-admit")
        self.limit = limit
        self.pending = 0

    def enter(self) -> None:
        if self.pending >= self.limit:
            raise ApiError(429, f"the server has {self.pending} requests in progress (serve.max_pending_requests); "
                                "retry in a moment", type_="rate_limit_error", code="server_busy",
                           headers={"Retry-After": "1"})
        self.pending += 1

    def leave(self) -> None:
        self.pending -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class RecentIds:
    """The last ``size`` ids seen, to answer a repeated record without writing it again."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, key: str) -> bool:
        return key in self._seen

    def add(self, key: str) -> None:
        self._seen[key] = None
        self._seen.move_to_end(key)
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)


@dataclass
class Server:
    settings: Settings
    engine: GenerationEngine
    live: LiveAdapters
    spool: SpoolWriter
    metrics: ServingMetrics
    ids: InteractionIds
    admission: Admission
    feedback_seen: RecentIds


def get_server(request: Request) -> Server:
    return request.app.state.server


ServerDep = Annotated[Server, Depends(get_server)]


def _key_check(what: Literal["inference", "feedback", "admin"]) -> Any:
    def check(request: Request, srv: ServerDep) -> None:
        serve = srv.settings.serve
        expected: SecretStr | None = {"inference": serve.api_key, "feedback": serve.feedback_key,
                                      "admin": serve.admin_key}[what]
        if expected is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                  expected.get_secret_value().encode()):
            raise ApiError(401, f"missing or wrong {what} key; send it as 'Authorization: Bearer <key>'",
                           type_="authentication_error", code="invalid_api_key")

    return Depends(check)


inference_key = _key_check("inference")
feedback_key = _key_check("feedback")
admin_key = _key_check("admin")
