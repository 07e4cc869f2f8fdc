"""LLaMA-Factory's demo files in and out: what the importer makes of every row, and whether LLaMA-Factory
reads our export of them as the same data.

    .venv/bin/python benchmarks/llamafactory_formats.py [--data /work/data/llamafactory] [--lf-python PY]

``--data`` holds the files of LLaMA-Factory's ``data/`` folder (fetch hiyouga/LLaMA-Factory and copy them;
the Alpaca demo files and the v1 SFT demo, whose rows come from them, are held out and not read).

1. Import, per file, into a fresh FLYWHEEL_HOME with ``curation.importers.import_file`` (``auto`` layout,
   scrub and HAP filter included): rows read, converted (by layout and kind), refused, examples built,
   filtered, stored, and the quarantine reasons. Every converted row is also checked for lost text
   (``unkept_text``): "0 silent drops" means read = converted + refused and no converted row lost text.
2. Round trip (with ``--lf-python``, a Python that has ``llamafactory``): the converted rows (before the
   scrub, which rewrites personal data) become a dataset version, ``flywheel export --format llamafactory``
   writes it, and LLaMA-Factory's own loader reads it (``benchmarks/llamafactory_read.py``; its ``qwen``
   template also encodes each row). Its aligned rows, turned back into examples by our importer, must equal
   the version's rows; for the files LLaMA-Factory's dataset_info.json lists, LLaMA-Factory's reading of
   the original file must equal its reading of our export.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import orjson

from curation.datasets import VersionContents, public_row, write_version
from curation.dedup import DedupIndex
from curation.export import export_version
from curation.importers import (
    ImportError_,
    Layout,
    import_file,
    pair_kto,
    read_records,
    to_example,
    unkept_text,
)
from flywheel.settings import load_settings
from flywheel.warehouse import content_id

FILES = ("identity.json", "dpo_en_demo.json", "dpo_zh_demo.json", "kto_en_demo.json", "glaive_toolcall_en_demo.json",
         "glaive_toolcall_zh_demo.json", "mllm_demo.json", "mllm_audio_demo.json", "mllm_video_demo.json",
         "mllm_video_audio_demo.json", "c4_demo.jsonl", "wiki_demo.txt", "reason_tool_use_demo_50.jsonl",
         "v1_dpo_demo.jsonl", "v1_multimodal_demo.jsonl")
# LLaMA-Factory's aligned rows (``_prompt`` / ``_response``), read back with our importer.
ALIGNED = Layout("sharegpt", {"messages": "messages", "tools": "tools"},
                 {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                  "observation_tag": "observation", "function_tag": "function", "system_tag": "system"})


def import_counts(path: Path) -> tuple[object, int]:
    """import_file's result on a fresh home, and how many converted rows lost text."""
    lost = 0
    for _, row in read_records(path):
        try:
            lost += bool(unkept_text(row, to_example(row, "auto")[1]))
        except ImportError_:
            pass
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp) / "home")
        settings.ensure_dirs()
        return import_file(settings, path), lost


def example_key(kind: str, payload: dict) -> bytes:
    """An example's content, tool-call arguments parsed (JSON spacing aside)."""
    def turn(m: dict) -> dict:
        calls = [{"name": c["function"]["name"], "arguments": orjson.loads(c["function"]["arguments"])}
                 for c in m.get("tool_calls") or []]
        return {"role": m["role"], "content": m["content"], "tool_calls": calls}

    body = {k: [turn(m) for m in payload[k]] for k in ("messages", "prompt", "chosen", "rejected") if k in payload}
    return orjson.dumps([kind, body, orjson.loads(payload["tools"]) if payload.get("tools") else []],
                        option=orjson.OPT_SORT_KEYS)


def aligned_example(row: dict, ranked: bool) -> tuple[str, dict]:
    """One of LLaMA-Factory's aligned rows as our example (via the importer)."""
    system = [{"role": "system", "content": row["system"]}] if row["system"] else []
    record = {"messages": system + row["prompt"] + ([] if ranked else row["response"]), "tools": row["tools"]}
    if ranked:
        record["chosen"], record["rejected"] = row["response"]
    return to_example(record, Layout(ALIGNED.formatting, ALIGNED.columns, ALIGNED.tags, ranked))


def read_with_llamafactory(lf_python: str, data_dir: Path, tokenizer: Path, names: list[str]) -> list[dict]:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(data_dir / ".hf-cache")}
    out = subprocess.run([lf_python, str(Path(__file__).with_name("llamafactory_read.py")), str(data_dir),
                          str(tokenizer), *names], capture_output=True, text=True, env=env, check=True)
    return [orjson.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def round_trip(data: Path, lf_python: str, work: Path) -> None:
    from demo.model import demo_tokenizer

    info = orjson.loads((data / "dataset_info.json").read_bytes())
    # The files LLaMA-Factory lists as text SFT or preference data (KTO and multimodal rows are not imported as such).
    listed = {entry["file_name"]: name for name, entry in info.items() if entry.get("file_name") in FILES
              and not {"kto_tag", "images", "videos", "audios"} & set(entry.get("columns", {}))}
    examples: dict[str, list[dict]] = {"sft": [], "dpo": []}
    for name in FILES:
        kto = []
        for line, row in read_records(data / name):
            try:
                kind, payload = to_example(row, "auto")
            except ImportError_:
                continue
            if kind == "kto":
                kto.append((line, payload))
            else:
                examples[kind].append({"id": f"{kind}-" + content_id(kind, payload), "kind": kind, **payload})
        examples["dpo"] += [{"id": "dpo-" + content_id("dpo", p), "kind": "dpo", **p} for p in pair_kto(kto)[0]]
    settings = load_settings(home=work / "home")
    settings.ensure_dirs()
    rows = {kind: {"train": [public_row(r, "v1") for r in examples[kind]], "eval": []} for kind in examples}
    write_version(settings.datasets_dir / "v1", VersionContents("v1", rows), DedupIndex(), settings.dedup)
    exported = export_version(settings, "v1", "llamafactory", work / "export")
    tokenizer = work / "tokenizer"
    demo_tokenizer().save_pretrained(tokenizer)

    read = read_with_llamafactory(lf_python, work / "export", tokenizer, ["flywheel_v1_sft_train",
                                                                          "flywheel_v1_dpo_train"])
    errors = Counter(r["encode_error"] for r in read if r["encode_error"])
    print(f"\nRound trip: version v1 = {len(rows['sft']['train'])} SFT + {len(rows['dpo']['train'])} DPO rows; "
          f"export wrote {exported.files}, left out {sum(exported.skipped.values())} "
          f"({'; '.join(f'{n}: {r}' for r, n in exported.skipped.items()) or '-'})")
    print(f"LLaMA-Factory's loader read {len(read)} rows; its qwen template failed on {sum(errors.values())}"
          + "".join(f"\n  {n}: {e}" for e, n in errors.items()))
    for kind in ("sft", "dpo"):
        back = Counter(example_key(*aligned_example(r, kind == "dpo")) for r in read
                       if r["dataset"] == f"flywheel_v1_{kind}_train")
        ours = Counter(example_key(kind, r) for r in rows[kind]["train"])
        missing, extra = ours - back, back - ours
        print(f"{kind}: {sum(back.values())} read back equal the version's rows except {sum(missing.values())} "
              f"(left out by the export) and {sum(extra.values())} unexpected")
    # The demo files LLaMA-Factory lists: its reading of the original against its reading of our export.
    (work / "source").mkdir()
    for file_name in listed:
        (work / "source" / file_name).write_bytes((data / file_name).read_bytes())
    (work / "source" / "dataset_info.json").write_bytes(orjson.dumps({n: info[n] for n in listed.values()}))
    source = read_with_llamafactory(lf_python, work / "source", tokenizer, sorted(listed.values()))
    exported_keys = Counter(example_key(*aligned_example(r, r["dataset"].endswith("dpo_train"))) for r in read)
    print("\n| file (LLaMA-Factory's entry) | rows | no answer (pre-training text, broken) | with an answer | read "
          "the same from our export |\n|---|---:|---:|---:|---:|")
    for name in sorted(listed.values()):
        ranked, rows_read = bool(info[name].get("ranking")), [r for r in source if r["dataset"] == name]
        keys = [example_key(*aligned_example(r, ranked)) for r in rows_read if r["response"]]
        same = sum(1 for k in keys if exported_keys[k] > 0)
        print(f"| {name} | {len(rows_read)} | {len(rows_read) - len(keys)} | {len(keys)} | {same} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/work/data/llamafactory"))
    parser.add_argument("--lf-python", default=None, help="python of an environment with llamafactory installed")
    args = parser.parse_args()
    missing = [f for f in FILES if not (args.data / f).is_file()]
    if missing:
        sys.exit(f"{args.data}: missing {', '.join(missing)}; copy LLaMA-Factory's data/ folder there (fetch "
                 "hiyouga/LLaMA-Factory)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; data: {args.data}")
    print("\n| file | read | converted (layout kind) | refused | examples | filtered | stored | text lost |"
          "\n|---|---:|---|---:|---|---:|---:|---:|")
    reasons: dict[str, Counter[str]] = {}
    for name in FILES:
        result, lost = import_counts(args.data / name)
        assert result.read == result.converted + result.refused
        converted = ", ".join(f"{k} {v}" for k, v in result.converted_by_layout.items()) or "-"
        built = ", ".join(f"{k} {v}" for k, v in sorted(result.built.items())) or "-"
        print(f"| {name} | {result.read} | {converted} | {result.refused} | {built} | {result.filtered} | "
              f"{sum(result.by_kind.values())} | {lost} |", flush=True)
        # One line per kind of reason: the HAP filter's reasons also quote the sentence they flagged.
        reasons[name] = Counter()
        for reason, n in result.reasons.items():
            reasons[name][re.sub(r" in ['\"].*$", " in '...'", reason)] += n
    print("\nQuarantine reasons (numbers folded to N, quoted sentences elided):")
    for name, counted in reasons.items():
        for reason, n in counted.most_common():
            print(f"- {name}: {n} x {reason[:160]}")
    if args.lf_python:
        with tempfile.TemporaryDirectory() as tmp:
            round_trip(args.data, args.lf_python, Path(tmp))
    else:
        print("\nRound trip through LLaMA-Factory's loader skipped: pass --lf-python")


if __name__ == "__main__":
    main()
