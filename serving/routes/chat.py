"""``POST /v1/chat/completions`` and ``GET /v1/models``: the inference resource.

A request is counted in (429 past ``serve.max_pending_requests``) before its body is read; its JSON is
parsed, validated and tokenised on the admission threads, never on the event loop. Everything that can
be wrong with it is found there, before any generation: fields, sampling values (a temperature too small
to divide by is greedy), control tokens written into the text, the prompt against the model's context
(``max_tokens`` defaults to what the context leaves), and whether the request can be logged at all.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flywheel.records import Message, RecordError, to_json
from serving.adapters import UnknownModel
from serving.deps import Server, ServerDep, inference_key
from serving.engine import Delta, Failed, Finished, Generation, SamplingParams
from serving.errors import ApiError, invalid

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[inference_key])

MAX_STOP_STRINGS, MAX_LOGIT_BIAS = 4, 300  # OpenAI's own limits
SEED_RANGE = 2**63


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # other OpenAI parameters are accepted and ignored
    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    temperature: float = Field(1.0, ge=0, le=2, allow_inf_nan=False)
    top_p: float = Field(1.0, gt=0, le=1, allow_inf_nan=False)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | Annotated[list[str], Field(max_length=MAX_STOP_STRINGS)] | None = None
    n: Literal[1] = 1
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    seed: int | None = Field(None, ge=-SEED_RANGE, lt=SEED_RANGE)
    logit_bias: dict[int, float] | None = Field(None, max_length=MAX_LOGIT_BIAS)
    user: str | None = None
    metadata: dict[str, str] | None = None


@dataclass(frozen=True)
class Admitted:
    """A request that passed every check: what the engine and the spool need."""

    req: ChatCompletionRequest
    request_json: str  # the request as it will be logged, serialised once here so logging cannot fail later
    adapter: str
    prompt_ids: list[int]
    params: SamplingParams


@router.get("/v1/models")
async def list_models(srv: ServerDep) -> dict[str, Any]:
    created = int(time.time())
    return {"object": "list", "data": [{"id": m, "object": "model", "created": created, "owned_by": "flywheel"}
                                       for m in srv.live.model_ids()]}


@router.post("/v1/chat/completions")
async def chat_completions(request: Request, srv: ServerDep) -> Response:
    srv.admission.enter()
    handed_over = False
    try:
        body = await request.body()
        admitted = await srv.admission.run(admit, srv, body)
        completion = _Completion(srv, admitted, request)
        handed_over = True  # from here the completion's close() lets the request out of admission
        srv.engine.submit(Generation(admitted.prompt_ids, admitted.adapter, admitted.params, completion.emit,
                                     completion.cancelled))
    finally:
        if not handed_over:
            srv.admission.leave()
    headers = {"x-flywheel-adapter": admitted.adapter}
    if admitted.req.stream:
        return _EventStream(completion.sse(), completion.close, media_type="text/event-stream", headers=headers)
    return JSONResponse(await completion.result(), headers=headers)


def admit(srv: Server, body: bytes) -> Admitted:
    """Every check a request must pass before generation (runs on an admission thread)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"body: not valid JSON ({exc})") from None
    try:
        req = ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc) from None
    try:
        request_json = to_json(req.model_dump(exclude_none=True), "body")
    except RecordError as exc:
        raise ApiError(400, str(exc), param="body") from None
    engine, limit = srv.engine, srv.settings.serve.max_tokens_limit
    for i, message in enumerate(req.messages):
        token = engine.control_token_in(message.content)
        if token is not None:
            raise ApiError(400, f"messages.{i}.content: contains the control token {token!r}, which would act as "
                                "a real turn marker; remove it", param=f"messages.{i}.content",
                           code="control_token_in_content")
    asked = req.max_completion_tokens or req.max_tokens
    if asked is not None and asked > limit:
        raise ApiError(400, f"max_tokens: {asked} is above this server's limit of {limit}; ask for fewer",
                       param="max_tokens")
    try:
        adapter = srv.live.resolve(req.model)
    except UnknownModel:
        raise ApiError(404, f"The model '{req.model}' does not exist; GET /v1/models lists base, production "
                            "and the loaded adapter versions", param="model", code="model_not_found") from None
    vocab = len(engine.tokenizer)
    bias = tuple(sorted((req.logit_bias or {}).items()))
    if any(not 0 <= token < vocab or not -100 <= value <= 100 for token, value in bias):
        raise ApiError(400, f"logit_bias: token ids must be in [0, {vocab}) and biases in [-100, 100]",
                       param="logit_bias")
    prompt_ids = engine.encode_chat([m.model_dump() for m in req.messages])
    room = engine.context_length - len(prompt_ids)
    max_tokens = min(asked or limit, room)
    if room < 1 or (asked is not None and asked > room):
        raise ApiError(400, f"messages: {len(prompt_ids)} prompt tokens + max_tokens {asked or 1} exceed the "
                            f"model's context of {engine.context_length} tokens; shorten the conversation",
                       param="messages", code="context_length_exceeded")
    stop = (req.stop,) if isinstance(req.stop, str) else tuple(s for s in req.stop or () if s)
    seed = req.seed % SEED_RANGE if req.seed is not None else SamplingParams.new_seed()
    params = SamplingParams(max_tokens=max_tokens, temperature=req.temperature, top_p=req.top_p, stop=stop,
                            seed=seed, logit_bias=bias)
    return Admitted(req, request_json, adapter, prompt_ids, params)


class _Completion:
    """One admitted chat completion: receives the worker's events and turns them into OpenAI objects."""

    def __init__(self, srv: Server, admitted: Admitted, request: Request) -> None:
        self.srv, self.req, self.adapter = srv, admitted.req, admitted.adapter
        self.request_json, self.prompt_tokens = admitted.request_json, len(admitted.prompt_ids)
        self.id = srv.ids.new()
        self.created = int(time.time())
        self.started = time.perf_counter()
        self.timestamp = datetime.now(UTC).isoformat()
        self.workload_id = (self.req.metadata or {}).get("workload_id") or request.headers.get("x-workload-id")
        self.client_id = self.req.user or request.headers.get("x-client-id")
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
        m = self.srv.metrics
        try:
            self.srv.spool.append({"timestamp": self.timestamp, "workload_id": self.workload_id,
                                   "client_id": self.client_id, "request": orjson.Fragment(self.request_json),
                                   "response": response, "adapter": self.adapter,
                                   "latency_ms": round(latency_ms, 3)})
        except OSError:  # the answer is still the client's; the loss is counted and logged for ops
            m.spool_errors.inc()
            log.exception("could not spool interaction %s", self.id)
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
        self.srv.admission.leave()


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
