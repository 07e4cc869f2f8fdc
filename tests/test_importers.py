"""Import of existing datasets as seed or replay data: every layout LLaMA-Factory documents (alpaca, sharegpt,
OpenAI messages and its v1 files; SFT, preference, KTO and tool-call rows), checked on slices of its demo files."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from curation.importers import (
    ImportError_,
    Layout,
    import_dataset_info,
    import_file,
    pair_kto,
    read_records,
    to_example,
    unkept_text,
)
from flywheel.warehouse import connect

DEMO = Path(__file__).parent / "fixtures" / "llamafactory"


def demo_rows(name: str) -> list:
    return [record for _, record in read_records(DEMO / name)]


def call(name: str, arguments: dict) -> dict:
    return {"type": "function", "function": {"name": name, "arguments": orjson.dumps(arguments).decode()}}


def test_each_format_becomes_an_sft_or_dpo_payload() -> None:
    # Instruction and input are joined with a newline, as LLaMA-Factory builds the prompt it trains on.
    assert to_example({"instruction": "Translate to French", "input": "Good morning", "output": "Bonjour"},
                      "auto") == ("sft", {"messages": [{"role": "user", "content": "Translate to French\nGood morning"},
                                                       {"role": "assistant", "content": "Bonjour"}]})
    kind, payload = to_example({"conversations": [{"from": "system", "value": "Be brief."},
                                                  {"from": "human", "value": "Offline mode?"},
                                                  {"from": "gpt", "value": "Yes, it works offline."}]}, "sharegpt")
    assert kind == "sft" and [m["role"] for m in payload["messages"]] == ["system", "user", "assistant"]
    kind, payload = to_example({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                                             {"role": "assistant", "content": "Hello!"}]}, "auto")
    assert payload["messages"][0] == {"role": "user", "content": "Hi"}
    kind, payload = to_example({"prompt": "Plus price?", "chosen": "8 dollars.", "rejected": "5 dollars."}, "auto")
    assert kind == "dpo" and payload == {"prompt": [{"role": "user", "content": "Plus price?"}],
                                         "chosen": [{"role": "assistant", "content": "8 dollars."}],
                                         "rejected": [{"role": "assistant", "content": "5 dollars."}]}


@pytest.mark.parametrize("record,fmt,message", [
    ({"instruction": "Say hi"}, "alpaca", "alpaca: output: missing or empty"),
    ({"conversations": [{"from": "alien", "value": "x"}]}, "sharegpt", "sharegpt: conversations.0.from: unknown speaker"),
    ({"messages": [{"role": "user", "content": "only a question"}]}, "messages", "last turn must be"),
    ({"prompt": "q", "chosen": [{"role": "user", "content": "x"}], "rejected": "r"}, "dpo", "dpo: chosen: the last"),
    ({"conversations": [{"from": "human", "value": "q"}], "chosen": {"from": "gpt", "value": "a"}}, "auto",
     "sharegpt: rejected: missing; a preference row needs the rejected answer"),
    ({"conversations": [{"from": "human", "value": "q"}, {"from": "function_call", "value": "get_weather(Paris)"}]},
     "auto", "sharegpt: conversations.1: a function_call turn must hold JSON"),
    ({"messages": [{"role": "user", "content": "<image>Who?"}, {"role": "assistant", "content": "Kane."}],
      "images": ["1.jpg"]}, "auto", "openai: images: multimodal rows are not supported"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "value": "1.jpg"}]}]}, "auto",
     "openai: messages.0.content.0: image_url parts are not supported"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "loss_weight": 0.0}]},
     "auto", "openai: messages.1.loss_weight: 0.0 for role assistant"),
    ({"text": "A web page of pre-training text."}, "auto", "record: pre-training text"),
    ({"something": "else"}, "auto", "record: unknown format"),
    (["not", "an", "object"], "auto", "record: expected a JSON object"),
])
def test_bad_records_get_a_reason_naming_the_layout_and_field(record, fmt: str, message: str) -> None:
    with pytest.raises(ImportError_, match=message):
        to_example(record, fmt)


def test_sharegpt_and_alpaca_preference_rows_become_dpo_pairs() -> None:
    """The demo preference files were refused 300 of 300 ("prompt: expected a string ..."), and so were Alpaca
    rows with instruction / chosen / rejected."""
    row = demo_rows("dpo_en_demo.json")[1]
    kind, pair = to_example(row, "auto")
    assert kind == "dpo"
    assert pair["prompt"] == [{"role": {"system": "system", "human": "user", "gpt": "assistant"}[t["from"]],
                               "content": t["value"]} for t in row["conversations"]]
    assert pair["chosen"] == [{"role": "assistant", "content": row["chosen"]["value"]}]
    assert pair["rejected"] == [{"role": "assistant", "content": row["rejected"]["value"]}]
    kind, pair = to_example({"instruction": "Rename the file", "input": "notes.txt -> ideas.txt", "system": "Be exact.",
                             "chosen": "mv notes.txt ideas.txt", "rejected": "rm notes.txt"}, "auto")
    assert kind == "dpo" and pair == {
        "prompt": [{"role": "system", "content": "Be exact."},
                   {"role": "user", "content": "Rename the file\nnotes.txt -> ideas.txt"}],
        "chosen": [{"role": "assistant", "content": "mv notes.txt ideas.txt"}],
        "rejected": [{"role": "assistant", "content": "rm notes.txt"}]}


def test_tool_calls_observations_and_the_tools_column_are_kept() -> None:
    """function_call / observation turns were refused and the tools column of the other rows dropped."""
    row = demo_rows("glaive_toolcall_en_demo.json")[0]
    kind, example = to_example(row, "auto")
    assert kind == "sft" and example["tools"] == row["tools"]
    roles = [m["role"] for m in example["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "tool", "assistant", "user", "assistant"]
    function_call = example["messages"][3]
    assert function_call["content"] == "" and function_call["tool_calls"] == [
        call("search_recipes", {"ingredients": ["chicken", "bell peppers", "rice"]})]
    assert example["messages"][4]["content"] == row["conversations"][4]["value"]
    # The OpenAI shape (tool_calls with JSON-text arguments, tool turns, a tools list) lands in the same place.
    kind, same = to_example({"messages": [
        {"role": "user", "content": "Recipes with chicken?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "search_recipes", "arguments": '{"ingredients":["chicken"]}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "[]"},
        {"role": "assistant", "content": "None found."}], "tools": [{"name": "search_recipes"}]}, "auto")
    assert same["messages"][1]["tool_calls"] == [call("search_recipes", {"ingredients": ["chicken"]})]
    assert same["tools"] == '[{"name":"search_recipes"}]'


def test_alpaca_history_and_sharegpt_system_are_kept() -> None:
    """Both were silently dropped."""
    kind, example = to_example({"instruction": "And in German?", "output": "Guten Morgen", "system": "Translate.",
                                "history": [["Good morning in French?", "Bonjour"]]}, "auto")
    assert example["messages"] == [{"role": "system", "content": "Translate."},
                                   {"role": "user", "content": "Good morning in French?"},
                                   {"role": "assistant", "content": "Bonjour"},
                                   {"role": "user", "content": "And in German?"},
                                   {"role": "assistant", "content": "Guten Morgen"}]
    kind, example = to_example({"system": "Answer in one word.", "conversations": [
        {"from": "human", "value": "Capital of France?"}, {"from": "gpt", "value": "Paris"}]}, "auto")
    assert example["messages"][0] == {"role": "system", "content": "Answer in one word."}


def test_llamafactory_v1_rows_with_reasoning_and_parallel_tool_calls_import() -> None:
    """The v1 JSONL layout (content parts with a ``value``) was refused row for row."""
    row = demo_rows("reason_tool_use_demo_50.jsonl")[0]
    kind, example = to_example(row, "auto")
    assert kind == "sft" and orjson.loads(example["tools"]) == orjson.loads(row["tools"])
    calling = example["messages"][2]
    reasoning, *calls = row["messages"][2]["content"]
    assert calling["content"] == f"<think>\n{reasoning['value']}\n</think>\n\n"
    assert [(c["function"]["name"], orjson.loads(c["function"]["arguments"])) for c in calling["tool_calls"]] == [
        (orjson.loads(p["value"])["name"], orjson.loads(p["value"])["arguments"]) for p in calls]
    kind, pair = to_example(demo_rows("v1_dpo_demo.jsonl")[0], "auto")
    assert kind == "dpo" and [m["role"] for m in pair["prompt"]] == ["system", "user"]


def test_kto_labels_pair_into_dpo_and_never_become_sft() -> None:
    """KTO rows were imported as SFT, undesirable answers (label false) included."""
    rows = demo_rows("kto_en_demo.json")
    converted = [(line, to_example(row, "auto")) for line, row in enumerate(rows, 1)]
    assert {kind for _, (kind, _) in converted} == {"kto"}
    pairs, unpaired = pair_kto([(line, payload) for line, (_, payload) in converted])
    good, bad = rows[4], rows[5]  # a desirable and an undesirable answer to the same prompt
    assert pairs == [{"prompt": to_example(good, "auto")[1]["prompt"],
                      "chosen": [{"role": "assistant", "content": good["messages"][-1]["content"]}],
                      "rejected": [{"role": "assistant", "content": bad["messages"][-1]["content"]}]}]
    assert sorted(line for line, _, _ in unpaired) == [1, 2, 3, 4]
    assert all("never imported as SFT" in reason for _, _, reason in unpaired)


def test_every_demo_row_is_kept_with_all_its_text_or_refused_with_a_reason() -> None:
    files = sorted(p for p in DEMO.iterdir() if p.suffix in (".json", ".jsonl") and p.name != "dataset_info.json")
    assert len(files) == 13
    for path in files:
        for line, row in read_records(path):
            try:
                kind, payload = to_example(row, "auto")
            except ImportError_ as exc:
                assert path.name.startswith(("mllm_", "v1_multimodal")), f"{path.name}:{line}: {exc}"
                continue
            assert unkept_text(row, payload) == [], f"{path.name}:{line} lost text"


def test_dataset_info_columns_and_tags_are_honoured() -> None:
    entry = {"file_name": "qa.json", "formatting": "sharegpt", "columns": {"messages": "dialog", "system": "persona"},
             "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "customer", "assistant_tag": "agent"}}
    row = {"persona": "Support agent.", "dialog": [{"speaker": "customer", "text": "Refund?"},
                                                    {"speaker": "agent", "text": "Within 30 days."}]}
    assert to_example(row, Layout.from_dataset_info(entry))[1]["messages"] == [
        {"role": "system", "content": "Support agent."}, {"role": "user", "content": "Refund?"},
        {"role": "assistant", "content": "Within 30 days."}]
    with pytest.raises(ImportError_, match="sharegpt: dialog.0.speaker: unknown speaker 'human'"):
        to_example({"dialog": [{"speaker": "human", "text": "Refund?"}]}, Layout.from_dataset_info(entry))
    alpaca = Layout.from_dataset_info({"file_name": "x.json", "columns": {"prompt": "question", "response": "answer"}})
    assert to_example({"question": "2+2?", "answer": "4", "system": "ignored: not mapped"}, alpaca)[1] == {
        "messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}


def test_import_scrubs_quarantines_and_is_idempotent(settings, tmp_path: Path) -> None:
    path = tmp_path / "seed.jsonl"
    rows = [{"instruction": "My email is jane.doe@example.com, how do I reset my password?",
             "output": "Click Forgot password on the sign-in page."},
            {"prompt": "Student pricing?", "chosen": "Students get 50 percent off Plus.", "rejected": "No discount."},
            {"instruction": "no output"}]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + b"{broken\n")
    result = import_file(settings, path, use_as="seed")
    assert (result.read, result.added, result.quarantined) == (4, 2, 2)
    assert result.by_kind == {"sft": 1, "dpo": 1}
    with connect(settings, read_only=True) as con:
        payloads = [r[0] for r in con.execute("SELECT payload FROM imported_examples").fetchall()]
        reasons = sorted(r[0] for r in con.execute("SELECT reason FROM quarantine WHERE stage = 'import'").fetchall())
    assert not any("jane.doe@example.com" in p for p in payloads)
    assert reasons[0].startswith("alpaca: output: missing") and reasons[1].startswith("line 4: not valid JSON")
    again = import_file(settings, path, use_as="seed")
    assert again.added == 0 and again.already_present == 2


def test_import_pairs_kto_rows_and_scrubs_tool_call_arguments(settings, tmp_path: Path) -> None:
    """Through the whole import (scrub, HAP, warehouse): a KTO file yields DPO pairs and quarantined rows, no
    SFT; personal data inside tool-call arguments is replaced like the same data in the conversation."""
    kto = DEMO / "kto_en_demo.json"
    result = import_file(settings, kto)
    assert result.built == {"dpo": 1} and result.refused == 4 and result.read == result.converted + result.refused
    assert result.by_kind.get("dpo", 0) + result.filtered == 1  # the pair is stored, or the HAP filter says why not
    with connect(settings, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM imported_examples WHERE kind = 'sft'").fetchone()[0] == 0
    calls = tmp_path / "calls.jsonl"
    calls.write_bytes(orjson.dumps({"conversations": [
        {"from": "human", "value": "Email my invoice to jane.doe@example.com please."},
        {"from": "function_call", "value": orjson.dumps({"name": "send_invoice", "arguments": {
            "to": "jane.doe@example.com", "copies": 2}}).decode()},
        {"from": "observation", "value": "sent"}, {"from": "gpt", "value": "Done."}],
        "tools": '[{"name": "send_invoice"}]'}) + b"\n")
    assert import_file(settings, calls).by_kind == {"sft": 1}
    with connect(settings, read_only=True) as con:
        stored = orjson.loads(con.execute("SELECT payload FROM imported_examples WHERE kind = 'sft'").fetchone()[0])
    user, function_call = stored["messages"][0]["content"], stored["messages"][1]["tool_calls"][0]["function"]
    arguments = orjson.loads(function_call["arguments"])
    assert "jane.doe@example.com" not in user and "jane.doe@example.com" not in function_call["arguments"]
    assert arguments["copies"] == 2 and arguments["to"] in user  # the same surrogate in both places
    assert stored["tools"] == '[{"name": "send_invoice"}]'


def test_dataset_info_imports_each_local_entry_with_its_layout(settings) -> None:
    results = import_dataset_info(settings, DEMO / "dataset_info.json", ["identity", "mllm_demo"])
    assert results["identity"].by_kind == {"sft": 3} and results["identity"].refused == 0
    assert results["mllm_demo"].refused == 1 and "multimodal" in next(iter(results["mllm_demo"].reasons))
    with pytest.raises(ImportError_, match="no dataset named nope"):
        import_dataset_info(settings, DEMO / "dataset_info.json", ["nope"])
