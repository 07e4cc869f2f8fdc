"""Data contracts (DESIGN.md): interactions in two shapes, feedback, SFT examples and DPO pairs.

``parse_record`` turns one decoded JSON value into a normalised :class:`Interaction` or
:class:`Feedback`, or raises :class:`RecordError` whose message is the one-line reason a user sees
in quarantine (it names the field and says what would fix it).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

ROLES = ("system", "user", "assistant", "tool")
FEEDBACK_KINDS = ("thumb", "rating", "correction", "comment", "regenerate")
# Stored times must be ones the warehouse, Python and the pages can all represent and compare: a record
# dated year 1 at +14:00 is year 0 in UTC, which Python cannot hold and which broke the review page.
EARLIEST, LATEST = datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)


class RecordError(ValueError):
    """A record that cannot be accepted; the message is shown to the user as is."""


def _utc(value: datetime | None) -> datetime | None:
    """Any accepted time as UTC, inside [EARLIEST, LATEST)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"{value.isoformat()} is outside {EARLIEST.year}-{LATEST.year - 1}; "
                         "send the time of the call as ISO 8601 with a zone")
    return utc


Timestamp = Annotated[
    datetime | None, BeforeValidator(lambda v: None if v in ("", None) else v), AfterValidator(_utc)
]


def content_text(content: Any) -> Any:
    """Incoming OpenAI content as one string, checked: a list of parts gives its text parts joined; other
    part types (images, audio) carry no text; a text part whose ``text`` is not a string is a ValueError (so
    a 400 or a quarantine row), not a crash. Reading stored messages, which were checked on the way in,
    is :func:`message_text`'s job."""
    if content is None:
        return ""
    if not isinstance(content, list):
        return content
    texts = []
    for i, part in enumerate(content):
        if not isinstance(part, dict):
            raise ValueError(f"part {i} must be an object like {{\"type\": \"text\", \"text\": \"...\"}}")
        if part.get("type", "text") == "text":
            if not isinstance(part.get("text"), str):
                raise ValueError(f"part {i}: 'text' must be a string, got {type(part.get('text')).__name__}")
            texts.append(part["text"])
    return "".join(texts)


def to_json(value: Any, field: str) -> str:
    """``value`` as JSON text; a value orjson cannot write (nested deeper than 254 levels) is a RecordError."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError as exc:
        raise RecordError(f"{field}: cannot be stored as JSON ({exc}); flatten it") from None


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool"]
    content: str

    @field_validator("content", mode="before")
    @classmethod
    def _content_parts(cls, v: Any) -> Any:
        return content_text(v)


class Interaction(BaseModel):
    """One model call, normalised from either accepted shape."""

    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=256)
    timestamp: Timestamp = None
    workload_id: str | None = None
    client_id: str | None = None
    model: str | None = None
    adapter: str | None = None
    messages: list[Message] = Field(min_length=1)
    response: str
    request: dict[str, Any] | None = None
    latency_ms: float | None = Field(None, ge=0, allow_inf_nan=False)
    prompt_tokens: int | None = Field(None, ge=0)
    completion_tokens: int | None = Field(None, ge=0)


class Feedback(BaseModel):
    model_config = ConfigDict(extra="ignore")
    interaction_id: str = Field(min_length=1, max_length=256)
    timestamp: Timestamp = None
    kind: Literal["thumb", "rating", "correction", "comment", "regenerate"]
    value: float | None = Field(None, allow_inf_nan=False)
    text: str | None = None
    user: str | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _thumb_words(cls, v: Any) -> Any:
        if isinstance(v, bool):
            return 1.0 if v else -1.0
        if isinstance(v, str) and v.lower() in ("up", "down", "+1", "-1"):
            return 1.0 if v.lower() in ("up", "+1") else -1.0
        return v

    def check_kind(self) -> None:
        if self.kind == "thumb" and self.value not in (1.0, -1.0):
            raise RecordError(f"feedback.value: a thumb must be +1/-1 (or up/down, true/false), got {self.value!r}")
        if self.kind == "rating" and (self.value is None or not 1 <= self.value <= 5):
            raise RecordError(f"feedback.value: a rating must be a number from 1 to 5, got {self.value!r}")
        if self.kind == "correction" and not (self.text or "").strip():
            raise RecordError("feedback.text: a correction needs the corrected answer in 'text'")

    @property
    def id(self) -> str:
        """What was said about which interaction by whom, not when: the same thumb sent three times is one."""
        key = orjson.dumps([self.interaction_id, self.kind, self.value, self.text, self.user])
        return hashlib.blake2b(key, digest_size=16).hexdigest()


def interaction_hash(messages: list[dict[str, Any]], response: str, timestamp: Any) -> str:
    """Content id for interactions that arrive without one."""
    key = orjson.dumps([messages, response, str(timestamp)], option=orjson.OPT_SORT_KEYS)
    return "ix-" + hashlib.blake2b(key, digest_size=16).hexdigest()


def _first_error(exc: ValidationError, prefix: str) -> RecordError:
    err = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"]) or "record"
    field = f"{prefix}.{loc}" if prefix else loc
    msg = err["msg"]
    if err["type"] == "value_error":
        msg = str(err["ctx"]["error"])
    elif err["type"] == "literal_error" and loc.endswith("role"):
        msg = f"unknown role {err['input']!r}; use one of {', '.join(ROLES)}"
    elif err["type"] == "literal_error" and loc == "kind":
        msg = f"unknown feedback kind {err['input']!r}; use one of {', '.join(FEEDBACK_KINDS)}"
    elif err["type"] == "missing":
        msg = "missing; add it"
    return RecordError(f"{field}: {msg}")


def _openai_to_flat(rec: dict[str, Any]) -> dict[str, Any]:
    req, resp = rec["request"], rec["response"]
    if not isinstance(req, dict):
        raise RecordError("request: must be a ChatCompletion request object with 'messages'")
    if not isinstance(resp, dict):
        raise RecordError("response: must be a ChatCompletion response object with 'choices'")
    choices = resp.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise RecordError("response.choices: missing or empty; a ChatCompletion response needs choices[0].message")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise RecordError("response.choices[0].message: missing; it holds the assistant answer")
    usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else {}
    return {
        "id": resp.get("id"),
        "timestamp": rec.get("timestamp", resp.get("created")),
        "workload_id": rec.get("workload_id"),
        "client_id": rec.get("client_id"),
        "model": resp.get("model") or req.get("model"),
        "adapter": rec.get("adapter"),
        "messages": req.get("messages"),
        "response": message.get("content"),
        "request": req,
        "latency_ms": rec.get("latency_ms"),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
    }


def parse_record(rec: Any) -> Interaction | Feedback:
    """Classify and validate one decoded record; raises RecordError with a one-line reason for any record
    that cannot be read, whatever went wrong with it, so a collect run quarantines it and goes on."""
    try:
        return _parse_record(rec)
    except RecordError:
        raise
    except Exception as exc:  # noqa: BLE001 - an input we did not foresee is still one bad record
        raise RecordError(f"record: cannot be read ({type(exc).__name__}: {str(exc)[:200]}); fix or remove it") from None


def _parse_record(rec: Any) -> Interaction | Feedback:
    if not isinstance(rec, dict):
        raise RecordError(f"record: expected a JSON object, got {type(rec).__name__}")
    if "kind" in rec and ("interaction_id" in rec or "messages" not in rec):
        try:
            fb = Feedback.model_validate(rec)
        except ValidationError as exc:
            raise _first_error(exc, "feedback") from None
        fb.check_kind()
        return fb
    if "request" in rec and "response" in rec and not isinstance(rec.get("response"), str):
        flat = _openai_to_flat(rec)
    elif "messages" in rec or "response" in rec:
        flat = rec
    else:
        raise RecordError(
            "record: not an interaction (needs messages+response or request+response) "
            "nor feedback (needs interaction_id+kind)"
        )
    if flat.get("response") is None:
        raise RecordError("response: missing the assistant answer text")
    if not flat.get("id"):
        msgs = flat.get("messages")
        flat = {**flat, "id": interaction_hash(msgs if isinstance(msgs, list) else [], str(flat["response"]),
                                              flat.get("timestamp"))}
    try:
        return Interaction.model_validate(flat)
    except ValidationError as exc:
        raise _first_error(exc, "") from None


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1)
    arguments: str  # JSON text, as the OpenAI API carries it: Arrow cannot hold free-form objects


class ToolCall(BaseModel):
    """One call in an assistant turn, in the OpenAI / HF chat-template shape ``{type, function}``."""

    model_config = ConfigDict(extra="ignore")
    type: Literal["function"] = "function"
    function: FunctionCall


class ExampleMessage(Message):
    """A turn of a training example. An assistant turn may call tools (its content is then often empty);
    the results come back in ``tool`` turns. Served requests keep the plain :class:`Message`."""

    tool_calls: list[ToolCall] | None = None

    @model_validator(mode="after")
    def _calls_are_the_assistants(self) -> ExampleMessage:
        if self.tool_calls is not None and (self.role != "assistant" or not self.tool_calls):
            raise ValueError("tool_calls: only an assistant turn calls tools, with at least one call")
        return self


class SFTExample(BaseModel):
    id: str
    messages: list[ExampleMessage] = Field(min_length=2)
    tools: str | None = None  # JSON list of the tool schemas the conversation may call
    source_interactions: list[str] = Field(default_factory=list)
    dataset_version: str | None = None


class DPOPair(BaseModel):
    id: str
    prompt: list[ExampleMessage] = Field(min_length=1)
    chosen: list[ExampleMessage] = Field(min_length=1, max_length=1)
    rejected: list[ExampleMessage] = Field(min_length=1, max_length=1)
    tools: str | None = None
    source_interactions: list[str] = Field(default_factory=list)
    dataset_version: str | None = None


EXAMPLE_BODY = ("messages", "prompt", "chosen", "rejected")  # what an SFT example or DPO pair teaches


def content_key(example: dict[str, Any]) -> bytes:
    """A digest of an example's turns only (not its id or lineage): the order datasets keep rows in.

    Example ids derive from response ids, which a live server draws at random; ordering by them made two
    runs of the same traffic train on the same rows in different orders, and so on different adapters.
    Tool calls and tool schemas count only where present, so rows without them keep the keys they had.
    """
    body: list[Any] = [[(m.get("role"), m.get("content"), *([m["tool_calls"]] if m.get("tool_calls") else []))
                        for m in example.get(f) or []] for f in EXAMPLE_BODY]
    if example.get("tools"):
        body.append(example["tools"])
    return hashlib.blake2b(orjson.dumps(body), digest_size=16).digest()


def message_text(message: Any) -> str:
    """The text of one chat message: its content string, or its text parts joined; "" for anything else.

    The one way every stage reads a message's text (stored messages may come in OpenAI's list-of-parts shape)."""
    if isinstance(message, str):
        return message
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return content if isinstance(content, str) else ""


def conversation_text(example: dict[str, Any]) -> str:
    """The text an example is deduplicated on: its non-system turns (tool calls included) and its target."""
    turns = example.get("messages") or [*(example.get("prompt") or []), *(example.get("chosen") or [])]
    return "\n".join((m.get("content") or "") + "".join(f"\n{c['function']['name']}({c['function']['arguments']})"
                                                          for c in m.get("tool_calls") or [])
                     for m in turns if m.get("role") != "system")


def prompt_text(example: dict[str, Any]) -> str:
    """The last user turn: examples that share it (or nearly) must sit on the same side of the split."""
    turns = example.get("messages") or example.get("prompt") or []
    users = [m.get("content") or "" for m in turns if m.get("role") == "user"]
    return users[-1] if users else ""
