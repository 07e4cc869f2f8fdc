"""``flywheel export``: a dataset version as LLaMA-Factory data (JSONL + dataset_info.json) or ShareGPT / Alpaca /
OpenAI JSON Lines, read back with LLaMA-Factory's documented rules (tests/llamafactory_reader.py) and the importer."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from llamafactory_reader import comparable, read_dataset
from typer.testing import CliRunner

from curation.datasets import VersionContents, public_row, write_version
from curation.dedup import DedupIndex
from curation.export import export_version
from curation.importers import Layout, read_records, to_example
from flywheel.warehouse import content_id

DEMO = Path(__file__).parent / "fixtures" / "llamafactory"
WEATHER_TOOLS = '[{"name": "get_weather", "description": "Weather now", "parameters": {"type": "object", ' \
                '"properties": {"city": {"type": "string"}}}}]'


def call(name: str, **arguments: object) -> dict:
    return {"type": "function", "function": {"name": name, "arguments": orjson.dumps(arguments).decode()}}


def record(kind: str, **body: object) -> dict:
    return {"id": f"{kind}-" + content_id(kind, body), "kind": kind, **body}


SFT = [
    record("sft", messages=[{"role": "system", "content": "You are the Lumen Notes assistant."},
                            {"role": "user", "content": "How do I export my notes?"},
                            {"role": "assistant", "content": "Settings > Export, then pick Markdown."},
                            {"role": "user", "content": "And as PDF?"},
                            {"role": "assistant", "content": "Pick PDF in the same menu."}]),
    record("sft", messages=[{"role": "user", "content": "Weather in Paris and Rome?"},
                            {"role": "assistant", "content": "<think>\nTwo cities, two calls.\n</think>\n\n",
                             "tool_calls": [call("get_weather", city="Paris"), call("get_weather", city="Rome")]},
                            {"role": "tool", "content": '[{"temp": 21}, {"temp": 25}]'},
                            {"role": "assistant", "content": "21 C in Paris, 25 C in Rome."}],
           tools=WEATHER_TOOLS),
    record("sft", messages=[{"role": "user", "content": "Hi"}, {"role": "user", "content": "Anyone there?"},
                            {"role": "assistant", "content": "Yes, how can I help?"}]),
]
DPO = [
    record("dpo", prompt=[{"role": "system", "content": "Answer briefly."},
                          {"role": "user", "content": "Plus price?"},
                          {"role": "assistant", "content": "8 dollars a month."},
                          {"role": "user", "content": "And for students?"}],
           chosen=[{"role": "assistant", "content": "4 dollars: half price."}],
           rejected=[{"role": "assistant", "content": "8 dollars."}]),
    record("dpo", prompt=[{"role": "user", "content": "Weather in Oslo?"}],
           chosen=[{"role": "assistant", "content": "", "tool_calls": [call("get_weather", city="Oslo")]}],
           rejected=[{"role": "assistant", "content": "It is sunny."}], tools=WEATHER_TOOLS),
]


def write(settings, sft: list[dict], dpo: list[dict], version: str = "v1") -> Path:
    rows = {"sft": {"train": [public_row(r, version) for r in sft], "eval": []},
            "dpo": {"train": [public_row(r, version) for r in dpo], "eval": []}}
    directory = settings.datasets_dir / version
    write_version(directory, VersionContents(version, rows), DedupIndex(), settings.dedup)
    return directory


def llamafactory_view(example: dict) -> tuple:
    """What LLaMA-Factory should read for one of our rows, in ``comparable``'s terms."""
    turns = example.get("messages") or example["prompt"]
    system = turns[0]["content"] if turns[0]["role"] == "system" else ""
    turns = turns[1:] if system else turns

    def turn(m: dict) -> tuple:
        if m.get("tool_calls"):
            return "function", m["content"], [{"name": c["function"]["name"],
                                              "arguments": orjson.loads(c["function"]["arguments"])}
                                             for c in m["tool_calls"]]
        return {"tool": "observation"}.get(m["role"], m["role"]), m["content"]

    prompt = [turn(m) for m in turns]
    response = [turn(example["chosen"][0]), turn(example["rejected"][0])] if "chosen" in example else [prompt.pop()]
    return system, prompt, response, orjson.loads(example["tools"]) if example.get("tools") else []


def as_json(value: object) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def test_llamafactory_reads_the_export_as_the_same_conversations(settings, tmp_path: Path) -> None:
    write(settings, SFT, DPO)
    result = export_version(settings, "v1", "llamafactory", tmp_path / "lf")
    assert result.files == {"v1_sft_train.jsonl": 2, "v1_dpo_train.jsonl": 2}
    info = orjson.loads((tmp_path / "lf" / "dataset_info.json").read_bytes())
    assert set(info) == {"flywheel_v1_sft_train", "flywheel_v1_dpo_train"}
    read = {kind: [comparable(v) for v in read_dataset(tmp_path / "lf", f"flywheel_v1_{kind}_train")]
            for kind in ("sft", "dpo")}
    assert sorted(map(as_json, read["sft"])) == sorted(as_json(llamafactory_view(r)) for r in SFT[:2])
    assert sorted(map(as_json, read["dpo"])) == sorted(as_json(llamafactory_view(r)) for r in DPO)


def test_preference_rows_export_single_answer_turns_and_ranking() -> None:
    """A hand-written entry over vN/dpo-train.parquet was misread (empty prompt, the user's turn as the answer):
    chosen / rejected are one-element lists there. The export writes single turns under ranking: true."""
    from curation.export import dataset_info_entry, sharegpt_row

    row = sharegpt_row(public_row(DPO[0], "v1"), "dpo")
    assert row["chosen"] == {"from": "gpt", "value": "4 dollars: half price."}
    assert row["rejected"] == {"from": "gpt", "value": "8 dollars."}
    assert row["system"] == "Answer briefly." and [t["from"] for t in row["conversations"]] == ["human", "gpt", "human"]
    entry = dataset_info_entry("v1_dpo_train.jsonl", "dpo")
    assert entry["ranking"] is True and entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "conversations", "system": "system", "tools": "tools",
                                "chosen": "chosen", "rejected": "rejected"}


def test_rows_a_layout_cannot_hold_are_left_out_with_their_reason(settings, tmp_path: Path) -> None:
    write(settings, SFT, DPO)
    lf = export_version(settings, "v1", "llamafactory", tmp_path / "lf")
    assert lf.skipped == {"turn 2 is human where LLaMA-Factory expects gpt or function_call (turns must alternate)": 1}
    listed = read_records(tmp_path / "lf" / "v1_llamafactory_skipped.jsonl")
    assert [r["id"] for _, r in listed] == [SFT[2]["id"]]
    alpaca = export_version(settings, "v1", "alpaca", tmp_path / "alpaca")
    assert alpaca.skipped == {"the Alpaca layout has no tool turns; export with --format llamafactory, sharegpt or "
                              "openai": 2, "turn 2 is user where Alpaca's history expects assistant (turns must "
                              "alternate)": 1}
    assert export_version(settings, "v1", "openai", tmp_path / "openai").skipped == {}


LEFT_OUT = {"llamafactory": [SFT[2]], "sharegpt": [SFT[2]], "alpaca": [SFT[1], SFT[2], DPO[1]], "openai": []}


@pytest.mark.parametrize("fmt", ["llamafactory", "sharegpt", "alpaca", "openai"])
def test_each_export_imports_back_to_the_same_examples(settings, tmp_path: Path, fmt: str) -> None:
    write(settings, SFT, DPO)
    result = export_version(settings, "v1", fmt, tmp_path / fmt)
    layout = "sharegpt" if fmt == "llamafactory" else fmt

    def body(example: dict) -> bytes:
        parts = {k: [{**m, "tool_calls": [{**c, "function": {**c["function"], "arguments": orjson.loads(
                      c["function"]["arguments"])}} for c in m["tool_calls"]]} if m.get("tool_calls") else m
                     for m in example[k]] for k in ("messages", "prompt", "chosen", "rejected") if k in example}
        tools = orjson.loads(example["tools"]) if example.get("tools") else []
        return as_json([parts, [t.get("function", t) for t in tools]])  # OpenAI wraps each tool in {type, function}

    back = sorted(body(to_example(row, layout)[1]) for name in result.files
                  for _, row in read_records(tmp_path / fmt / name))
    kept = [r for r in SFT + DPO if r not in LEFT_OUT[fmt]]
    assert back == sorted(body(r) for r in kept)


def test_demo_files_read_the_same_in_llamafactory_after_import_and_export(settings, tmp_path: Path) -> None:
    """LLaMA-Factory's demo rows, read with their own dataset_info entries, equal what it reads from our export
    of them: the same system prompts, conversations, tool calls, tools, chosen and rejected answers."""
    names = ["identity", "dpo_en_demo", "dpo_zh_demo", "glaive_toolcall_en_demo", "glaive_toolcall_zh_demo"]
    info = orjson.loads((DEMO / "dataset_info.json").read_bytes())
    expected, sft, dpo = {"sft": [], "dpo": []}, [], []
    for name in names:
        kind = "dpo" if info[name].get("ranking") else "sft"
        expected[kind] += [comparable(v) for v in read_dataset(DEMO, name)]
        for _, row in read_records(DEMO / info[name]["file_name"]):
            converted_kind, payload = to_example(row, Layout.from_dataset_info(info[name]))
            assert converted_kind == kind
            (dpo if kind == "dpo" else sft).append(record(kind, **payload))
    assert None not in expected["sft"] + expected["dpo"]  # LLaMA-Factory reads every demo row
    write(settings, sft, dpo, "v7")
    result = export_version(settings, "v7", "llamafactory", tmp_path / "lf")
    assert result.skipped == {} and result.files == {"v7_sft_train.jsonl": 8, "v7_dpo_train.jsonl": 5}
    for kind in ("sft", "dpo"):
        exported = [comparable(v) for v in read_dataset(tmp_path / "lf", f"flywheel_v7_{kind}_train")]
        assert sorted(map(as_json, exported)) == sorted(map(as_json, expected[kind]))


def test_export_merges_into_an_existing_dataset_info(settings, tmp_path: Path) -> None:
    write(settings, SFT, DPO, "v2")
    out = tmp_path / "data"
    out.mkdir()
    (out / "dataset_info.json").write_text('{"mine": {"file_name": "mine.json"}, '
                                           '"flywheel_v2_dpo_eval": {"file_name": "stale.jsonl"}}')
    export_version(settings, "v2", "llamafactory", out)
    assert sorted(orjson.loads((out / "dataset_info.json").read_bytes())) == [
        "flywheel_v2_dpo_train", "flywheel_v2_sft_train", "mine"]


def test_cli_exports_and_bad_arguments_get_one_line_naming_the_fix(settings, tmp_path: Path) -> None:
    from flywheel.cli import app

    write(settings, SFT, DPO, "v3")
    runner = CliRunner()
    ok = runner.invoke(app, ["export", "v3", "--format", "openai", "-o", str(tmp_path / "out")])
    assert ok.exit_code == 0 and "v3_sft_train.jsonl: 3 rows" in ok.output
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for args, message in (
            (["export", "v9", "-o", str(tmp_path)], "no dataset version 'v9' under .* \\(have v3\\)"),
            (["export", "v3", "--format", "csv", "-o", str(tmp_path)],
             "--format 'csv' unknown; use one of llamafactory, sharegpt, alpaca, openai"),
            (["export", "v3", "-o", str(blocker / "sub")], "cannot write there .*pick a directory you can write to")):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("flywheel export: ")
        assert re.search(message, lines[0]), lines[0]


def test_imported_tool_calls_reach_a_curated_version_and_its_export(settings, tmp_path: Path) -> None:
    """The whole way: LLaMA-Factory tool-call rows imported as seed data, curated (scrub, dedup, HAP) into v1,
    exported, and read back with LLaMA-Factory's rules: function calls, observations and tools are there."""
    from curation.importers import import_file
    from curation.pipeline import curate

    settings.hap.backend = "lexical"  # the offline scorer flags one of these benign rows; HAP has its own tests
    assert import_file(settings, DEMO / "glaive_toolcall_en_demo.json").by_kind == {"sft": 3}
    result = curate(settings, mine_first=False)
    assert result.version == "v1"
    export_version(settings, "v1", "llamafactory", tmp_path / "lf")
    read = [r for split in ("train", "eval") if (tmp_path / "lf" / f"v1_sft_{split}.jsonl").exists()
            for r in read_dataset(tmp_path / "lf", f"flywheel_v1_sft_{split}")]
    source = [comparable(v) for v in read_dataset(DEMO, "glaive_toolcall_en_demo")]
    assert len(read) == 3 and None not in read
    with_calls = [comparable(v) for v in read if any(role == "function" for role, _ in v["prompt"])]
    assert len(with_calls) == sum(any(t[0] == "function" for t in s[1]) for s in source) == 2
    assert {orjson.dumps(v[3]) for v in with_calls} <= {orjson.dumps(s[3]) for s in source}  # the tools
    assert {orjson.dumps([t for t in v[1] if t[0] == "function"]) for v in with_calls} == {
        orjson.dumps([t for t in s[1] if t[0] == "function"]) for s in source if any(t[0] == "function" for t in s[1])}
