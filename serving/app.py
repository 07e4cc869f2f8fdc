"""The OpenAI-compatible model server: chat completions, feedback, admin, health and metrics.

``create_app(settings)`` builds the FastAPI app from one router per resource (``serving.routes``:
chat, feedback, admin, ops), the dependencies they share (``serving.deps``: the server state, the key
each resource needs) and one set of error handlers (``serving.errors``: OpenAI's error shape). Its
lifespan loads the base model, restores the live adapter set (``serving/live.json``) and starts the
batching worker. Every completion and every piece of feedback is appended to the spool
(``flywheel.spool``) in the shapes the collector accepts; the server never opens the warehouse. The
response id is the interaction id.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from flywheel.settings import Settings
from flywheel.spool import SpoolWriter
from serving import errors, http
from serving.adapters import LiveAdapters
from serving.deps import Admission, RecentIds, Server
from serving.engine import GenerationEngine
from serving.errors import ApiError
from serving.ids import InteractionIds
from serving.metrics import ServingMetrics
from serving.routes import admin, chat, feedback, ops
from training import registry
from training.base_model import ensure_base_model
from training.config import resolve_device

log = logging.getLogger(__name__)


def build_engine(settings: Settings, on_batch=None) -> GenerationEngine:
    """The engine over the configured base model (``train.base_model``: a local HF chat model, or smollm2)."""
    return GenerationEngine(ensure_base_model(settings), max_batch_size=settings.serve.max_batch_size,
                            batch_window_ms=settings.serve.batch_window_ms,
                            device=resolve_device(settings.train.device),
                            torch_threads=settings.serve.torch_threads, on_batch=on_batch)


def serve(settings: Settings, host: str, port: int) -> None:
    """``flywheel serve``: build the base model (with a progress bar, on first use), read the production adapter
    before the server starts (connection closed), then serve in the foreground until Ctrl-C."""
    settings.ensure_dirs()
    ensure_base_model(settings)
    production = registry.production_version(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    http.run(create_app(settings, production_hint=production), host, port)


def create_app(settings: Settings, production_hint: str | None = None) -> FastAPI:
    """The app; ``production_hint`` is the warehouse's production adapter, read by the caller at start."""
    metrics = ServingMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await run_in_threadpool(build_engine, settings, metrics.batch_size.observe)
        engine.start()
        live = LiveAdapters(settings, engine)
        spool = SpoolWriter(settings.spool_dir, segment_bytes=settings.serve.spool_segment_bytes)
        serve = settings.serve
        admission = Admission(serve.admission_threads, serve.max_pending_requests)
        try:
            await run_in_threadpool(live.restore, production_hint)
            metrics.set_production(live.production or "base")
            app.state.server = Server(settings, engine, live, spool, metrics,
                                      InteractionIds(settings.home / "serving" / "interaction-ids.key"), admission,
                                      RecentIds(serve.feedback_dedup_window))
            yield
        finally:
            admission.close()
            await run_in_threadpool(engine.stop)
            spool.close()

    app = FastAPI(title="flywheel model server", lifespan=lifespan)
    app.add_middleware(_Guard, limit=settings.serve.max_request_bytes, metrics=metrics)
    errors.install(app)
    for router in (chat.router, feedback.router, admin.router, ops.router):
        app.include_router(router)
    return app


@contextmanager
def background_server(settings: Settings, production_hint: str | None = None, host: str = "127.0.0.1",
                      port: int = 0) -> Iterator[str]:
    """The model server under uvicorn in a thread (tests, benchmarks, the demo); yields its base URL."""
    with http.background(create_app(settings, production_hint=production_hint), host, port,
                         name="model server") as url:
        yield url


class _Guard:
    """Pure ASGI, so streams and disconnects pass straight through: refuses bodies over ``limit`` bytes
    with 413 (by Content-Length, or while a chunked body streams in) and counts responses per route."""

    def __init__(self, app, limit: int, metrics: ServingMetrics) -> None:
        self.app, self.limit, self.metrics = app, limit, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500
        too_large = ApiError(413, f"body: larger than this server's limit of {self.limit} bytes "
                                  "(serve.max_request_bytes); send a shorter conversation",
                             code="request_too_large")
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise too_large
            return message

        async def status_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            length = dict(scope["headers"]).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.limit:
                await too_large.response()(scope, receive, status_send)
            else:
                await self.app(scope, counting_receive, status_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route=route, status=str(status)).inc()
