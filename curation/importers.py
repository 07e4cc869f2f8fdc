"""Import existing datasets as seed data (enters the next version as new examples) or replay data
(only ever sampled into later versions as replay), in every layout LLaMA-Factory documents.

Layouts (``--format``, or detected row by row with ``auto``):

- ``alpaca``: instruction / input / output, system, history ``[[prompt, response], ...]``, tools;
  preference rows with chosen / rejected strings; KTO rows with a boolean ``kto_tag`` (or ``label``).
- ``sharegpt``: ``conversations`` of ``{from, value}`` turns (human, gpt, function_call, observation,
  system), a top-level system and tools; preference rows with chosen / rejected turns; KTO rows.
- ``openai``: ``messages`` of ``{role, content}`` with ``tool_calls`` and ``tool`` turns; content may be a
  list of parts (text, reasoning, tool_call: LLaMA-Factory's v1 files). Preference rows as chosen /
  rejected turns, v1 ``chosen_messages`` / ``rejected_messages``, or OpenAI's preference fine-tuning rows
  (``input`` / ``preferred_output`` / ``non_preferred_output``); KTO rows.
- ``dpo``: prompt / chosen / rejected (strings or message lists), TRL's and Flywheel's own DPO pairs.

Files may be JSON arrays, JSON Lines, Parquet, or plain text (one pre-training document per line). A
LLaMA-Factory ``dataset_info.json`` imports each local dataset it lists with that entry's columns and tags.

Every row is kept with all of its fields or quarantined with a one-line reason that names the layout and
the field: multimodal rows (text-only models here), pre-training text, unpairable KTO rows. A KTO label is
preference signal: a desirable and an undesirable answer to the same prompt become a DPO pair; a KTO row
never becomes SFT. Imported rows are scrubbed and HAP-filtered like everything else that may reach a
dataset, tool-call arguments included. Importing the same file twice adds nothing (content ids).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from curation import store
from curation.pipeline import safety_steps
from curation.step import ExclusionWriter, Record
from flywheel.records import DPOPair, SFTExample
from flywheel.settings import Settings
from flywheel.warehouse import Rejected, connect, content_id, quarantine

FORMATS = ("auto", "alpaca", "sharegpt", "openai", "dpo")
FORMAT_ALIASES = {"messages": "openai", "v1": "openai"}  # the names earlier releases and LLaMA-Factory v1 use
USE_AS = ("seed", "replay")
THOUGHT = ("<think>\n", "\n</think>\n\n")  # LLaMA-Factory's default thought words around a reasoning part
MEDIA_PARTS = {"image_url", "video_url", "audio_url", "input_audio", "image", "video", "audio", "file"}

# Speaker names accepted when a file names no tags of its own; "function_call" marks an assistant tool call.
SPEAKERS = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant",
            "bing": "assistant", "bard": "assistant", "model": "assistant", "system": "system",
            "developer": "system", "observation": "tool", "tool": "tool", "function": "tool", "ipython": "tool",
            "function_call": "function_call"}
TAG_ROLES = {"user_tag": "user", "assistant_tag": "assistant", "observation_tag": "tool",
             "function_tag": "function_call", "system_tag": "system"}
LF_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
           "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}


class ImportError_(ValueError):  # noqa: N801 - not the builtin ImportError
    """One record that cannot be imported; the message names the layout, the field and the fix."""


@dataclass(frozen=True)
class Layout:
    """Where a file keeps each field: the ``formatting`` / ``ranking`` / ``columns`` / ``tags`` of a
    LLaMA-Factory dataset_info entry. ``columns`` maps a field to its column (None: not read); without
    an entry every field sits under its usual name and all usual speaker names are understood."""

    formatting: str
    columns: dict[str, str | None] | None = None
    tags: dict[str, str] | None = None
    ranking: bool | None = None  # None: a row is a preference row when it has chosen / rejected

    def column(self, name: str) -> str | None:
        if self.columns is None:
            return {"prompt": "instruction", "query": "input", "response": "output",
                    "messages": "conversations" if self.formatting == "sharegpt" else "messages"}.get(name, name)
        return self.columns.get(name)

    def tag(self, name: str, turn: dict[str, Any] | None = None) -> str:
        """The key (role_tag, content_tag) or speaker name a tag stands for. Without tags of its own a
        sharegpt turn may use from/value or role/content keys; other layouts use role/content."""
        if self.tags is not None:
            return self.tags.get(name, LF_TAGS[name])
        openai_keys = self.formatting != "sharegpt" or (turn is not None and "from" not in turn and "role" in turn)
        return {"role_tag": "role", "content_tag": "content"}.get(name, LF_TAGS[name]) if openai_keys \
            else LF_TAGS[name]

    def role(self, speaker: Any, where: str) -> str:
        """Our role for a speaker name; explicit tags are the only names a dataset_info entry allows."""
        if self.tags is not None:
            roles = {self.tag(t): r for t, r in TAG_ROLES.items()}
        else:
            roles = {**SPEAKERS, **{LF_TAGS[t]: r for t, r in TAG_ROLES.items()}}
        role = roles.get(speaker if self.tags is not None else str(speaker).lower())
        if role is None:
            known = ", ".join(sorted(roles))
            raise ImportError_(f"{self.formatting}: {where}: unknown speaker {speaker!r}; use one of {known}")
        return role

    @classmethod
    def from_dataset_info(cls, entry: dict[str, Any]) -> Layout:
        """A LLaMA-Factory dataset_info entry, read with LLaMA-Factory's defaults for what it leaves out."""
        formatting = entry.get("formatting", "alpaca")
        if formatting not in ("alpaca", "sharegpt", "openai"):
            raise ImportError_(f"dataset_info: formatting {formatting!r} unknown; use alpaca, sharegpt or openai")
        defaults = ({"prompt": "instruction", "query": "input", "response": "output"} if formatting == "alpaca"
                    else {"messages": "conversations"})
        tags = dict(entry.get("tags") or {})
        if formatting == "openai":  # LLaMA-Factory's openai formatting is sharegpt with OpenAI's names
            tags = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                    "observation_tag": "tool", "system_tag": "system", **tags}
        return cls(formatting, {**defaults, **(entry.get("columns") or {})}, tags, bool(entry.get("ranking", False)))


@dataclass
class ImportResult:
    """What became of a file's rows: read = converted + refused; converted rows give ``built`` examples
    (KTO rows pair up), which the scrub / HAP steps keep (``by_kind``) or quarantine."""

    read: int = 0
    refused: int = 0  # rows quarantined because they cannot be converted
    built: dict[str, int] = field(default_factory=dict)  # examples made from the converted rows, per kind
    filtered: int = 0  # examples the scrub (drop operator) or the HAP filter quarantined
    added: int = 0
    already_present: int = 0
    quarantined: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)  # examples stored (or already present), per kind
    converted_by_layout: dict[str, int] = field(default_factory=dict)  # converted rows: "layout kind" -> n
    reasons: dict[str, int] = field(default_factory=dict)  # quarantine reasons, numbers folded to N

    @property
    def converted(self) -> int:
        return self.read - self.refused


# --- one row ---------------------------------------------------------------------------------------------------
def detect_format(record: dict[str, Any]) -> str:
    if "conversations" in record:
        return "sharegpt"
    if any(k in record for k in ("messages", "chosen_messages", "preferred_output")):
        return "openai"
    if "instruction" in record or isinstance(record.get("input"), str):
        return "alpaca"
    if "prompt" in record and ("chosen" in record or "rejected" in record):
        return "dpo"
    if isinstance(record.get("text"), str):
        raise ImportError_("record: pre-training text (a text column only): Flywheel trains on conversations "
                           "(SFT and DPO), not on raw documents")
    raise ImportError_("record: unknown format; expected Alpaca (instruction/output), ShareGPT (conversations), "
                       "OpenAI messages, or a DPO triple (prompt/chosen/rejected)")


def _refuse_media(record: dict[str, Any], layout: Layout) -> None:
    for media in ("images", "videos", "audios"):
        column = layout.column(media)
        if column and record.get(column):
            raise ImportError_(f"{layout.formatting}: {column}: multimodal rows are not supported (Flywheel trains "
                               f"text-only models); drop the {column} column to import the text alone")


def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def _tools(record: dict[str, Any], layout: Layout) -> dict[str, str]:
    """``{"tools": JSON text}`` when the row offers tools (an empty list or string is no tools)."""
    column = layout.column("tools")
    value = record.get(column) if column else None
    if isinstance(value, str):
        value = value.strip()
        try:
            parsed = orjson.loads(value) if value else None
        except orjson.JSONDecodeError:
            raise ImportError_(f"{layout.formatting}: {column}: not JSON; tools are a JSON list of function "
                               "schemas") from None
        return {"tools": value} if parsed else {}
    if isinstance(value, list | dict):
        return {"tools": _json_text(value)} if value else {}
    if value is not None:
        raise ImportError_(f"{layout.formatting}: {column}: expected a JSON list of function schemas")
    return {}


def _tool_call(call: Any, where: str) -> dict[str, Any]:
    """``{type: function, function: {name, arguments: JSON text}}`` from OpenAI's shape (arguments already
    JSON text) or LLaMA-Factory's ``{name, arguments}`` (arguments a JSON value, as its formatter dumps it)."""
    openai_shape = isinstance(call, dict) and isinstance(call.get("function"), dict)
    function = call["function"] if openai_shape else call
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        raise ImportError_(f"{where}: a tool call needs a name and arguments, as {{\"name\": ..., \"arguments\": ...}}")
    if "arguments" not in function:
        raise ImportError_(f"{where}: tool call {function['name']!r} has no arguments")
    arguments = function["arguments"]
    text = arguments if openai_shape and isinstance(arguments, str) else _json_text(arguments)
    return {"type": "function", "function": {"name": function["name"], "arguments": text}}


def _function_call_turn(value: Any, where: str, layout: Layout) -> dict[str, Any]:
    """A LLaMA-Factory function_call turn: JSON ``{name, arguments}`` or a list of them, optionally beside a
    ``<think>`` block (kept as the turn's content)."""
    if not isinstance(value, str):
        raise ImportError_(f"{layout.formatting}: {where}: expected the call as JSON text")
    thought = re.search(r"<think>.*?</think>\s*", value, re.DOTALL)
    body = value.replace(thought.group(0), "", 1) if thought else value
    try:
        calls = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ImportError_(f"{layout.formatting}: {where}: a function_call turn must hold JSON "
                           "{\"name\": ..., \"arguments\": ...} or a list of them") from None
    calls = calls if isinstance(calls, list) else [calls]
    if not calls:
        raise ImportError_(f"{layout.formatting}: {where}: a function_call turn with no call")
    return {"role": "assistant", "content": thought.group(0) if thought else "",
            "tool_calls": [_tool_call(c, f"{layout.formatting}: {where}") for c in calls]}


def _parts(parts: list[Any], where: str, layout: Layout) -> tuple[str, list[dict[str, Any]]]:
    """Text, reasoning and tool-call parts (OpenAI ``text`` or LLaMA-Factory v1 ``value``) as (content, calls);
    media parts are refused."""
    texts, thoughts, calls = [], [], []
    for j, part in enumerate(parts):
        kind = part.get("type", "text") if isinstance(part, dict) else None
        value = part.get("text", part.get("value")) if isinstance(part, dict) else None
        if kind in MEDIA_PARTS:
            raise ImportError_(f"{layout.formatting}: {where}.{j}: {kind} parts are not supported (Flywheel trains "
                               "text-only models); remove the media to import the text alone")
        if kind == "tool_call":
            try:
                calls.append(_tool_call(orjson.loads(value), f"{layout.formatting}: {where}.{j}"))
            except (orjson.JSONDecodeError, TypeError):
                raise ImportError_(f"{layout.formatting}: {where}.{j}: a tool_call part must hold JSON "
                                   "{\"name\": ..., \"arguments\": ...}") from None
        elif kind in ("text", "reasoning", "refusal") and isinstance(value, str):
            (thoughts if kind == "reasoning" else texts).append(value)
        else:
            raise ImportError_(f"{layout.formatting}: {where}.{j}: expected a {{type: text, text}} part, got "
                               f"{kind!r}")
    thought = THOUGHT[0] + "\n".join(thoughts) + THOUGHT[1] if thoughts else ""
    return thought + "".join(texts), calls


def _openai_message(message: Any, where: str, layout: Layout) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise ImportError_(f"{layout.formatting}: {where}: expected a {{role, content}} message")
    role_tag, content_tag = layout.tag("role_tag", message), layout.tag("content_tag", message)
    role = layout.role(message.get(role_tag), f"{where}.{role_tag}")
    content = message.get(content_tag)
    calls = [_tool_call(c, f"{layout.formatting}: {where}.tool_calls.{k}")
             for k, c in enumerate(message.get("tool_calls") or [])]
    if role == "function_call":
        return _function_call_turn(content, where, layout)
    if isinstance(content, list):
        content, part_calls = _parts(content, f"{where}.content", layout)
        calls += part_calls
    elif content is None:
        content = ""
    elif not isinstance(content, str):
        raise ImportError_(f"{layout.formatting}: {where}.content: expected text or a list of text parts")
    weight = message.get("loss_weight")
    if weight is not None and weight != (1.0 if role == "assistant" else 0.0):
        raise ImportError_(f"{layout.formatting}: {where}.loss_weight: {weight} for role {role}; Flywheel learns "
                           "every assistant turn and no other: drop the weight or the turn")
    if calls and role != "assistant":
        raise ImportError_(f"{layout.formatting}: {where}.tool_calls: only an assistant turn calls tools")
    return {"role": role, "content": content, **({"tool_calls": calls} if calls else {})}


def _sharegpt_turn(turn: Any, where: str, layout: Layout) -> dict[str, Any]:
    if not isinstance(turn, dict):
        raise ImportError_(f"sharegpt: {where}: expected a {{from, value}} turn")
    role_tag, content_tag = layout.tag("role_tag", turn), layout.tag("content_tag", turn)
    role = layout.role(turn.get(role_tag), f"{where}.{role_tag}")
    value = turn.get(content_tag)
    if role == "function_call":
        return _function_call_turn(value, where, layout)
    if not isinstance(value, str):
        raise ImportError_(f"sharegpt: {where}.{content_tag}: expected the turn's text")
    return {"role": role, "content": value}


def _turns(record: dict[str, Any], layout: Layout) -> list[dict[str, Any]]:
    """The conversation of a sharegpt / openai row, with a top-level system column as its first turn."""
    column = layout.column("messages")
    turns = record.get(column)
    convert = _sharegpt_turn if layout.formatting == "sharegpt" else _openai_message
    if not isinstance(turns, list) or not turns:
        shape = "{from, value} turns" if layout.formatting == "sharegpt" else "{role, content} messages"
        raise ImportError_(f"{layout.formatting}: {column}: missing or empty; expected a non-empty list of {shape}")
    messages = [convert(t, f"{column}.{i}", layout) for i, t in enumerate(turns)]
    return _with_system(messages, record, layout)


def _with_system(messages: list[dict[str, Any]], record: dict[str, Any], layout: Layout) -> list[dict[str, Any]]:
    column = layout.column("system")
    system = record.get(column) if column else None
    if system is None or system == "":
        return messages
    if not isinstance(system, str):
        raise ImportError_(f"{layout.formatting}: {column}: expected the system prompt as text")
    if messages and messages[0]["role"] == "system":
        if messages[0]["content"] != system:
            raise ImportError_(f"{layout.formatting}: {column}: both a system column and a different leading "
                               "system turn; keep one")
        return messages
    return [{"role": "system", "content": system}, *messages]


def _answer_turn(value: Any, where: str, layout: Layout) -> dict[str, Any]:
    """A chosen / rejected answer: a string (alpaca, dpo), a turn (sharegpt, openai) or a one-turn list."""
    convert = _sharegpt_turn if layout.formatting == "sharegpt" else _openai_message
    if isinstance(value, str):
        message = {"role": "assistant", "content": value}
    elif isinstance(value, dict):
        message = convert(value, where, layout)
    elif isinstance(value, list) and len(value) == 1:
        message = convert(value[0], f"{where}.0", layout)
    elif isinstance(value, list) and value:
        raise ImportError_(f"{layout.formatting}: {where}: expected one answer turn, got {len(value)}; the "
                           "conversation before the answer belongs in the prompt")
    else:
        raise ImportError_(f"{layout.formatting}: {where}: missing; a preference row needs the {where} answer")
    if message["role"] != "assistant":
        raise ImportError_(f"{layout.formatting}: {where}: the last message must be the assistant's answer")
    return message


def _check_answer(message: dict[str, Any], where: str, layout: Layout) -> None:
    if message["role"] != "assistant" or not (message["content"].strip() or message.get("tool_calls")):
        raise ImportError_(f"{layout.formatting}: {where}: the last turn must be a non-empty assistant answer "
                           "(the training target)")


def _check_prompt(prompt: list[dict[str, Any]], layout: Layout) -> None:
    if not any(m["role"] == "user" for m in prompt):
        raise ImportError_(f"{layout.formatting}: messages: no user turn")


def _ranked(record: dict[str, Any], layout: Layout) -> bool:
    """A preference row: as the dataset_info entry says, else when the row has chosen or rejected."""
    if layout.ranking is not None:
        return layout.ranking
    return any(c in record for c in (layout.column("chosen"), layout.column("rejected")))


def _kto_column(record: dict[str, Any], layout: Layout) -> str | None:
    candidates = (layout.column("kto_tag"),) if layout.columns is not None else ("kto_tag", "label")
    return next((c for c in candidates if c and isinstance(record.get(c), bool)), None)


def _example(record: dict[str, Any], layout: Layout, messages: list[dict[str, Any]]) -> tuple[str, Record]:
    """SFT example, DPO pair or KTO row from a converted conversation and the row's other columns."""
    tools = _tools(record, layout)
    kto_column = _kto_column(record, layout)
    if kto_column is not None:
        _check_answer(messages[-1], "messages", layout)
        _check_prompt(messages[:-1], layout)
        return "kto", {"prompt": messages[:-1], "completion": messages[-1:], "label": record[kto_column], **tools}
    if _ranked(record, layout):
        chosen_column, rejected_column = layout.column("chosen") or "chosen", layout.column("rejected") or "rejected"
        chosen = _answer_turn(record.get(chosen_column), chosen_column, layout)
        rejected = _answer_turn(record.get(rejected_column), rejected_column, layout)
        return _pair(messages, chosen, rejected, tools, layout)
    _check_answer(messages[-1], "messages", layout)
    _check_prompt(messages, layout)
    payload = {"messages": messages, **tools}
    try:
        SFTExample.model_validate({"id": "x", **payload})
    except ValidationError as exc:
        raise ImportError_(f"{layout.formatting}: {_first(exc)}") from None
    return "sft", payload


def _pair(prompt: list[dict[str, Any]], chosen: dict[str, Any], rejected: dict[str, Any], tools: dict[str, str],
          layout: Layout) -> tuple[str, Record]:
    if not prompt or prompt[-1]["role"] not in ("user", "tool"):
        raise ImportError_(f"{layout.formatting}: prompt: must end with the user's (or a tool's) turn that the "
                           "chosen and rejected answers reply to")
    _check_prompt(prompt, layout)
    for name, answer in (("chosen", chosen), ("rejected", rejected)):
        _check_answer(answer, name, layout)
    payload = {"prompt": prompt, "chosen": [chosen], "rejected": [rejected], **tools}
    try:
        DPOPair.model_validate({"id": "x", **payload})
    except ValidationError as exc:
        raise ImportError_(f"{layout.formatting}: {_first(exc)}") from None
    return "dpo", payload


def _first(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    return f"{'.'.join(map(str, err['loc']))}: {err['msg']}"


def _alpaca(record: dict[str, Any], layout: Layout) -> tuple[str, Record]:
    _refuse_media(record, layout)
    messages = _with_system([], record, layout)
    history_column = layout.column("history")
    history = record.get(history_column) if history_column else None
    if history:
        if not isinstance(history, list):
            raise ImportError_(f"alpaca: {history_column}: expected a list of [prompt, response] pairs")
        for i, pair in enumerate(history):
            if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise ImportError_(f"alpaca: {history_column}.{i}: expected a [prompt, response] pair of strings")
            messages += [{"role": "user", "content": pair[0]}, {"role": "assistant", "content": pair[1]}]
    query = [record.get(c) for c in (layout.column("prompt"), layout.column("query")) if c]
    if any(q is not None and not isinstance(q, str) for q in query):
        raise ImportError_(f"alpaca: {layout.column('prompt')}: expected text")
    user = "\n".join(q for q in query if q)  # LLaMA-Factory's prompt: instruction, newline, input
    if not user.strip():
        raise ImportError_(f"alpaca: {layout.column('prompt')}: missing or empty; Alpaca rows need the request in "
                           f"{layout.column('prompt')} (and/or {layout.column('query')})")
    messages.append({"role": "user", "content": user})
    if not _ranked(record, layout):
        response_column = layout.column("response")
        response = record.get(response_column) if response_column else None
        if not isinstance(response, str) or not response.strip():
            raise ImportError_(f"alpaca: {response_column}: missing or empty; Alpaca rows need the answer in "
                               f"{response_column} (rows without one are pre-training text, not trained on here)")
        messages.append({"role": "assistant", "content": response})
    return _example(record, layout, messages)


def _sharegpt(record: dict[str, Any], layout: Layout) -> tuple[str, Record]:
    _refuse_media(record, layout)
    return _example(record, layout, _turns(record, layout))


def _openai(record: dict[str, Any], layout: Layout) -> tuple[str, Record]:
    _refuse_media(record, layout)
    if "preferred_output" in record or "non_preferred_output" in record:  # OpenAI preference fine-tuning
        source = record.get("input")
        if not isinstance(source, dict):
            raise ImportError_("openai: input: expected {messages, tools} with the conversation to answer")
        inner = Layout("openai", {"messages": "messages", "tools": "tools"}, layout.tags)
        prompt = _turns(source, inner)
        chosen = _answer_turn(record.get("preferred_output"), "preferred_output", layout)
        rejected = _answer_turn(record.get("non_preferred_output"), "non_preferred_output", layout)
        return _pair(prompt, chosen, rejected, _tools(source, inner), layout)
    if "chosen_messages" in record or "rejected_messages" in record:  # LLaMA-Factory v1 preference rows
        sides = []
        for column in ("chosen_messages", "rejected_messages"):
            sides.append(_turns(record, Layout("openai", {"messages": column, "tools": "tools"}, layout.tags)))
        (*prompt, chosen), (*other_prompt, rejected) = sides
        if prompt != other_prompt:
            raise ImportError_("openai: rejected_messages: differs from chosen_messages before the last turn; a "
                               "preference pair answers one prompt")
        return _pair(prompt, chosen, rejected, _tools(record, layout), layout)
    return _example(record, layout, _turns(record, layout))


def _dpo(record: dict[str, Any], layout: Layout) -> tuple[str, Record]:
    prompt = record.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        prompt = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, list) and prompt:
        prompt = [_openai_message(m, f"prompt.{i}", layout) for i, m in enumerate(prompt)]
    else:
        raise ImportError_("dpo: prompt: expected a string or a non-empty list of {role, content} messages")
    chosen = _answer_turn(record.get("chosen"), "chosen", layout)
    rejected = _answer_turn(record.get("rejected"), "rejected", layout)
    return _pair(_with_system(prompt, record, layout), chosen, rejected, _tools(record, layout), layout)


CONVERTERS: dict[str, Callable[[dict[str, Any], Layout], tuple[str, Record]]] = {
    "alpaca": _alpaca, "sharegpt": _sharegpt, "openai": _openai, "dpo": _dpo}


def layout_of(record: Any, fmt: str | Layout) -> Layout:
    """The layout to read ``record`` with: ``fmt`` itself, the named layout, or the detected one (auto)."""
    if not isinstance(record, dict):
        raise ImportError_(f"record: expected a JSON object, got {type(record).__name__}")
    if isinstance(fmt, Layout):
        return fmt
    name = FORMAT_ALIASES.get(fmt, fmt)
    if name not in FORMATS:
        raise ImportError_(f"format {fmt!r} unknown; use one of {', '.join(FORMATS)}")
    return Layout(detect_format(record) if name == "auto" else name)


def to_example(record: Any, fmt: str | Layout) -> tuple[str, Record]:
    """(kind, payload) for one row: kind is sft, dpo or kto (a KTO row waits for its pair, see
    ``pair_kto``). ``fmt`` is a layout name (``auto`` detects it per row) or a :class:`Layout`."""
    layout = layout_of(record, fmt)
    return CONVERTERS[layout.formatting](record, layout)


def pair_kto(rows: list[tuple[int, Record]]) -> tuple[list[Record], list[tuple[int, Record, str]]]:
    """DPO pairs from KTO rows (line, payload): every desirable answer against every undesirable answer to
    the same prompt (and tools); rows without a counterpart come back as (line, payload, reason)."""
    groups: dict[bytes, dict[bool, list[tuple[int, Record]]]] = defaultdict(lambda: {True: [], False: []})
    for line, row in rows:
        groups[orjson.dumps([row["prompt"], row.get("tools")])][row["label"]].append((line, row))
    pairs, unpaired = [], []
    for group in groups.values():
        for _, good in group[True]:
            for _, bad in group[False]:
                pairs.append({"prompt": good["prompt"], "chosen": good["completion"], "rejected": bad["completion"],
                              **({"tools": good["tools"]} if good.get("tools") else {})})
        for label in (True, False):
            if not group[not label]:
                unpaired += [(line, row, f"kto: label {str(label).lower()} with no "
                                         f"{'undesirable' if label else 'desirable'} answer to the same prompt in "
                                         "this file to pair it with; Flywheel trains SFT and DPO, and a KTO row is "
                                         "never imported as SFT") for line, row in group[label]]
    return pairs, unpaired


# --- files -----------------------------------------------------------------------------------------------------
def read_records(path: Path) -> list[tuple[int, Any]]:
    """(line or row number, record) from a JSON array, JSON Lines, Parquet, or a text file (one pre-training
    document per line); what cannot be decoded comes back as an ImportError_ in place of the record."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(enumerate(pq.read_table(path).to_pylist(), 1))
    data = path.read_bytes()
    if path.suffix == ".txt":
        return [(n, {"text": line.decode("utf-8", "replace")}) for n, line in enumerate(data.splitlines(), 1)
                if line.strip()]
    if data.lstrip().startswith(b"["):
        try:
            return list(enumerate(orjson.loads(data), 1))
        except orjson.JSONDecodeError as exc:
            return [(1, ImportError_(f"{path.name}: not valid JSON ({exc})"))]
    out: list[tuple[int, Any]] = []
    for line_no, line in enumerate(data.splitlines(), 1):
        if line.strip():
            try:
                out.append((line_no, orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                out.append((line_no, ImportError_(f"line {line_no}: not valid JSON ({exc})")))
    return out


# Tool-call arguments are JSON text inside a turn, where the scrub does not look. For the safety steps each
# string in them travels as an extra turn at the end of ``messages`` (SFT) or ``rejected`` (DPO): behind the
# target, where the HAP filter does not score, and inside the record, so that the scrub replaces a name the
# same way in the arguments as in the conversation. ``_restore_arguments`` puts them back.
ARGUMENT_TURN = "tool-call-argument"


def _string_leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _string_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _string_leaves(item)


def _replace_leaves(value: Any, new: Iterator[str]) -> Any:
    if isinstance(value, str):
        return next(new)
    if isinstance(value, dict):
        return {k: _replace_leaves(v, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_leaves(v, new) for v in value]
    return value


def _parsed_arguments(text: str) -> tuple[Any, bool]:
    """(value, True) for JSON arguments; (text, False) otherwise: the whole text is then one string."""
    try:
        return orjson.loads(text), True
    except orjson.JSONDecodeError:
        return text, False


def _expose_arguments(record: Record) -> Record:
    carrier = "messages" if record["kind"] == "sft" else "rejected"
    extra = [{"role": ARGUMENT_TURN, "content": leaf}
             for name in ("messages", "prompt", "chosen", "rejected") for m in record.get(name) or []
             for call in m.get("tool_calls") or [] for leaf in _string_leaves(_parsed_arguments(
                 call["function"]["arguments"])[0])]
    return {**record, carrier: [*record[carrier], *extra]} if extra else record


def _restore_arguments(record: Record) -> Record:
    carrier = "messages" if record["kind"] == "sft" else "rejected"
    turns = record[carrier]
    leaves = iter([m["content"] for m in turns if m.get("role") == ARGUMENT_TURN])
    out = {**record, carrier: [m for m in turns if m.get("role") != ARGUMENT_TURN]}
    for name in ("messages", "prompt", "chosen", "rejected"):
        if name not in out:
            continue
        out[name] = [_restore_calls(m, leaves) if m.get("tool_calls") else m for m in out[name]]
    return out


def _restore_calls(message: Record, leaves: Iterator[str]) -> Record:
    calls = []
    for call in message["tool_calls"]:
        parsed, is_json = _parsed_arguments(call["function"]["arguments"])
        scrubbed = _replace_leaves(parsed, leaves)
        text = call["function"]["arguments"] if scrubbed == parsed else _json_text(scrubbed) if is_json else scrubbed
        calls.append({"type": "function", "function": {"name": call["function"]["name"], "arguments": text}})
    return {**message, "tool_calls": calls}


IDENTITY_KEYS = {"from", "role", "type", "id", "tool_call_id"}  # speaker tags and call ids, not content


def text_leaves(value: Any) -> Iterator[str]:
    """Every non-empty string in a JSON value (speaker tags and call ids aside), looking inside strings
    that hold JSON: what a row says, for ``unkept_text``."""
    if isinstance(value, str):
        if value.strip()[:1] in ("{", "["):
            try:
                yield from text_leaves(orjson.loads(value))
                return
            except orjson.JSONDecodeError:
                pass
        if value.strip():
            yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in IDENTITY_KEYS:
                yield from text_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from text_leaves(item)


def unkept_text(record: Any, payload: Record) -> list[str]:
    """The strings of a source row that its converted payload does not hold: empty when the conversion
    kept every field (the benchmark and the tests check this on LLaMA-Factory's demo files)."""
    kept = list(text_leaves(payload))
    return [leaf for leaf in text_leaves(record) if not any(leaf in k for k in kept)]


def fold_numbers(reason: str) -> str:
    """A reason with its numbers folded to N: rows that fail the same way count together."""
    return re.sub(r"\d+(\.\d+)?", "N", reason)


def import_file(settings: Settings, path: Path, fmt: str | Layout = "auto", use_as: str = "seed") -> ImportResult:
    """Validate and store every row of ``path``; bad ones are quarantined (stage ``import``)."""
    if use_as not in USE_AS:
        raise ValueError(f"use_as must be seed or replay, got {use_as!r}")

    result, records, rejected, kto_rows = ImportResult(), [], [], []
    source = str(path.resolve())
    converted: Counter[str] = Counter()

    def refuse(line: int, record: Any, reason: str) -> None:
        result.refused += 1
        rejected.append(Rejected("import", reason, orjson.dumps(record, default=str).decode(), source, line))

    for line, record in read_records(path):
        result.read += 1
        try:
            if isinstance(record, ImportError_):
                raise record
            layout = layout_of(record, fmt)
            kind, payload = CONVERTERS[layout.formatting](record, layout)
        except (ImportError_, ValidationError) as exc:
            refuse(line, record, str(exc).splitlines()[0])
            continue
        if kind == "kto":
            kto_rows.append((line, payload))
            continue
        converted[f"{layout.formatting} {kind}"] += 1
        records.append({"id": f"{kind}-" + content_id(kind, payload), "kind": kind, **payload})
    pairs, unpaired = pair_kto(kto_rows)
    for line, payload, reason in unpaired:
        refuse(line, payload, reason)
    converted["kto -> dpo"] += len(kto_rows) - len(unpaired)
    records += [{"id": "dpo-" + content_id("dpo", p), "kind": "dpo", **p} for p in pairs]
    result.converted_by_layout = {k: v for k, v in sorted(converted.items()) if v}
    result.built = dict(Counter(r["kind"] for r in records))

    # Stored data is scrubbed and HAP-filtered like everything else that may reach a dataset.
    exclusions = ExclusionWriter()
    stream: Iterable[Record] = (_expose_arguments(r) for r in records)
    for step in safety_steps(settings, exclusions):
        stream = step(stream)
    rows = []
    for record in map(_restore_arguments, stream):
        payload = {k: v for k, v in record.items() if k not in ("id", "kind")}
        rows.append((record["id"], record["kind"], use_as, orjson.dumps(payload).decode(), source))
        result.by_kind[record["kind"]] = result.by_kind.get(record["kind"], 0) + 1
    filtered = exclusions.to_rejected(source=source)
    result.filtered = len(filtered)
    rejected += filtered
    result.reasons = dict(Counter(fold_numbers(r.reason) for r in rejected).most_common())
    with connect(settings) as con:
        result.added = store.save_imported(con, rows)
        result.quarantined = len(rejected)
        quarantine(con, rejected, settings.collect.quarantine_raw_chars)
    result.already_present = len(rows) - result.added
    return result


def is_dataset_info(path: Path) -> bool:
    return path.name == "dataset_info.json"


def import_dataset_info(settings: Settings, path: Path, names: list[str] | None = None,
                        use_as: str = "seed") -> dict[str, ImportResult | str]:
    """Import the local datasets a LLaMA-Factory ``dataset_info.json`` lists (or those named), each with its
    entry's layout; an entry that cannot be imported (hub dataset, missing file) maps to the reason."""
    try:
        info = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ImportError_(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(info, dict):
        raise ImportError_(f"{path}: expected an object of dataset entries")
    unknown = sorted(set(names or []) - set(info))
    if unknown:
        raise ImportError_(f"{path}: no dataset named {', '.join(unknown)}; it lists {', '.join(sorted(info))}")
    out: dict[str, ImportResult | str] = {}
    for name, entry in info.items():
        if names and name not in names:
            continue
        if not isinstance(entry, dict) or not entry.get("file_name"):
            out[name] = "not a local file (hub, script or cloud dataset): download it and point file_name at it"
            continue
        target = path.parent / entry["file_name"]
        files = sorted(p for p in target.iterdir() if p.is_file()) if target.is_dir() else [target]
        if not all(f.is_file() for f in files) or not files:
            out[name] = f"{target}: no such file"
            continue
        try:
            layout = Layout.from_dataset_info(entry)
        except ImportError_ as exc:
            out[name] = str(exc)
            continue
        for file in files:
            out[name if len(files) == 1 else f"{name}/{file.name}"] = import_file(settings, file, layout, use_as)
    return out
