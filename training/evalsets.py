"""The prompts the gate asks, each with a reference answer and a way to judge an answer against it.

Three sources, none of them this version's training rows:

- **held-out**: the dataset version's ``eval`` split (prompts never trained on, split by prompt cluster), judged
  against the reviewed answer with ``gate.heldout_judge``;
- **regression**: a frozen set in ``FLYWHEEL_HOME/eval/regression.jsonl`` that grows from the examples of
  earlier dataset versions (curation only makes examples from accepted or edited reviews, corrections and
  well-rated answers; rejected ones never). A prompt, once in, keeps its reference for good;
- **eval-set files** the user supplies (``gate.eval_sets``), one JSON object per line::

      {"prompt": "What is the capital of France?", "reference": "Paris", "judge": "contains"}
      {"messages": [{"role": "system", ...}, {"role": "user", ...}], "reference": "^Yes\\b", "judge": "regex"}

  ``judge``: ``exact`` | ``contains`` (default) | ``regex`` (``pattern``, else the reference, searched
  case-insensitively) | ``llm`` (the LLM judge at ``judge.url`` grades 1-5; 4 or more is right).
  Optional: ``id``, ``system`` (a system prompt put before ``prompt``). A bad line is refused before any
  training starts, naming the file, line and field.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.settings import Settings
from training.common import earlier_versions, read_split
from training.config import RecipeError

JUDGES = ("exact", "contains", "regex", "llm")
LLM_RIGHT = 0.75  # grade 4 of 1-5 mapped to [0, 1]


@dataclass(frozen=True)
class Check:
    """One prompt the gate asks both models, and how an answer to it is judged."""

    set: str  # heldout | regression | evalset:NAME
    id: str
    messages: list[dict[str, str]] = field(hash=False)
    reference: str
    judge: str = "contains"
    pattern: str | None = None


def normalise(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".!")


def judge_locally(check: Check, answer: str) -> bool:
    """exact / contains / regex; ``llm`` checks are judged by :func:`training.evaluate.judge_answers`."""
    if check.judge == "exact":
        return normalise(answer) == normalise(check.reference)
    if check.judge == "contains":
        return normalise(check.reference) in normalise(answer)
    if check.judge == "regex":
        return re.search(check.pattern or check.reference, answer, re.IGNORECASE) is not None
    raise ValueError(f"{check.judge} is not a local judge")


def load_eval_set(path: Path, judge_configured: bool) -> list[Check]:
    """The checks of one eval-set file; RecipeError naming file, line and field for anything wrong."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"gate.eval_sets: {path} does not exist; fix the path or remove it from the list")
    name = path.stem
    checks = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecipeError(f"{where}: not valid JSON ({exc.msg}); one JSON object per line") from None
        if not isinstance(row, dict):
            raise RecipeError(f"{where}: expected a JSON object with prompt and reference")
        checks.append(_check(row, where, f"evalset:{name}", f"{name}-{number}", judge_configured))
    if not checks:
        raise RecipeError(f"{path}: no rows; an eval set needs at least one prompt with a reference")
    return checks


def _check(row: dict[str, Any], where: str, set_name: str, default_id: str, judge_configured: bool) -> Check:
    messages = row.get("messages")
    if messages is None:
        prompt = row.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise RecipeError(f"{where}: field 'prompt' must be a non-empty string (or give 'messages')")
        messages = ([{"role": "system", "content": row["system"]}] if row.get("system") else []) + [
            {"role": "user", "content": prompt}]
    elif not (isinstance(messages, list) and messages and all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
            for m in messages) and messages[-1]["role"] == "user"):
        raise RecipeError(f"{where}: field 'messages' must be a list of {{role, content}} ending with a user turn")
    reference = row.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        raise RecipeError(f"{where}: field 'reference' must be a non-empty string (the right answer)")
    judge = row.get("judge", "contains")
    if judge not in JUDGES:
        raise RecipeError(f"{where}: field 'judge' is {judge!r}; use one of {', '.join(JUDGES)}")
    if judge == "llm" and not judge_configured:
        raise RecipeError(f"{where}: judge 'llm' needs judge.url (an OpenAI-compatible endpoint)")
    pattern = row.get("pattern")
    if judge == "regex":
        try:
            re.compile(pattern or reference)
        except re.error as exc:
            raise RecipeError(f"{where}: field '{'pattern' if pattern else 'reference'}' is not a valid regex "
                              f"({exc})") from None
    return Check(set_name, str(row.get("id") or default_id),
                 [{"role": m["role"], "content": m["content"]} for m in messages], reference, judge, pattern)


def user_checks(settings: Settings) -> list[Check]:
    """The prompts of every ``gate.eval_sets`` file (an ``llm`` judge needs ``judge.url``)."""
    checks: list[Check] = []
    for path in settings.gate.eval_sets:
        checks += load_eval_set(path, settings.judge.url is not None)
    return checks


def heldout_checks(sft_eval: Any, judge: str) -> list[Check]:
    """The held-out split's prompts, each judged against its reviewed answer."""
    return [Check("heldout", row["id"], list(row["messages"][:-1]), row["messages"][-1]["content"], judge)
            for row in sft_eval]


def regression_path(settings: Settings) -> Path:
    return settings.home / "eval" / "regression.jsonl"


def regression_checks(settings: Settings, dataset_version: str) -> list[Check]:
    """The frozen regression set after adding the examples of every version before ``dataset_version``.

    At most ``gate.regression_max_prompts`` of it are asked, picked by a hash of the prompt (stable: the
    same prompts every time, a growing set only adds to the pick in proportion).
    """
    path = regression_path(settings)
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    frozen = {row["dataset_version"] for row in rows}
    seen = {normalise(_prompt_key(row["messages"])) for row in rows}
    added = []
    for version_dir in earlier_versions(settings, dataset_version):
        if version_dir.name in frozen:
            continue

        for split in ("train", "eval"):
            for row in read_split(version_dir, "sft", split):
                key = normalise(_prompt_key(row["messages"][:-1]))
                if row.get("dataset_version", version_dir.name) != version_dir.name or key in seen:
                    continue  # a replayed row belongs to its own version; a prompt is frozen once
                seen.add(key)
                added.append({"id": row["id"], "dataset_version": version_dir.name,
                              "messages": [dict(m) for m in row["messages"][:-1]],
                              "reference": row["messages"][-1]["content"]})
    if added:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.writelines(json.dumps(row, sort_keys=True) + "\n" for row in added)
        rows += added
    limit = settings.gate.regression_max_prompts
    picked = sorted(rows, key=lambda r: hashlib.blake2b(r["id"].encode(), digest_size=8).digest())[:limit]
    return [Check("regression", r["id"], r["messages"], r["reference"], settings.gate.heldout_judge) for r in picked]


def _prompt_key(messages: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in messages if m["role"] != "system")

