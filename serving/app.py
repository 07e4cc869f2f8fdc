"""The OpenAI-compatible model server: chat completions, feedback, admin, health and metrics.

``create_app(settings)`` builds the FastAPI app; its lifespan loads the base model, restores the live
adapter set (``serving/live.json``) and starts the batching worker. Every completion and every piece
of feedback is appended to the spool (``flywheel.spool``) in the shapes the collector accepts; the
server never opens the warehouse. The response id is the interaction id.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from starlette.concurrency import run_in_threadpool

from flywheel.records import Feedback, Message, RecordError
from flywheel.settings import Settings
from flywheel.spool import SpoolWriter
from serving.adapters import LiveAdapters, NothingToRollBack, UnknownModel
from serving.engine import AdapterError, Delta, Failed, Finished, Generation, GenerationEngine, SamplingParams
from serving.metrics import ServingMetrics

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Becomes an OpenAI-shaped error body: {"error": {"message", "type", "param", "code"}}."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"message": self.message, "type": self.type, "param": self.param,
                                       "code": self.code}}, status_code=self.status)


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # other OpenAI parameters are accepted and ignored
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    n: Literal[1] = 1
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    seed: int | None = None
    logit_bias: dict[int, float] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None


class FeedbackRequest(Feedback):
    """The body of POST /v1/feedback: the feedback contract, timestamped by the server when absent."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Server:
    settings: Settings
    engine: GenerationEngine
    live: LiveAdapters
    spool: SpoolWriter
    metrics: ServingMetrics


def build_engine(settings: Settings, on_batch=None) -> GenerationEngine:
    """The engine over the configured base model (``train.base_model``: a local HF chat model, or smollm2)."""
    from training.base_model import ensure_base_model

    device = settings.train.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    return GenerationEngine(ensure_base_model(settings), max_batch_size=settings.serve.max_batch_size,
                            batch_window_ms=settings.serve.batch_window_ms, device=device,
                            torch_threads=settings.serve.torch_threads, on_batch=on_batch)


def bind_warnings(settings: Settings, host: str) -> list[str]:
    """What is unsafe about exposing this server on ``host``; empty on loopback."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback:
        return []
    serve = settings.serve
    problems = []
    if serve.api_key is None:
        problems.append("no inference key (serve.api_key): anyone who can reach it can run completions")
    if serve.feedback_key is None:
        problems.append("no feedback key (serve.feedback_key): anyone can write feedback into the training data")
    if serve.admin_key.get_secret_value() == "flywheel-admin":
        problems.append("the admin key is the public default: anyone can swap the production adapter")
    return [f"binding to {host}: {p}" for p in problems]


def create_app(settings: Settings, production_hint: str | None = None) -> FastAPI:
    """The app; ``production_hint`` is the warehouse's production adapter, read by the caller at start."""
    metrics = ServingMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = await run_in_threadpool(build_engine, settings, metrics.batch_size.observe)
        engine.start()
        live = LiveAdapters(settings, engine)
        spool = SpoolWriter(settings.spool_dir, segment_bytes=settings.serve.spool_segment_bytes)
        try:
            await run_in_threadpool(live.restore, production_hint)
            metrics.set_production(live.production or "base")
            app.state.server = Server(settings, engine, live, spool, metrics)
            yield
        finally:
            await run_in_threadpool(engine.stop)
            spool.close()

    app = FastAPI(title="flywheel model server", lifespan=lifespan)
    app.add_middleware(_Guard, limit=settings.serve.max_request_bytes, metrics=metrics)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        srv: Server = request.app.state.server
        return {"status": "ok", **srv.live.snapshot(), "queue_depth": srv.engine.queue_depth(),
                "generating": srv.engine.busy.is_set()}

    @app.get("/metrics")
    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict[str, Any]:
        srv: Server = request.app.state.server
        _require_key(request, settings.serve.api_key, "inference")
        created = int(time.time())
        return {"object": "list", "data": [{"id": m, "object": "model", "created": created, "owned_by": "flywheel"}
                                           for m in srv.live.model_ids()]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        srv: Server = request.app.state.server
        _require_key(request, settings.serve.api_key, "inference")
        req = _validate(ChatCompletionRequest, await _json_body(request), status=400)
        completion = _admit(srv, req, request)
        if req.stream:
            return _EventStream(completion.sse(), completion.close, media_type="text/event-stream",
                                headers={"x-flywheel-adapter": completion.adapter})
        return JSONResponse(await completion.result(), headers={"x-flywheel-adapter": completion.adapter})

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> dict[str, Any]:
        srv: Server = request.app.state.server
        _require_key(request, settings.serve.feedback_key, "feedback")
        fb = _validate(FeedbackRequest, await _json_body(request), status=422)
        try:
            fb.check_kind()
        except RecordError as exc:
            field = str(exc).split(":", 1)[0].removeprefix("feedback.")
            raise ApiError(422, str(exc), param=field) from None
        fb = fb.model_copy(update={"timestamp": fb.timestamp or datetime.now(UTC)})  # id as the collector computes it
        record = {"interaction_id": fb.interaction_id, "timestamp": fb.timestamp.isoformat(), "kind": fb.kind, "value": fb.value, "text": fb.text, "user": fb.user}
        srv.spool.append(record)
        metrics.feedback.labels(kind=fb.kind).inc()
        return {"id": fb.id, "object": "feedback", "interaction_id": fb.interaction_id, "status": "recorded"}

    # ---- admin -------------------------------------------------------------------------------------
    @app.get("/admin/adapters")
    async def admin_adapters(request: Request) -> dict[str, Any]:
        srv: Server = request.app.state.server
        _require_key(request, settings.serve.admin_key, "admin")
        return srv.live.snapshot()

    @app.post("/admin/adapters/{version}/load")
    async def admin_load(version: str, request: Request) -> dict[str, Any]:
        _require_key(request, settings.serve.admin_key, "admin")
        return await _admin(request, lambda live: live.load(version))

    @app.post("/admin/adapters/{version}/unload")
    async def admin_unload(version: str, request: Request) -> dict[str, Any]:
        _require_key(request, settings.serve.admin_key, "admin")
        return await _admin(request, lambda live: live.unload(version))

    @app.post("/admin/promote/{version}")
    async def admin_promote(version: str, request: Request) -> dict[str, Any]:
        _require_key(request, settings.serve.admin_key, "admin")
        return await _admin(request, lambda live: live.promote(version))

    @app.post("/admin/rollback")
    async def admin_rollback(request: Request) -> dict[str, Any]:
        _require_key(request, settings.serve.admin_key, "admin")
        return await _admin(request, lambda live: live.rollback())

    return app


@contextmanager
def background_server(settings: Settings, production_hint: str | None = None, host: str = "127.0.0.1",
                      port: int = 0) -> Iterator[str]:
    """Run the server under uvicorn in a thread (tests, benchmarks, the demo); yields its base URL.

    The socket is bound before uvicorn starts, so ``port=0`` picks a free port without a race.
    """
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(create_app(settings, production_hint=production_hint),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="flywheel-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 600
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the model server did not start; its log above says why")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


async def _admin(request: Request, change) -> dict[str, Any]:
    srv: Server = request.app.state.server
    try:
        result = await run_in_threadpool(change, srv.live)
    except AdapterError as exc:
        raise ApiError(409, str(exc), param="version", code="adapter_refused") from None
    except NothingToRollBack as exc:
        raise ApiError(409, str(exc), code="nothing_to_roll_back") from None
    srv.metrics.set_production(srv.live.production or "base")
    return result


def _require_key(request: Request, expected: SecretStr | None, what: str) -> None:
    """Constant-time check of ``Authorization: Bearer <key>`` when a key is configured."""
    if expected is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                              expected.get_secret_value().encode()):
        raise ApiError(401, f"missing or wrong {what} key; send it as 'Authorization: Bearer <key>'",
                       type_="authentication_error", code="invalid_api_key")


async def _json_body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body: not valid JSON ({exc})") from None


def _validate(model: type[BaseModel], body: Any, status: int) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        msg = "missing; add it" if err["type"] == "missing" else err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field; remove it"
        raise ApiError(status, f"{field}: {msg}", param=field) from None


def _admit(srv: Server, req: ChatCompletionRequest, request: Request) -> _Completion:
    limit = srv.settings.serve.max_tokens_limit
    max_tokens = req.max_completion_tokens or req.max_tokens or limit
    if max_tokens > limit:
        raise ApiError(400, f"max_tokens: {max_tokens} is above this server's limit of {limit}; ask for fewer",
                       param="max_tokens")
    try:
        adapter = srv.live.resolve(req.model)
    except UnknownModel:
        raise ApiError(404, f"The model '{req.model}' does not exist; GET /v1/models lists base, production "
                            "and the loaded adapter versions", param="model", code="model_not_found") from None
    messages = [m.model_dump() for m in req.messages]
    prompt_ids = srv.engine.encode_chat(messages)
    if len(prompt_ids) + max_tokens > srv.engine.context_length:
        raise ApiError(400, f"messages: {len(prompt_ids)} prompt tokens + max_tokens {max_tokens} exceed the "
                            f"model's context of {srv.engine.context_length} tokens; shorten the conversation",
                       param="messages", code="context_length_exceeded")
    stop = (req.stop,) if isinstance(req.stop, str) else tuple(s for s in req.stop or () if s)
    vocab = len(srv.engine.tokenizer)
    bias = tuple(sorted((req.logit_bias or {}).items()))
    if any(not 0 <= token < vocab or not -100 <= value <= 100 for token, value in bias):
        raise ApiError(400, f"logit_bias: token ids must be in [0, {vocab}) and biases in [-100, 100]",
                       param="logit_bias")
    params = SamplingParams(max_tokens=max_tokens, temperature=req.temperature, top_p=req.top_p,
                            stop=stop, seed=req.seed, logit_bias=bias)
    completion = _Completion(srv, req, request, adapter, len(prompt_ids))
    srv.engine.submit(Generation(prompt_ids, adapter, params, completion.emit, completion.cancelled))
    return completion


class _Completion:
    """One admitted chat completion: receives the worker's events and turns them into OpenAI objects."""

    def __init__(self, srv: Server, req: ChatCompletionRequest, request: Request, adapter: str,
                 prompt_tokens: int) -> None:
        self.srv, self.req, self.adapter, self.prompt_tokens = srv, req, adapter, prompt_tokens
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.started = time.perf_counter()
        self.timestamp = datetime.now(UTC).isoformat()
        self.workload_id = (req.metadata or {}).get("workload_id") or request.headers.get("x-workload-id")
        self.client_id = req.user or request.headers.get("x-client-id")
        self.cancelled = threading.Event()
        self._ended = False  # the worker reported the end (finished or failed)
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue = asyncio.Queue()
        srv.metrics.in_flight.inc()

    def emit(self, event: Delta | Finished | Failed) -> None:  # worker thread
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:  # the event loop is gone (server shutting down): nobody is listening
            self.cancelled.set()

    async def _events_until_end(self) -> AsyncIterator[Delta | Finished | Failed]:
        while True:
            event = await self._events.get()
            if not isinstance(event, Delta):
                self._ended = True
            yield event
            if self._ended:
                return

    async def result(self) -> dict[str, Any]:
        try:
            async for event in self._events_until_end():
                if isinstance(event, Failed):
                    raise ApiError(500, event.message, type_="server_error")
                if isinstance(event, Finished):
                    return self._record(event)
            raise ApiError(500, "generation ended without a result", type_="server_error")
        finally:
            self.close()

    async def sse(self) -> AsyncIterator[bytes]:
        try:
            yield _sse(self._chunk({"role": "assistant", "content": ""}))
            async for event in self._events_until_end():
                if isinstance(event, Delta):
                    yield _sse(self._chunk({"content": event.text}))
                elif isinstance(event, Failed):
                    yield _sse({"error": {"message": event.message, "type": "server_error", "param": None,
                                          "code": None}})
                elif isinstance(event, Finished):
                    response = self._record(event)
                    yield _sse(self._chunk({}, event.finish_reason))
                    if (self.req.stream_options or {}).get("include_usage"):
                        yield _sse({**self._chunk(None), "choices": [], "usage": response["usage"]})
            yield b"data: [DONE]\n\n"
        finally:
            self.close()

    def _chunk(self, delta: dict[str, Any] | None, finish_reason: str | None = None) -> dict[str, Any]:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.adapter, "choices": choices}

    def _record(self, done: Finished) -> dict[str, Any]:
        """The ChatCompletion response; also spooled, with its request, as one interaction line."""
        latency_ms = (time.perf_counter() - self.started) * 1000
        usage = {"prompt_tokens": self.prompt_tokens, "completion_tokens": done.completion_tokens,
                 "total_tokens": self.prompt_tokens + done.completion_tokens}
        response = {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.adapter,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text},
                                 "finish_reason": done.finish_reason}],
                    "usage": usage}
        self.srv.spool.append({"timestamp": self.timestamp, "workload_id": self.workload_id,
                               "client_id": self.client_id, "request": self.req.model_dump(exclude_none=True),
                               "response": response, "adapter": self.adapter, "latency_ms": round(latency_ms, 3)})
        m = self.srv.metrics
        m.latency.labels(adapter=self.adapter, stream=str(self.req.stream).lower()).observe(latency_ms / 1000)
        m.tokens.labels(kind="prompt").inc(self.prompt_tokens)
        m.tokens.labels(kind="completion").inc(done.completion_tokens)
        return response

    def close(self) -> None:
        """End of the request, however it ended (idempotent). A generation whose client went away before
        it finished is cancelled: its row stops at the next token and nothing half-done is logged."""
        if self._closed:
            return
        self._closed = True
        if not self._ended:
            self.cancelled.set()
            self.srv.metrics.cancelled.inc()
        self.srv.metrics.in_flight.dec()


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


class _EventStream(StreamingResponse):
    """Calls ``on_close`` however the response ends (even before its generator ran), so a client that
    leaves always cancels its generation."""

    def __init__(self, content, on_close, **kwargs) -> None:
        super().__init__(content, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.body_iterator.aclose()
            self.on_close()


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
