"""Versioned dataset writer: ``FLYWHEEL_HOME/datasets/vN/`` as the training stage reads it.

    vN/sft/            DatasetDict (save_to_disk): train, eval — rows {id, messages, tools, source_interactions,
                       dataset_version}
    vN/dpo/            DatasetDict: train, eval — rows {id, prompt, chosen, rejected, tools, source_interactions,
                       dataset_version}

A message is {role, content, tool_calls}: ``tool_calls`` (OpenAI shape, arguments as JSON text) is null
except on assistant turns that call tools; ``tools`` (JSON text of the tool schemas) is null unless the
example came with tools. Both columns are always there, so every version has the same schema.
    vN/{sft,dpo}-{train,eval}.parquet   the same rows as Parquet
    vN/README.md       data card: counts per stage, each step's stats per language, lineage, config
    vN/dedup-index.jsonl, vN/dedup-signatures.npy   what later versions are deduplicated against
    vN/manifest.json   sha256 of every file above, and one content hash over them all

Bit-for-bit reproducible: rows are sorted by what they teach (``flywheel.records.content_key``, not by
id: ids carry a serving run's random response ids, and the same traffic must train the same way), Arrow
tables are built with a fixed schema, each HF dataset gets a fingerprint derived from its content
(``save_to_disk`` would otherwise store a random one in state.json), and nothing holds a clock time.
The train/eval split hashes each example's prompt *cluster* (MinHash LSH over the last user turn), so
near-duplicate prompts never straddle it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from curation.dedup import DedupIndex, cluster_representatives, normalise
from curation.step import Record, report_rows
from flywheel.records import content_key, prompt_text
from flywheel.settings import DedupSettings, Settings

KINDS = ("sft", "dpo")
SPLITS = ("train", "eval")


@dataclass
class VersionContents:
    """Everything one version holds, ready to write."""

    version: str
    rows: dict[str, dict[str, list[Record]]]  # kind -> split -> rows (public columns only)
    card: dict[str, Any] = field(default_factory=dict)  # funnel, steps, lineage, config


def _schema(kind: str) -> Any:
    import pyarrow as pa

    call = pa.struct([("type", pa.string()),
                      ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())]))])
    message = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string()),
                                  ("tool_calls", pa.list_(call))]))
    body = [("messages", message)] if kind == "sft" else [("prompt", message), ("chosen", message),
                                                          ("rejected", message)]
    return pa.schema([("id", pa.string()), *body, ("tools", pa.string()),
                      ("source_interactions", pa.list_(pa.string())), ("dataset_version", pa.string())])


def _public_message(message: Record) -> Record:
    calls = [{"type": "function", "function": {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}}
             for c in message.get("tool_calls") or []]
    return {"role": message["role"], "content": message["content"], "tool_calls": calls or None}


def public_row(record: Record, version: str) -> Record:
    """The columns the training stage reads, in a fixed order (internal fields dropped)."""
    body = ({"messages": record["messages"]} if record["kind"] == "sft"
            else {k: record[k] for k in ("prompt", "chosen", "rejected")})
    clean = {k: [_public_message(m) for m in v] for k, v in body.items()}
    return {"id": record["id"], **clean, "tools": record.get("tools") or None,
            "source_interactions": list(record.get("source_interactions") or []),
            "dataset_version": record.get("dataset_version") or version}


def assign_splits(records: Sequence[Record], settings: Settings) -> list[str]:
    """train/eval per record by a hash of its prompt cluster; never an empty train split, and at least one
    eval cluster whenever there are two clusters or more."""

    prompts = [prompt_text(r) for r in records]
    reps = cluster_representatives(prompts, settings.dedup) if records else []
    keys = {rep: normalise(prompts[rep]) or prompts[rep] for rep in set(reps)}
    fraction = {rep: int.from_bytes(hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                                    "big") / 2**64 for rep, key in keys.items()}
    eval_reps = {rep for rep, f in fraction.items() if f < settings.curate.eval_fraction}
    ranked = sorted(fraction, key=lambda rep: (fraction[rep], keys[rep]))
    if len(ranked) >= 2 and settings.curate.eval_fraction > 0 and not eval_reps:
        eval_reps = {ranked[0]}
    if ranked and eval_reps == set(ranked):  # training data comes first
        eval_reps.discard(ranked[-1])
    return ["eval" if rep in eval_reps else "train" for rep in reps]


def replay_sample(candidates: Sequence[Record], n: int, version: str) -> list[Record]:
    """``n`` records picked by a hash of (version, content): deterministic, and different for each version."""
    def rank(record: Record) -> tuple[bytes, str]:
        return hashlib.blake2b(version.encode() + content_key(record), digest_size=16).digest(), record["id"]

    return sorted(candidates, key=rank)[:n]


def _dataset(rows: list[Record], kind: str, split: str) -> Any:
    import pyarrow as pa
    from datasets import Dataset, DatasetInfo, Features, NamedSplit
    from datasets.table import InMemoryTable

    table = pa.Table.from_pylist(rows, schema=_schema(kind))
    fingerprint = hashlib.blake2b(orjson.dumps([kind, split, rows]), digest_size=8).hexdigest()
    info = DatasetInfo(description=f"Flywheel {kind.upper()} examples", features=Features.from_arrow_schema(table.schema))
    return Dataset(InMemoryTable(table), info=info, split=NamedSplit(split), fingerprint=fingerprint)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_card(contents: VersionContents) -> str:
    """README.md of a version: what is in it, how it was made, from what."""
    card, lines = contents.card, [f"# Flywheel dataset {contents.version}", ""]
    lines += ["SFT (`sft/`, chat `messages`, the last assistant turn is the target) and DPO (`dpo/`, "
              "`prompt` / `chosen` / `rejected`) examples curated from production traffic and feedback: "
              "mined, built, PII-scrubbed, deduplicated (also against every earlier version) and "
              "HAP-filtered. Load with `datasets.load_from_disk(\"sft\")`, or read the Parquet files.", ""]
    lines += ["## Counts", "", "| dataset | split | rows | new | replay |", "|---|---|---:|---:|---:|"]
    for kind in KINDS:
        for split in SPLITS:
            rows = contents.rows[kind][split]
            new = sum(1 for r in rows if r["dataset_version"] == contents.version)
            lines.append(f"| {kind} | {split} | {len(rows)} | {new} | {len(rows) - new} |")
    sections = [("Funnel", ("stage", "in", "out"), card.get("funnel", []))]
    for stats in card.get("steps", []):
        rows = report_rows(stats)
        header = tuple(rows[0]) if rows else ("what", "all")
        sections.append((f"Step: {stats['name']} (per language)", header, [tuple(r.values()) for r in rows]))
    sections.append(("Lineage", ("what", "value"), card.get("lineage", [])))
    for title, header, rows in sections:
        lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] or ["| (none) |" + " |" * (len(header) - 1)]
    lines += ["", "## Configuration", "", "```json", json.dumps(card.get("config", {}), indent=2, sort_keys=True),
              "```", ""]
    return "\n".join(lines)


def write_version(directory: Path, contents: VersionContents, dedup_index: DedupIndex,
                  dedup_settings: DedupSettings) -> dict[str, Any]:
    """Write a version directory atomically (built beside it, then renamed); returns its manifest."""
    import pyarrow.parquet as pq
    from datasets import DatasetDict
    from datasets.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    staging = directory.with_name(directory.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    quiet = not are_progress_bars_disabled()
    if quiet:
        disable_progress_bars()
    try:
        for kind in KINDS:
            splits = {split: _dataset(contents.rows[kind][split], kind, split) for split in SPLITS}
            # One shard per split, even an empty one: load_from_disk cannot read a split with no shard.
            DatasetDict(splits).save_to_disk(str(staging / kind), num_shards=dict.fromkeys(SPLITS, 1))
            for split, ds in splits.items():
                pq.write_table(ds.data.table, staging / f"{kind}-{split}.parquet", compression="zstd")
    finally:
        if quiet:
            enable_progress_bars()
    dedup_index.save(staging, dedup_settings)
    (staging / "README.md").write_text(data_card(contents), encoding="utf-8")
    files = {str(p.relative_to(staging)): _sha256(p) for p in sorted(staging.rglob("*")) if p.is_file()}
    manifest = {
        "version": contents.version,
        "counts": {kind: {split: len(contents.rows[kind][split]) for split in SPLITS} for kind in KINDS},
        "files": files,
        "content_hash": hashlib.sha256(orjson.dumps(sorted(files.items()))).hexdigest(),
    }
    (staging / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    if directory.exists():
        shutil.rmtree(directory)
    staging.rename(directory)
    return manifest
