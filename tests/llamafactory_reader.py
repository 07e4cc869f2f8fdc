"""What LLaMA-Factory reads from a dataset_info.json entry, written from its documentation (data/README.md:
formatting, ranking, columns, tags; alternating turns; a leading system turn overriding the system column).

``llamafactory`` itself cannot be installed next to this project (it pins datasets<=4, trl<=0.24,
peft<=0.18, transformers<=5.6), so the tests read exports with this instead of vendoring its code. Per row
it gives what LLaMA-Factory's converter produces: the system prompt, the prompt turns, the response turns
(the answer; or chosen then rejected for ranking data) and the tools, as (role, content) with LLaMA-Factory's
roles user / assistant / observation / function. A row LLaMA-Factory would skip as broken comes back as None.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson

TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
        "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}


def read_file(path: Path) -> list[dict[str, Any]]:
    data = path.read_bytes()
    if data.lstrip().startswith(b"["):
        return orjson.loads(data)
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


def read_dataset(data_dir: Path, name: str) -> list[dict[str, Any] | None]:
    entry = orjson.loads((data_dir / "dataset_info.json").read_bytes())[name]
    columns = entry.get("columns", {})
    rows = read_file(data_dir / entry["file_name"])
    if entry.get("formatting", "alpaca") == "alpaca":
        return [_alpaca(row, columns, entry.get("ranking", False)) for row in rows]
    tags = {**TAGS, **entry.get("tags", {})}
    return [_sharegpt(row, columns, tags, entry.get("ranking", False)) for row in rows]


def _alpaca(row: dict[str, Any], columns: dict[str, str], ranking: bool) -> dict[str, Any]:
    prompt = []
    for old_prompt, old_response in row.get(columns.get("history", ""), None) or []:
        prompt += [("user", old_prompt), ("assistant", old_response)]
    query = [row[c] for c in (columns.get("prompt", "instruction"), columns.get("query", "input")) if row.get(c)]
    prompt.append(("user", "\n".join(query)))
    if ranking:
        response = [("assistant", row[columns["chosen"]]), ("assistant", row[columns["rejected"]])]
    else:
        response = [("assistant", row[columns.get("response", "output")])]
    return {"system": row.get(columns.get("system", ""), "") or "", "prompt": prompt, "response": response,
            "tools": row.get(columns.get("tools", ""), "") or ""}


def _sharegpt(row: dict[str, Any], columns: dict[str, str], tags: dict[str, str], ranking: bool) -> dict | None:
    roles = {tags["user_tag"]: "user", tags["assistant_tag"]: "assistant", tags["observation_tag"]: "observation",
             tags["function_tag"]: "function", tags["system_tag"]: "system"}
    turns = row[columns.get("messages", "conversations")]
    system = row.get(columns.get("system", ""), "") or ""
    if turns and turns[0][tags["role_tag"]] == tags["system_tag"]:
        system, turns = turns[0][tags["content_tag"]], turns[1:]
    accepted = ((tags["user_tag"], tags["observation_tag"]), (tags["assistant_tag"], tags["function_tag"]))
    if any(t[tags["role_tag"]] not in accepted[i % 2] for i, t in enumerate(turns)) or len(turns) % 2 != ranking:
        return None
    aligned = [(roles[t[tags["role_tag"]]], t[tags["content_tag"]]) for t in turns]
    if ranking:
        answers = [row[columns["chosen"]], row[columns["rejected"]]]
        if any(a[tags["role_tag"]] not in accepted[1] for a in answers):
            return None
        prompt, response = aligned, [(roles[a[tags["role_tag"]]], a[tags["content_tag"]]) for a in answers]
    else:
        prompt, response = aligned[:-1], aligned[-1:]
    return {"system": system, "prompt": prompt, "response": response,
            "tools": row.get(columns.get("tools", ""), "") or ""}


def comparable(view: dict[str, Any] | None) -> Any:
    """A row view with function calls and tools parsed (JSON spacing aside), for equality checks."""
    if view is None:
        return None

    def turn(role: str, content: str) -> Any:
        if role != "function":
            return role, content
        thought = re.search(r"<think>.*?</think>\s*", content, re.DOTALL)
        calls = orjson.loads(content.replace(thought.group(0), "", 1) if thought else content)
        return role, thought.group(0) if thought else "", calls if isinstance(calls, list) else [calls]

    tools = orjson.loads(view["tools"]) if view["tools"] else []
    return (view["system"], [turn(*t) for t in view["prompt"]], [turn(*t) for t in view["response"]], tools or [])
