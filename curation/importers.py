"""Import existing datasets as seed data (enters the next version as new examples) or replay data
(only ever sampled into later versions as replay): Alpaca, ShareGPT, OpenAI ``messages``, DPO triples.

Every record is validated like any other input; a bad one goes to the quarantine table with its line and
a one-line reason, and the import goes on. Importing the same file twice adds nothing (content ids).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from curation.mining import executemany
from curation.step import ExclusionWriter, Record
from flywheel.records import DPOPair, Message, SFTExample
from flywheel.settings import Settings
from flywheel.warehouse import Rejected, connect, content_id, quarantine

FORMATS = ("auto", "alpaca", "sharegpt", "messages", "dpo")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "bing": "assistant", "bard": "assistant", "model": "assistant",
                  "system": "system", "tool": "tool", "function": "tool", "observation": "tool"}


class ImportError_(ValueError):  # noqa: N801 - not the builtin ImportError
    """One record that cannot be imported; the message names the field and the fix."""


@dataclass
class ImportResult:
    read: int = 0
    added: int = 0
    already_present: int = 0
    quarantined: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


def detect_format(record: dict[str, Any]) -> str:
    if "chosen" in record and "rejected" in record:
        return "dpo"
    if "conversations" in record:
        return "sharegpt"
    if "messages" in record:
        return "messages"
    if "instruction" in record:
        return "alpaca"
    raise ImportError_("record: unknown format; expected Alpaca (instruction/output), ShareGPT (conversations), "
                       "OpenAI messages, or a DPO triple (prompt/chosen/rejected)")


def _messages(value: Any, where: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value:
        raise ImportError_(f"{where}: expected a string or a non-empty list of {{role, content}} messages")
    try:
        return [Message.model_validate(m).model_dump() for m in value]
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise ImportError_(f"{where}.{'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def _answer(value: Any, where: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    msgs = _messages(value, where)
    if msgs[-1]["role"] != "assistant":
        raise ImportError_(f"{where}: the last message must be the assistant's answer")
    return [msgs[-1]]


def to_example(record: Any, fmt: str) -> tuple[str, dict[str, Any]]:
    """(kind, payload) for one record in ``fmt``; raises ImportError_ with the reason."""
    if not isinstance(record, dict):
        raise ImportError_(f"record: expected a JSON object, got {type(record).__name__}")
    fmt = detect_format(record) if fmt == "auto" else fmt
    if fmt == "alpaca":
        instruction, output = record.get("instruction"), record.get("output")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ImportError_("instruction: missing or empty; Alpaca records need instruction and output")
        if not isinstance(output, str) or not output.strip():
            raise ImportError_("output: missing or empty; Alpaca records need the answer in output")
        extra = record.get("input")
        user = instruction + (f"\n\n{extra}" if isinstance(extra, str) and extra.strip() else "")
        system = [{"role": "system", "content": record["system"]}] if isinstance(record.get("system"), str) else []
        messages = [*system, {"role": "user", "content": user}, {"role": "assistant", "content": output}]
    elif fmt == "sharegpt":
        turns = record.get("conversations")
        if not isinstance(turns, list) or not turns:
            raise ImportError_("conversations: expected a non-empty list of {from, value} turns")
        messages = []
        for i, turn in enumerate(turns):
            role = SHAREGPT_ROLES.get(str(turn.get("from", "")).lower()) if isinstance(turn, dict) else None
            if role is None:
                raise ImportError_(f"conversations.{i}.from: unknown speaker; use human/gpt/system")
            if not isinstance(turn.get("value"), str):
                raise ImportError_(f"conversations.{i}.value: expected the turn's text")
            messages.append({"role": role, "content": turn["value"]})
    elif fmt == "messages":
        messages = _messages(record.get("messages"), "messages")
    elif fmt == "dpo":
        prompt = _messages(record.get("prompt"), "prompt")
        payload = {"prompt": prompt, "chosen": _answer(record.get("chosen"), "chosen"),
                   "rejected": _answer(record.get("rejected"), "rejected")}
        try:
            DPOPair.model_validate({"id": "x", **payload})
        except ValidationError as exc:
            raise ImportError_(f"dpo: {exc.errors(include_url=False)[0]['msg']}") from None
        return "dpo", payload
    else:
        raise ImportError_(f"format {fmt!r} unknown; use one of {', '.join(FORMATS)}")
    if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
        raise ImportError_("messages: the last turn must be a non-empty assistant answer (the training target)")
    if not any(m["role"] == "user" for m in messages):
        raise ImportError_("messages: no user turn")
    SFTExample.model_validate({"id": "x", "messages": messages})
    return "sft", {"messages": messages}


def read_records(path: Path) -> list[tuple[int, Any]]:
    """(line, record) from a JSONL file or a JSON array; undecodable lines come back as ImportError_."""
    data = path.read_bytes()
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


def import_file(settings: Settings, path: Path, fmt: str = "auto", use_as: str = "seed") -> ImportResult:
    """Validate and store every record of ``path``; bad ones are quarantined (stage ``import``)."""
    if use_as not in ("seed", "replay"):
        raise ValueError(f"use_as must be seed or replay, got {use_as!r}")
    from curation.pipeline import safety_steps

    result, records, rows, rejected = ImportResult(), [], [], []
    source = str(path.resolve())
    for line, record in read_records(path):
        result.read += 1
        try:
            if isinstance(record, ImportError_):
                raise record
            kind, payload = to_example(record, fmt)
        except (ImportError_, ValidationError) as exc:
            rejected.append(Rejected("import", str(exc).splitlines()[0], orjson.dumps(record, default=str).decode(),
                                     source, line))
            continue
        records.append({"id": f"{kind}-" + content_id(kind, payload), "kind": kind, **payload})
    # Stored data is scrubbed and HAP-filtered like everything else that may reach a dataset.
    exclusions = ExclusionWriter()
    stream: Iterable[Record] = iter(records)
    for step in safety_steps(settings, exclusions):
        stream = step(stream)
    for record in stream:
        payload = {k: v for k, v in record.items() if k not in ("id", "kind")}
        rows.append((record["id"], record["kind"], use_as, orjson.dumps(payload).decode(), source))
        result.by_kind[record["kind"]] = result.by_kind.get(record["kind"], 0) + 1
    rejected += exclusions.to_rejected(source=source)
    with connect(settings) as con:
        before = con.execute("SELECT count(*) FROM imported_examples").fetchone()[0]
        executemany(con, "INSERT INTO imported_examples (id, kind, use_as, payload, source) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT DO NOTHING", rows)
        result.added = con.execute("SELECT count(*) FROM imported_examples").fetchone()[0] - before
        result.quarantined = len(rejected)
        quarantine(con, rejected, settings.collect.quarantine_raw_chars)
    result.already_present = len(rows) - result.added
    return result
