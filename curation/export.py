"""Export a dataset version for other trainers: LLaMA-Factory, or ShareGPT / Alpaca / OpenAI JSON Lines.

    flywheel export v3 --format llamafactory -o DIR

writes ``DIR/v3_{sft,dpo}_{train,eval}.jsonl`` (non-empty splits only) and adds an entry per file to
``DIR/dataset_info.json`` (merged into one already there), so that LLaMA-Factory's ``dataset:
flywheel_v3_sft_train`` trains SFT on it and ``flywheel_v3_dpo_train`` (``ranking: true``) DPO, ORPO or a
reward model. Both use LLaMA-Factory's sharegpt layout: it holds system prompts, tool calls
(``function_call`` / ``observation`` turns, and ``tools``), and preference rows whose chosen and rejected are
single turns beside the conversation. (A version's Parquet stores them as one-element message lists, which
LLaMA-Factory's converter misreads as a whole conversation: empty prompt, the user's turn as the answer.)

``sharegpt`` writes the same rows without dataset_info.json; ``alpaca`` writes instruction / input / output
(or chosen / rejected) with system and history; ``openai`` writes ``messages`` with ``tool_calls`` (SFT) and
OpenAI's preference fine-tuning rows ``input`` / ``preferred_output`` / ``non_preferred_output`` (DPO).

A row the target layout cannot hold (a tool call in Alpaca; two user turns in a row, which LLaMA-Factory
skips as broken) is left out with its reason: counted, printed, and listed in ``DIR/vN_<format>_skipped.jsonl``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from curation.datasets import KINDS, SPLITS
from flywheel.settings import Settings
from flywheel.versions import is_version, version_number

EXPORT_FORMATS = ("llamafactory", "sharegpt", "alpaca", "openai")
SHAREGPT_SPEAKERS = {"user": "human", "assistant": "gpt", "tool": "observation"}
SHAREGPT_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}
THOUGHT_ONLY = re.compile(r"\s*<think>.*?</think>\s*", re.DOTALL)

Row = dict[str, Any]


class ExportError(ValueError):
    """Bad arguments: the message is one line naming the fix."""


class RowError(ValueError):
    """A row the target layout cannot hold; the message is the reason it is left out."""


@dataclass
class ExportResult:
    directory: Path
    files: dict[str, int] = field(default_factory=dict)  # file name -> rows written
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows left out
    dataset_info: Path | None = None


# --- one row, per layout ---------------------------------------------------------------------------------------
def _system_and_turns(messages: list[Row]) -> tuple[str, list[Row]]:
    """The leading system prompt and the rest; a system turn later on has no place in these layouts."""
    system, rest = ("", messages) if not messages or messages[0]["role"] != "system" else \
        (messages[0]["content"], messages[1:])
    for i, m in enumerate(rest):
        if m["role"] == "system":
            raise RowError(f"turn {i + 1} is a system turn after the first; only a leading system prompt exports")
    return system, rest


def _calls_json(calls: list[Row]) -> str:
    """LLaMA-Factory's function_call value: ``{name, arguments}``, or a list of them for parallel calls."""
    out = []
    for call in calls:
        try:
            arguments = orjson.loads(call["function"]["arguments"])
        except orjson.JSONDecodeError:
            raise RowError(f"tool call {call['function']['name']!r} has arguments that are not JSON") from None
        out.append({"name": call["function"]["name"], "arguments": arguments})
    return orjson.dumps(out[0] if len(out) == 1 else out).decode()


def _sharegpt_turn(message: Row) -> Row:
    if message.get("tool_calls"):
        content = message["content"]
        if content.strip() and not THOUGHT_ONLY.fullmatch(content):
            raise RowError("an assistant turn has text beside its tool calls, which a function_call turn cannot "
                           "hold (only a <think> block)")
        return {"from": "function_call", "value": content + _calls_json(message["tool_calls"])}
    return {"from": SHAREGPT_SPEAKERS[message["role"]], "value": message["content"]}


def _check_alternation(turns: list[Row], ranking: bool) -> None:
    """LLaMA-Factory's rule: human/observation on even positions, gpt/function_call on odd ones; an SFT row
    ends with an answer, a preference prompt with a human or observation turn. Other rows it skips."""
    for i, turn in enumerate(turns):
        expected = ("human", "observation") if i % 2 == 0 else ("gpt", "function_call")
        if turn["from"] not in expected:
            raise RowError(f"turn {i + 1} is {turn['from']} where LLaMA-Factory expects {' or '.join(expected)} "
                           "(turns must alternate)")
    if len(turns) % 2 != (1 if ranking else 0):
        raise RowError("the conversation does not end with " + ("a human or observation turn" if ranking
                                                                else "an answer"))


def sharegpt_row(row: Row, kind: str) -> Row:
    """One row in LLaMA-Factory's sharegpt layout (see the module docstring)."""
    system, turns = _system_and_turns(row["messages"] if kind == "sft" else row["prompt"])
    conversations = [_sharegpt_turn(m) for m in turns]
    _check_alternation(conversations, ranking=kind == "dpo")
    out: Row = {"conversations": conversations}
    if kind == "dpo":
        out["chosen"], out["rejected"] = _sharegpt_turn(row["chosen"][0]), _sharegpt_turn(row["rejected"][0])
    return {**out, "system": system, "tools": row.get("tools") or ""}


def alpaca_row(row: Row, kind: str) -> Row:
    """instruction (the last user turn), input, output or chosen / rejected, system, history."""
    system, turns = _system_and_turns(row["messages"] if kind == "sft" else row["prompt"])
    if any(m["role"] == "tool" or m.get("tool_calls") for m in [*turns, *row.get("chosen", []),
                                                               *row.get("rejected", [])]):
        raise RowError("the Alpaca layout has no tool turns; export with --format llamafactory, sharegpt or openai")
    pairs = turns if kind == "dpo" else turns[:-1]
    for i, m in enumerate(pairs):
        if m["role"] != ("user" if i % 2 == 0 else "assistant"):
            raise RowError(f"turn {i + 1} is {m['role']} where Alpaca's history expects "
                           f"{'user' if i % 2 == 0 else 'assistant'} (turns must alternate)")
    if len(pairs) % 2 == 0:
        raise RowError("the prompt does not end with a user turn")
    history = [[pairs[i]["content"], pairs[i + 1]["content"]] for i in range(0, len(pairs) - 1, 2)]
    out: Row = {"instruction": pairs[-1]["content"], "input": ""}
    if kind == "sft":
        out["output"] = turns[-1]["content"]
    else:
        out["chosen"], out["rejected"] = row["chosen"][0]["content"], row["rejected"][0]["content"]
    return {**out, "system": system, "history": history, **({"tools": row["tools"]} if row.get("tools") else {})}


def _openai_messages(messages: list[Row]) -> list[Row]:
    """OpenAI chat messages; tool calls get ids ``call_N`` and each tool turn answers the oldest open call."""
    out, open_calls, n = [], [], 0
    for m in messages:
        message: Row = {"role": m["role"], "content": m["content"]}
        if m.get("tool_calls"):
            message["content"] = m["content"] or None
            message["tool_calls"] = []
            for call in m["tool_calls"]:
                open_calls.append(f"call_{n}")
                message["tool_calls"].append({"id": f"call_{n}", "type": "function", "function": dict(call["function"])})
                n += 1
        elif m["role"] == "tool" and open_calls:
            message["tool_call_id"] = open_calls.pop(0)
        out.append(message)
    return out


def _openai_tools(tools: str | None) -> dict[str, Any]:
    if not tools:
        return {}
    parsed = orjson.loads(tools)
    parsed = parsed if isinstance(parsed, list) else [parsed]
    return {"tools": [t if isinstance(t, dict) and t.get("type") == "function" and "function" in t
                      else {"type": "function", "function": t} for t in parsed]}


def openai_row(row: Row, kind: str) -> Row:
    if kind == "sft":
        return {"messages": _openai_messages(row["messages"]), **_openai_tools(row.get("tools"))}
    return {"input": {"messages": _openai_messages(row["prompt"]), **_openai_tools(row.get("tools"))},
            "preferred_output": _openai_messages(row["chosen"]),
            "non_preferred_output": _openai_messages(row["rejected"])}


ROW_WRITERS = {"llamafactory": sharegpt_row, "sharegpt": sharegpt_row, "alpaca": alpaca_row, "openai": openai_row}


def dataset_info_entry(file_name: str, kind: str) -> Row:
    """How LLaMA-Factory reads one exported file: sharegpt rows, ranked for preference data."""
    columns = {"messages": "conversations", "system": "system", "tools": "tools"}
    if kind == "dpo":
        return {"file_name": file_name, "formatting": "sharegpt", "ranking": True,
                "columns": {**columns, "chosen": "chosen", "rejected": "rejected"}, "tags": SHAREGPT_TAGS}
    return {"file_name": file_name, "formatting": "sharegpt", "columns": columns, "tags": SHAREGPT_TAGS}


# --- a version -------------------------------------------------------------------------------------------------
def version_dir(settings: Settings, version: str) -> Path:
    have = sorted((p.name for p in settings.datasets_dir.glob("v*") if is_version(p.name)),
                  key=version_number) if settings.datasets_dir.is_dir() else []
    directory = settings.datasets_dir / version
    if not is_version(version) or not directory.is_dir():
        listed = f"have {', '.join(have)}" if have else "none yet: run `flywheel curate`"
        raise ExportError(f"no dataset version {version!r} under {settings.datasets_dir} ({listed})")
    return directory


def read_rows(directory: Path, kind: str, split: str) -> list[Row]:
    import pyarrow.parquet as pq

    path = directory / f"{kind}-{split}.parquet"
    return pq.read_table(path).to_pylist() if path.is_file() else []


def _writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".flywheel-export-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ExportError(f"-o {directory}: cannot write there ({exc.strerror or exc}); pick a directory you "
                          "can write to") from None


def _write_jsonl(path: Path, rows: list[Row]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def export_version(settings: Settings, version: str, fmt: str, out_dir: Path) -> ExportResult:
    """Write ``version`` to ``out_dir`` in ``fmt`` (one of EXPORT_FORMATS); see the module docstring."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"--format {fmt!r} unknown; use one of {', '.join(EXPORT_FORMATS)}")
    source = version_dir(settings, version)
    info_path = out_dir / "dataset_info.json"
    info: Row = {}
    if fmt == "llamafactory" and info_path.is_file():
        try:
            info = orjson.loads(info_path.read_bytes())
        except orjson.JSONDecodeError:
            info = None
        if not isinstance(info, dict):
            raise ExportError(f"{info_path}: not a dataset_info object; move it away or export to another -o")
    _writable(out_dir)
    result, skipped = ExportResult(out_dir), []
    entries: Row = {}
    for kind in KINDS:
        for split in SPLITS:
            rows = []
            for row in read_rows(source, kind, split):
                try:
                    rows.append(ROW_WRITERS[fmt](row, kind))
                except RowError as exc:
                    skipped.append({"id": row["id"], "kind": kind, "split": split, "reason": str(exc)})
            if not rows:
                continue
            name = f"{version}_{kind}_{split}.jsonl"
            _write_jsonl(out_dir / name, rows)
            result.files[name] = len(rows)
            entries[f"flywheel_{version}_{kind}_{split}"] = dataset_info_entry(name, kind)
    if skipped:
        _write_jsonl(out_dir / f"{version}_{fmt}_skipped.jsonl", skipped)
        for item in skipped:
            result.skipped[item["reason"]] = result.skipped.get(item["reason"], 0) + 1
    if fmt == "llamafactory":
        stale = [k for k in info if k.startswith(f"flywheel_{version}_")]
        info = {**{k: v for k, v in info.items() if k not in stale}, **entries}
        info_path.write_bytes(orjson.dumps(info, option=orjson.OPT_INDENT_2) + b"\n")
        result.dataset_info = info_path
    return result
